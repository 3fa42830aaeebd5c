"""Response compression (SPEC §6): JSON bodies are gzipped when the client accepts it, small ones
are not, and neither the socket nor a 304 is touched; in the app and through `corkboard serve`."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from server.compression import MINIMUM_SIZE
from tests.support.boards import API, create_board, make_card, make_list
from tests.support.factories import make_account
from tests.support.phx import Phx, account, api
from tests.support.rest import create_board as live_board
from tests.support.rest import create_card as live_card
from tests.support.rest import create_list as live_list

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


def vary_names(response: httpx.Response) -> list[str]:
    return [name.strip().lower() for name in response.headers.get("vary", "").split(",") if name.strip()]


async def test_large_json_is_gzipped_when_accepted(client):
    owner = await make_account(client)
    board = await create_board(client, owner)
    lst = await make_list(client, board["id"], owner)
    for i in range(12):
        await make_card(client, lst["id"], owner, f"card {i} " + "x" * 40)
    url = f"{API}/boards/{board['id']}"

    plain = await client.get(url, headers={**owner.headers, **IDENTITY})
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > MINIMUM_SIZE

    packed = await client.get(url, headers={**owner.headers, **GZIP})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.json() == plain.json()  # the client decoded it
    assert packed.headers["etag"] == plain.headers["etag"]
    assert vary_names(packed) == ["accept-encoding"]
    assert vary_names(plain) == ["accept-encoding"]

    # collections too (the event log of that board)
    events = await client.get(f"{API}/boards/{board['id']}/events", headers={**owner.headers, **GZIP})
    assert events.headers["content-encoding"] == "gzip"

    # a small body is sent as it is
    me = await client.get(f"{API}/auth/me", headers={**owner.headers, **GZIP})
    assert "content-encoding" not in me.headers
    assert len(me.content) < MINIMUM_SIZE

    # a 304 has no body to compress
    cached = await client.get(url, headers={**owner.headers, **GZIP, "If-None-Match": packed.headers["etag"]})
    assert cached.status_code == 304
    assert cached.content == b""
    assert "content-encoding" not in cached.headers


@pytest.mark.timeout(90)
async def test_compression_through_corkboard_serve_leaves_the_socket_alone(backend_env, live_server_factory):
    server = live_server_factory(backend_env)  # uvicorn, the WebSocket fast path (the default)
    user = account(server)
    token = user["access_token"]
    board = live_board(server, token)
    lst = live_list(server, token, board["id"])
    for i in range(12):
        live_card(server, token, lst["id"], f"card {i} " + "x" * 40)
    with api(server, token) as http:
        raw: list[bytes] = []
        with http.stream("GET", f"/boards/{board['id']}", headers=GZIP) as response:
            assert response.headers["content-encoding"] == "gzip"
            raw.extend(response.iter_raw())
        body = json.loads(gzip.decompress(b"".join(raw)))
        assert len(body["cards"]) == 12
        assert int(response.headers["content-length"]) == len(b"".join(raw))
        plain = http.get(f"/boards/{board['id']}", headers=IDENTITY)
        assert len(b"".join(raw)) < len(plain.content) / 2
        assert plain.json() == body

    phx = await Phx.connect(server.ws_url, token, compression=None)
    try:
        _, joined = await phx.join(f"board:{board['id']}", {"snapshot": True})
        assert joined["status"] == "ok"
        assert joined["response"]["board"] == body  # the snapshot in the join reply: plain JSON text
        live_card(server, token, lst["id"], "live")
        frame = await phx.event(f"board:{board['id']}", "card.created")
        assert frame[4]["seq"] == body["seq"] + 1
    finally:
        await phx.close()
