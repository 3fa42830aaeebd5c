"""Boards, their members and their labels."""

from __future__ import annotations

import re
from uuid import UUID

import msgspec
from msgspec import UNSET
from sqlalchemy import delete, func, select

from persistence.boards.read import board_tag, member_view, members_out
from persistence.boards.shapes import (
    BoardOut,
    BoardSummary,
    Deleted,
    LabelOut,
    MemberOut,
    board_out,
    label_out,
)
from persistence.eventlog import BoardNotFoundError, tagged_board_snapshot
from persistence.events import AccessRevoked, BoardDeleted, UserMessage
from persistence.locks import lock_cards_linked, lock_rows_under
from persistence.models import Board, BoardList, BoardMember, Card, Label, User, card_assignees
from persistence.outbox import queue_control
from server.boards import schemas as s
from server.boards.base import BoardWork
from server.boards.occ import board_etag, check_version, expected_version
from server.boards.policy import RANK, Action, not_found, outranks
from server.boards.search import unindex_board
from server.errors import Conflict, FieldError, Forbidden, ValidationFailed
from server.pagination import make_page, page_limit, uuid_cursor

PALETTE = frozenset(
    {"green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black", "gray"}
)
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def valid_colour(colour: str) -> str:
    if HEX_COLOUR.match(colour):
        return colour.lower()
    if colour in PALETTE:
        return colour
    raise ValidationFailed([FieldError("color", "must be #rrggbb or one of " + ", ".join(sorted(PALETTE)))])


class BoardService(BoardWork):
    """Boards: create, list mine, read whole, edit, delete; members; labels."""

    async def list_mine(self, limit: int | None, cursor: str | None) -> s.BoardPage:
        limit = page_limit(limit)
        after = uuid_cursor(cursor)
        stmt = (
            select(Board, BoardMember.role)
            .join(BoardMember, BoardMember.board_id == Board.id)
            .where(BoardMember.user_id == self.user_id)
            .order_by(Board.id)
            .limit(limit + 1)
        )
        if after is not None:
            stmt = stmt.where(Board.id > after)
        rows = (await self.session.execute(stmt)).tuples().all()
        items = [
            BoardSummary(**msgspec.structs.asdict(board_out(b)), role=role, seq=b.seq)
            for b, role in rows[:limit]
        ]
        return make_page(s.BoardPage, items, len(rows) > limit, lambda item: str(item.id))

    async def create(self, data: s.BoardIn) -> BoardOut:
        """Create a board; the creator becomes its owner (event 1: ``member.added``)."""
        board = Board(name=data.name, description=data.description, created_by=self.user_id)
        self.session.add(board)
        await self.session.flush()
        self.session.add(BoardMember(board_id=board.id, user_id=self.user_id, role="owner"))
        seq = await self.lock(board.id)
        await self.flush()
        member = await member_view(self.session, board.id, self.user_id)
        out = board_out(board)
        await self.commit_event(board.id, seq, "member.added", member)
        return out

    async def snapshot(self, board_id: UUID) -> tuple[str, bytes]:
        """``(etag, body)`` of ``GET /boards/{id}``, both of one snapshot."""
        await self.authorize(board_id, Action.READ)
        try:
            tag, body = await tagged_board_snapshot(self.session, board_id)
        except BoardNotFoundError:
            raise not_found() from None
        return board_etag(*tag), body

    async def current_etag(self, board_id: UUID) -> str:
        """The ``ETag`` ``GET /boards/{id}`` would send now, without reading the board (one query)."""
        await self.authorize(board_id, Action.READ)
        tag = await board_tag(self.session, board_id)
        if tag is None:
            raise not_found()
        return board_etag(*tag)

    async def update(self, board_id: UUID, data: s.BoardPatch, if_match: int | None) -> BoardOut:
        await self.authorize(board_id, Action.EDIT_BOARD)
        seq = await self.lock(board_id)
        board = await self._board(board_id)
        check_version(board.version, expected_version(data.version, if_match), board_out(board))
        if data.name is not UNSET:
            board.name = data.name
        if data.description is not UNSET:
            board.description = data.description
        board.version += 1
        await self.flush()
        out = board_out(board)
        await self.commit_event(board_id, seq, "board.updated", out)
        return out

    async def delete(self, board_id: UUID, if_match: int | None) -> None:
        """Delete the board and everything on it (owner only); sockets on it are closed.

        PostgreSQL: the board's cards are locked first, then its lists, then the board, the order
        of every change (persistence/locks.py): a change of a card or list that holds its lock
        finishes first, one that comes later finds the board gone (404). Taking the board first
        and cascading to the cards from there deadlocked with the card changes.
        """
        await self.authorize(board_id, Action.DELETE_BOARD)
        if self.locks_late:
            await lock_rows_under(self.session, Card, "board_id", board_id)
            await lock_rows_under(self.session, BoardList, "board_id", board_id)
        seq = await self.lock(board_id)
        board = await self._board(board_id)
        check_version(board.version, if_match, board_out(board))
        await unindex_board(self.session, board_id)
        await self.session.delete(board)
        await self.flush()
        queue_control(self.session, BoardDeleted(board_id=board_id))
        # The log goes with the board; the event still reaches every socket on it.
        await self.commit_event(
            board_id, seq, "board.deleted", Deleted(id=board_id, board_id=board_id), store=False
        )

    async def _board(self, board_id: UUID) -> Board:
        board = (
            await self.session.execute(
                select(Board).where(Board.id == board_id).execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if board is None:
            raise not_found()
        return board

    # Members

    async def list_members(self, board_id: UUID, limit: int | None, cursor: str | None) -> s.MemberPage:
        await self.authorize(board_id, Action.READ)
        limit = page_limit(limit)
        after = uuid_cursor(cursor)
        members = sorted(await members_out(self.session, board_id), key=lambda m: m.user_id)
        if after is not None:
            members = [m for m in members if m.user_id > after]
        return make_page(s.MemberPage, members[:limit], len(members) > limit, lambda m: str(m.user_id))

    async def get_member(self, board_id: UUID, user_id: UUID) -> MemberOut:
        await self.authorize(board_id, Action.READ)
        member = await member_view(self.session, board_id, user_id)
        if member is None:
            raise not_found("member")
        return member

    async def add_member(self, board_id: UUID, data: s.MemberIn) -> MemberOut:
        """Add a user (by ``user_id`` or ``email``) with a role below owner."""
        my_role = await self.authorize(board_id, Action.MANAGE_MEMBERS)
        if (data.user_id is None) == (data.email is None):
            raise ValidationFailed([FieldError("user_id", "send exactly one of user_id and email")])
        if data.role == "owner":
            raise ValidationFailed([FieldError("role", "ownership is handed over with PATCH by the owner")])
        if outranks(data.role, my_role):
            raise Forbidden("You may not grant a role above your own.")
        field = "user_id" if data.user_id is not None else "email"
        cond = (
            User.id == data.user_id
            if data.user_id is not None
            else func.lower(User.email) == (data.email or "").lower()
        )
        # share-locked: a rename of the user (server/users/announce.py) under way is waited for, so
        # the member.added below shows the names it leaves
        user = (
            await self.session.execute(
                select(User).where(cond, User.is_active.is_(True)).with_for_update(read=True)
            )
        ).scalar_one_or_none()
        if user is None:
            raise ValidationFailed([FieldError(field, "no such user")])
        seq = await self.lock(board_id)
        existing = await self.session.scalar(
            select(BoardMember.id).where(BoardMember.board_id == board_id, BoardMember.user_id == user.id)
        )
        if existing is not None:
            raise Conflict("That user is already a member of this board.")
        self.session.add(BoardMember(board_id=board_id, user_id=user.id, role=data.role))
        await self.flush()
        member = await member_view(self.session, board_id, user.id)
        assert member is not None
        board = await self._board(board_id)
        payload = BoardSummary(**msgspec.structs.asdict(board_out(board)), role=data.role, seq=seq)
        queue_control(
            self.session,
            UserMessage(
                user_id=user.id, event="member.added", payload=msgspec.Raw(msgspec.json.encode(payload))
            ),
        )
        await self.commit_event(board_id, seq, "member.added", member, added_member=user.id)
        return member

    async def update_member(
        self, board_id: UUID, user_id: UUID, data: s.MemberPatch, if_match: int | None
    ) -> MemberOut:
        """Change a member's role. ``role: "owner"`` (owner only) hands the board over: the
        previous owner becomes an admin (two ``member.updated`` events)."""
        my_role = await self.authorize(board_id, Action.MANAGE_MEMBERS)
        seq = await self.lock(board_id)
        target = await self._member(board_id, user_id)
        current = await member_view(self.session, board_id, user_id)
        check_version(target.version, expected_version(data.version, if_match), current)
        if data.role == "owner":
            if my_role != "owner":
                raise Forbidden("Only the owner may hand the board over.")
            if user_id == self.user_id:
                return await self._unchanged(board_id, user_id)
            me = await self._member(board_id, self.user_id)
            me.role = "admin"
            me.version += 1
            await self.flush()
            self.record(
                board_id, seq, "member.updated", await member_view(self.session, board_id, self.user_id)
            )
            seq = await self.lock(board_id)
        elif target.role == "owner":
            raise ValidationFailed(
                [FieldError("role", "the owner keeps the role until handing the board over")]
            )
        elif outranks(data.role, my_role) or outranks(target.role, my_role):
            raise Forbidden("You may not change a member whose role, or the new one, is above your own.")
        target.role = data.role
        target.version += 1
        await self.flush()
        member = await member_view(self.session, board_id, user_id)
        await self.commit_event(board_id, seq, "member.updated", member)
        assert member is not None
        return member

    async def _unchanged(self, board_id: UUID, user_id: UUID) -> MemberOut:
        await self.session.rollback()
        member = await member_view(self.session, board_id, user_id)
        assert member is not None
        return member

    async def remove_member(self, board_id: UUID, user_id: UUID, if_match: int | None) -> None:
        """Remove a member (admins), or leave (anyone but the owner). Their cards are unassigned."""
        action = Action.READ if user_id == self.user_id else Action.MANAGE_MEMBERS
        my_role = await self.authorize(board_id, action)
        await lock_cards_linked(self.session, board_id, assignee=user_id)  # cards before the board
        seq = await self.lock(board_id)
        target = await self._member(board_id, user_id)
        check_version(target.version, if_match, await member_view(self.session, board_id, user_id))
        if target.role == "owner":
            raise ValidationFailed(
                [FieldError("user_id", "the owner cannot leave; hand the board over first")]
            )
        if user_id != self.user_id and RANK[target.role] > RANK[my_role]:
            raise Forbidden("You may not remove a member whose role is above your own.")
        card_ids = select(Card.id).where(Card.board_id == board_id).scalar_subquery()
        await self.session.execute(
            delete(card_assignees).where(
                card_assignees.c.user_id == user_id, card_assignees.c.card_id.in_(card_ids)
            )
        )
        await self.session.delete(target)
        await self.flush()
        queue_control(self.session, AccessRevoked(board_id=board_id, user_id=user_id))
        payload = msgspec.json.encode({"board_id": board_id})
        queue_control(
            self.session,
            UserMessage(user_id=user_id, event="member.removed", payload=msgspec.Raw(payload)),
        )
        await self.commit_event(
            board_id, seq, "member.removed", Deleted(id=user_id, board_id=board_id, user_id=user_id)
        )

    async def _member(self, board_id: UUID, user_id: UUID) -> BoardMember:
        row = (
            await self.session.execute(
                select(BoardMember)
                .where(BoardMember.board_id == board_id, BoardMember.user_id == user_id)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if row is None:
            raise not_found("member")
        return row

    # Labels

    async def list_labels(self, board_id: UUID, limit: int | None, cursor: str | None) -> s.LabelPage:
        await self.authorize(board_id, Action.READ)
        limit = page_limit(limit)
        stmt = select(Label).where(Label.board_id == board_id).order_by(Label.id).limit(limit + 1)
        after = uuid_cursor(cursor)
        if after is not None:
            stmt = stmt.where(Label.id > after)
        rows = (await self.session.execute(stmt)).scalars().all()
        return make_page(
            s.LabelPage, [label_out(r) for r in rows[:limit]], len(rows) > limit, lambda item: str(item.id)
        )

    async def create_label(self, board_id: UUID, data: s.LabelIn) -> LabelOut:
        await self.authorize(board_id, Action.MANAGE_LABELS)
        colour = valid_colour(data.color)
        seq = await self.lock(board_id)
        label = Label(board_id=board_id, name=data.name, color=colour)
        self.session.add(label)
        await self.flush()
        out = label_out(label)
        await self.commit_event(board_id, seq, "label.created", out)
        return out

    async def update_label(self, label_id: UUID, data: s.LabelPatch, if_match: int | None) -> LabelOut:
        board_id = await self._board_of_label(label_id)
        await self.authorize(board_id, Action.MANAGE_LABELS, "label")
        assert board_id is not None
        colour = valid_colour(data.color) if data.color is not UNSET else None
        seq = await self.lock(board_id)
        label = await self.load(Label, label_id, board_id, "label")
        check_version(label.version, expected_version(data.version, if_match), label_out(label))
        if data.name is not UNSET:
            label.name = data.name
        if colour is not None:
            label.color = colour
        label.version += 1
        await self.flush()
        out = label_out(label)
        await self.commit_event(board_id, seq, "label.updated", out)
        return out

    async def delete_label(self, label_id: UUID, if_match: int | None) -> None:
        """Delete a label; it comes off every card (no card events: ``label.deleted`` says it)."""
        board_id = await self._board_of_label(label_id)
        await self.authorize(board_id, Action.MANAGE_LABELS, "label")
        assert board_id is not None
        await lock_cards_linked(self.session, board_id, label=label_id)  # cards before the board
        seq = await self.lock(board_id)
        label = await self.load(Label, label_id, board_id, "label")
        check_version(label.version, if_match, label_out(label))
        await self.session.delete(label)
        await self.flush()
        await self.commit_event(board_id, seq, "label.deleted", Deleted(id=label_id, board_id=board_id))

    async def _board_of_label(self, label_id: UUID) -> UUID | None:
        return (
            await self.session.execute(select(Label.board_id).where(Label.id == label_id))
        ).scalar_one_or_none()
