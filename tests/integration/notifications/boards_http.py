"""Just enough board setup over HTTP for notification and webhook tests."""

from __future__ import annotations

from typing import Any

from tests.support.factories import Account

API = "/api/v1"


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


async def board(client: Any, owner: Account, name: str = "Launch") -> str:
    return str(
        (await ok(await client.post(f"{API}/boards", json={"name": name}, headers=owner.headers), 201))["id"]
    )


async def add_member(client: Any, board_id: str, by: Account, user: Account, role: str = "member") -> None:
    await ok(
        await client.post(
            f"{API}/boards/{board_id}/members", json={"user_id": user.id, "role": role}, headers=by.headers
        ),
        201,
    )


async def a_list(client: Any, board_id: str, by: Account) -> str:
    return str(
        (
            await ok(
                await client.post(
                    f"{API}/boards/{board_id}/lists", json={"name": "Todo"}, headers=by.headers
                ),
                201,
            )
        )["id"]
    )


async def card(client: Any, list_id: str, by: Account, **fields: Any) -> dict[str, Any]:
    body = {"title": fields.pop("title", "Ship it"), **fields}
    result: dict[str, Any] = await ok(
        await client.post(f"{API}/lists/{list_id}/cards", json=body, headers=by.headers), 201
    )
    return result


async def comment(client: Any, card_id: str, by: Account, body: str) -> dict[str, Any]:
    result: dict[str, Any] = await ok(
        await client.post(f"{API}/cards/{card_id}/comments", json={"body": body}, headers=by.headers), 201
    )
    return result


async def notifications(client: Any, who: Account, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await ok(await client.get(f"{API}/notifications", params=params, headers=who.headers))
    )["items"]
    return items


async def kinds(client: Any, who: Account) -> list[str]:
    return sorted(n["kind"] for n in await notifications(client, who))
