"""The broker contract: publish bytes on a channel, receive them on every subscribed process.

A process subscribes to a channel once, however many sockets it serves on it; the hub keeps the
reference counts. Delivery is at most once: whatever a broker loses while disconnected is
recovered from the event log when ``on_reconnect`` fires (see ``channels/replay.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import Any

MessageHandler = Callable[[str, bytes], None]
ReconnectHandler = Callable[[], Coroutine[Any, Any, None]]


class Broker(ABC):
    """Abstract broker; ``on_message(channel, data)`` is called on the event loop for each message."""

    def __init__(self, on_message: MessageHandler, on_reconnect: ReconnectHandler | None = None) -> None:
        self.on_message = on_message
        self.on_reconnect = on_reconnect

    @abstractmethod
    async def start(self) -> None:
        """Connect and start receiving."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving and release connections."""

    @abstractmethod
    def publish(self, channel: str, data: bytes) -> None:
        """Queue ``data`` for every subscriber of ``channel``; returns at once, never blocks."""

    @abstractmethod
    async def subscribe(self, channel: str) -> None:
        """Receive messages published on ``channel`` from now on."""

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving messages on ``channel``."""

    @property
    def connected(self) -> bool:
        return True
