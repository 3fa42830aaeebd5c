"""What processes tell each other through the broker (msgspec, tagged, one channel per board)."""

from __future__ import annotations

from typing import Any

import msgspec

from persistence.events import Control, Event


class PresenceEntry(msgspec.Struct, frozen=True):
    user_id: str
    ref: str
    meta: dict[str, Any]


class EventsMsg(msgspec.Struct, frozen=True, tag="events"):
    origin: str
    board_id: str
    events: list[Event]
    sent: float = 0.0


class PresenceMsg(msgspec.Struct, frozen=True, tag="presence"):
    origin: str
    topic: str
    joins: list[PresenceEntry] = []
    leaves: list[PresenceEntry] = []


class EphemeralMsg(msgspec.Struct, frozen=True, tag="ephemeral"):
    origin: str
    topic: str
    user_id: str
    kind: str
    data: msgspec.Raw


class ControlMsg(msgspec.Struct, frozen=True, tag="control"):
    origin: str
    message: Control


BusMessage = EventsMsg | PresenceMsg | EphemeralMsg | ControlMsg

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BusMessage)


def encode(message: BusMessage) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> BusMessage:
    message: BusMessage = _decoder.decode(data)
    return message
