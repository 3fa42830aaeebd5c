"""Lists and cards: create, edit, archive, order, move, delete; the filtered card collection."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from msgspec import UNSET
from sqlalchemy import bindparam, delete, insert, or_, select

from persistence.access import card_detail_and_role, with_role
from persistence.boards.read import card_view, cards_out
from persistence.boards.shapes import (
    CardDetail,
    CardMoved,
    CardOut,
    Deleted,
    ListOut,
    card_out,
    checklist_out,
    list_out,
)
from persistence.db import NO_ROW, hot
from persistence.locks import lock_rows_under
from persistence.models import (
    BoardList,
    BoardMember,
    Card,
    ChecklistItem,
    Comment,
    Label,
    card_assignees,
    card_labels,
)
from server.boards import schemas as s
from server.boards.base import BoardWork, retried
from server.boards.occ import check_version, expected_version
from server.boards.policy import Action, check_found
from server.boards.positions import key_after, last_position, position_between
from server.boards.search import index_card, unindex
from server.errors import FieldError, ValidationFailed
from server.pagination import make_page, page_limit, uuid_cursor

# The list a card is added or moved to is read locked FOR KEY SHARE (PostgreSQL), before the
# board lock: the card's foreign key would take that lock anyway, but only as its statement ends,
# after the board's, the wrong way round for a delete of the list or board (persistence/locks.py).
_KEY_SHARE: dict[str, Any] = {"of": BoardList, "read": True, "key_share": True}
_BOARD_OF_LIST = hot(
    select(BoardList.board_id).where(BoardList.id == bindparam("list_id")).with_for_update(**_KEY_SHARE),
    list_id=NO_ROW,
)
# A card moved or added at the end of a list (the usual case): the list's board (and, adding, the
# caller's role there) with the list's last card position, one round trip fewer.
_BOARD_AND_LAST_OF_LIST = hot(
    select(BoardList.board_id, last_position(Card, "list_id", moving=True))
    .where(BoardList.id == bindparam("parent_id"))
    .with_for_update(**_KEY_SHARE),
    parent_id=NO_ROW,
    moving_id=NO_ROW,
)
# PostgreSQL takes FOR UPDATE, not FOR NO KEY UPDATE, on a row whose UPDATE writes a column of a
# unique index (a card's list_id and position, a list's position). A move asks for it before the
# board lock: asked for by the UPDATE itself it came after the board's and waited for the FOR KEY
# SHARE of a comment being added to the card, which waited for the board (persistence/locks.py).
_CARD_FOR_KEY_UPDATE = hot(
    select(Card.id).where(Card.id == bindparam("card_id")).with_for_update(), card_id=NO_ROW
)
_BOARD_ROLE_AND_LAST_OF_LIST = hot(
    with_role(BoardList, BoardList.board_id, last_position(Card, "list_id")).with_for_update(**_KEY_SHARE),
    item_id=NO_ROW,
    parent_id=NO_ROW,
    user_id=NO_ROW,
)


class ListCardService(BoardWork):
    """Lists and cards of a board."""

    # Lists

    @retried
    async def create_list(self, board_id: UUID, data: s.ListIn) -> ListOut:
        await self.authorize(board_id, Action.EDIT_CONTENT)
        seq = await self.lock(board_id)
        position = await position_between(
            self.session,
            BoardList,
            BoardList.board_id,
            board_id,
            before_id=data.before_id,
            after_id=data.after_id,
        )
        row = BoardList(board_id=board_id, name=data.name, position=position)
        self.session.add(row)
        await self.flush()
        out = list_out(row)
        await self.commit_event(board_id, seq, "list.created", out)
        return out

    async def get_list(self, list_id: UUID) -> ListOut:
        return list_out(await self.authorize_and_read(BoardList, list_id, Action.READ, "list"))

    @retried
    async def update_list(self, list_id: UUID, data: s.ListPatch, if_match: int | None) -> ListOut:
        """Rename, archive/unarchive, or move (``before_id``/``after_id``) a list: one event,
        ``list.moved`` if it moved, else ``list.archived`` if that flag changed, else ``list.updated``."""
        moves = data.before_id is not UNSET or data.after_id is not UNSET
        row, board_id, seq = await self.authorize_to_change(
            BoardList, list_id, Action.EDIT_CONTENT, "list", board_lock=not moves
        )
        if seq is None:  # PostgreSQL, a move: FOR UPDATE before the board lock (_CARD_FOR_KEY_UPDATE)
            row = await self.load(BoardList, list_id, board_id, "list", for_update=True)
            seq = await self.lock(board_id)
        check_version(row.version, expected_version(data.version, if_match), list_out(row))
        kind = "list.updated"
        if moves:
            row.position = await position_between(
                self.session,
                BoardList,
                BoardList.board_id,
                board_id,
                before_id=data.before_id or None,
                after_id=data.after_id or None,
                moving_id=list_id,
            )
            kind = "list.moved"
        if data.archived is not UNSET and data.archived != row.archived:
            row.archived = data.archived
            kind = "list.archived" if kind == "list.updated" else kind
        if data.name is not UNSET:
            row.name = data.name
        row.version += 1
        await self.flush()
        out = list_out(row)
        await self.commit_event(board_id, seq, kind, out)
        return out

    @retried
    async def delete_list(self, list_id: UUID, if_match: int | None) -> None:
        """Delete a list and its cards (one ``list.deleted`` event).

        PostgreSQL: its cards are locked first, then the list, then the board, the order of every
        change (persistence/locks.py); a change of one of those cards finishes first, or finds
        the card gone.
        """
        if not self.locks_late:
            row, board_id, seq = await self.authorize_to_change(
                BoardList, list_id, Action.EDIT_CONTENT, "list", board_lock=True
            )
        else:
            board_id, _ = await self.authorize_item(BoardList, list_id, Action.EDIT_CONTENT, "list")
            await lock_rows_under(self.session, Card, "list_id", list_id)
            row = await self.load(BoardList, list_id, board_id, "list", for_update=True)
            seq = await self.lock(board_id)
        check_version(row.version, if_match, list_out(row))
        await self.session.delete(row)
        await self.flush()
        await self.commit_event(board_id, seq, "list.deleted", Deleted(id=list_id, board_id=board_id))

    # Cards

    @retried
    async def create_card(self, list_id: UUID, data: s.CardIn) -> CardOut:
        # PostgreSQL, at the end of the list: the position is read with the authorization. Keys
        # are jittered there, so it needs no lock; SQLite reads it after the board lock.
        # The list is locked (PostgreSQL) as it is authorized, before the board (persistence/locks.py).
        at_end = self.locks_late and data.before_id is None and data.after_id is None
        ids = {"item_id": list_id, "parent_id": list_id, "user_id": self.user_id}
        row = (await self.session.execute(_BOARD_ROLE_AND_LAST_OF_LIST, ids)).first()
        board_id, last, role = row if row is not None else (None, None, None)
        board_id = check_found(board_id, role, Action.EDIT_CONTENT, what="list")
        # SQLite: a list deleted since it was authorized fails the insert's foreign key: retried,
        # then a 404.
        seq = await self.lock_early(board_id, needed=bool(data.assignee_ids or data.label_ids))
        await self._check_relations(board_id, data.assignee_ids, data.label_ids)
        position = await self._card_position(list_id, data, last, at_end=at_end)
        card = Card(
            board_id=board_id,
            list_id=list_id,
            title=data.title,
            description=data.description,
            position=position,
            due_at=data.due_at,
            created_by=self.user_id,
        )
        # Assignees and labels refer to the card: with them the board lock came early (``seq``),
        # and the card is flushed before them.
        await self.insert_row(card, seq)
        await self._set_relations(card.id, data.assignee_ids, data.label_ids)
        await index_card(self.session, card)
        out = card_out(card, list(dict.fromkeys(data.assignee_ids)), list(dict.fromkeys(data.label_ids)))
        await self.commit_event(board_id, seq, "card.created", out, newly_assigned=list(out.assignee_ids))
        return out

    async def get_card(self, card_id: UUID) -> CardDetail:
        if self.locks_late:  # PostgreSQL: one statement (card_detail_and_role)
            found, role, assignees, labels, checklist = await card_detail_and_role(
                self.session, card_id, self.user_id
            )
            out = card_out(check_found(found, role, Action.READ, what="card"), assignees, labels)
        else:
            card = await self.authorize_and_read(Card, card_id, Action.READ, "card")
            out = await card_view(self.session, card)
            items = (
                await self.session.execute(
                    select(ChecklistItem)
                    .where(ChecklistItem.card_id == card_id)
                    .order_by(ChecklistItem.position)
                )
            ).scalars()
            checklist = [checklist_out(i) for i in items]
        return CardDetail(**{f: getattr(out, f) for f in out.__struct_fields__}, checklist=checklist)

    @retried
    async def update_card(self, card_id: UUID, data: s.CardPatch, if_match: int | None) -> CardOut:
        """Edit fields, assignees, labels, or archive; ``card.archived`` if that flag changed."""
        assignees = None if data.assignee_ids is UNSET else data.assignee_ids
        labels = None if data.label_ids is UNSET else data.label_ids
        card, board_id, seq = await self.authorize_to_change(
            Card, card_id, Action.EDIT_CONTENT, "card", board_lock=bool(assignees or labels)
        )
        before = await self.card_before(card)
        check_version(card.version, expected_version(data.version, if_match), before)
        await self._check_relations(board_id, assignees or [], labels or [])
        kind = "card.updated"
        values: dict[str, Any] = {"version": card.version + 1}
        if data.archived is not UNSET and data.archived != card.archived:
            values["archived"] = data.archived
            kind = "card.archived"
        if data.title is not UNSET:
            values["title"] = data.title
        if data.description is not UNSET:
            values["description"] = data.description
        if data.due_at is not UNSET:
            values["due_at"] = data.due_at
        await self._set_relations(card.id, assignees, labels, replace=True)
        await self.write_row(card, seq, **values)
        await index_card(self.session, card)
        out = card_out(
            card,
            before.assignee_ids if assignees is None else list(dict.fromkeys(assignees)),
            before.label_ids if labels is None else list(dict.fromkeys(labels)),
        )
        added = [u for u in out.assignee_ids if u not in before.assignee_ids]
        await self.commit_event(board_id, seq, kind, out, newly_assigned=added)
        return out

    async def _card_position(
        self,
        list_id: UUID,
        data: s.CardIn | s.CardMove,
        last: str | None,
        *,
        at_end: bool,
        moving_id: UUID | None = None,
    ) -> str:
        """The key of a card created in or moved to ``list_id``: between ``data``'s neighbours, or,
        ``at_end``, after ``last`` (the list's last key, read along with the list's board)."""
        if at_end:
            return key_after(last, jitter=self.locks_late)
        return await position_between(
            self.session,
            Card,
            Card.list_id,
            list_id,
            before_id=data.before_id,
            after_id=data.after_id,
            moving_id=moving_id,
            jitter=self.locks_late,
        )

    @retried
    async def move_card(self, card_id: UUID, data: s.CardMove, if_match: int | None) -> CardMoved:
        """Move a card to a position in a list of the same board (one row written)."""
        card, board_id, seq = await self.authorize_to_change(Card, card_id, Action.EDIT_CONTENT, "card")
        if self.locks_late:
            await self.session.execute(_CARD_FOR_KEY_UPDATE, {"card_id": card_id})
        before = await self.card_before(card)
        check_version(card.version, expected_version(data.version, if_match), before)
        at_end = data.before_id is None and data.after_id is None
        last: str | None = None
        if at_end:  # the target list's board and its last position at once (the card is locked)
            row = (
                await self.session.execute(
                    _BOARD_AND_LAST_OF_LIST, {"parent_id": data.list_id, "moving_id": card_id}
                )
            ).first()
            target, last = row if row is not None else (None, None)
        else:
            target = await self.session.scalar(_BOARD_OF_LIST, {"list_id": data.list_id})
        if target != board_id:
            raise ValidationFailed([FieldError("list_id", "is not a list of this card's board")])
        previous = card.list_id
        position = await self._card_position(data.list_id, data, last, at_end=at_end, moving_id=card_id)
        await self.write_row(card, seq, position=position, list_id=data.list_id, version=card.version + 1)
        view = card_out(card, before.assignee_ids, before.label_ids)
        out = CardMoved(**{f: getattr(view, f) for f in view.__struct_fields__}, previous_list_id=previous)
        await self.commit_event(board_id, seq, "card.moved", out)
        return out

    @retried
    async def delete_card(self, card_id: UUID, if_match: int | None) -> None:
        card, board_id, seq = await self.authorize_to_change(Card, card_id, Action.EDIT_CONTENT, "card")
        check_version(card.version, if_match, await self.card_before(card))
        comment_ids = (
            await self.session.execute(select(Comment.id).where(Comment.card_id == card_id))
        ).scalars()
        await unindex(self.session, card_id, *comment_ids)
        list_id = card.list_id
        await self.session.delete(card)
        await self.flush()
        await self.commit_event(
            board_id, seq, "card.deleted", Deleted(id=card_id, board_id=board_id, list_id=list_id)
        )

    async def _check_relations(self, board_id: UUID, assignee_ids: list[UUID], label_ids: list[UUID]) -> None:
        """Assignees must be members of the board, labels labels of the board (else 422)."""
        errors: list[FieldError] = []
        if assignee_ids:
            found = set(
                (
                    await self.session.execute(
                        select(BoardMember.user_id).where(
                            BoardMember.board_id == board_id, BoardMember.user_id.in_(assignee_ids)
                        )
                    )
                ).scalars()
            )
            if missing := [str(u) for u in assignee_ids if u not in found]:
                errors.append(FieldError("assignee_ids", "not members of this board: " + ", ".join(missing)))
        if label_ids:
            found = set(
                (
                    await self.session.execute(
                        select(Label.id).where(Label.board_id == board_id, Label.id.in_(label_ids))
                    )
                ).scalars()
            )
            if missing := [str(x) for x in label_ids if x not in found]:
                errors.append(FieldError("label_ids", "not labels of this board: " + ", ".join(missing)))
        if errors:
            raise ValidationFailed(errors)

    async def _set_relations(
        self,
        card_id: UUID,
        assignee_ids: list[UUID] | None,
        label_ids: list[UUID] | None,
        *,
        replace: bool = False,
    ) -> None:
        if assignee_ids is not None:
            if replace:
                await self.session.execute(delete(card_assignees).where(card_assignees.c.card_id == card_id))
            if assignee_ids:
                await self.session.execute(
                    insert(card_assignees),
                    [{"card_id": card_id, "user_id": u} for u in dict.fromkeys(assignee_ids)],
                )
        if label_ids is not None:
            if replace:
                await self.session.execute(delete(card_labels).where(card_labels.c.card_id == card_id))
            if label_ids:
                await self.session.execute(
                    insert(card_labels),
                    [{"card_id": card_id, "label_id": x} for x in dict.fromkeys(label_ids)],
                )

    async def filter_cards(
        self,
        board_id: UUID,
        *,
        q: str | None,
        label: UUID | None,
        assignee: UUID | None,
        due_before: datetime | None,
        archived: bool | None,
        limit: int | None,
        cursor: str | None,
    ) -> s.CardPage:
        """The board's cards matching every filter given, oldest first; archived ones only with
        ``archived=true`` (default ``false``)."""
        await self.authorize(board_id, Action.READ)
        limit = page_limit(limit)
        if q is not None and len(q) > 200:
            raise ValidationFailed([FieldError("q", "must be at most 200 characters")])
        if due_before is not None and due_before.tzinfo is None:
            raise ValidationFailed([FieldError("due_before", "must carry a time zone (e.g. Z)")])
        stmt = select(Card).where(Card.board_id == board_id, Card.archived.is_(bool(archived)))
        if q:
            pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                or_(Card.title.ilike(pattern, escape="\\"), Card.description.ilike(pattern, escape="\\"))
            )
        if label is not None:
            stmt = stmt.where(
                Card.id.in_(select(card_labels.c.card_id).where(card_labels.c.label_id == label))
            )
        if assignee is not None:
            stmt = stmt.where(
                Card.id.in_(select(card_assignees.c.card_id).where(card_assignees.c.user_id == assignee))
            )
        if due_before is not None:
            stmt = stmt.where(Card.due_at.is_not(None), Card.due_at < due_before)
        after = uuid_cursor(cursor)
        if after is not None:
            stmt = stmt.where(Card.id > after)
        rows = (await self.session.execute(stmt.order_by(Card.id).limit(limit + 1))).scalars().all()
        items = await cards_out(self.session, rows[:limit])
        return make_page(s.CardPage, items, len(rows) > limit, lambda c: str(c.id))
