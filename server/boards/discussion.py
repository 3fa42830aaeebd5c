"""Comments (with ``@username`` mentions stored for notifications) and checklist items."""

from __future__ import annotations

import re
from uuid import UUID

from fractional_indexing import generate_key_between
from msgspec import UNSET
from sqlalchemy import delete, func, select

from persistence.boards.shapes import (
    ChecklistItemOut,
    CommentOut,
    Deleted,
    checklist_out,
    comment_out,
)
from persistence.locks import lock_card_of
from persistence.models import BoardMember, Card, ChecklistItem, Comment, Mention, User
from server.boards import schemas as s
from server.boards.base import BoardWork
from server.boards.occ import check_version, expected_version
from server.boards.policy import RANK, Action, check
from server.boards.search import index_comment, unindex
from server.errors import Forbidden
from server.pagination import make_page, page_limit, uuid_cursor

MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_][A-Za-z0-9_.-]{0,38})")


def mentioned_usernames(body: str) -> list[str]:
    """``@username`` tokens of a comment, lower-cased, first occurrence order, trailing dots dropped."""
    return list(dict.fromkeys(m.rstrip(".-").lower() for m in MENTION.findall(body)))


class DiscussionService(BoardWork):
    """Comments and checklist items of cards."""

    async def _card_board(self, card_id: UUID, action: Action) -> tuple[UUID, str]:
        return await self.authorize_item(Card, card_id, action, "card")

    async def _lock_card(
        self, model: type[Card] | type[Comment] | type[ChecklistItem], item_id: UUID, what: str
    ) -> tuple[UUID, UUID, str, int]:
        """``(board, card, role, seq)`` for a change of a card's comments or checklist: the card
        (of the comment or checklist item ``item_id``) is locked first, the board second (the
        order of persistence/locks.py), so a concurrent delete of the card, its list or its
        board waits for this change or this one finds nothing (404), never a deadlock or a
        foreign-key error.

        SQLite takes no row locks: under the board lock (its one writer) the card is read again.
        """
        board_id, card_id, role = await lock_card_of(self.session, model, item_id, self.user_id)
        role = check(role if board_id is not None else None, Action.EDIT_CONTENT, what=what)
        assert board_id is not None
        assert card_id is not None
        seq = await self.lock(board_id)
        if not self.locks_late and model is Card:
            await self.load(Card, card_id, board_id, what)
        return board_id, card_id, role, seq

    async def _mentions(self, comment: Comment) -> list[UUID]:
        """Store the mentions of ``comment``: members of its board named as ``@username``."""
        await self.session.execute(delete(Mention).where(Mention.comment_id == comment.id))
        names = mentioned_usernames(comment.body)
        if not names:
            return []
        users = (
            (
                await self.session.execute(
                    select(User.id)
                    .join(BoardMember, BoardMember.user_id == User.id)
                    .where(BoardMember.board_id == comment.board_id, func.lower(User.username).in_(names))
                )
            )
            .scalars()
            .all()
        )
        for user_id in users:
            self.session.add(
                Mention(
                    comment_id=comment.id, user_id=user_id, board_id=comment.board_id, card_id=comment.card_id
                )
            )
        return list(users)

    async def _comment_view(self, comment: Comment) -> CommentOut:
        mentions = (
            (await self.session.execute(select(Mention.user_id).where(Mention.comment_id == comment.id)))
            .scalars()
            .all()
        )
        return comment_out(comment, list(mentions))

    async def list_comments(self, card_id: UUID, limit: int | None, cursor: str | None) -> s.CommentPage:
        await self._card_board(card_id, Action.READ)
        limit = page_limit(limit)
        stmt = select(Comment).where(Comment.card_id == card_id).order_by(Comment.id).limit(limit + 1)
        after = uuid_cursor(cursor)
        if after is not None:
            stmt = stmt.where(Comment.id > after)
        rows = (await self.session.execute(stmt)).scalars().all()
        items = [await self._comment_view(c) for c in rows[:limit]]
        return make_page(s.CommentPage, items, len(rows) > limit, lambda c: str(c.id))

    async def create_comment(self, card_id: UUID, data: s.CommentIn) -> CommentOut:
        board_id, _, _, seq = await self._lock_card(Card, card_id, "card")
        comment = Comment(board_id=board_id, card_id=card_id, author_id=self.user_id, body=data.body)
        self.session.add(comment)
        await self.flush()
        mentions = await self._mentions(comment)
        await index_comment(self.session, comment)
        await self.flush()
        out = comment_out(comment, mentions)
        await self.commit_event(board_id, seq, "comment.created", out, newly_mentioned=list(out.mentions))
        return out

    async def _comment(self, comment_id: UUID) -> tuple[UUID, str, int, Comment]:
        board_id, _, role, seq = await self._lock_card(Comment, comment_id, "comment")
        return board_id, role, seq, await self.load(Comment, comment_id, board_id, "comment")

    async def update_comment(
        self, comment_id: UUID, data: s.CommentPatch, if_match: int | None
    ) -> CommentOut:
        """Edit a comment: its author only."""
        board_id, _, seq, comment = await self._comment(comment_id)
        if comment.author_id != self.user_id:
            raise Forbidden("Only the author may edit a comment.")
        before = await self._comment_view(comment)
        check_version(comment.version, expected_version(data.version, if_match), before)
        comment.body = data.body
        comment.version += 1
        await self.flush()
        mentions = await self._mentions(comment)
        await index_comment(self.session, comment)
        await self.flush()
        out = comment_out(comment, mentions)
        added = [u for u in out.mentions if u not in before.mentions]
        await self.commit_event(board_id, seq, "comment.updated", out, newly_mentioned=added)
        return out

    async def delete_comment(self, comment_id: UUID, if_match: int | None) -> None:
        """Delete a comment: its author, or an admin or the owner of the board."""
        board_id, role, seq, comment = await self._comment(comment_id)
        if comment.author_id != self.user_id and RANK[role] < RANK["admin"]:
            raise Forbidden("Only the author or a board admin may delete a comment.")
        check_version(comment.version, if_match, await self._comment_view(comment))
        card_id = comment.card_id
        await unindex(self.session, comment_id)
        await self.session.delete(comment)
        await self.flush()
        await self.commit_event(
            board_id, seq, "comment.deleted", Deleted(id=comment_id, board_id=board_id, card_id=card_id)
        )

    # Checklist

    async def create_item(self, card_id: UUID, data: s.ChecklistIn) -> ChecklistItemOut:
        board_id, _, _, seq = await self._lock_card(Card, card_id, "card")
        last = await self.session.scalar(
            select(func.max(ChecklistItem.position)).where(ChecklistItem.card_id == card_id)
        )
        item = ChecklistItem(
            board_id=board_id,
            card_id=card_id,
            text=data.text,
            done=data.done,
            position=generate_key_between(last, None),
        )
        self.session.add(item)
        await self.flush()
        out = checklist_out(item)
        await self.commit_event(board_id, seq, "checklist.created", out)
        return out

    async def _item(self, item_id: UUID) -> tuple[UUID, int, ChecklistItem]:
        board_id, _, _, seq = await self._lock_card(ChecklistItem, item_id, "checklist item")
        return board_id, seq, await self.load(ChecklistItem, item_id, board_id, "checklist item")

    async def update_item(
        self, item_id: UUID, data: s.ChecklistPatch, if_match: int | None
    ) -> ChecklistItemOut:
        board_id, seq, item = await self._item(item_id)
        check_version(item.version, expected_version(data.version, if_match), checklist_out(item))
        if data.text is not UNSET:
            item.text = data.text
        if data.done is not UNSET:
            item.done = data.done
        item.version += 1
        await self.flush()
        out = checklist_out(item)
        await self.commit_event(board_id, seq, "checklist.updated", out)
        return out

    async def delete_item(self, item_id: UUID, if_match: int | None) -> None:
        board_id, seq, item = await self._item(item_id)
        check_version(item.version, if_match, checklist_out(item))
        card_id = item.card_id
        await self.session.delete(item)
        await self.flush()
        await self.commit_event(
            board_id, seq, "checklist.deleted", Deleted(id=item_id, board_id=board_id, card_id=card_id)
        )
