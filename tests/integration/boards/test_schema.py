"""The search objects of migration 0002 exist on each backend."""

from __future__ import annotations

import pytest
from sqlalchemy import text


async def test_full_text_search_objects_exist(db_engine):
    async with db_engine.connect() as conn:
        if db_engine.dialect.name == "postgresql":
            names = set(
                (
                    await conn.execute(
                        text(
                            "SELECT indexname FROM pg_indexes "
                            "WHERE indexname IN ('ix_cards_fts', 'ix_comments_fts')"
                        )
                    )
                ).scalars()
            )
            assert names == {"ix_cards_fts", "ix_comments_fts"}
            using = (
                await conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_cards_fts'"))
            ).scalar_one()
            assert "USING gin" in using
        else:
            sql = (
                await conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'search_fts'"))
            ).scalar_one()
            assert "fts5" in sql.lower()


async def test_deleting_a_card_unindexes_it_and_its_comments(client, db_engine):
    from tests.support.boards import API, create_board, make_card, make_list, ok
    from tests.support.factories import make_account

    if db_engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL indexes the rows themselves (expression GIN indexes): no FTS table")
    alice = await make_account(client)
    board = await create_board(client, alice, "fts")
    card = await make_card(client, (await make_list(client, board["id"], alice))["id"], alice, "indexed")
    for body in ("one", "two"):
        await ok(
            await client.post(
                f"{API}/cards/{card['id']}/comments", json={"body": body}, headers=alice.headers
            ),
            201,
        )

    async def fts_rows() -> int:
        async with db_engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT count(*) FROM search_fts WHERE board = :b"),
                    {"b": bytes.fromhex(board["id"].replace("-", ""))},
                )
            ).scalar_one()

    assert await fts_rows() == 3
    await ok(await client.delete(f"{API}/cards/{card['id']}", headers=alice.headers), 204)
    assert await fts_rows() == 0
