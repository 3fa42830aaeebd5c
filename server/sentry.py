"""Optional error reporting to Sentry, on when ``SENTRY_DSN`` is set (``pip install 'corkboard[sentry]'``)."""

from __future__ import annotations

from server.settings import Settings, SettingsError


def init_sentry(settings: Settings) -> bool:
    """Start the Sentry client when a DSN is configured; True when it is on.

    Only unhandled errors are reported (see ``server.errors``), without request bodies or
    personal data; no performance tracing.
    """
    if not settings.sentry_dsn:
        return False
    try:
        import sentry_sdk
    except ImportError:
        raise SettingsError(
            "SENTRY_DSN is set but sentry-sdk is not installed: pip install 'corkboard[sentry]'"
        ) from None
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        send_default_pii=False,
        traces_sample_rate=0.0,
        auto_enabling_integrations=False,
        default_integrations=False,
    )
    return True


def report_exception(exc: BaseException) -> None:
    """Send ``exc`` to Sentry when it is on; a no-op otherwise."""
    try:
        import sentry_sdk
    except ImportError:
        return
    if sentry_sdk.is_initialized():
        sentry_sdk.capture_exception(exc)
