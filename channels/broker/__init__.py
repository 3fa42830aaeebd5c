"""Brokers carry messages between the processes of a deployment: in-process or Redis pub/sub."""

from __future__ import annotations

from channels.broker.base import Broker, MessageHandler, ReconnectHandler
from channels.broker.memory import MemoryBroker

__all__ = ["Broker", "MemoryBroker", "MessageHandler", "ReconnectHandler"]
