"""``corkboard`` (also ``python -m server``): serve, migrate, create-admin, worker, loadtest."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from server.settings import SettingsError, get_settings, load_settings


def _settings_or_exit() -> None:
    try:
        get_settings()
    except SettingsError as exc:
        click.echo(f"corkboard: configuration error: {exc}", err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """Corkboard: real-time Kanban boards (REST + Phoenix Channels)."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default PORT or 8000).")
@click.option(
    "--workers", default=None, type=int, help="Worker processes (default WORKERS or 1; >1 needs REDIS_URL)."
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the server. With nothing configured: SQLite in ./corkboard.db, in-process broker."""
    if workers is not None:
        os.environ["WORKERS"] = str(workers)
    _settings_or_exit()
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    from persistence.db import UnmigratedDatabaseError, create_engine, ensure_migrated

    async def check() -> None:
        engine = create_engine(settings.effective_database_url)
        try:
            await ensure_migrated(engine, settings.effective_database_url, auto=settings.is_sqlite)
        finally:
            await engine.dispose()

    try:
        asyncio.run(check())
    except UnmigratedDatabaseError as exc:
        click.echo(f"corkboard: {exc}", err=True)
        sys.exit(3)
    except OSError as exc:
        click.echo(f"corkboard: cannot reach the database: {exc}", err=True)
        sys.exit(3)

    from server.serving import run

    where = settings.effective_database_url.split("@")[-1]
    broker = "Redis" if settings.redis_url else "in-process broker"
    click.echo(
        f"corkboard: listening on http://{host}:{port} (database {where}, {broker}, "
        f"{settings.workers} worker(s)); docs at http://{host}:{port}/schema",
        err=True,
    )
    run(
        host=host,
        port=port,
        workers=settings.workers,
        ws_impl=settings.ws_impl,
        log_level=settings.log_level,
        trust_proxy_headers=settings.trust_proxy_headers,
    )


@main.command()
def migrate() -> None:
    """Apply database migrations (Alembic) to DATABASE_URL, or the embedded SQLite file."""
    _settings_or_exit()
    from persistence.db import upgrade

    url = get_settings().effective_database_url
    upgrade(url)
    click.echo(f"corkboard: database at {url.split('@')[-1]} is migrated to head")


@main.command("create-admin")
@click.option("--email", required=True)
@click.option("--username", required=True)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Prompted for when not given (or set CORKBOARD_ADMIN_PASSWORD).",
    envvar="CORKBOARD_ADMIN_PASSWORD",
)
def create_admin(email: str, username: str, password: str) -> None:
    """Create an administrator account (or promote an existing user with that email)."""
    _settings_or_exit()
    from server.admin import create_admin_account
    from server.errors import AppError

    try:
        created = asyncio.run(
            create_admin_account(get_settings(), email=email, username=username, password=password)
        )
    except AppError as exc:  # a validation message from the service: name each bad field
        fields = "; ".join(f"--{e.field}: {e.message}" for e in exc.errors or [])
        click.echo(f"corkboard: {exc.detail} {fields}".rstrip(), err=True)
        sys.exit(1)
    except Exception as exc:
        click.echo(f"corkboard: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"corkboard: admin {'created' if created else 'promoted'}: {email}")


@main.command()
@click.option("--concurrency", default=10, type=int, help="Jobs run at once by this worker.")
def worker(concurrency: int) -> None:
    """Run background jobs (mail, reminders, digests, webhooks, purges) in this process.

    Needs REDIS_URL; start the servers with RUN_WORKER_IN_PROCESS=false to leave all jobs to workers.
    """
    _settings_or_exit()
    settings = get_settings()
    if not settings.redis_url:
        click.echo(
            "corkboard: the worker needs REDIS_URL (the embedded default runs jobs inside `corkboard serve`)",
            err=True,
        )
        sys.exit(2)
    from persistence.db import UnmigratedDatabaseError
    from server.jobs.worker import run_worker

    click.echo(
        f"corkboard: worker on {settings.redis_url.split('@')[-1]} (concurrency {concurrency})", err=True
    )
    try:
        asyncio.run(run_worker(settings, concurrency=concurrency))
    except UnmigratedDatabaseError as exc:
        click.echo(f"corkboard: {exc}", err=True)
        sys.exit(3)


_ = load_settings
