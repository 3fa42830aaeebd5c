"""A seeded fuzz run of every operation in the served OpenAPI document, on both databases (issue 18
item 13): whatever the input, the answer is never a 5xx, and every 4xx is a problem details body.

Schemathesis generates the requests from ``/schema/openapi.json`` (valid and invalid ones, strings
with NUL characters included); Hypothesis runs derandomized with no example database, so every run
sends the same requests. Each operation runs as the administrator of a fresh board with a list, a
card, a label, a comment, a checklist item, a webhook, a second member, a session and an API token,
and path ids are that world's real ones about half of the time, so handlers past the 404 are reached.
Every operation that takes a JSON body also gets a body nested 1,000 deep.

Size: ``FUZZ_EXAMPLES`` examples per operation and backend (default 8, what CI affords); a larger
run is ``FUZZ_EXAMPLES=200 .venv/bin/python -m pytest tests/integration/test_fuzz.py -q``
(docs/operations.md). ``FUZZ_SEED`` picks another deterministic sequence of requests.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from schemathesis.generation import GenerationMode

from server.settings import Settings, load_settings
from tests.conftest import BACKENDS, base_env
from tests.support.factories import Account, make_account, make_admin

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "1813"))
BASE_URL = "http://testserver.local"
API = "/api/v1"
DEEP = '{"a":' * 1000 + "1" + "}" * 1000
# Webhook URLs the fuzzer makes are replaced by this one (loopback, the discard port, allowed by
# WEBHOOK_ALLOW_PRIVATE for this app): a test never sends traffic off the machine.
SAFE_HOOK_URL = "http://127.0.0.1:9/fuzz"
# Headers of the generator's own transport that mean nothing to the app under test.
_TRANSPORT_HEADERS = {"user-agent", "connection", "x-schemathesis-testcaseid", "host", "content-length"}


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the app's OpenAPI document, read without starting it."""
    from server.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(load_settings(base_env(Path(tmp), "collect")))
        document = app.openapi_schema.to_schema()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


OPERATIONS = _operations()
# Hypothesis notes that the global `random` moved while it drew an example: the app, serving the
# previous request on the event loop's thread, uses it. The examples come from Hypothesis' own
# seeded source, so they do not change.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, run_id: str
) -> Settings:
    """The backend's settings with a database file of its own (SQLite) and loopback webhooks allowed."""
    env = base_env(tmp_path_factory.mktemp(f"fuzz-{request.param}"), run_id)
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("pg_url")
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    env["WEBHOOK_ALLOW_PRIVATE"] = "true"
    return load_settings(env)


@pytest.fixture(scope="module")
async def fuzz_client(fuzz_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    from server.app import create_app

    async with AsyncTestClient(app=create_app(fuzz_settings), base_url=BASE_URL) as c:
        yield c


@pytest.fixture(scope="module")
async def fuzz_schema(fuzz_client: AsyncTestClient[Litestar]) -> Any:
    """The document the app serves, as schemathesis reads it: NUL characters allowed in strings."""
    served = await fuzz_client.get("/schema/openapi.json")
    assert served.status_code == 200, served.text
    schema = schemathesis.openapi.from_dict(served.json())
    schema.config.generation.update(allow_x00=True, codec="utf-8")
    return schema


@dataclass
class World:
    """One administrator's real things, whose ids stand in for generated path parameters."""

    admin: Account
    ids: dict[str, str] = field(default_factory=dict)


async def _created(client: Any, path: str, body: dict[str, Any], admin: Account) -> dict[str, Any]:
    response = await client.post(API + path, json=body, headers=admin.headers)
    assert response.status_code == 201, (path, response.text)
    created: dict[str, Any] = response.json()
    return created


async def make_world(client: Any, settings: Settings) -> World:
    admin = await make_admin(client, settings)
    member = await make_account(client)
    board = await _created(client, "/boards", {"name": "fuzz"}, admin)
    added = await client.post(
        f"{API}/boards/{board['id']}/members", json={"user_id": member.id}, headers=admin.headers
    )
    assert added.status_code in (200, 201), added.text
    lst = await _created(client, f"/boards/{board['id']}/lists", {"name": "todo"}, admin)
    card = await _created(client, f"/lists/{lst['id']}/cards", {"title": "card"}, admin)
    label = await _created(
        client, f"/boards/{board['id']}/labels", {"name": "bug", "color": "#AABBCC"}, admin
    )
    comment = await _created(client, f"/cards/{card['id']}/comments", {"body": "hello"}, admin)
    item = await _created(client, f"/cards/{card['id']}/checklist", {"text": "step"}, admin)
    hook = await _created(
        client,
        f"/boards/{board['id']}/webhooks",
        {"url": SAFE_HOOK_URL, "secret": "fuzz-secret-0123456789"},
        admin,
    )
    token = await _created(client, "/auth/tokens", {"name": "fuzz"}, admin)
    sessions = await client.get(f"{API}/auth/sessions", headers=admin.headers)
    ids = {
        "board_id": board["id"],
        "list_id": lst["id"],
        "card_id": card["id"],
        "user_id": member.id,
        "label_id": label["id"],
        "comment_id": comment["id"],
        "item_id": item["id"],
        "webhook_id": hook["id"],
        "token_id": token["id"],
        "session_id": sessions.json()["items"][0]["id"],
    }
    return World(admin=admin, ids=ids)


def request_kwargs(case: Any) -> dict[str, Any]:
    """The generated request as ``httpx.AsyncClient.request`` arguments."""
    sent = case.as_transport_kwargs(base_url=BASE_URL)
    kwargs: dict[str, Any] = {
        "method": sent["method"],
        "url": sent["url"],
        "headers": {k: v for k, v in sent.get("headers", {}).items() if k.lower() not in _TRANSPORT_HEADERS},
        "params": sent.get("params") or None,
        "cookies": sent.get("cookies") or None,
    }
    if "json" in sent:
        kwargs["json"] = sent["json"]
    elif isinstance(sent.get("data"), bytes | str):
        kwargs["content"] = sent["data"]
    elif sent.get("data") is not None:
        kwargs["data"] = sent["data"]
    return kwargs


def with_nul(value: Any) -> Any:
    """The JSON value with a NUL character in every string it holds (keys stay as they are, so
    the fields are still the operation's own)."""
    if isinstance(value, str):
        return value + "\x00"
    if isinstance(value, list):
        return [with_nul(v) for v in value]
    if isinstance(value, dict):
        return {k: with_nul(v) for k, v in value.items()}
    return value


def verdict(response: httpx.Response) -> str | None:
    """What is wrong with the answer, or ``None``: no 5xx, and every 4xx is a problem details body."""
    if response.status_code >= 500:
        return f"{response.status_code} {response.text[:300]}"
    content_type = response.headers.get("content-type", "")
    if response.status_code >= 400 and not content_type.startswith("application/problem+json"):
        return f"{response.status_code} with content-type {content_type!r}: {response.text[:200]}"
    return None


def describe(kwargs: dict[str, Any]) -> str:
    body = kwargs.get("json", kwargs.get("content", kwargs.get("data")))
    return f"{kwargs['method']} {kwargs['url']} params={kwargs.get('params')} body={str(body)[:300]!r}"


def run_examples(
    operation: Any, ids: dict[str, str], token: str, send: Callable[[dict[str, Any]], httpx.Response]
) -> list[str]:
    """Runs the operation's generated examples (in a worker thread); returns the failures seen."""
    failures: list[str] = []
    names = [p.name for p in operation.path_parameters]
    real = {name: ids[name] for name in names if name in ids}
    cases = st.one_of(
        [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    )
    choices = st.fixed_dictionaries({name: st.booleans() for name in real})

    @seed(FUZZ_SEED)
    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=False,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=cases, use_real=choices, auth=st.integers(0, 7), nul=st.booleans())
    def fuzz(case: Any, use_real: dict[str, bool], auth: int, nul: bool) -> None:
        for name, value in real.items():
            if use_real[name]:
                case.path_parameters[name] = value
        kwargs = request_kwargs(case)
        if auth:  # most examples as the administrator; some with whatever the generator made
            kwargs["headers"]["Authorization"] = f"Bearer {token}"
        if "webhooks" in operation.path and isinstance(kwargs.get("json"), dict) and "url" in kwargs["json"]:
            kwargs["json"]["url"] = SAFE_HOOK_URL
        if nul and "json" in kwargs:  # the generator seldom draws one: half the bodies get them all over
            kwargs["json"] = with_nul(kwargs["json"])
        problem = verdict(send(kwargs))
        if problem and len(failures) < 20:
            failures.append(f"{problem}\n    after {describe(kwargs)}")

    fuzz()
    return failures


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_fuzz_operation(method: str, path: str, fuzz_client, fuzz_settings, fuzz_schema) -> None:
    world = await make_world(fuzz_client, fuzz_settings)
    operation = fuzz_schema[path][method]
    loop = asyncio.get_running_loop()

    def send(kwargs: dict[str, Any]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(fuzz_client.request(**kwargs), loop).result(timeout=120)

    failures = await asyncio.to_thread(run_examples, operation, world.ids, world.admin.access_token, send)

    if operation.body:  # a body nested past the decoder's limit
        url = path.format(**{p.name: world.ids.get(p.name, "x") for p in operation.path_parameters})
        deep = {
            "method": method,
            "url": urlsplit(BASE_URL + url).path,
            "content": DEEP,
            "headers": {"content-type": "application/json", **world.admin.headers},
        }
        problem = verdict(await fuzz_client.request(**deep))
        if problem:
            failures.append(f"{problem}\n    after {describe(deep)}")
    assert not failures, "\n".join(failures)
