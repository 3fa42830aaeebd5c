"""Fixtures of the board tests: a direct database handle on the same backend as ``client``.

The test client runs the app on its own event loop, so tests that talk to the database directly
use their own engine (same URL), never ``app.state.db_engine``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.db import create_engine
from server.settings import Settings


@pytest.fixture(scope="session")
async def db_engine(settings: Settings, client) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.effective_database_url)
    yield engine
    await engine.dispose()
