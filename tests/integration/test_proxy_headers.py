"""Forwarded headers are believed only when enabled and only from TRUSTED_PROXIES, on a real
``corkboard serve`` (the client address decides rate limits, lockout and the audit log)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import base_env
from tests.support.live import LiveServer
from tests.support.phx import account, api

FORGED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def _seen(tmp_path: Any, run_id: str, **env: str) -> tuple[str, bool]:
    """Log in with forged headers: the address the server recorded for the session, and whether it
    answered as over HTTPS (HSTS)."""
    server = LiveServer(base_env(tmp_path, run_id) | env, log_path=tmp_path / "server.log").start()
    try:
        user = account(server)
        with api(server) as c:
            login = c.post(
                "/auth/login",
                json={"login": user["username"], "password": "correct horse battery staple"},
                headers=FORGED,
            )
            assert login.status_code == 200, login.text
            hsts = "strict-transport-security" in login.headers
        with api(server, login.json()["access_token"]) as c:
            sessions = c.get("/auth/sessions").json()["items"]
        (current,) = (s for s in sessions if s["current"])
        return current["ip"], hsts
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("env", "trusted"),
    [
        ({}, False),  # off: never believed, not even from loopback
        ({"TRUST_PROXY_HEADERS": "true", "TRUSTED_PROXIES": "10.9.8.7"}, False),  # not from this peer
        ({"TRUST_PROXY_HEADERS": "true"}, True),  # default TRUSTED_PROXIES: the loopback proxy
        ({"TRUST_PROXY_HEADERS": "true", "TRUSTED_PROXIES": "127.0.0.0/8"}, True),
    ],
)
def test_forwarded_headers_only_from_trusted_proxies(tmp_path, run_id, env, trusted):
    ip, hsts = _seen(tmp_path, run_id, **env)
    assert ip == ("203.0.113.7" if trusted else "127.0.0.1")
    assert hsts is trusted
