"""Every HTTP route handler of the app, by context."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from server import health
from server.asyncapi import asyncapi_document
from server.auth.controller import AuthController
from server.boards.content_controllers import ContentController
from server.boards.controllers import BoardController, LabelController
from server.notifications.controller import NotificationController, UnsubscribeController
from server.notifications.watch import CardWatchController
from server.users.controller import AuditController, UsersController
from server.webhooks.controller import WebhookController


def route_handlers() -> list[ControllerRouterHandler]:
    return [
        health.health,
        health.ready,
        health.metrics,
        asyncapi_document,
        AuthController,
        UsersController,
        AuditController,
        BoardController,
        LabelController,
        ContentController,
        NotificationController,
        UnsubscribeController,
        WebhookController,
        CardWatchController,
    ]
