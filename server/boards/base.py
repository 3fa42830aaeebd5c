"""What every board service shares: authorization, the board lock, one event, commit."""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.events import Event
from persistence.access import board_and_role_of
from persistence.eventlog import BoardNotFoundError, allocate_seq, record_event
from persistence.models import BoardList, Card, User
from server.boards.hooks import BoardChange, run_change_hooks
from server.boards.policy import Action, authorize, check, not_found
from server.boards.schemas import Page
from server.errors import FieldError, ValidationFailed

M = TypeVar("M")
T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@cache
def _load_stmt(model: Any) -> Any:
    """``model`` by id within a board, refreshing any copy in the session; built once per model."""
    return (
        select(model)
        .where(model.id == bindparam("item_id"), model.board_id == bindparam("board_id"))
        .execution_options(populate_existing=True)
    )


def page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed([FieldError("limit", f"must be between 1 and {MAX_LIMIT}")])
    return limit


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed([FieldError("cursor", "is not a cursor this server gave out")]) from None


def uuid_cursor(cursor: str | None) -> UUID | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this server gave out")]) from None


def make_page(items: list[T], more: bool, key: Callable[[T], str]) -> Page[T]:
    """A collection page; ``next_cursor`` encodes the last item's key when there is more."""
    return Page(items=items, next_cursor=encode_cursor(key(items[-1])) if more and items else None)


class BoardWork:
    """Base of the board services: one instance per request, acting as ``user``.

    A change runs: authorize → :meth:`lock` (the board row, which also numbers the event) → load
    and check → mutate → :meth:`commit_event`. Anything raised before the commit changes nothing.
    """

    def __init__(self, session: AsyncSession, user: User) -> None:
        self.session = session
        self.user = user

    @property
    def user_id(self) -> UUID:
        return self.user.id

    async def authorize(self, board_id: UUID | None, action: Action, what: str = "board") -> str:
        return await authorize(self.session, board_id, self.user_id, action, what=what)

    async def authorize_item(
        self, model: type[BoardList] | type[Card], item_id: UUID, action: Action, what: str
    ) -> tuple[UUID, str]:
        """``(board_id, role)`` for a list or card the caller may act on: one query finds both.

        Raises:
            Gone: no such item, or the caller is not a member of its board (alike).
            Forbidden: a member whose role does not allow ``action``.
        """
        board_id, role = await board_and_role_of(self.session, model, item_id, self.user_id)
        role = check(role if board_id is not None else None, action, what=what)
        assert board_id is not None
        return board_id, role

    async def lock(self, board_id: UUID) -> int:
        try:
            return await allocate_seq(self.session, board_id)
        except BoardNotFoundError:
            raise not_found() from None

    async def load(self, model: type[M], item_id: UUID, board_id: UUID, what: str) -> M:
        """The row as committed now (refreshing any stale copy in the session), in this board."""
        stmt = _load_stmt(model)  # type: ignore[arg-type]
        row: M | None = (
            await self.session.execute(stmt, {"item_id": item_id, "board_id": board_id})
        ).scalar_one_or_none()
        if row is None:
            raise not_found(what)
        return row

    async def flush(self) -> None:
        await self.session.flush()

    async def commit_event(
        self,
        board_id: UUID,
        seq: int,
        type_: str,
        data: Any,
        *,
        store: bool = True,
        newly_assigned: list[UUID] | None = None,
        newly_mentioned: list[UUID] | None = None,
        added_member: UUID | None = None,
    ) -> None:
        """Record the change's one event and commit; the outbox hands it on after the commit.

        Build ``data`` after :meth:`flush`, so it shows the row as stored (version, updated_at).
        """
        event = self.record(board_id, seq, type_, data, store=store)
        change = BoardChange(
            event=event,
            actor=self.user,
            newly_assigned=newly_assigned or [],
            newly_mentioned=newly_mentioned or [],
            added_member=added_member,
        )
        await run_change_hooks(self.session, change)
        await self.session.commit()

    def record(self, board_id: UUID, seq: int, type_: str, data: Any, *, store: bool = True) -> Event:
        """Record one event without committing (for a request that makes several changes)."""
        return record_event(
            self.session,
            board_id=board_id,
            seq=seq,
            type=type_,
            actor_id=self.user_id,
            data=data,
            store=store,
        )
