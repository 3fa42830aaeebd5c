"""What every board service shares: authorization, the board lock, one event, commit."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from persistence.access import board_and_role_of, card_for_change, item_and_role
from persistence.boards.read import card_relations, card_view
from persistence.boards.shapes import CardOut, card_out
from persistence.eventlog import (
    BoardNotFoundError,
    RowWrite,
    allocate_seq,
    append_event_late,
    new_row_values,
    record_event,
    restate_event,
)
from persistence.events import Event
from persistence.models import BoardList, Card, User
from server.boards.hooks import BoardChange, run_change_hooks
from server.boards.policy import Action, authorize, check, check_found, not_found

M = TypeVar("M")
T = TypeVar("T")
P = ParamSpec("P")
W = TypeVar("W", bound="BoardWork")

log = structlog.get_logger("corkboard.boards")


@cache
def _load_stmt(model: Any, for_update: bool = False) -> Any:
    """``model`` by id within a board, refreshing any copy in the session; built once per model."""
    stmt = (
        select(model)
        .where(model.id == bindparam("item_id"), model.board_id == bindparam("board_id"))
        .execution_options(populate_existing=True)
    )
    return stmt.with_for_update() if for_update else stmt


# What a change that takes the board lock last can run into with a concurrent writer, none of
# which is the caller's fault: two jittered positions alike in the same gap (the unique (parent,
# position) constraints), a list deleted under a card being added on SQLite (a foreign key). The
# change is rolled back and run again from the start, reading what is committed now (so a parent
# deleted meanwhile is a 404). Deadlocks and serialization failures are a backstop only: the lock
# order of persistence/locks.py is there so that they do not happen.
_RETRY_SQLSTATES = frozenset({"23505", "23503", "40P01", "40001"})
_SQLITE_RETRY = ("UNIQUE constraint failed", "FOREIGN KEY constraint failed")
ATTEMPTS = 4


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    if code is not None:
        return code in _RETRY_SQLSTATES
    return any(m in str(exc.orig) for m in _SQLITE_RETRY)


def retried(
    method: Callable[Concatenate[W, P], Awaitable[T]],
) -> Callable[Concatenate[W, P], Awaitable[T]]:
    """Run a board change again (up to :data:`ATTEMPTS` times) when it lost a race with another
    writer of the board; see ``_RETRY_SQLSTATES``. The last attempt's error goes to the caller."""

    @functools.wraps(method)
    async def run(self: W, /, *args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await method(self, *args, **kwargs)
            except DBAPIError as exc:
                if attempt == ATTEMPTS or not _retryable(exc):
                    raise
                log.info(
                    "board.change.retry", change=method.__name__, attempt=attempt, error=str(exc.orig)[:120]
                )
                await self.session.rollback()
                await self.session.refresh(self.user)  # the rollback expired it; hooks read it
        raise AssertionError("unreachable")

    return run


class BoardWork:
    """Base of the board services: one instance per request, acting as ``user``.

    A change runs: authorize → :meth:`lock` (the board row, which also numbers the event) → load
    and check → mutate → :meth:`commit_event`. Anything raised before the commit changes nothing.

    On PostgreSQL the list and card changes take the board lock last instead (:meth:`lock_early`
    returns None and :meth:`commit_event` numbers the event as it stores it): they lock the rows
    they change (:meth:`authorize_to_change`) and are :func:`retried` when they lose a race.

    Every change takes its locks in the one order of ``persistence/locks.py`` (cards, lists, the
    board, its labels and members), so no two changes wait for each other in a cycle.
    """

    def __init__(self, session: AsyncSession, user: User) -> None:
        self.session = session
        self.user = user
        self._user_id = user.id
        bind = session.bind
        self.locks_late = bind is not None and bind.dialect.name == "postgresql"
        self._relations: dict[UUID, tuple[list[UUID], list[UUID]]] = {}
        self._read_at_seq: dict[UUID, int] = {}  # see _restate_card
        self._row_write: RowWrite | None = None  # write_row's, for commit_event's statement

    @property
    def user_id(self) -> UUID:
        return self._user_id

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

    async def authorize_and_read(self, model: type[M], item_id: UUID, action: Action, what: str) -> M:
        """The list or card the caller may act on, as committed now: one query finds it and the
        caller's role (the same answers as :meth:`authorize_item`)."""
        row, role = await item_and_role(self.session, model, item_id, self.user_id)  # type: ignore[arg-type]
        return check_found(row, role, action, what=what)  # type: ignore[no-any-return]

    async def authorize_to_change(
        self, model: type[M], item_id: UUID, action: Action, what: str, *, board_lock: bool = False
    ) -> tuple[M, UUID, int | None]:
        """``(row, board_id, seq)``: the list or card a change is about, and the event number if the
        board lock is taken now (see :meth:`lock_early`).

        PostgreSQL: the row is found, locked (``FOR NO KEY UPDATE``) and authorized in one query (a
        card with its assignees and labels, for :meth:`card_before`), and the board lock comes
        after it. Locks are always taken row first, board second, so two changes never wait for
        each other in a cycle. SQLite: the board lock first (it is the only lock there), then the
        row.
        """
        if not self.locks_late:
            board_id, _ = await self.authorize_item(model, item_id, action, what)  # type: ignore[arg-type]
            seq = await self.lock(board_id)
            return await self.load(model, item_id, board_id, what), board_id, seq
        found: Any
        read_at_seq = 0
        if model is Card:
            found, role, assignees, labels, read_at_seq = await card_for_change(
                self.session, item_id, self.user_id
            )
            if found is not None:
                self._relations[item_id] = (assignees, labels)
        else:
            found, role = await item_and_role(
                self.session,
                model,  # type: ignore[arg-type]
                item_id,
                self.user_id,
                for_update=True,
            )
        found = check_found(found, role, action, what=what)
        board_id = found.board_id
        numbered = await self.lock_early(board_id, needed=board_lock)
        if model is Card:
            if numbered is None:
                self._read_at_seq[item_id] = read_at_seq
            elif numbered != read_at_seq + 1:
                # another change of the board committed after the relations were read (a member
                # removed, a label deleted): read them again, now that the board is this change's
                self._relations.pop(item_id, None)
        return found, board_id, numbered

    async def card_before(self, card: Card) -> CardOut:
        """The card as it is before this change: its assignees and labels as read with its lock
        (:meth:`authorize_to_change` on PostgreSQL), else read now."""
        relations = self._relations.pop(card.id, None)
        if relations is None:
            return await card_view(self.session, card)
        return card_out(card, *relations)

    async def _restate_card(self, event: Event, data: Any) -> Event:
        """``event`` (numbered late) with the card's assignees and labels as committed at its seq.

        A card change reads the card's relations with the card's row lock (:func:`card_for_change`),
        before its event is numbered. A change of the board that commits in between (a member
        removed, a label deleted: they lock the board, not the card) would leave them stale, and
        then its event gets a seq beyond the one after the snapshot they were read in. Only then are
        they read again (the board's lock is held now, so every earlier event's change is in), and
        the event restated if they differ.
        """
        read_at_seq = self._read_at_seq.pop(data.id, None)
        if read_at_seq is None or event.seq == read_at_seq + 1:
            return event
        assignees, labels = await card_relations(self.session, [data.id])
        fresh = sorted(assignees.get(data.id, ())), sorted(labels.get(data.id, ()))
        if fresh == (data.assignee_ids, data.label_ids):
            return event
        data.assignee_ids, data.label_ids = fresh
        return await restate_event(self.session, event, data)

    async def lock(self, board_id: UUID) -> int:
        try:
            return await allocate_seq(self.session, board_id)
        except BoardNotFoundError:
            raise not_found() from None

    async def lock_early(self, board_id: UUID, *, needed: bool = False) -> int | None:
        """The board lock now (its event number), or None to take it at :meth:`commit_event`.

        Taken now on SQLite (no row locks) and when ``needed``: the change checks rows it does not
        lock (e.g. that assignees are members), which only the board lock keeps from changing.
        """
        if needed or not self.locks_late:
            return await self.lock(board_id)
        return None

    async def load(
        self, model: type[M], item_id: UUID, board_id: UUID, what: str, *, for_update: bool = False
    ) -> M:
        """The row as committed now (refreshing any stale copy in the session), in this board;
        ``for_update``: locked ``FOR UPDATE`` (PostgreSQL), for a change that deletes it."""
        stmt = _load_stmt(model, for_update)  # type: ignore[arg-type]
        row: M | None = (
            await self.session.execute(stmt, {"item_id": item_id, "board_id": board_id})
        ).scalar_one_or_none()
        if row is None:
            raise not_found(what)
        return row

    async def flush(self) -> None:
        await self.session.flush()

    def _writes_with_event(self, seq: int | None) -> bool:
        """Whether the change's row is written by its event's statement: on PostgreSQL, when the
        event is numbered late (``seq`` None, :meth:`commit_event` calls ``append_event_late``)."""
        return seq is None and self.locks_late

    async def insert_row(self, row: Card, seq: int | None) -> None:
        """Insert the change's new ``row``. PostgreSQL, when the event is numbered late (``seq``
        None): by the event's own statement in :meth:`commit_event`, like :meth:`write_row`; ``row``
        gets its id and defaults at once and stays out of the session. Otherwise added and flushed
        now. Not for a row that others of the change refer to (their foreign keys would fail)."""
        if self._writes_with_event(seq):
            self._row_write = RowWrite("insert", row.__tablename__, new_row_values(row))
            return
        self.session.add(row)
        await self.flush()

    async def write_row(self, row: Card | BoardList, seq: int | None, **values: Any) -> None:
        """Set ``values`` (and ``updated_at``) on the change's ``row`` and write them.

        PostgreSQL, when the event is numbered late (``seq`` None): the columns are written by the
        event's own statement in :meth:`commit_event` (a ``WITH … UPDATE`` ahead of its insert), one
        round trip fewer and no ORM flush; ``row`` shows them at once. Otherwise a flush writes them
        now. Call it last before building the event's data, and only once per change.
        """
        if self._writes_with_event(seq):
            values["updated_at"] = datetime.now(UTC)
            for key, value in values.items():
                set_committed_value(row, key, value)
            self._row_write = RowWrite("update", row.__tablename__, values, row.id)
            return
        for key, value in values.items():
            setattr(row, key, value)
        await self.flush()

    async def commit_event(
        self,
        board_id: UUID,
        seq: int | None,
        type_: str,
        data: Any,
        *,
        store: bool = True,
        newly_assigned: list[UUID] | None = None,
        newly_mentioned: list[UUID] | None = None,
        added_member: UUID | None = None,
    ) -> None:
        """Record the change's one event and commit; the outbox hands it on after the commit.

        Build ``data`` after :meth:`write_row` / :meth:`insert_row` (or :meth:`flush`), so it shows
        the row as stored (version, updated_at). ``seq`` None (from :meth:`lock_early`) takes the
        board lock and the number now, in the statement that also writes the row
        :meth:`write_row` / :meth:`insert_row` left for it.
        """
        row_write, self._row_write = self._row_write, None
        if seq is None:
            try:
                event = await append_event_late(
                    self.session,
                    board_id=board_id,
                    type=type_,
                    actor_id=self.user_id,
                    data=data,
                    row_write=row_write,
                )
            except BoardNotFoundError:
                raise not_found() from None
            if isinstance(data, CardOut):
                event = await self._restate_card(event, data)
        else:
            assert row_write is None, "write_row defers only when the event is numbered late"
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
