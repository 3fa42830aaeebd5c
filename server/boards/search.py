"""Full-text search over cards and comments, only ever within the caller's boards.

PostgreSQL: expression GIN indexes on ``to_tsvector('simple', …)`` (migration 0002), queried
with the same expressions. SQLite: the FTS5 table ``search_fts`` (migration 0002), kept in step
here by the services; its rowid is derived from the row's UUID so an update replaces in place,
and ``ref`` holds the row's 16-byte id so the match joins straight onto ``cards``/``comments``.
Rows of cascaded deletes (a list deleted with its cards) may linger in FTS5, but every hit is
read from ``cards``/``comments`` restricted to the caller's memberships, so nothing stale or
foreign is ever returned. Both use the ``simple``/``unicode61`` tokenizers (no stemming) and
prefix matching per word, so the two backends answer alike.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import and_, bindparam, column, func, literal, literal_column, select, table, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import BoardMember, Card, Comment
from server.boards.schemas import SearchHit, SearchPage
from server.errors import FieldError, ValidationFailed
from server.pagination import decode_cursor, make_page, page_limit

# The FTS5 table of migration 0002: ``ref``/``board`` hold the 16-byte ids, as the tables do.
FTS = table("search_fts", column("kind"), column("ref", GUID()), column("board", GUID()), column("body"))
_WORD = re.compile(r"\w+", re.UNICODE)
SNIPPET_CHARS = 160
MAX_TERMS = 8


def terms_of(q: str) -> list[str]:
    terms = _WORD.findall(q.lower())[:MAX_TERMS]
    if not terms:
        raise ValidationFailed([FieldError("q", "must contain at least one word")])
    return terms


def _rowid(item_id: UUID) -> int:
    return int.from_bytes(item_id.bytes[8:], "big") >> 1


def _is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


async def _replace(session: AsyncSession, kind: str, item_id: UUID, board_id: UUID, body: str) -> None:
    rowid = _rowid(item_id)
    await session.execute(text("DELETE FROM search_fts WHERE rowid = :r"), {"r": rowid})
    await session.execute(
        text("INSERT INTO search_fts (rowid, kind, ref, board, body) VALUES (:r, :k, :ref, :b, :body)"),
        {"r": rowid, "k": kind, "ref": item_id.bytes, "b": board_id.bytes, "body": body},
    )


async def index_card(session: AsyncSession, card: Card) -> None:
    if _is_sqlite(session):
        await _replace(session, "card", card.id, card.board_id, f"{card.title}\n{card.description}")


async def index_comment(session: AsyncSession, comment: Comment) -> None:
    if _is_sqlite(session):
        await _replace(session, "comment", comment.id, comment.board_id, comment.body)


async def unindex(session: AsyncSession, *item_ids: UUID) -> None:
    if _is_sqlite(session) and item_ids:
        await session.execute(
            text("DELETE FROM search_fts WHERE rowid IN :rows").bindparams(bindparam("rows", expanding=True)),
            {"rows": [_rowid(item_id) for item_id in item_ids]},
        )


async def unindex_board(session: AsyncSession, board_id: UUID) -> None:
    if _is_sqlite(session):
        await session.execute(text("DELETE FROM search_fts WHERE board = :b"), {"b": board_id.bytes})


def snippet(body: str, terms: list[str]) -> str:
    """Up to ~160 characters of ``body`` around the first term found."""
    lowered = body.lower()
    hits = [i for i in (lowered.find(t) for t in terms) if i >= 0]
    start = max(0, min(hits) - 40) if hits else 0
    piece = body[start : start + SNIPPET_CHARS].replace("\n", " ").strip()
    return ("…" if start > 0 else "") + piece + ("…" if start + SNIPPET_CHARS < len(body) else "")


async def search(
    session: AsyncSession, user_id: UUID, q: str, limit: int | None, cursor: str | None
) -> SearchPage:
    """Cards and comments matching every word of ``q`` (prefixes), newest first, in boards
    where ``user_id`` is a member."""
    limit = page_limit(limit)
    if len(q) > 200:
        raise ValidationFailed([FieldError("q", "must be at most 200 characters")])
    terms = terms_of(q)
    raw_offset = decode_cursor(cursor)
    offset = int(raw_offset) if raw_offset and raw_offset.isdigit() else 0
    mine = select(BoardMember.board_id).where(BoardMember.user_id == user_id)
    if _is_sqlite(session):
        match = " ".join(f'"{t}"*' for t in terms)

        def fts_refs(kind: str) -> Any:
            return select(FTS.c.ref).where(
                FTS.c.kind == kind, literal_column("search_fts").op("MATCH")(match)
            )

        card_cond = Card.id.in_(fts_refs("card"))
        comment_cond = Comment.id.in_(fts_refs("comment"))
    else:
        tsq = func.to_tsquery("simple", " & ".join(f"{t}:*" for t in terms))
        card_doc = func.to_tsvector(
            "simple", func.coalesce(Card.title, "") + literal(" ") + func.coalesce(Card.description, "")
        )
        card_cond = card_doc.op("@@")(tsq)
        comment_cond = func.to_tsvector("simple", func.coalesce(Comment.body, "")).op("@@")(tsq)
    cards = select(
        literal("card").label("kind"),
        Card.board_id,
        Card.id.label("card_id"),
        Card.id.label("item_id"),
        Card.title,
        Card.description.label("body"),
    ).where(card_cond, Card.board_id.in_(mine))
    comments = (
        select(
            literal("comment").label("kind"),
            Comment.board_id,
            Comment.card_id,
            Comment.id.label("item_id"),
            Card.title,
            Comment.body,
        )
        .join(Card, and_(Card.id == Comment.card_id))
        .where(comment_cond, Comment.board_id.in_(mine))
    )
    both = union_all(cards, comments).subquery()
    rows = (
        await session.execute(select(both).order_by(both.c.item_id.desc()).offset(offset).limit(limit + 1))
    ).all()
    hits = [
        SearchHit(
            kind=row.kind,
            board_id=row.board_id,
            card_id=row.card_id,
            title=row.title,
            snippet=snippet(
                row.body or row.title if row.kind == "comment" else f"{row.title} {row.body}", terms
            ),
            comment_id=row.item_id if row.kind == "comment" else None,
        )
        for row in rows[:limit]
    ]
    return make_page(SearchPage, hits, len(rows) > limit, lambda _hit: str(offset + limit))
