"""With SENTRY_DSN set, an unhandled error reaches Sentry (a local stand-in) and not the client."""

from __future__ import annotations

import gzip
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.auth.service import AccountService
from server.settings import load_settings
from tests.conftest import base_env
from tests.support.factories import make_account


class _Collector(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def sentry_stand_in():
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1", _Collector.received
    server.shutdown()
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # back to the no-op client for the rest of the run


async def test_unhandled_errors_are_reported_to_sentry(sentry_stand_in, tmp_path, run_id, monkeypatch):
    dsn, received = sentry_stand_in
    marker = f"boom-{uuid.uuid4().hex}"

    async def explode(self, *args, **kwargs):
        raise RuntimeError(marker)

    monkeypatch.setattr(AccountService, "list_sessions", explode)
    settings = load_settings(base_env(tmp_path, run_id) | {"SENTRY_DSN": dsn})
    async with AsyncTestClient(app=create_app(settings)) as client:
        account = await make_account(client)
        response = await client.get("/api/v1/auth/sessions", headers=account.headers)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert marker not in response.text
    assert "Traceback" not in response.text
    sentry_sdk.flush(timeout=5)
    assert any(marker.encode() in body for body in received)
