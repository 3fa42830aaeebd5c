"""The in-process broker of the embedded default: one process, no network."""

from __future__ import annotations

import asyncio

from channels.broker.base import Broker, MessageHandler, ReconnectHandler


class MemoryBroker(Broker):
    """Delivers on the next loop iteration, like a network broker would, never inside ``publish``."""

    def __init__(self, on_message: MessageHandler, on_reconnect: ReconnectHandler | None = None) -> None:
        super().__init__(on_message, on_reconnect)
        self.channels: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self.channels.clear()

    def publish(self, channel: str, data: bytes) -> None:
        if channel not in self.channels:
            return
        loop = self._loop or asyncio.get_running_loop()
        loop.call_soon(self._deliver, channel, data)

    def _deliver(self, channel: str, data: bytes) -> None:
        if channel in self.channels:
            self.on_message(channel, data)

    async def subscribe(self, channel: str) -> None:
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
