"""Every HTTP route handler of the app, by context."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from server import health
from server.auth.controller import AuthController
from server.notifications.controller import NotificationController, UnsubscribeController


def route_handlers() -> list[ControllerRouterHandler]:
    return [
        health.health,
        health.ready,
        health.metrics,
        AuthController,
        NotificationController,  # notifications helper
        UnsubscribeController,
    ]
