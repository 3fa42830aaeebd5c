"""One typed settings object, read from the environment (and an optional ``.env``).

Every field is an environment variable of the same name in upper case (``database_url`` is
``DATABASE_URL``). Values are validated by msgspec at start; a bad value stops the process with
a message that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

import msgspec
from dotenv import dotenv_values


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    # --- where things live
    data_dir: str = "."
    database_url: str = ""
    redis_url: str | None = None
    redis_prefix: str = "corkboard"
    public_url: str = "http://127.0.0.1:8000"

    # --- serving
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    ws_impl: Literal["fastpath", "websockets-sansio", "websockets", "wsproto"] = "fastpath"

    # --- security
    secret_key: str = ""
    access_token_ttl: int = 900
    # Seconds a process may reuse an authenticated session without reading it again (0: never);
    # revocations reach every process at once through the broker (server/auth/sessioncache.py).
    auth_cache_seconds: int = 30
    refresh_token_ttl: int = 30 * 24 * 3600
    verify_token_ttl: int = 48 * 3600
    reset_token_ttl: int = 3600
    # Logins: LOGIN_MAX_FAILURES wrong passwords per (account, client address) are free, then each
    # try waits LOGIN_DELAY_SECONDS, doubling with every failure, up to LOCKOUT_SECONDS.
    login_max_failures: int = 5
    login_delay_seconds: int = 1
    lockout_seconds: int = 900
    password_min_length: int = 10
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 "low memory" profile)
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    password_hash_parallelism: int = 4
    trust_proxy_headers: bool = False
    db_pool_size: int = 10  # PostgreSQL connections each process keeps open (and warms at start)
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDR
    # networks), and only with TRUST_PROXY_HEADERS=true: any other peer's headers are ignored.
    trusted_proxies: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "::1"])
    cors_origins: list[str] = msgspec.field(default_factory=list)

    # --- rate limits (requests per minute)
    rate_limit_per_minute: int = 1200
    auth_rate_limit_per_minute: int = 20
    # --- mail sent by account routes, per target address and per account (mails per hour)
    mail_per_address_per_hour: int = 5
    mail_per_account_per_hour: int = 5
    # --- accounts found by email address (board members added by email), per account per hour
    email_lookups_per_hour: int = 20

    # --- mail
    smtp_url: str | None = None
    mail_from: str = "Corkboard <no-reply@corkboard.local>"

    # --- sockets
    max_topics_per_socket: int = 100
    max_frame_bytes: int = 64 * 1024
    socket_outbound_limit: int = 1024 * 1024
    heartbeat_timeout: int = 60
    pushes_per_second: int = 50
    replay_window: int = 1000
    presence_ttl: int = 30
    presence_coalesce_ms: int = 50
    # Presence is bounded like ephemeral: a meta's size, a user's entries on a topic (their open
    # tabs), and a socket's meta updates per second.
    presence_meta_max_bytes: int = 1024
    presence_metas_per_user: int = 10
    presence_updates_per_second: int = 2
    fanout_slice: int = 64

    # --- jobs, retention, integrations
    run_worker_in_process: bool = True
    event_retention_days: int = 90
    reminder_window_hours: int = 24
    webhook_allow_private: bool = False
    webhook_max_failures: int = 10
    webhook_timeout: float = 10.0
    job_retry_delay: float = 5.0

    # --- operations
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    sentry_dsn: str | None = None
    environment: str = "development"

    def __post_init__(self) -> None:
        if self.ws_impl == "wsproto" and find_spec("wsproto") is None:
            raise SettingsError("WS_IMPL=wsproto needs the wsproto package: pip install 'corkboard[bench]'")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"PORT must be between 1 and 65535 (got {self.port})")
        for name in _POSITIVE_FIELDS:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.upper()} must be at least 1 (got {getattr(self, name)})")
        if self.workers < 1:
            raise SettingsError("WORKERS must be at least 1")
        if self.auth_cache_seconds < 0:
            raise SettingsError(f"AUTH_CACHE_SECONDS must be 0 (off) or more (got {self.auth_cache_seconds})")
        if self.workers > 1 and not self.redis_url:
            raise SettingsError(
                "WORKERS > 1 needs REDIS_URL: several processes share events and presence through Redis"
            )
        if self.database_url and not self.database_url.startswith(
            ("sqlite+aiosqlite://", "postgresql+asyncpg://")
        ):
            raise SettingsError(
                "DATABASE_URL must start with postgresql+asyncpg:// or sqlite+aiosqlite:// "
                f"(got {self.database_url.split(':', 1)[0]}://…)"
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
        if self.sentry_dsn and not self.sentry_dsn.startswith(("https://", "http://")):
            raise SettingsError("SENTRY_DSN must be the https://… DSN of a Sentry project")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise SettingsError(
                    f"TRUSTED_PROXIES takes IP addresses or networks, comma-separated (got {proxy!r})"
                ) from None
        if self.smtp_url and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise SettingsError("SMTP_URL must look like smtp://user:pass@host:port or smtps://…")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{Path(self.data_dir) / 'corkboard.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def is_embedded(self) -> bool:
        """The newcomer's default: SQLite and the in-process broker, one process."""
        return self.redis_url is None


_LIST_FIELDS = {"cors_origins", "trusted_proxies"}
_POSITIVE_FIELDS = (
    "db_pool_size",
    "access_token_ttl",
    "refresh_token_ttl",
    "verify_token_ttl",
    "reset_token_ttl",
    "login_max_failures",
    "login_delay_seconds",
    "lockout_seconds",
    "password_min_length",
    "password_hash_time_cost",
    "password_hash_memory_kib",
    "password_hash_parallelism",
    "rate_limit_per_minute",
    "auth_rate_limit_per_minute",
    "mail_per_address_per_hour",
    "mail_per_account_per_hour",
    "email_lookups_per_hour",
    "max_topics_per_socket",
    "max_frame_bytes",
    "heartbeat_timeout",
    "fanout_slice",
    "presence_meta_max_bytes",
    "presence_metas_per_user",
    "presence_updates_per_second",
)


def _from_mapping(env: dict[str, str]) -> Settings:
    raw: dict[str, object] = {}
    for name in Settings.__struct_fields__:
        value = env.get(name.upper())
        if value is None or value == "":
            continue
        raw[name] = [v.strip() for v in value.split(",") if v.strip()] if name in _LIST_FIELDS else value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec says "... - at `$.port`": name the environment variable instead.
        message = str(exc)
        if " - at `$." in message:
            text, _, path = message.partition(" - at `$.")
            field = path.rstrip("`").split(".")[0].split("[")[0]
            raise SettingsError(f"{field.upper()}: {text}") from None
        raise SettingsError(message) from None
    if not settings.secret_key:
        settings = msgspec.structs.replace(settings, secret_key=_embedded_secret(settings))
    return settings


def _embedded_secret(settings: Settings) -> str:
    """A generated key kept beside the embedded database; shared deployments must set SECRET_KEY."""
    if not settings.is_embedded:
        raise SettingsError(
            "SECRET_KEY must be set when REDIS_URL is set: every instance must sign tokens with the same key"
        )
    path = Path(settings.data_dir) / ".secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default: ``.env`` overlaid by the process environment)."""
    if env is None:
        dotenv_file = Path(os.environ.get("CORKBOARD_ENV_FILE", ".env"))
        merged = {k: v for k, v in dotenv_values(dotenv_file).items() if v is not None}
        merged.update(os.environ)
        env = merged
    return _from_mapping(env)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
