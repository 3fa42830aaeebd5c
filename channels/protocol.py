"""Phoenix Channels V2 JSON frames: ``[join_ref, ref, topic, event, payload]``.

Decoding is strict (msgspec, array-like structs) so a malformed frame is one exception, never a
crash. Encoding of server pushes is split so the envelope of an event is encoded once per process
and the frame per topic is a string concatenation, identical for every socket on that topic.
"""

from __future__ import annotations

from typing import Any

import msgspec

from persistence.events import Event

HEARTBEAT_TOPIC = "phoenix"
JOIN = "phx_join"
LEAVE = "phx_leave"
REPLY = "phx_reply"
CLOSE = "phx_close"
ERROR = "phx_error"
HEARTBEAT = "heartbeat"


class Frame(msgspec.Struct, array_like=True, frozen=True):
    """One client frame. ``payload`` stays raw until the event handler knows its shape."""

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


_frame_decoder = msgspec.json.Decoder(Frame)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
EMPTY = msgspec.Raw(b"{}")


def decode_frame(data: str | bytes) -> Frame:
    """Parse one client frame or raise :class:`MalformedFrame` carrying whatever ref could be read."""
    try:
        frame = _frame_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise _salvage(data) from None
    if not isinstance(_any_decoder.decode(frame.payload), dict):
        raise MalformedFrame(frame.ref, frame.join_ref, frame.topic)
    return frame


def _salvage(data: str | bytes) -> MalformedFrame:
    try:
        value = _any_decoder.decode(data)
    except msgspec.DecodeError:
        return MalformedFrame(None, None, None)
    if not isinstance(value, list) or len(value) < 2:
        return MalformedFrame(None, None, None)
    ref = value[1] if isinstance(value[1], str) else None
    join_ref = value[0] if isinstance(value[0], str) else None
    topic = value[2] if len(value) > 2 and isinstance(value[2], str) else None
    return MalformedFrame(ref, join_ref, topic)


def decode_payload(payload: msgspec.Raw, kind: type[Any]) -> Any:
    """Decode a payload into ``kind``; raises ``msgspec.ValidationError`` / ``DecodeError``."""
    return msgspec.json.decode(payload, type=kind)


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
