"""The models and the migrations agree, and the server refuses an unmigrated PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import persistence.models  # noqa: F401  (registers every table)
from persistence.db import MIGRATE_COMMAND, compare_type, create_engine, include_name, migrate
from persistence.models.base import metadata
from tests.support import services
from tests.support.live import ROOT, LiveServer


def _differences(connection):
    context = MigrationContext.configure(
        connection, opts={"compare_type": compare_type, "include_name": include_name}
    )
    return compare_metadata(context, metadata)


async def _diff(url: str) -> list:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_differences)
    finally:
        await engine.dispose()


async def test_autogenerate_finds_nothing_on_sqlite(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await migrate(url)
    assert await _diff(url) == []


async def test_autogenerate_finds_nothing_on_postgres(pg_url):
    assert await _diff(pg_url) == []


def _serve(env: dict[str, str], tmp_path, port: int, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def empty_pg_url():
    services.require_postgres()
    url = services.create_database()
    yield url
    services.drop_database(url)


def test_serve_refuses_an_unmigrated_postgres_and_migrate_fixes_it(empty_pg_url, redis_url, tmp_path, run_id):
    env = {
        "DATABASE_URL": empty_pg_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"cbtest:{run_id}:mig",
        "SECRET_KEY": "migration-test-key-0123456789abcdef0123",
        "DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    refused = _serve(env, tmp_path, 1)  # exits before it binds: the port does not matter
    assert refused.returncode != 0
    assert MIGRATE_COMMAND in refused.stderr
    assert "Traceback" not in refused.stderr
    migrated = subprocess.run(
        [sys.executable, "-m", "server", "migrate"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "migrated to head" in migrated.stdout
    server = LiveServer(env, log_path=tmp_path / "server.log").start()
    try:
        assert httpx.get(server.url + "/health/ready", timeout=5).status_code == 200
    finally:
        server.stop()


def test_member_kinds_migration_renames_stored_kinds(tmp_path):
    """0005: notifications and preferences stored under board.member_* read as member.* after it."""
    import sqlite3

    from persistence.db import upgrade

    path = tmp_path / "kinds.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0003_notifications")
    with sqlite3.connect(path) as db:  # foreign keys are off on a plain connection: no user row needed
        for i, kind in enumerate(("board.member_added", "board.member_removed", "card.due")):
            db.execute(
                "INSERT INTO notification_preferences (id, user_id, kind, channel, created_at, updated_at)"
                " VALUES (?, ?, ?, 'off', '2026-01-01', '2026-01-01')",
                (bytes([i]) * 16, b"u" * 16, kind),
            )
    upgrade(url, "head")
    with sqlite3.connect(path) as db:
        kinds = sorted(k for (k,) in db.execute("SELECT kind FROM notification_preferences"))
    assert kinds == ["card.due", "member.added", "member.removed"]
