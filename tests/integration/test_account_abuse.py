"""Account abuse a careful attacker tries (issue 18, accounts): mail tokens spent where they were not
mailed, enumeration through registration, lockout as a weapon, older reset links, mail bombing.
Mails go to a real SMTP server (aiosmtpd); every test runs on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from litestar.testing import AsyncTestClient

from tests.integration.test_mail_flows import _client
from tests.support.factories import PASSWORD, login, make_account, unique_name
from tests.support.mailbox import Mailbox, link_token

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
