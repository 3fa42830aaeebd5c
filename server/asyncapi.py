"""The socket's contract: an AsyncAPI 3 document served at ``/schema/asyncapi.json``.

Phoenix Channels V2 over one WebSocket (``/socket/websocket``): each AsyncAPI channel is a Phoenix
topic (``board:{board_id}`` …), each message a frame ``[join_ref, ref, topic, event, payload]``.
The payload schemas come from the structs the server encodes (msgspec), so they cannot drift from
the wire; ``BOARD_EVENTS`` and ``USER_EVENTS`` name every event type the server emits.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Response, get

from persistence.boards.shapes import (
    BoardDetail,
    BoardOut,
    BoardSummary,
    CardMoved,
    CardOut,
    ChecklistItemOut,
    CommentOut,
    Deleted,
    LabelOut,
    ListOut,
    MemberOut,
)
from persistence.notifications import NotificationOut

ASYNCAPI_PATH = "/schema/asyncapi.json"


class NotificationsRead(msgspec.Struct):
    ids: list[UUID]
    read_at: str
    unread_count: int
    all: bool = False


class MemberRemovedPush(msgspec.Struct):
    board_id: UUID


# Every board event type (SPEC §3) and the struct its envelope's ``data`` holds.
BOARD_EVENTS: dict[str, type] = {
    "board.updated": BoardOut,
    "board.deleted": Deleted,
    "member.added": MemberOut,
    "member.updated": MemberOut,
    "member.removed": Deleted,
    "label.created": LabelOut,
    "label.updated": LabelOut,
    "label.deleted": Deleted,
    "list.created": ListOut,
    "list.updated": ListOut,
    "list.moved": ListOut,
    "list.archived": ListOut,
    "list.deleted": Deleted,
    "card.created": CardOut,
    "card.updated": CardOut,
    "card.moved": CardMoved,
    "card.archived": CardOut,
    "card.deleted": Deleted,
    "comment.created": CommentOut,
    "comment.updated": CommentOut,
    "comment.deleted": Deleted,
    "checklist.created": ChecklistItemOut,
    "checklist.updated": ChecklistItemOut,
    "checklist.deleted": Deleted,
}

# Pushes on ``user:{user_id}`` and their payloads.
USER_EVENTS: dict[str, type] = {
    "notification.created": NotificationOut,
    "notification.read": NotificationsRead,
    "member.added": BoardSummary,
    "member.removed": MemberRemovedPush,
}

# Which board events reach each topic (docs/realtime.md "Topics").
TOPIC_FAMILIES = {
    "board": ("board", "member", "label", "list", "card", "comment", "checklist"),
    "list": ("list", "card"),
    "card": ("card", "comment", "checklist"),
}

CLOSE_CODES = {
    1001: "No frame (not even a heartbeat) for HEARTBEAT_TIMEOUT seconds.",
    1008: "The socket keeps sending malformed frames (5 in a row or 50 in total).",
    1009: "An inbound frame over 64 KiB.",
    1011: "An unexpected server error on that socket (logged).",
    1012: "Server shutdown or restart: reconnect.",
    1013: "The socket did not keep up (outbound backlog over SOCKET_OUTBOUND_LIMIT): rejoin with last_seq.",
    4001: "Its session (or personal access token) was revoked or has expired.",
}

_REF = "#/components/schemas/{name}"
_NULLABLE_STR = {"type": ["string", "null"]}


def _msg_name(event: str) -> str:
    return "".join(part.title() for part in event.replace("_", ".").split("."))


def _frame(event: str, payload: dict[str, Any], *, refs: bool = False) -> dict[str, Any]:
    """A Phoenix V2 frame: ``[join_ref, ref, topic, event, payload]``."""
    return {
        "type": "array",
        "minItems": 5,
        "maxItems": 5,
        "items": [
            {"description": "join_ref", **_NULLABLE_STR},
            {
                "description": "ref" + (" (the request's, on a reply)" if refs else " (null on a push)"),
                **_NULLABLE_STR,
            },
            {"type": "string", "description": "topic"},
            {"const": event},
            payload,
        ],
    }


def build() -> dict[str, Any]:
    structs = sorted(
        {*BOARD_EVENTS.values(), *USER_EVENTS.values(), BoardDetail},
        key=lambda t: t.__name__,
    )
    _, schemas = msgspec.json.schema_components(structs, ref_template=_REF)
    schemas["Event"] = {
        "type": "object",
        "description": "The board event envelope (SPEC §3); `data` is the resource after the change.",
        "required": ["seq", "type", "board_id", "actor_id", "at", "data"],
        "properties": {
            "seq": {"type": "integer", "minimum": 1, "description": "Per board, gapless."},
            "type": {"type": "string", "enum": sorted(BOARD_EVENTS)},
            "board_id": {"type": "string", "format": "uuid"},
            "actor_id": {"type": ["string", "null"], "format": "uuid"},
            "at": {"type": "string", "format": "date-time"},
            "data": {"type": "object"},
        },
    }
    schemas["JoinPayload"] = {
        "type": "object",
        "properties": {
            "last_seq": {"type": "integer", "minimum": 0, "description": "Replay every event after it."},
            "snapshot": {"type": "boolean", "description": "Add `board` (GET /boards/{id} at `seq`)."},
        },
    }
    schemas["JoinOk"] = {
        "type": "object",
        "required": ["seq", "resync"],
        "properties": {
            "seq": {"type": "integer"},
            "resync": {"type": "boolean", "description": "Too far behind: reload the board, go on from seq."},
            "board": {"$ref": _REF.format(name="BoardDetail")},
        },
    }
    schemas["Reply"] = {
        "type": "object",
        "required": ["status", "response"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "error"]},
            "response": {
                "type": "object",
                "description": "ok: the join's JoinOk (or {}); error: {reason}, reason one of "
                "unauthorized, too_many_topics, bad_request, unavailable, too_large, rate_limited, "
                "presence_limit, unmatched topic, unknown event.",
            },
        },
    }
    schemas["Ephemeral"] = {
        "type": "object",
        "required": ["kind", "data"],
        "properties": {
            "kind": {"type": "string"},
            "data": {},
            "user_id": {"type": "string", "format": "uuid"},
        },
    }
    schemas["PresenceState"] = {"type": "object", "additionalProperties": {"type": "object"}}
    schemas["PresenceDiff"] = {
        "type": "object",
        "properties": {"joins": {"type": "object"}, "leaves": {"type": "object"}},
    }

    messages: dict[str, Any] = {}

    def message(name: str, event: str, payload: dict[str, Any], summary: str, *, refs: bool = False) -> None:
        messages[name] = {
            "name": event,
            "title": event,
            "summary": summary,
            "contentType": "application/json",
            "payload": _frame(event, payload, refs=refs),
        }

    for event, struct in BOARD_EVENTS.items():
        envelope = {
            "allOf": [
                {"$ref": _REF.format(name="Event")},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event},
                        "data": {"$ref": _REF.format(name=struct.__name__)},
                    },
                },
            ]
        }
        message(_msg_name(event), event, envelope, f"Board event {event}: data is a {struct.__name__}.")
    for event, struct in USER_EVENTS.items():
        message(_msg_name(event), event, {"$ref": _REF.format(name=struct.__name__)}, f"Push {event}.")
    message("PhxJoin", "phx_join", {"$ref": _REF.format(name="JoinPayload")}, "Join a topic.", refs=True)
    message("PhxLeave", "phx_leave", {"type": "object"}, "Leave a topic.", refs=True)
    message("PhxReply", "phx_reply", {"$ref": _REF.format(name="Reply")}, "The answer to a frame.", refs=True)
    message(
        "PhxClose", "phx_close", {"type": "object"}, "The server ended this join (access lost).", refs=True
    )
    message("Heartbeat", "heartbeat", {"type": "object"}, "On topic `phoenix`; answered ok {}.", refs=True)
    message("Presence", "presence", {"type": "object"}, "Replace this socket's presence meta.", refs=True)
    message("EphemeralIn", "ephemeral", {"$ref": _REF.format(name="Ephemeral")}, "Cursors, typing: relayed.")
    message("PresenceStateMsg", "presence_state", {"$ref": _REF.format(name="PresenceState")}, "Who is here.")
    message(
        "PresenceDiffMsg", "presence_diff", {"$ref": _REF.format(name="PresenceDiff")}, "Who came, who left."
    )

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/messages/{name}"}

    control = ["PhxJoin", "PhxLeave", "PhxReply", "PhxClose", "EphemeralIn"]
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic, families in TOPIC_FAMILIES.items():
        events = [_msg_name(e) for e in BOARD_EVENTS if e.split(".")[0] in families]
        extra = ["Presence", "PresenceStateMsg", "PresenceDiffMsg"] if topic != "list" else []
        channels[topic] = {
            "address": f"{topic}:{{{topic}_id}}",
            "title": f"{topic}:{{id}}",
            "description": "Members of the owning board may join. Join payload JoinPayload, reply JoinOk.",
            "parameters": {f"{topic}_id": {"description": f"The {topic}'s id (UUID)."}},
            "messages": {name: ref(name) for name in [*events, *control, *extra]},
        }
        chan = {"$ref": f"#/channels/{topic}"}
        operations[f"join{topic.title()}"] = {
            "action": "send",
            "channel": chan,
            "summary": f"Join {topic}:{{id}} with {{last_seq?, snapshot?}}; events after last_seq follow.",
            "messages": [{"$ref": f"#/channels/{topic}/messages/PhxJoin"}],
            "reply": {"channel": chan, "messages": [{"$ref": f"#/channels/{topic}/messages/PhxReply"}]},
        }
        operations[f"receive{topic.title()}Events"] = {
            "action": "receive",
            "channel": chan,
            "summary": f"The board events routed to {topic}:{{id}}, in seq order.",
            "messages": [{"$ref": f"#/channels/{topic}/messages/{name}"} for name in events],
        }
    user_msgs = [_msg_name(e) for e in USER_EVENTS]
    channels["user"] = {
        "address": "user:{user_id}",
        "title": "user:{id}",
        "description": "The user only. Notifications and membership changes.",
        "parameters": {"user_id": {"description": "The user's id (UUID)."}},
        "messages": {name: ref(name) for name in [*user_msgs, "PhxJoin", "PhxLeave", "PhxReply"]},
    }
    operations["joinUser"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/user"},
        "messages": [{"$ref": "#/channels/user/messages/PhxJoin"}],
        "reply": {
            "channel": {"$ref": "#/channels/user"},
            "messages": [{"$ref": "#/channels/user/messages/PhxReply"}],
        },
    }
    operations["receiveUserPushes"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/user"},
        "messages": [{"$ref": f"#/channels/user/messages/{name}"} for name in user_msgs],
    }
    channels["phoenix"] = {
        "address": "phoenix",
        "description": "The socket's own topic: heartbeats.",
        "messages": {"Heartbeat": ref("Heartbeat"), "PhxReply": ref("PhxReply")},
    }
    operations["heartbeat"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/phoenix"},
        "messages": [{"$ref": "#/channels/phoenix/messages/Heartbeat"}],
        "reply": {
            "channel": {"$ref": "#/channels/phoenix"},
            "messages": [{"$ref": "#/channels/phoenix/messages/PhxReply"}],
        },
    }
    close = "\n".join(f"- {code}: {why}" for code, why in CLOSE_CODES.items())
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Corkboard socket",
            "version": "1.0.0",
            "description": (
                "Phoenix Channels V2 (phoenix.js >= 1.8) over one WebSocket. Frames are JSON arrays "
                "`[join_ref, ref, topic, event, payload]`; see docs/realtime.md.\n\nClose codes:\n" + close
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "corkboard": {
                "host": "localhost:8000",
                "protocol": "ws",
                "pathname": "/socket/websocket",
                "description": "The token travels as the subprotocol `base64url.bearer.phx.<base64>` "
                "(phoenix.js authToken), or as `?token=`; `vsn=2.0.0`.",
                "security": [{"$ref": "#/components/securitySchemes/bearer"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "bearer": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "An access token or a personal access token.",
                }
            },
            "x-close-codes": {str(code): why for code, why in CLOSE_CODES.items()},
        },
    }


_DOCUMENT: bytes | None = None


@get(ASYNCAPI_PATH, include_in_schema=False, sync_to_thread=False, name="asyncapi")
def asyncapi_document() -> Response[bytes]:
    global _DOCUMENT
    if _DOCUMENT is None:
        _DOCUMENT = msgspec.json.encode(build())
    return Response(_DOCUMENT, media_type="application/json")
