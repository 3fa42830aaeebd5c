"""`corkboard create-admin` through the real command line, then the admin uses the admin routes."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.factories import PASSWORD, bearer, login, make_account, unique_name
from tests.support.live import ROOT


def corkboard(
    args: list[str], env: dict[str, str], *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=env["DATA_DIR"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_create_admin_from_the_environment_then_use_admin_routes(client, backend_env):
    username = unique_name("root")
    email = f"{username}@example.test"
    result = corkboard(
        ["create-admin", "--email", email, "--username", username],
        {**backend_env, "CORKBOARD_ADMIN_PASSWORD": PASSWORD},
    )
    assert result.returncode == 0, result.stderr
    assert f"admin created: {email}" in result.stdout
    tokens = await login(client, username)
    me = await client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert me.json()["role"] == "admin"
    listed = await client.get("/api/v1/users", params={"q": username}, headers=bearer(tokens["access_token"]))
    assert listed.status_code == 200
    assert [u["email"] for u in listed.json()["items"]] == [email]


async def test_create_admin_prompts_for_the_password_and_promotes_existing_users(client, backend_env):
    account = await make_account(client)
    env = {k: v for k, v in backend_env.items() if k != "CORKBOARD_ADMIN_PASSWORD"}
    result = corkboard(
        ["create-admin", "--email", account.email, "--username", account.username],
        env,
        stdin="unused\nunused\n",
    )
    assert result.returncode == 0, result.stderr
    assert f"admin promoted: {account.email}" in result.stdout
    assert (await client.get("/api/v1/audit", headers=account.headers)).status_code == 200
    # a brand-new admin through the prompt (typed twice)
    username = unique_name("root")
    prompted = corkboard(
        ["create-admin", "--email", f"{username}@example.test", "--username", username],
        env,
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert prompted.returncode == 0, prompted.stderr
    await login(client, username)


def test_create_admin_rejects_a_weak_password(backend_env):
    username = unique_name("root")
    result = corkboard(
        ["create-admin", "--email", f"{username}@example.test", "--username", username],
        {**backend_env, "CORKBOARD_ADMIN_PASSWORD": "short"},
    )
    assert result.returncode == 1
    assert "password" in result.stderr
    assert "Traceback" not in result.stderr
