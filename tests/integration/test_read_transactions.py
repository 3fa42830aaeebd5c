"""PostgreSQL: a read-only request runs without a transaction (persistence/db.py), a change with
one, and a read route that writes (opt ``db_writes``) with one; a new process opens its pool's kept
connections before it serves (``warm_pool``)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from persistence.db import _HOT, warm_pool
from server.notifications.mailing import ALL_KINDS, unsubscribe_token
from server.settings import load_settings
from tests.support.factories import make_account

# What these check is PostgreSQL's alone (SQLite's driver opens no transaction for a read on any
# path): they run on that backend only, instead of being collected and skipped on SQLite.
postgres_only = pytest.mark.parametrize("backend_env", ["postgres"], indirect=True)


@pytest.fixture
def begins(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each ``BEGIN`` sent to PostgreSQL from now on appends to the list."""
    sent: list[int] = []
    original = AsyncAdapt_asyncpg_connection._start_transaction

    async def counting(self: Any) -> None:
        if self.isolation_level != "autocommit":
            sent.append(1)
        await original(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "_start_transaction", counting)
    return sent


@postgres_only
async def test_reads_send_no_begin_and_changes_do(client, begins):
    account = await make_account(client)
    h = account.headers
    board = (await client.post("/api/v1/boards", json={"name": "B"}, headers=h)).json()
    lst = (await client.post(f"/api/v1/boards/{board['id']}/lists", json={"name": "L"}, headers=h)).json()
    card = (await client.post(f"/api/v1/lists/{lst['id']}/cards", json={"title": "C"}, headers=h)).json()

    begins.clear()
    for _ in range(20):
        got = await client.get(f"/api/v1/cards/{card['id']}", headers=h)
        assert got.status_code == 200
    # Background work (jobs, the broker) may begin a transaction meanwhile; 20 reads did not.
    assert len(begins) < 5, len(begins)

    # The whole board is read at one seq: in a REPEATABLE READ transaction of its own.
    begins.clear()
    for _ in range(5):
        assert (await client.get(f"/api/v1/boards/{board['id']}", headers=h)).status_code == 200
    assert len(begins) >= 5

    begins.clear()
    for i in range(10):
        changed = await client.patch(f"/api/v1/cards/{card['id']}", json={"title": f"T{i}"}, headers=h)
        assert changed.status_code == 200
    assert len(begins) >= 10
    # What the reads saw is what was committed.
    assert (await client.get(f"/api/v1/cards/{card['id']}", headers=h)).json()["title"] == "T9"


@postgres_only
async def test_a_read_route_that_writes_gets_a_transaction(client, settings, begins):
    account = await make_account(client)
    token = unsubscribe_token(settings.secret_key, account.id, ALL_KINDS)
    begins.clear()
    page = await client.get("/api/v1/notifications/unsubscribe", params={"token": token})
    assert page.status_code == 200, page.text
    assert len(begins) >= 1
    prefs = (await client.get("/api/v1/notifications/preferences", headers=account.headers)).json()
    assert "email" not in prefs["preferences"].values()


async def test_a_new_process_opens_its_pool_before_serving(backend_env, settings):
    from server.app import create_app

    # Its own Redis prefix: the session's app has queued jobs (mail) this one must not take.
    app = create_app(load_settings({**backend_env, "REDIS_PREFIX": f"{settings.redis_prefix}:fresh"}))
    async with AsyncTestClient(app=app) as client:  # startup has run; no request yet
        pool = app.state.db_engine.pool
        if settings.is_sqlite:
            assert await warm_pool(app.state.db_engine) == 0
        else:
            assert pool.checkedin() == settings.db_pool_size
            # ... each with the request path's statements prepared (asyncpg's per-connection cache,
            # keyed by SQL text), and nothing left open.
            hot_sql = {str(stmt.compile(dialect=app.state.db_engine.dialect)) for stmt, _ in _HOT}
            for record in list(pool._pool._queue._queue):  # the pool's idle connections
                cached = set(record.dbapi_connection._prepared_statement_cache)
                assert hot_sql <= cached, hot_sql - cached
        assert (await client.get("/health/ready")).status_code == 200


@postgres_only
async def test_the_card_routes_run_warmed_statements(client, app):
    """What ``GET /cards/{id}``, a move and a create at the end of a list send to PostgreSQL is
    among the statements ``warm_pool`` prepares (``persistence.db.hot``), but the card insert,
    which cannot run with made-up ids. A statement added to these paths without ``hot()`` fails
    here: it would be prepared cold on every connection of a new process."""
    from sqlalchemy import event

    account = await make_account(client)
    h = account.headers
    board = (await client.post("/api/v1/boards", json={"name": "B"}, headers=h)).json()
    lists = [
        (await client.post(f"/api/v1/boards/{board['id']}/lists", json={"name": n}, headers=h)).json()
        for n in ("L", "M")
    ]
    card = (await client.post(f"/api/v1/lists/{lists[0]['id']}/cards", json={"title": "C"}, headers=h)).json()

    engine = app.state.db_engine.sync_engine
    hot_sql = {str(stmt.compile(dialect=engine.dialect)) for stmt, _ in _HOT}
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert (await client.get(f"/api/v1/cards/{card['id']}", headers=h)).status_code == 200
        moved = await client.post(
            f"/api/v1/cards/{card['id']}/move", json={"list_id": lists[1]["id"]}, headers=h
        )
        assert moved.status_code == 200
        made = await client.post(f"/api/v1/lists/{lists[0]['id']}/cards", json={"title": "D"}, headers=h)
        assert made.status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", record)
    cold = [s for s in sent if s not in hot_sql and "INSERT INTO cards" not in s]
    assert len(sent) >= 6, sent  # 1 + 3 + 2 (BEGIN and COMMIT are not statements here)
    assert not cold, cold
