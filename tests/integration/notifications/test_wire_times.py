"""Every time in every response is RFC 3339 UTC written with ``Z`` (SPEC §2, §6), on both databases.

Real responses of the routes that carry times (sessions, tokens, boards, cards, comments,
checklist, notifications, events, webhooks and their deliveries) are read against the served
OpenAPI document: each response's schema is resolved, every field it declares ``format:
date-time`` is found in the body, and its value must be UTC. Strings in free-form parts (an event's
``data``) that look like a time are held to the same rule. Times the client sends with an offset
(a card's ``due_at``, a token's ``expires_at``) come back as the same instant in UTC. Here because
webhooks need this directory's app (private receivers allowed) and its job runner.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tests.integration.notifications import boards_http as b
from tests.support.factories import bearer, make_account
from tests.support.receiver import Receiver

API = "/api/v1"
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return schema


def date_time_fields(
    spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str
) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` for every value of ``value`` that ``schema`` declares ``format: date-time``."""
    schema = _resolve(spec, schema)
    if value is None:
        return
    if schema.get("format") == "date-time":
        yield where, value
    for key in ("oneOf", "anyOf", "allOf"):
        for branch in schema.get(key, []):
            yield from date_time_fields(spec, branch, value, where)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            if name in value:
                yield from date_time_fields(spec, sub, value[name], f"{where}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value.keys() - properties.keys():
                yield from date_time_fields(spec, extra, value[name], f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from date_time_fields(spec, schema["items"], item, f"{where}[{i}]")


def time_like_strings(value: Any, where: str = "$") -> Iterator[tuple[str, str]]:
    if isinstance(value, str) and LOOKS_LIKE_TIME.match(value):
        yield where, value
    elif isinstance(value, dict):
        for name, sub in value.items():
            yield from time_like_strings(sub, f"{where}.{name}")
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from time_like_strings(sub, f"{where}[{i}]")


def assert_utc(where: str, value: Any) -> datetime:
    assert isinstance(value, str), f"{where}: {value!r} is not a string"
    assert UTC_TIME.match(value), f"{where}: {value!r} is not RFC 3339 UTC with Z"
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0, f"{where}: {value!r}"
    return parsed


class Checker:
    def __init__(self, client: Any, spec: dict[str, Any]) -> None:
        self.client = client
        self.spec = spec
        self.checked: dict[str, int] = {}

    async def call(
        self, method: str, template: str, who: Any, *, status: int = 200, json: Any = None, **path: str
    ) -> Any:
        """Call ``template`` (the OpenAPI path) and check every time in the answer."""
        headers = who if isinstance(who, dict) else who.headers
        response = await self.client.request(
            method.upper(), template.format(**path), json=json, headers=headers
        )
        assert response.status_code == status, f"{method} {template}: {response.status_code} {response.text}"
        body = response.json()
        operation = self.spec["paths"][template][method.lower()]
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        found = list(date_time_fields(self.spec, schema, body, "$"))
        assert found, f"{method} {template}: no date-time value found through its schema"
        for where, value in found:
            assert_utc(f"{method} {template} {where}", value)
        for where, value in time_like_strings(body):
            assert_utc(f"{method} {template} {where}", value)
        self.checked[f"{method.upper()} {template}"] = len(found)
        return body


async def test_every_time_in_every_response_is_utc(nclient):
    spec = (await nclient.get("/schema/openapi.json")).json()
    check = Checker(nclient, spec)
    alice, bob = await make_account(nclient), await make_account(nclient)

    token = await check.call(
        "post",
        f"{API}/auth/tokens",
        alice,
        status=201,
        json={"name": "bot", "scopes": ["read", "write"], "expires_at": "2030-01-01T00:00:00+02:00"},
    )
    assert token["expires_at"] == "2029-12-31T22:00:00Z"
    await check.call("get", f"{API}/users/me", bearer(token["token"]))  # the token gets a last_used_at
    tokens = (await check.call("get", f"{API}/auth/tokens", alice))["items"]
    assert tokens[0]["expires_at"] == "2029-12-31T22:00:00Z"
    assert tokens[0]["last_used_at"] is not None
    sessions = (await check.call("get", f"{API}/auth/sessions", alice))["items"]
    assert sessions[0]["last_used_at"] is not None
    await check.call("get", f"{API}/auth/me", alice)

    board = await check.call("post", f"{API}/boards", alice, status=201, json={"name": "Times"})
    board_id = board["id"]
    await b.add_member(nclient, board_id, alice, bob)
    await check.call("get", f"{API}/boards", alice)
    await check.call("get", f"{API}/boards/{{board_id}}/members", alice, board_id=board_id)
    with Receiver() as receiver:
        hook = await check.call(
            "post",
            f"{API}/boards/{{board_id}}/webhooks",
            alice,
            status=201,
            json={"url": receiver.url, "secret": "a-very-secret-webhook-key"},
            board_id=board_id,
        )
        lst = await check.call(
            "post",
            f"{API}/boards/{{board_id}}/lists",
            alice,
            status=201,
            json={"name": "L"},
            board_id=board_id,
        )
        card = await check.call(
            "post",
            f"{API}/lists/{{list_id}}/cards",
            alice,
            status=201,
            json={"title": "Due", "due_at": "2030-06-01T09:30:00+05:30", "assignee_ids": [bob.id]},
            list_id=lst["id"],
        )
        assert card["due_at"] == "2030-06-01T04:00:00Z"
        patched = await check.call(
            "patch",
            f"{API}/cards/{{card_id}}",
            alice,
            json={"due_at": "2030-06-01T20:00:00-07:00"},
            card_id=card["id"],
        )
        assert patched["due_at"] == "2030-06-02T03:00:00Z"
        await check.call("get", f"{API}/cards/{{card_id}}", alice, card_id=card["id"])
        await check.call("get", f"{API}/boards/{{board_id}}/cards", alice, board_id=board_id)
        await check.call(
            "post",
            f"{API}/cards/{{card_id}}/comments",
            alice,
            status=201,
            json={"body": f"@{bob.username} look"},
            card_id=card["id"],
        )
        await check.call("get", f"{API}/cards/{{card_id}}/comments", alice, card_id=card["id"])
        item = await check.call(
            "post",
            f"{API}/cards/{{card_id}}/checklist",
            alice,
            status=201,
            json={"text": "x"},
            card_id=card["id"],
        )
        await check.call(
            "patch", f"{API}/checklist-items/{{item_id}}", alice, json={"done": True}, item_id=item["id"]
        )
        detail = await check.call("get", f"{API}/boards/{{board_id}}", alice, board_id=board_id)
        assert detail["cards"][0]["due_at"] == "2030-06-02T03:00:00Z"
        events = await check.call("get", f"{API}/boards/{{board_id}}/events", alice, board_id=board_id)
        card_events = [e for e in events["items"] if e["type"] in ("card.created", "card.updated")]
        assert [e["data"]["due_at"] for e in card_events] == ["2030-06-01T04:00:00Z", "2030-06-02T03:00:00Z"]

        notes = (await check.call("get", f"{API}/notifications", bob))["items"]
        assert notes
        await check.call(
            "post", f"{API}/notifications/{{notification_id}}/read", bob, notification_id=notes[0]["id"]
        )
        await receiver.wait_until(lambda r: len(r.successes()) >= 1)
        await check.call("get", f"{API}/boards/{{board_id}}/webhooks", alice, board_id=board_id)
        for _ in range(200):  # the worker records the outcome after the receiver has answered
            deliveries = (
                await nclient.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=alice.headers)
            ).json()
            if any(d["delivered_at"] for d in deliveries["items"]):
                break
            await asyncio.sleep(0.05)
        await check.call("get", f"{API}/webhooks/{{webhook_id}}/deliveries", alice, webhook_id=hook["id"])
        for hit in receiver.successes():  # what a webhook receives is held to the same rule
            for where, value in time_like_strings(json.loads(hit.body)):
                assert_utc(f"webhook body {where}", value)

    assert len(check.checked) >= 22, check.checked
