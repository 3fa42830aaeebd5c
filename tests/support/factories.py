"""Test data through the public HTTP interface: every test makes its own users and boards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    id: str
    email: str
    username: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def register(client: Any, *, username: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    username = username or unique_name()
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": f"{username}@example.test", "username": username, "password": password},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: Any, login: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_account(client: Any, *, username: str | None = None) -> Account:
    user = await register(client, username=username)
    tokens = await login(client, user["username"])
    return Account(
        id=user["id"],
        email=user["email"],
        username=user["username"],
        password=PASSWORD,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


async def make_admin(client: Any, settings: Any) -> Account:
    """An administrator, made the way an operator makes one (the code behind `corkboard create-admin`)."""
    from server.admin import create_admin_account

    username = unique_name("admin")
    email = f"{username}@example.test"
    assert await create_admin_account(settings, email=email, username=username, password=PASSWORD)
    tokens = await login(client, username)
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    return Account(
        id=me.json()["id"],
        email=email,
        username=username,
        password=PASSWORD,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
