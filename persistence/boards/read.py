"""Reading boards and cards in their wire shapes (shared by REST, the event log and snapshots)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import BindParameter, bindparam, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.boards.shapes import (
    BoardDetail,
    CardOut,
    MemberOut,
    card_out,
    label_out,
    list_out,
    member_out,
)
from persistence.models import Board, BoardList, BoardMember, Card, Label, User, card_assignees, card_labels

_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
# Built once (every card read runs it): see persistence/access.py.
_RELATIONS = union_all(
    select(literal(0).label("kind"), card_assignees.c.card_id, card_assignees.c.user_id.label("ref")).where(
        card_assignees.c.card_id.in_(_IDS)
    ),
    select(literal(1), card_labels.c.card_id, card_labels.c.label_id).where(card_labels.c.card_id.in_(_IDS)),
)


async def card_relations(
    session: AsyncSession, card_ids: Sequence[UUID]
) -> tuple[dict[UUID, list[UUID]], dict[UUID, list[UUID]]]:
    """Assignee ids and label ids of each card, in one query (a ``UNION ALL`` of the two)."""
    assignees: dict[UUID, list[UUID]] = defaultdict(list)
    labels: dict[UUID, list[UUID]] = defaultdict(list)
    if not card_ids:
        return assignees, labels
    for kind, card_id, ref in await session.execute(_RELATIONS, {"ids": list(card_ids)}):
        (labels if kind else assignees)[card_id].append(ref)
    return assignees, labels


async def cards_out(session: AsyncSession, cards: Sequence[Card]) -> list[CardOut]:
    assignees, labels = await card_relations(session, [c.id for c in cards])
    return [card_out(c, assignees.get(c.id, []), labels.get(c.id, [])) for c in cards]


async def card_view(session: AsyncSession, card: Card) -> CardOut:
    return (await cards_out(session, [card]))[0]


async def members_out(session: AsyncSession, board_id: UUID) -> list[MemberOut]:
    rows = await session.execute(
        select(BoardMember, User)
        .join(User, User.id == BoardMember.user_id)
        .where(BoardMember.board_id == board_id)
        .order_by(BoardMember.created_at, BoardMember.user_id)
    )
    return [member_out(m, u) for m, u in rows.tuples()]


async def member_view(session: AsyncSession, board_id: UUID, user_id: UUID) -> MemberOut | None:
    row = (
        (
            await session.execute(
                select(BoardMember, User)
                .join(User, User.id == BoardMember.user_id)
                .where(BoardMember.board_id == board_id, BoardMember.user_id == user_id)
            )
        )
        .tuples()
        .first()
    )
    return member_out(*row) if row else None


class BoardTag(NamedTuple):
    """What ``GET /boards/{id}`` depends on, in a few numbers: its body changes only when one of
    them does. ``seq`` moves with every change of the board's content (one event each); the
    members' ``username`` and ``display_name`` are the users' own, which change without a board
    event but always raise the user's ``version``. While ``seq`` stands the member set stands too
    (joining and leaving, a deleted account's included, are events), so the sum of the members'
    versions only grows; ``members`` guards that sum should a membership ever end without one."""

    version: int
    seq: int
    members: int
    member_versions: int


_TAG = (
    select(
        Board.version,
        Board.seq,
        func.count(User.id),
        func.coalesce(func.sum(User.version), 0),
    )
    .select_from(Board)
    .outerjoin(BoardMember, BoardMember.board_id == Board.id)
    .outerjoin(User, User.id == BoardMember.user_id)
    .where(Board.id == bindparam("board_id"))
    .group_by(Board.id, Board.version, Board.seq)
)


async def board_tag(session: AsyncSession, board_id: UUID) -> BoardTag | None:
    """The board's :class:`BoardTag` as committed now (one query); None when there is no such board."""
    row = (await session.execute(_TAG, {"board_id": board_id})).first()
    return BoardTag(*(int(v) for v in row)) if row is not None else None


async def load_board_detail(session: AsyncSession, board_id: UUID) -> BoardDetail | None:
    """The whole board as ``GET /boards/{id}`` shows it (lists and cards by position, archived included)."""
    board = (await session.execute(select(Board).where(Board.id == board_id))).scalar_one_or_none()
    if board is None:
        return None
    lists = (
        (
            await session.execute(
                select(BoardList).where(BoardList.board_id == board_id).order_by(BoardList.position)
            )
        )
        .scalars()
        .all()
    )
    cards = (
        (
            await session.execute(
                select(Card).where(Card.board_id == board_id).order_by(Card.list_id, Card.position)
            )
        )
        .scalars()
        .all()
    )
    labels = (
        (
            await session.execute(
                select(Label).where(Label.board_id == board_id).order_by(Label.created_at, Label.id)
            )
        )
        .scalars()
        .all()
    )
    return BoardDetail(
        id=board.id,
        name=board.name,
        description=board.description,
        version=board.version,
        created_at=board.created_at,
        updated_at=board.updated_at,
        seq=board.seq,
        lists=[list_out(row) for row in lists],
        cards=await cards_out(session, cards),
        labels=[label_out(label) for label in labels],
        members=await members_out(session, board_id),
    )
