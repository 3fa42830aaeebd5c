"""Board test data through HTTP: a board with members of every role, lists, cards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.factories import Account, make_account

API = "/api/v1"


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


@dataclass
class BoardWorld:
    """A board with one account per role and an outsider."""

    board: dict[str, Any]
    accounts: dict[str, Account]
    lists: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.board["id"])

    def h(self, role: str) -> dict[str, str]:
        return self.accounts[role].headers


async def create_board(client: Any, owner: Account, name: str = "Roadmap") -> dict[str, Any]:
    return await ok(await client.post(f"{API}/boards", json={"name": name}, headers=owner.headers), 201)


async def add_member(client: Any, board_id: str, by: Account, user: Account, role: str) -> dict[str, Any]:
    return await ok(
        await client.post(
            f"{API}/boards/{board_id}/members", json={"user_id": user.id, "role": role}, headers=by.headers
        ),
        201,
    )


async def make_world(client: Any) -> BoardWorld:
    owner = await make_account(client)
    board = await create_board(client, owner)
    accounts = {"owner": owner}
    for role in ("admin", "member", "observer"):
        accounts[role] = await make_account(client)
        await add_member(client, board["id"], owner, accounts[role], role)
    accounts["outsider"] = await make_account(client)
    return BoardWorld(board=board, accounts=accounts)


async def make_list(
    client: Any, board_id: str, who: Account, name: str = "Todo", **extra: Any
) -> dict[str, Any]:
    return await ok(
        await client.post(
            f"{API}/boards/{board_id}/lists", json={"name": name, **extra}, headers=who.headers
        ),
        201,
    )


async def make_card(
    client: Any, list_id: str, who: Account, title: str = "Card", **extra: Any
) -> dict[str, Any]:
    return await ok(
        await client.post(
            f"{API}/lists/{list_id}/cards", json={"title": title, **extra}, headers=who.headers
        ),
        201,
    )


async def get_board(client: Any, board_id: str, who: Account) -> dict[str, Any]:
    return await ok(await client.get(f"{API}/boards/{board_id}", headers=who.headers))
