"""Control messages and the broker's inbound side: what every process does when told that access
changed, and how it re-derives what it may have missed while the broker was away."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from channels import bus, metrics, protocol
from channels.topics import BOARD, USER, Topic
from persistence.events import AccessRevoked, BoardDeleted, Control, SessionsRevoked, UserMessage

if TYPE_CHECKING:
    from channels.hub import Hub

log = logging.getLogger("corkboard.hub")
CLOSE_REVOKED = 4001


def handle(hub: Hub, message: Control) -> None:
    """Apply a control message to this process's sockets, and tell the hub's listeners."""
    for listener in hub.control_listeners:
        try:
            listener.control(message)
        except Exception:
            log.exception("a control listener failed")
    if isinstance(message, SessionsRevoked):
        for credential in message.session_ids:
            for socket in list(hub.by_credential.get(credential, ())):
                socket.close(CLOSE_REVOKED)
    elif isinstance(message, AccessRevoked):
        for topic in list(hub.board_topics.get(message.board_id, ())):
            for socket, member in list(hub.topics.get(topic, {}).items()):
                if socket.identity.user_id == message.user_id:
                    hub.close_member(member)
    elif isinstance(message, BoardDeleted):
        for topic in list(hub.board_topics.get(message.board_id, ())):
            for member in list(hub.topics.get(topic, {}).values()):
                hub.close_member(member)
    elif isinstance(message, UserMessage):
        text = protocol.push(f"{USER}:{message.user_id}", message.event, message.payload)
        hub.broadcast(f"{USER}:{message.user_id}", text)


def dispatch(hub: Hub, channel: str, data: bytes) -> None:
    """One message from the broker: other processes' events, presence, ephemerals, controls."""
    try:
        message = bus.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("undecodable broker message on %s", channel)
        return
    if message.origin == hub.instance_id:
        return
    if isinstance(message, bus.EventsMsg):
        if message.sent:
            metrics.BROKER_LAG.observe(max(0.0, time.time() - message.sent))
        feed = hub.feeds.get(UUID(message.board_id))
        if feed is not None:
            feed.offer(message.events)
    elif isinstance(message, bus.PresenceMsg):
        hub.presence.apply_remote(message)
    elif isinstance(message, bus.EphemeralMsg):
        payload = {"user_id": message.user_id, "kind": message.kind, "data": message.data}
        hub.broadcast(message.topic, protocol.push(message.topic, "ephemeral", payload))
    elif isinstance(message, bus.ControlMsg):
        handle(hub, message.message)


async def on_reconnect(hub: Hub) -> None:
    """The broker was away: every board feed reads what it missed from the event log, and the
    control messages it may have missed are re-derived from the database."""
    for feed in list(hub.feeds.values()):
        feed.catch_up()
    for listener in hub.control_listeners:
        listener.broker_reconnected()
    try:
        await hub.presence.refresh()
        await reverify(hub)
    except Exception:
        log.exception("re-verifying sockets after a broker reconnect failed")


async def reverify(hub: Hub) -> None:
    """Close sockets of revoked sessions (4001) and channels of boards their user left."""
    await reverify_sessions(hub)
    await reverify_access(hub)


async def reverify_sessions(hub: Hub) -> None:
    """Close the sockets of revoked sessions and tokens (4001): one query per few thousand."""
    for credential in await hub.authenticator.revoked(set(hub.by_credential)):
        handle(hub, SessionsRevoked(session_ids=[credential]))


async def reverify_access(hub: Hub) -> None:
    """Close the channels of boards their user may no longer see: one query per (board, user)."""
    pairs = {
        (m.board_id, s.identity.user_id)
        for members in hub.topics.values()
        for s, m in members.items()
        if m.board_id is not None
    }
    for board_id, user_id in pairs:
        if await hub.access.board_for(Topic(f"board:{board_id}", BOARD, board_id), user_id) is None:
            handle(hub, AccessRevoked(board_id=board_id, user_id=user_id))
