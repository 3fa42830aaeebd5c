"""The search objects of migration 0002 exist on each backend."""

from __future__ import annotations

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
