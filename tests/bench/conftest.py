"""The bench scenarios at a tiny size: the tools keep working; zero loss, zero duplicates; no timing."""

from __future__ import annotations

import pytest

from server.settings import load_settings


def missing(*paths: str) -> str:
    """Why a scenario cannot run on this tree yet ("" when it can): the routes it needs."""
    from server.app import create_app

    app = create_app(load_settings({"DATA_DIR": "/tmp", "SECRET_KEY": "x" * 40}))
    have = {route.path for route in app.routes}
    absent = [p for p in paths if p not in have]
    return f"not in this tree yet: {', '.join(absent)}" if absent else ""


@pytest.fixture(scope="session")
def realtime() -> None:
    """REST boards and the Phoenix socket."""
    reason = missing("/api/v1/boards", "/socket/websocket")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def boards() -> None:
    """REST boards only."""
    reason = missing("/api/v1/boards")
    if reason:
        pytest.skip(reason)
