"""Phoenix Channels V2 JSON frames: ``[join_ref, ref, topic, event, payload]``.

Decoding is strict (msgspec, array-like structs) so a malformed frame is one exception, never a
crash. Encoding of server pushes is split so the envelope of an event is encoded once per process
and the frame per topic is a string concatenation, identical for every socket on that topic.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from persistence.events import Event

T = TypeVar("T")

HEARTBEAT_TOPIC = "phoenix"
JOIN = "phx_join"
LEAVE = "phx_leave"
REPLY = "phx_reply"
CLOSE = "phx_close"
ERROR = "phx_error"
HEARTBEAT = "heartbeat"


class Frame(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """One client frame: exactly five elements. ``payload`` stays raw until the event handler knows
    its shape."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: msgspec.Raw


class MalformedFrame(ValueError):
    """The frame is not a 5-element array of the right types; ``ref`` is set when one was readable."""

    def __init__(self, ref: str | None, join_ref: str | None, topic: str | None) -> None:
        super().__init__("malformed frame")
        self.ref = ref
        self.join_ref = join_ref
        self.topic = topic


class JoinPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """``phx_join`` payload on a board, list or card topic."""

    last_seq: int | None = None
    snapshot: bool = False


class EphemeralPayload(msgspec.Struct, frozen=True):
    kind: str
    data: msgspec.Raw = msgspec.Raw(b"null")


# What undecodable client input raises: msgspec's errors, its nesting limit (RecursionError), and
# Python's limit on the digits of an integer (ValueError).
_BAD_INPUT = (msgspec.MsgspecError, RecursionError, ValueError)

_frame_decoder = msgspec.json.Decoder(Frame)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
EMPTY = msgspec.Raw(b"{}")


def decode_frame(data: str | bytes) -> Frame:
    """Parse one client frame or raise :class:`MalformedFrame` carrying whatever ref could be read."""
    try:
        frame = _frame_decoder.decode(data)
    except _BAD_INPUT:
        raise _salvage(data) from None
    try:
        is_object = isinstance(_any_decoder.decode(frame.payload), dict)
    except _BAD_INPUT:
        is_object = False
    if not is_object:
        raise MalformedFrame(frame.ref, frame.join_ref, frame.topic)
    return frame


# The first three elements of a frame: join_ref and ref (string or null) and the topic, read from
# the text when the whole frame cannot be decoded (nested or numbered past limits, or cut short).
_STR = r'"(?:[^"\\\x00-\x1f]|\\.)*"'
_HEAD = re.compile(rf"\s*\[\s*(null|{_STR})\s*,\s*(null|{_STR})\s*(?:,\s*({_STR}))?")


def _salvage(data: str | bytes) -> MalformedFrame:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    head = _HEAD.match(text)
    if head is None:
        return MalformedFrame(None, None, None)
    try:
        join_ref, ref, topic = (_any_decoder.decode(part) if part else None for part in head.groups())
    except _BAD_INPUT:
        return MalformedFrame(None, None, None)
    return MalformedFrame(ref, join_ref, topic)


class BadPayload(ValueError):
    """A frame's payload is not of the shape its event takes (or is nested or numbered past limits)."""


def decode_payload(payload: msgspec.Raw, kind: type[T]) -> T:
    """Decode a payload into ``kind``, or raise :class:`BadPayload`."""
    try:
        return msgspec.json.decode(payload, type=kind)
    except _BAD_INPUT:
        raise BadPayload from None


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def reply(join_ref: str | None, ref: str | None, topic: str, status: str, response: Any = EMPTY) -> str:
    """A ``phx_reply`` frame; ``response`` is any msgspec-encodable value or pre-encoded ``Raw``."""
    body = _encoder.encode([join_ref, ref, topic, REPLY, {"status": status, "response": response}])
    return body.decode()


def error_reply(join_ref: str | None, ref: str | None, topic: str, reason: str) -> str:
    return reply(join_ref, ref, topic, "error", {"reason": reason})


def push(topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
    """A server push: ``join_ref`` and ``ref`` null unless it belongs to one join (``phx_close``)."""
    return _encoder.encode([join_ref, join_ref if event == CLOSE else None, topic, event, payload]).decode()


def encode_event(event: Event) -> bytes:
    """The envelope of an event, encoded once per process for every topic it reaches."""
    return _encoder.encode(event)


def event_frame(topic: str, event_type: str, envelope: bytes) -> str:
    """``[null,null,topic,type,envelope]`` by concatenation: topic and type are safe JSON strings."""
    return '[null,null,"' + topic + '","' + event_type + '",' + envelope.decode() + "]"
