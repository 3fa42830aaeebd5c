"""``phx_join``: authorize, register, replay, go live — without a gap or a duplicate.

The member is registered in the topic BEFORE the log is read, in "replaying" state: live events
for it are buffered. The log read, the reply, the replayed events, then the buffered events newer
than the last one sent are written with no ``await`` in between, so nothing can interleave. The
member then keeps the last seq sent (``Member.after``): the fan-out gives it only newer events.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from channels import metrics, protocol
from channels.control import CLOSE_REVOKED
from channels.routing import concerns
from channels.topics import BOARD, CARD, USER, Grant, Unavailable, parse_topic
from persistence import db

log = logging.getLogger("corkboard.joins")

if TYPE_CHECKING:
    from channels.hub import Hub
    from channels.socket import Socket


async def join(hub: Hub, socket: Socket, frame: protocol.Frame) -> None:
    """Handle one ``phx_join`` frame (see the module docstring)."""
    from channels.hub import Member

    def refuse(reason: str) -> None:
        metrics.SOCKET_JOINS.labels(kind, "error").inc()
        socket.send(protocol.error_reply(frame.join_ref, frame.ref, frame.topic, reason))

    topic = parse_topic(frame.topic)
    kind = topic.kind if topic is not None else "invalid"
    if socket.identity.expired(time.time()):
        refuse("unauthorized")  # the session or token ended; the maintenance tick may not have run yet
        socket.close(CLOSE_REVOKED)
        return
    try:
        payload: protocol.JoinPayload | None = protocol.decode_payload(frame.payload, protocol.JoinPayload)
    except protocol.BadPayload:
        payload = None
    if topic is None or payload is None:
        refuse("bad_request")
        return
    if topic.name in socket.joins:
        hub.leave(socket, topic.name)  # a rejoin on the same socket replaces the old join
    elif len(socket.joins) >= hub.settings.max_topics_per_socket:
        refuse("too_many_topics")
        return

    if topic.kind == USER:
        if topic.id != socket.identity.user_id:
            refuse("unauthorized")
            return
        member = Member(socket, topic.name, frame.join_ref, None)
        member.buffer = None
        _register(hub, socket, member)
        metrics.SOCKET_JOINS.labels(kind, "ok").inc()
        socket.send(protocol.reply(frame.join_ref, frame.ref, topic.name, "ok"))
        return

    try:
        grant = await _authorize(hub, topic, socket.identity.user_id)
    except Unavailable:
        refuse("unavailable")
        return
    if grant is None:
        refuse("unauthorized")
        return
    board_id = grant.board_id
    if socket.conn.closed or topic.name in socket.joins:
        return
    if len(socket.joins) >= hub.settings.max_topics_per_socket:
        refuse("too_many_topics")
        return
    member = Member(socket, topic.name, frame.join_ref, board_id)
    # ephemeral (typing, cursors, drags) is about editing: not for observers or read-only tokens
    member.may_edit = grant.role != "observer" and socket.identity.can_write
    _register(hub, socket, member)
    feed = await hub._hold_board(board_id, topic.name)
    wants_presence = topic.kind in (BOARD, CARD)
    try:
        board: bytes | None = None
        if payload.snapshot:
            seq, board = await hub.eventlog.board_snapshot(board_id)
        else:
            seq = await hub.eventlog.current_seq(board_id)
        feed.known(seq)
        resync = False
        missed: list[Any] = []
        if payload.last_seq is not None:
            if payload.last_seq > seq or seq - payload.last_seq > hub.settings.replay_window:
                resync = True
            elif payload.last_seq < seq:
                missed = await hub.eventlog.events_after(
                    board_id, payload.last_seq, hub.settings.replay_window
                )
        if wants_presence:
            await hub.presence.load(topic.name)
    except Exception as exc:
        hub.leave(socket, topic.name)
        if db.unavailable(exc):  # the client retries the join (phoenix.js does, with backoff)
            log.warning("join of %s: the database is unavailable (%s)", topic.name, type(exc).__name__)
            refuse("unavailable")
        else:
            log.exception("join of %s failed", topic.name)
            refuse("unauthorized")
        return
    if socket.joins.get(topic.name) is not member or socket.conn.closed:
        return  # left, replaced or closed while we read

    # ---- no await from here on: reply, replay, buffered live events, then live
    response: dict[str, Any] = {"seq": seq, "resync": resync}
    if board is not None:
        response["board"] = msgspec.Raw(board)
    metrics.SOCKET_JOINS.labels(kind, "ok").inc()
    # One burst, one transport write on the fast path (not one write, and one send syscall, per
    # replayed event); written before presence is tracked, which may write to this socket too.
    frames = [protocol.reply(frame.join_ref, frame.ref, topic.name, "ok", response)]
    sent_up_to = seq if payload.last_seq is None or resync else payload.last_seq
    for event in missed:
        if event.seq > sent_up_to:
            sent_up_to = event.seq
            if concerns(event, topic.name):
                frames.append(protocol.event_frame(topic.name, event.type, protocol.encode_event(event)))
    sent_up_to = max(sent_up_to, seq)
    buffered = sorted(member.buffer or (), key=lambda item: item[0])
    member.buffer = None
    for event_seq, text in buffered:
        if event_seq > sent_up_to:
            frames.append(text)
            sent_up_to = event_seq
    member.after = max(member.after, sent_up_to)  # the fan-out's sweeps skip what this burst holds
    socket.send_many(frames)
    if wants_presence:
        user_id = str(socket.identity.user_id)
        if hub.presence.entries_of(topic.name, user_id) < hub.settings.presence_metas_per_user:
            member.presence_ref = hub.presence.track(topic.name, user_id, {})
        socket.send(protocol.push(topic.name, "presence_state", hub.presence.state_payload(topic.name)))


def _register(hub: Hub, socket: Socket, member: Any) -> None:
    socket.joins[member.topic] = member
    hub.topics.setdefault(member.topic, {})[socket] = member


async def _authorize(hub: Hub, topic: Any, user_id: UUID) -> Grant | None:
    """The topic's board and the user's role there if ``user_id`` may join it, else None;
    :class:`Unavailable` when the database cannot tell."""
    try:
        return await hub.access.board_for(topic, user_id)
    except Exception as exc:
        if db.unavailable(exc):
            raise Unavailable from exc
        return None
