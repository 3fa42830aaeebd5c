"""The socket endpoint against a real server: auth, heartbeat, user topic, frame errors and limits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json

import httpx
import pytest
import websockets

from tests.support.phx import Phx, account, close_code
from tests.support.rest import create_board

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server(backend_env, tmp_path_factory):
    from tests.support.live import LiveServer

    env = {**backend_env, "PUSHES_PER_SECOND": "20", "MAX_TOPICS_PER_SOCKET": "3"}
    s = LiveServer(env, log_path=tmp_path_factory.mktemp("log") / "server.log").start()
    yield s
    s.stop()


async def test_bad_or_missing_token_is_refused_with_403(server):
    for query in ("vsn=2.0.0", "vsn=2.0.0&token=nope"):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(f"{server.ws_url}/socket/websocket?{query}")
        assert info.value.response.status_code == 403


async def test_a_browser_page_may_connect_only_from_an_allowed_origin(backend_env, live_server_factory):
    server = live_server_factory({**backend_env, "CORS_ORIGINS": "https://app.example"})
    token = account(server)["access_token"]
    url = f"{server.ws_url}/socket/websocket?vsn=2.0.0&token={token}"
    for origin in ("https://evil.example", "null", "https://app.example.evil.example"):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(url, origin=origin)
        assert info.value.response.status_code == 403, origin
    # CORS_ORIGINS, the server's own origin (the page it served), and no Origin (not a browser)
    for origin in ("https://app.example", f"http://127.0.0.1:{server.port}", None):
        async with websockets.connect(url, origin=origin) as ws:
            await ws.send('[null,"1","phoenix","heartbeat",{}]')
            assert '"ok"' in await ws.recv()


async def test_heartbeat_and_user_topic(server):
    user = account(server)
    phx = await Phx.connect(server.ws_url, user["access_token"])
    ref = await phx.push("phoenix", "heartbeat", {})
    assert await phx.reply(ref) == {"status": "ok", "response": {}}
    _, reply = await phx.join(f"user:{user['id']}")
    assert reply["status"] == "ok"
    other = account(server)
    _, reply = await phx.join(f"user:{other['id']}")
    assert reply == {"status": "error", "response": {"reason": "unauthorized"}}
    await phx.close()


async def test_auth_token_subprotocol_answers_phoenix(server):
    user = account(server)
    encoded = base64.b64encode(user["access_token"].encode()).decode().rstrip("=")
    ws = await websockets.connect(
        f"{server.ws_url}/socket/websocket?vsn=2.0.0",
        subprotocols=["phoenix", f"base64url.bearer.phx.{encoded}"],
    )
    assert ws.subprotocol == "phoenix"
    phx = Phx(ws)
    ref = await phx.push("phoenix", "heartbeat", {})
    assert (await phx.reply(ref))["status"] == "ok"
    await phx.close()


async def test_malformed_frames_unmatched_topics_and_bad_joins(server):
    user = account(server)
    phx = await Phx.connect(server.ws_url, user["access_token"])
    await phx.ws.send(json.dumps([None, "7", "x"]))
    frame = await phx.expect(lambda f: f[1] == "7")
    assert frame[4] == {"status": "error", "response": {"reason": "bad_request"}}
    ref = await phx.push("board:00000000-0000-0000-0000-000000000001", "ephemeral", {"kind": "x"})
    assert (await phx.reply(ref))["response"] == {"reason": "unmatched topic"}
    _, reply = await phx.join("nonsense:1")
    assert reply["response"] == {"reason": "bad_request"}
    _, reply = await phx.join("board:00000000-0000-0000-0000-000000000001")
    assert reply["response"] == {"reason": "unauthorized"}
    # a socket that keeps sending garbage is closed with 1008
    for _ in range(6):
        await phx.ws.send("not json")
    assert await close_code(phx) == 1008


async def test_hostile_frames_are_bad_request_and_the_socket_lives(server):
    """Nested past msgspec's limit, a 5,000-digit number, a sixth element, nested presence and
    ephemeral payloads: each is answered ``bad_request`` (never a 1011 close), and the socket goes on."""
    user = account(server)
    board = create_board(server, user["access_token"])
    phx = await Phx.connect(server.ws_url, user["access_token"])
    topic = f"board:{board['id']}"
    join_ref, reply = await phx.join(topic)
    assert reply["status"] == "ok"
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    hostile = [
        ("h1", f'[null,"h1","phoenix","heartbeat",{deep}]'),
        ("h2", '[null,"h2","phoenix","heartbeat",{"n":' + "9" * 5000 + "}]"),
        ("h3", '[null,"h3","phoenix","heartbeat",{},"sixth"]'),
        ("h4", f'["{join_ref}","h4","{topic}","presence",{deep}]'),
        ("h5", f'["{join_ref}","h5","{topic}","ephemeral",{{"kind":"typing","data":{deep}}}]'),
        ("h6", f'["{join_ref}","h6","{topic}","phx_join",{{"last_seq":{"9" * 5000}}}]'),
    ]
    for ref, text in hostile:
        await phx.ws.send(text)
        frame = await phx.expect(lambda f, ref=ref: f[1] == ref)
        assert frame[4] == {"status": "error", "response": {"reason": "bad_request"}}, ref
        ok = await phx.push("phoenix", "heartbeat", {})  # a good frame between: no 1008 for a streak
        assert (await phx.reply(ok))["status"] == "ok"
    await phx.ws.send("[" * 10000 + "]" * 10000)  # no ref to answer: dropped, the socket lives
    ok = await phx.push("phoenix", "heartbeat", {})
    assert (await phx.reply(ok))["status"] == "ok"
    await phx.close()


async def test_too_many_topics(server):
    user = account(server)
    phx = await Phx.connect(server.ws_url, user["access_token"])
    for _ in range(3):
        await phx.join(f"user:{user['id']}")  # rejoining the same topic replaces it
    _, reply = await phx.join(f"user:{user['id']}")
    assert reply["status"] == "ok"
    await phx.close()


async def test_pushes_per_second_are_limited(server):
    user = account(server)
    phx = await Phx.connect(server.ws_url, user["access_token"])
    refs = [await phx.push("phoenix_nope", "x", {}) for _ in range(40)]
    replies = [await phx.reply(ref) for ref in refs]
    reasons = {r["response"]["reason"] for r in replies}
    assert reasons == {"unmatched topic", "rate_limited"}
    await phx.close()


async def test_oversize_frame_closes_with_1009(server):
    user = account(server)
    phx = await Phx.connect(server.ws_url, user["access_token"], max_size=None)
    await phx.ws.send(json.dumps([None, "1", "phoenix", "heartbeat", {"x": "a" * 70_000}]))
    assert await close_code(phx) == 1009


async def test_logout_closes_the_socket_with_4001(server):
    from tests.support.phx import api

    user = account(server)
    phx = await Phx.connect(server.ws_url, user["access_token"])
    _, reply = await phx.join(f"user:{user['id']}")
    assert reply["status"] == "ok"
    with api(server, user["access_token"]) as c:
        assert c.post("/auth/logout").status_code == 204
    assert await close_code(phx) == 4001


async def test_expiry_of_the_session_closes_its_sockets_with_4001(backend_env, live_server_factory):
    """The session (refresh lifetime 4 s here) ends: its open socket is closed with 4001 without a
    join, and a join sent after the end is refused, never answered ok."""
    server = live_server_factory({**backend_env, "REFRESH_TOKEN_TTL": "4"})
    user = account(server)
    idle = await Phx.connect(server.ws_url, user["access_token"])
    joiner = await Phx.connect(server.ws_url, user["access_token"])
    _, reply = await joiner.join(f"user:{user['id']}")
    assert reply["status"] == "ok"
    await asyncio.sleep(4.2)
    ref = str(next(joiner.refs))
    frames = []
    with contextlib.suppress(websockets.ConnectionClosed):  # closed already by the expiry tick: fine
        await joiner.ws.send(json.dumps([ref, ref, f"user:{user['id']}", "phx_join", {}]))
        while True:
            frames.append(await joiner.recv(timeout=15))
    assert joiner.ws.close_code == 4001
    assert not any(f[1] == ref and f[4].get("status") == "ok" for f in frames)
    assert await close_code(idle, timeout=15) == 4001


async def test_silent_socket_is_closed_and_shutdown_closes_with_1012(backend_env, live_server_factory):
    server = live_server_factory({**backend_env, "HEARTBEAT_TIMEOUT": "2"})
    user = account(server)
    silent = await Phx.connect(server.ws_url, user["access_token"])
    assert await close_code(silent, timeout=30) == 1001
    alive = await Phx.connect(server.ws_url, user["access_token"])
    ref = await alive.push("phoenix", "heartbeat", {})
    assert (await alive.reply(ref))["status"] == "ok"
    server.proc.terminate()
    assert await close_code(alive, timeout=30) == 1012


async def test_socket_outlives_its_access_token_and_reconnects_with_it(backend_env, live_server_factory):
    server = live_server_factory({**backend_env, "ACCESS_TOKEN_TTL": "1"})
    user = account(server)
    phx = await Phx.connect(server.ws_url, user["access_token"])
    await asyncio.sleep(2.5)  # the access token has expired; its session has not
    ref = await phx.push("phoenix", "heartbeat", {})
    assert (await phx.reply(ref))["status"] == "ok"
    again = await Phx.connect(server.ws_url, user["access_token"])  # phoenix.js reconnects with it
    _, reply = await again.join(f"user:{user['id']}")
    assert reply["status"] == "ok"
    await phx.close()
    await again.close()


async def test_socket_metrics_are_exported(server):
    user = account(server)
    phx = await Phx.connect(server.ws_url, user["access_token"])
    await phx.join(f"user:{user['id']}")
    text = httpx.get(server.url + "/metrics").text
    for name in (
        "corkboard_sockets_open",
        'corkboard_socket_joins_total{kind="user",status="ok"}',
        "corkboard_socket_messages_in_total",
        "corkboard_socket_messages_out_total",
        "corkboard_fanout_seconds_bucket",
        "corkboard_broker_lag_seconds_bucket",
        "corkboard_slow_consumers_dropped_total",
    ):
        assert name in text, name
    open_now = next(line for line in text.splitlines() if line.startswith("corkboard_sockets_open "))
    assert float(open_now.split()[1]) >= 1
    await phx.close()
