"""Password hashing: argon2id, rehash on new parameters, and the same work for unknown users."""

from __future__ import annotations

from argon2 import PasswordHasher

from server.auth import passwords


async def test_hash_is_argon2id_and_verifies():
    hashed = await passwords.hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert await passwords.verify_password(hashed, "correct horse battery staple") == (True, None)
    assert await passwords.verify_password(hashed, "wrong") == (False, None)


async def test_old_parameters_are_rehashed_on_login():
    weak = PasswordHasher(time_cost=2, memory_cost=9 * 1024, parallelism=1).hash(
        "correct horse battery staple"
    )
    ok, new_hash = await passwords.verify_password(weak, "correct horse battery staple")
    assert ok
    assert new_hash is not None
    assert new_hash != weak
    assert await passwords.verify_password(new_hash, "correct horse battery staple") == (True, None)


async def test_unknown_user_costs_one_real_verification(monkeypatch):
    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            calls.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(passwords, "_hasher", CountingHasher())
    assert await passwords.verify_password(None, "anything at all") == (False, None)
    assert calls == [passwords._DUMMY_HASH]


def test_password_rules():
    rules = {"min_length": 10, "username": "ada", "email": "ada@example.test"}
    assert passwords.password_problems("correct horse battery staple", **rules) == []
    assert "must be at least 10 characters" in passwords.password_problems("short", **rules)
    assert "is too common or too simple" in passwords.password_problems("password123", **rules)
    assert "is too common or too simple" in passwords.password_problems("aaaaaaaaaaaa", **rules)
    assert "must not contain your username or email" in passwords.password_problems(
        "my-ada-password-1", **rules
    )


async def test_configured_parameters_apply_and_older_hashes_upgrade():
    strong = PasswordHasher(time_cost=2, memory_cost=16384, parallelism=2).hash("a long passphrase 1")
    passwords.configure(time_cost=1, memory_kib=8192, parallelism=1)
    ok, new_hash = await passwords.verify_password(strong, "a long passphrase 1")
    assert ok
    assert new_hash is not None
    assert "m=8192,t=1,p=1" in new_hash
    assert "m=8192,t=1,p=1" in await passwords.hash_password("another passphrase 2")
