"""Email verification and password reset end to end, through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog.testing
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import load_settings
from tests.support.factories import PASSWORD, bearer, login, make_account, register, unique_name
from tests.support.mailbox import Mailbox, body_of, link_token


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


def _client(backend_env: dict[str, str], mailbox: Mailbox, **extra: str) -> AsyncTestClient:
    settings = load_settings({**backend_env, "SMTP_URL": mailbox.url, **extra})
    return AsyncTestClient(app=create_app(settings))


@pytest.fixture
async def mail_client(backend_env, mailbox) -> AsyncIterator[AsyncTestClient]:
    async with _client(backend_env, mailbox) as client:
        yield client


async def test_registration_mails_a_link_that_verifies_once(mail_client, mailbox):
    user = await register(mail_client)
    [mail] = await mailbox.wait_for(user["email"])
    assert mail["Subject"] == "Verify your Corkboard email address"
    assert "/verify-email?token=" in body_of(mail)
    token = link_token(mail)
    verified = await mail_client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email_verified"] is True
    again = await mail_client.post("/api/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "token"


async def test_resend_verification_and_email_change_mail_new_links(mail_client, mailbox):
    account = await make_account(mail_client)
    await mailbox.wait_for(account.email)
    resent = await mail_client.post("/api/v1/auth/verify-email/resend", headers=account.headers)
    assert resent.status_code == 202
    first, second = await mailbox.wait_for(account.email, count=2)
    assert link_token(first) != link_token(second)
    new_email = unique_name("moved") + "@example.test"
    changed = await mail_client.patch(
        "/api/v1/users/me", json={"email": new_email, "current_password": PASSWORD}, headers=account.headers
    )
    assert changed.status_code == 200
    assert changed.json()["email_verified"] is False
    [mail] = await mailbox.wait_for(new_email)
    verified = await mail_client.post("/api/v1/auth/verify-email", json={"token": link_token(mail)})
    assert verified.json()["email"] == new_email
    assert verified.json()["email_verified"] is True


async def test_password_reset_by_mail_revokes_sessions_and_is_single_use(mail_client, mailbox):
    account = await make_account(mail_client)
    forgot = await mail_client.post("/api/v1/auth/password/forgot", json={"email": account.email.upper()})
    assert forgot.status_code == 202
    mails = await mailbox.wait_for(account.email, count=2)  # the verification mail, then the reset
    reset_mail = next(m for m in mails if m["Subject"] == "Reset your Corkboard password")
    token = link_token(reset_mail)
    weak = await mail_client.post("/api/v1/auth/password/reset", json={"token": token, "password": "short"})
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "password"
    new_password = "a fresh passphrase 2026"
    done = await mail_client.post(
        "/api/v1/auth/password/reset", json={"token": token, "password": new_password}
    )
    assert done.status_code == 204, done.text
    # every session of the account is gone
    assert (await mail_client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
    refresh = await mail_client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 401
    # the token is spent, the old password no longer works, the new one does
    reuse = await mail_client.post(
        "/api/v1/auth/password/reset", json={"token": token, "password": "another one 99"}
    )
    assert reuse.status_code == 422
    old = await mail_client.post("/api/v1/auth/login", json={"login": account.username, "password": PASSWORD})
    assert old.status_code == 401
    await login(mail_client, account.email, new_password)


async def test_forgot_password_answers_alike_for_unknown_addresses(mail_client, mailbox):
    user = await register(mail_client)
    await mailbox.wait_for(user["email"])
    unknown_email = unique_name("ghost") + "@example.test"
    unknown = await mail_client.post("/api/v1/auth/password/forgot", json={"email": unknown_email})
    known = await mail_client.post("/api/v1/auth/password/forgot", json={"email": user["email"]})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    await mailbox.wait_for(user["email"], count=2)
    await asyncio.sleep(0.2)
    assert mailbox.to(unknown_email) == []


async def test_mailed_tokens_expire(backend_env, mailbox):
    async with _client(backend_env, mailbox, VERIFY_TOKEN_TTL="1", RESET_TOKEN_TTL="1") as client:
        user = await register(client)
        await client.post("/api/v1/auth/password/forgot", json={"email": user["email"]})
        mails = await mailbox.wait_for(user["email"], count=2)
        tokens = {m["Subject"].split()[0]: link_token(m) for m in mails}
        await asyncio.sleep(1.2)  # the tokens live one second
        verify = await client.post("/api/v1/auth/verify-email", json={"token": tokens["Verify"]})
        assert verify.status_code == 422
        reset = await client.post(
            "/api/v1/auth/password/reset",
            json={"token": tokens["Reset"], "password": "a fresh passphrase 2026"},
        )
        assert reset.status_code == 422
        await login(client, user["username"])  # the password did not change


async def test_verification_token_cannot_reset_a_password(mail_client, mailbox):
    account = await make_account(mail_client)
    [mail] = await mailbox.wait_for(account.email)
    misuse = await mail_client.post(
        "/api/v1/auth/password/reset", json={"token": link_token(mail), "password": "a fresh passphrase 2026"}
    )
    assert misuse.status_code == 422
    assert (await mail_client.get("/api/v1/auth/me", headers=bearer(account.access_token))).status_code == 200


async def test_registering_a_taken_email_mails_its_owner_instead(mail_client, mailbox):
    user = await register(mail_client)
    await mailbox.wait_for(user["email"])
    again = await mail_client.post(
        "/api/v1/auth/register",
        json={"email": user["email"], "username": unique_name(), "password": PASSWORD},
    )
    assert again.status_code == 201
    mails = await mailbox.wait_for(user["email"], count=2)
    assert mails[1]["Subject"] == "You already have a Corkboard account"
    assert "token=" not in body_of(mails[1])


async def test_mail_is_retried_until_the_smtp_server_answers(backend_env):
    box = Mailbox()  # its port is chosen, nothing listens on it yet
    async with _client(backend_env, box) as client:
        client.app.state.mailer.retry_delays = (0.3, 0.3, 0.3, 0.3, 0.3)
        with structlog.testing.capture_logs() as logs:
            user = await register(client)
            for _ in range(100):  # the first attempt fails: connection refused
                if any(entry["event"] == "mail.retrying" for entry in logs):
                    break
                await asyncio.sleep(0.02)
            box.controller.start()
            try:
                [mail] = await box.wait_for(user["email"])
            finally:
                box.controller.stop()
        assert mail["Subject"] == "Verify your Corkboard email address"
        assert [e["attempt"] for e in logs if e["event"] == "mail.retrying"][:1] == [1]
