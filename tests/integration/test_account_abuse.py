"""Account abuse a careful attacker tries (issue 18, accounts): mail tokens spent where they were not
mailed, enumeration through registration, lockout as a weapon, older reset links, mail bombing.
Mails go to a real SMTP server (aiosmtpd); every test runs on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import load_settings
from tests.conftest import base_env
from tests.integration.test_mail_flows import _client
from tests.support.factories import PASSWORD, bearer, login, make_account, make_admin, register, unique_name
from tests.support.live import LiveServer
from tests.support.mailbox import Mailbox, link_token
from tests.support.phx import account

NEW_PASSWORD = "a fresh passphrase 2026"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


@pytest.fixture
async def mail_client(backend_env, mailbox) -> AsyncIterator[AsyncTestClient]:
    async with _client(backend_env, mailbox) as client:
        yield client


def _subject(mails, subject):
    return [m for m in mails if m["Subject"] == subject]


class FromAddress:
    """Takes the client address from a test-only header, as a trusted proxy's X-Forwarded-For
    would: the in-process client is always "testclient", and only the address changes."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            peer = dict(scope["headers"]).get(b"x-test-peer")
            if peer:
                # In place, as uvicorn's proxy middleware does: Litestar's send hooks (which close
                # the request's database session) see the scope the server passed in.
                scope["client"] = (peer.decode(), 40000)
        await self.app(scope, receive, send)


def _app(backend_env, **extra: str):
    env = {**backend_env, "REDIS_PREFIX": f"{backend_env['REDIS_PREFIX']}:abuse:{unique_name()}", **extra}
    settings = load_settings(env)
    app = create_app(settings)
    app.asgi_handler = FromAddress(app.asgi_handler)
    return app, settings


def at(address: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"x-test-peer": address, **(headers or {})}


async def _login(client, address, login_name, password):
    return await client.post(
        "/api/v1/auth/login", json={"login": login_name, "password": password}, headers=at(address)
    )


# ---------------------------------------------------------------- 1. verification bound to the address


async def test_a_verify_token_does_not_verify_the_address_changed_to(mail_client, mailbox):
    attacker = await make_account(mail_client)
    [own_link] = await mailbox.wait_for(attacker.email)
    victim = unique_name("victim") + "@example.test"
    changed = await mail_client.patch(
        "/api/v1/users/me", json={"email": victim, "current_password": PASSWORD}, headers=attacker.headers
    )
    assert changed.status_code == 200, changed.text
    spent = await mail_client.post("/api/v1/auth/verify-email", json={"token": link_token(own_link)})
    assert spent.status_code == 422
    assert spent.json()["errors"][0]["field"] == "token"
    me = (await mail_client.get("/api/v1/users/me", headers=attacker.headers)).json()
    assert me["email"] == victim
    assert me["email_verified"] is False
    # Changing back does not bring the old link back: the change spent it.
    back = await mail_client.patch(
        "/api/v1/users/me",
        json={"email": attacker.email, "current_password": PASSWORD},
        headers=attacker.headers,
    )
    assert back.status_code == 200
    again = await mail_client.post("/api/v1/auth/verify-email", json={"token": link_token(own_link)})
    assert again.status_code == 422
    # The link mailed to the victim's address is spent too: the account has left that address.
    [victim_mail] = await mailbox.wait_for(victim)
    late = await mail_client.post("/api/v1/auth/verify-email", json={"token": link_token(victim_mail)})
    assert late.status_code == 422


async def test_an_email_change_spends_the_reset_links_of_the_old_address(mail_client, mailbox):
    account = await make_account(mail_client)
    await mail_client.post("/api/v1/auth/password/forgot", json={"email": account.email})
    [reset] = _subject(await mailbox.wait_for(account.email, count=2), "Reset your Corkboard password")
    moved = unique_name("moved") + "@example.test"
    changed = await mail_client.patch(
        "/api/v1/users/me", json={"email": moved, "current_password": PASSWORD}, headers=account.headers
    )
    assert changed.status_code == 200
    used = await mail_client.post(
        "/api/v1/auth/password/reset", json={"token": link_token(reset), "password": NEW_PASSWORD}
    )
    assert used.status_code == 422
    await login(mail_client, moved)  # the password did not change


# ---------------------------------------------------------------- 4. a reset spends the older links


async def test_a_reset_spends_every_older_reset_link(mail_client, mailbox):
    account = await make_account(mail_client)
    for _ in range(2):
        forgot = await mail_client.post("/api/v1/auth/password/forgot", json={"email": account.email})
        assert forgot.status_code == 202
    mails = _subject(await mailbox.wait_for(account.email, count=3), "Reset your Corkboard password")
    older, newer = (link_token(m) for m in mails)
    done = await mail_client.post(
        "/api/v1/auth/password/reset", json={"token": newer, "password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    assert (await mail_client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
    stale = await mail_client.post(
        "/api/v1/auth/password/reset", json={"token": older, "password": "yet another passphrase 7"}
    )
    assert stale.status_code == 422
    assert stale.json()["errors"][0]["field"] == "token"
    await login(mail_client, account.username, NEW_PASSWORD)


async def test_concurrent_resets_with_two_links_let_one_win(mail_client, mailbox):
    account = await make_account(mail_client)
    for _ in range(2):
        await mail_client.post("/api/v1/auth/password/forgot", json={"email": account.email})
    mails = _subject(await mailbox.wait_for(account.email, count=3), "Reset your Corkboard password")
    passwords = ["first new passphrase 11", "second new passphrase 22"]
    answers = await asyncio.gather(
        *(
            mail_client.post("/api/v1/auth/password/reset", json={"token": link_token(m), "password": p})
            for m, p in zip(mails, passwords, strict=True)
        )
    )
    assert sorted(a.status_code for a in answers) == [204, 422], [a.text for a in answers]
    winner = passwords[[a.status_code for a in answers].index(204)]
    await login(mail_client, account.username, winner)


# ---------------------------------------------------------------- 3. throttling, not lockout


async def test_guessing_from_one_address_does_not_lock_the_owner_out_elsewhere(backend_env):
    app, settings = _app(backend_env, LOGIN_MAX_FAILURES="3", LOGIN_DELAY_SECONDS="60", LOCKOUT_SECONDS="900")
    async with AsyncTestClient(app=app) as client:
        admin = await make_admin(client, settings)
        user = await register(client)
        attacker, owner = "203.0.113.66", "198.51.100.7"
        guesses = [
            (await _login(client, attacker, user["username"], "wrong guess 1")).status_code for _ in range(3)
        ]
        assert guesses == [401, 401, 401]
        # That address waits now, the right password and the email as the login included ...
        for name, password in ((user["username"], "wrong guess 2"), (user["email"], PASSWORD)):
            waiting = await _login(client, attacker, name, password)
            assert waiting.status_code == 423
            assert waiting.headers["content-type"].startswith("application/problem+json")
            assert 1 <= int(waiting.headers["retry-after"]) <= 60
        # ... and the owner elsewhere logs in at once.
        assert (await _login(client, owner, user["username"], PASSWORD)).status_code == 200
        # Every failure and the throttle are audited with the guesser's address.
        audit = await client.get(
            "/api/v1/audit", params={"subject": user["id"], "action": "login."}, headers=admin.headers
        )
        actions = [(e["action"], e["ip"]) for e in audit.json()["items"]]
        assert actions.count(("login.failed", attacker)) == 3
        assert actions.count(("login.throttled", attacker)) == 1
        assert ("login.succeeded", owner) in actions


async def test_the_wait_grows_with_each_failure(backend_env):
    app, _ = _app(backend_env, LOGIN_MAX_FAILURES="2", LOGIN_DELAY_SECONDS="1", LOCKOUT_SECONDS="900")
    async with AsyncTestClient(app=app) as client:
        user = await register(client)
        guesser = "203.0.113.9"
        for _ in range(2):
            assert (await _login(client, guesser, user["username"], "wrong guess")).status_code == 401
        waits = []
        for _ in range(3):
            refused = await _login(client, guesser, user["username"], "wrong guess")
            assert refused.status_code == 423
            waits.append(int(refused.headers["retry-after"]))
            await asyncio.sleep(waits[-1] + 0.2)
            assert (await _login(client, guesser, user["username"], "wrong guess")).status_code == 401
        assert waits[0] < waits[1] < waits[2], waits
        # A success from that address clears the count.
        await asyncio.sleep(
            int((await _login(client, guesser, user["username"], "x")).headers["retry-after"]) + 0.2
        )
        assert (await _login(client, guesser, user["username"], PASSWORD)).status_code == 200
        assert (await _login(client, guesser, user["username"], "wrong guess")).status_code == 401


async def test_concurrent_guesses_get_no_more_tries_than_sequential_ones(backend_env):
    app, _ = _app(backend_env, LOGIN_MAX_FAILURES="3", LOGIN_DELAY_SECONDS="60")
    async with AsyncTestClient(app=app) as client:
        user = await register(client)
        answers = await asyncio.gather(
            *(_login(client, "203.0.113.10", user["username"], f"guess number {i}") for i in range(20))
        )
        statuses = sorted(a.status_code for a in answers)
        # The free failures and one try through the gate, no more.
        assert statuses.count(401) <= 4, statuses
        assert set(statuses) == {401, 423}, statuses
        assert (await _login(client, "198.51.100.8", user["username"], PASSWORD)).status_code == 200


async def test_the_strict_address_limit_counts_failed_logins_not_successful_ones(backend_env):
    app, _ = _app(backend_env, AUTH_RATE_LIMIT_PER_MINUTE="3", LOGIN_MAX_FAILURES="100")
    async with AsyncTestClient(app=app) as client:
        users = [await register(client) for _ in range(3)]
        office = "192.0.2.50"
        # An office behind one address: many successful logins are not limited ...
        for _ in range(3):
            for user in users:
                assert (await _login(client, office, user["username"], PASSWORD)).status_code == 200
        # ... failures are, and then every login from that address waits.
        assert [
            (await _login(client, office, users[0]["username"], "wrong")).status_code for _ in range(3)
        ] == [401] * 3
        limited = await _login(client, office, users[0]["username"], PASSWORD)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 120
        assert (await _login(client, "192.0.2.51", users[0]["username"], PASSWORD)).status_code == 200


# ---------------------------------------------------------------- 5. mail bombing


@pytest.fixture
async def strict_mail_client(backend_env, mailbox) -> AsyncIterator[AsyncTestClient]:
    async with _client(
        backend_env, mailbox, MAIL_PER_ADDRESS_PER_HOUR="3", MAIL_PER_ACCOUNT_PER_HOUR="3"
    ) as client:
        yield client


async def test_resending_the_verification_is_limited(strict_mail_client, mailbox):
    client = strict_mail_client
    account = await make_account(client)  # one mail to the address
    statuses = [
        (await client.post("/api/v1/auth/verify-email/resend", headers=account.headers)).status_code
        for _ in range(30)
    ]
    assert statuses[:2] == [202, 202]
    assert set(statuses[2:]) == {429}
    refused = await client.post("/api/v1/auth/verify-email/resend", headers=account.headers)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 7200
    await mailbox.wait_for(account.email, count=3)
    await asyncio.sleep(0.3)
    assert len(mailbox.to(account.email)) == 3


async def test_forgot_is_limited_per_address_alike_for_unknown_addresses(strict_mail_client, mailbox):
    client = strict_mail_client
    user = await register(client)  # one mail to the address
    known, unknown = user["email"], unique_name("ghost") + "@example.test"
    answers = {
        email: [
            (await client.post("/api/v1/auth/password/forgot", json={"email": email})).status_code
            for _ in range(4)
        ]
        for email in (known, unknown)
    }
    assert answers[known] == [202, 202, 429, 429]
    assert answers[unknown] == [202, 202, 202, 429]  # the same limit: nothing mailed before
    # Registering that address again is one more mail to it: refused too, and nothing is made.
    again = await client.post(
        "/api/v1/auth/register", json={"email": known, "username": unique_name(), "password": PASSWORD}
    )
    assert again.status_code == 429
    await mailbox.wait_for(known, count=3)
    await asyncio.sleep(0.3)
    assert len(mailbox.to(known)) == 3
    assert mailbox.to(unknown) == []


async def test_email_changes_are_limited_per_account(strict_mail_client, mailbox):
    client = strict_mail_client
    account = await make_account(client)
    addresses = [unique_name("moved") + "@example.test" for _ in range(4)]
    statuses = []
    for address in addresses:
        changed = await client.patch(
            "/api/v1/users/me", json={"email": address, "current_password": PASSWORD}, headers=account.headers
        )
        statuses.append(changed.status_code)
    assert statuses == [200, 200, 200, 429]
    me = (await client.get("/api/v1/users/me", headers=bearer(account.access_token))).json()
    assert me["email"] == addresses[2]
    await mailbox.wait_for(addresses[2])
    await asyncio.sleep(0.3)
    assert mailbox.to(addresses[3]) == []


async def test_a_password_reset_ends_the_wait(backend_env, mailbox):
    async with _client(backend_env, mailbox, LOGIN_MAX_FAILURES="2", LOGIN_DELAY_SECONDS="600") as client:
        user = await register(client)
        for _ in range(2):
            await client.post("/api/v1/auth/login", json={"login": user["username"], "password": "forgot it"})
        waiting = await client.post(
            "/api/v1/auth/login", json={"login": user["username"], "password": PASSWORD}
        )
        assert waiting.status_code == 423
        await client.post("/api/v1/auth/password/forgot", json={"email": user["email"]})
        [reset] = _subject(await mailbox.wait_for(user["email"], count=2), "Reset your Corkboard password")
        done = await client.post(
            "/api/v1/auth/password/reset", json={"token": link_token(reset), "password": NEW_PASSWORD}
        )
        assert done.status_code == 204
        await login(client, user["username"], NEW_PASSWORD)


# ---------------------------------------------------------------- 2. enumeration through registration


async def _register(client, email, username):
    return await client.post(
        "/api/v1/auth/register", json={"email": email, "username": username, "password": PASSWORD}
    )


async def test_registering_an_existing_email_takes_the_username_like_a_new_one(mail_client, mailbox):
    owner = await make_account(mail_client)
    probe_existing, probe_new = unique_name("probe"), unique_name("probe")
    existing = await _register(mail_client, owner.email, probe_existing)
    fresh = await _register(mail_client, unique_name("new") + "@example.test", probe_new)
    assert existing.status_code == fresh.status_code == 201
    assert set(existing.json()) == set(fresh.json())
    # Both usernames are taken now, with the same answer, whether one registers or renames to it.
    for username in (probe_existing, probe_new):
        again = await _register(mail_client, unique_name("other") + "@example.test", username.upper())
        assert again.status_code == 409, (username, again.text)
        assert again.json()["detail"] == "That username is taken."
        renamed = await mail_client.patch(
            "/api/v1/users/me", json={"username": username}, headers=owner.headers
        )
        assert renamed.status_code == 409
    # The owner was told by mail, with no link in it.
    mails = await mailbox.wait_for(owner.email, count=2)
    assert mails[1]["Subject"] == "You already have a Corkboard account"


async def test_concurrent_registrations_of_one_username_let_one_win(client):
    username = unique_name("race")
    answers = await asyncio.gather(
        *(_register(client, unique_name(f"r{i}") + "@example.test", username) for i in range(5))
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409], [a.text for a in answers]


async def test_adding_members_by_email_is_limited_per_account(backend_env):
    app, _ = _app(backend_env, EMAIL_LOOKUPS_PER_HOUR="2")
    async with AsyncTestClient(app=app) as client:
        admin = await make_account(client)
        board = await client.post("/api/v1/boards", json={"name": "lookups"}, headers=admin.headers)
        assert board.status_code == 201, board.text
        members = f"/api/v1/boards/{board.json()['id']}/members"
        other = await register(client)
        answers = [
            await client.post(members, json={"email": email, "role": "member"}, headers=admin.headers)
            for email in (unique_name("ghost") + "@example.test", other["email"], other["email"])
        ]
        assert [a.status_code for a in answers] == [422, 201, 429]
        assert 1 <= int(answers[2].headers["retry-after"]) <= 7200
        # By id it is no lookup by address, and is not limited.
        third = await register(client)
        by_id = await client.post(
            members, json={"user_id": third["id"], "role": "member"}, headers=admin.headers
        )
        assert by_id.status_code == 201


# ---------------------------------------------------------------- the same on two real instances


def _from(server, local_address: str) -> httpx.Client:
    """A client connecting from ``local_address`` (any 127.0.0.0/8 address works on Linux)."""
    transport = httpx.HTTPTransport(local_address=local_address)
    return httpx.Client(base_url=server.url + "/api/v1", transport=transport, timeout=10)


def test_two_instances_throttle_the_guessing_address_only(tmp_path, run_id, pg_url, redis_url):
    env = base_env(tmp_path, run_id) | {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"cbtest:{run_id}:throttle:{unique_name()}",
        "LOGIN_MAX_FAILURES": "2",
        "LOGIN_DELAY_SECONDS": "600",
    }
    servers = [LiveServer(env, log_path=tmp_path / f"server-{i}.log") for i in range(2)]
    try:
        first, second = (server.start(timeout=90) for server in servers)
        user = account(first)
        wrong = {"login": user["username"], "password": "a wrong guess"}
        right = {"login": user["username"], "password": PASSWORD}
        with _from(first, "127.0.0.2") as guesser_a, _from(second, "127.0.0.2") as guesser_b:
            assert [guesser_a.post("/auth/login", json=wrong).status_code for _ in range(2)] == [401, 401]
            # The other instance knows (Redis): that address waits there too, right password or not.
            waiting = guesser_b.post("/auth/login", json=right)
            assert waiting.status_code == 423
            assert 1 <= int(waiting.headers["retry-after"]) <= 600
        with _from(second, "127.0.0.1") as owner:
            assert owner.post("/auth/login", json=right).status_code == 200
    finally:
        for server in servers:
            server.stop()
