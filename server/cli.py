"""``corkboard`` (also ``python -m server``): serve, migrate, create-admin, worker, loadtest."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

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


@main.command()
@click.argument("url", default="http://127.0.0.1:8000")
@click.option("--users", default=100, show_default=True, help="Concurrent users: one Phoenix socket each.")
@click.option("--boards", default=10, show_default=True, help="Boards the users are spread over (K).")
@click.option(
    "--accounts", default=0, help="Accounts to sign up, shared round robin (default: one per user)."
)
@click.option(
    "--tokens-file",
    type=click.File("r"),
    default=None,
    help="Use these access or personal access tokens (one a line) instead of signing up.",
)
@click.option("--writers", default=0.1, show_default=True, help="Share of users that mutate cards over REST.")
@click.option(
    "--rate", default=10.0, show_default=True, help="Card mutations per second, all writers together."
)
@click.option("--typing-rate", default=5.0, show_default=True, help="Ephemeral typing pushes per second.")
@click.option("--duration", default=30.0, show_default=True, help="Seconds of load (after sockets are open).")
@click.option("--max-mutations", default=0, help="Stop after this many mutations (0: the duration decides).")
@click.option(
    "--connect-rate", default=500.0, show_default=True, help="New sockets per second while ramping up."
)
@click.option(
    "--drain", default=10.0, show_default=True, help="Seconds to wait for the last events after load."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--check", is_flag=True, help="Exit 1 when an event was lost or duplicated, or the run stopped early."
)
@click.option("--quiet", is_flag=True, help="No progress line.")
def loadtest(
    url: str,
    users: int,
    boards: int,
    accounts: int,
    tokens_file: Any,
    writers: float,
    rate: float,
    typing_rate: float,
    duration: float,
    max_mutations: int,
    connect_rate: float,
    drain: float,
    as_json: bool,
    check: bool,
    quiet: bool,
) -> None:
    """Simulate USERS concurrent users against a Corkboard server at URL and report what arrived.

    Each user opens one Phoenix V2 socket and joins a board; a share of them create, move and
    edit cards over REST at --rate. Every pushed event is checked by seq (lost, duplicated) and
    timed from its commit (`at`) to receipt. The progress line goes to stderr; the report to stdout.
    """
    import msgspec

    try:
        from server.loadtest.report import render
        from server.loadtest.runner import LoadConfig, run_loadtest
    except ImportError as exc:  # the load client's packages are an extra, not part of the server
        raise click.ClickException(
            f"corkboard loadtest needs the loadtest extra ({exc.name} is missing): "
            "pip install 'corkboard[loadtest]'"
        ) from None

    tokens = [line.strip() for line in tokens_file if line.strip()] if tokens_file else []
    config = LoadConfig(
        url=url,
        users=users,
        boards=boards,
        accounts=accounts,
        tokens=tokens,
        writers=writers,
        rate=rate,
        typing_rate=typing_rate,
        duration=duration,
        max_mutations=max_mutations,
        connect_rate=connect_rate,
        drain=drain,
        progress=not quiet,
    )
    report = run_loadtest(config)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
    else:
        click.echo(render(report))
    if check and not report.ok:
        sys.exit(1)


_ = load_settings
