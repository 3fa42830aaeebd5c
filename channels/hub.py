"""The real-time layer as the app sees it: a sink for committed events, a lifecycle, and the
socket route. (Foundation version: records events; the socket layer plugs in here.)"""

from __future__ import annotations

from typing import Any

from litestar.types import ControllerRouterHandler

from channels.events import EventSink, RecordingSink


class Hub:
    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def route_handlers(self) -> list[ControllerRouterHandler]:
        return []

    def plugins(self) -> list[Any]:
        return []


def create_hub(settings: Any, redis: Any, db_config: Any) -> Hub:
    return Hub(RecordingSink())
