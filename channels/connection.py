"""One WebSocket's outbound side behind a narrow, synchronous ``send_text``.

The fan-out loop calls ``send_text`` for every socket of a topic without awaiting anything.

With ``WS_IMPL=fastpath`` (``raw`` is uvicorn's protocol, channels/fastpath.py) every frame is one
``transport.write`` of a pre-built frame and a close is :meth:`FastPathProtocol.close_with`: no
coroutine, no task, no ASGI ``send`` once the socket is accepted. A reader whose transport buffer
passes the outbound bound is closed with 1013.

With the other implementations the ASGI ``send`` coroutine is stepped by hand: under uvicorn a
``websocket.send`` on a writable transport finishes in that one step (a ``transport.write``), so
the common case costs no task and no queue. Only when ``send`` has to wait (the peer's transport
is paused because it does not read) does the rest of that coroutine move to a task, and frames
that come meanwhile wait in a small per-socket backlog. When the backlog passes the outbound bound
the socket is closed with 1013.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any

from channels import fastpath, metrics

Send = Callable[[dict[str, Any]], Awaitable[None]]

CLOSE_SLOW = 1013
CLOSE_TIMEOUT = 10.0


@types.coroutine
def resume(coro: Coroutine[Any, Any, None], pending: Any) -> Generator[Any, Any, None]:
    """Finish a coroutine that was stepped by hand and yielded ``pending`` to the (absent) task."""
    try:
        yield pending
    except BaseException as exc:
        coro.throw(exc)  # let it see the cancellation, then end
        raise
    yield from coro.__await__()


_LITESTAR_WRAPPER = "ExceptionHandlerMiddleware.__call__.<locals>.capture_response_started"


def server_send(send: Send) -> Send:
    """The server's own ``send`` under Litestar's exception middleware wrapper, once accepted.

    That wrapper only notes in the scope that a response started (for ``websocket.accept``), then
    awaits the inner ``send``: one more coroutine per frame and per socket on the fan-out path, and
    it hides the server's protocol object that :meth:`Connection._abort` needs. Anything else is
    returned as is, so a change in Litestar costs speed, not correctness.
    """
    if getattr(send, "__qualname__", "") != _LITESTAR_WRAPPER:
        return send
    code = getattr(send, "__code__", None)
    cells = getattr(send, "__closure__", None) or ()
    if code is None or "send" not in code.co_freevars:
        return send
    inner = cells[code.co_freevars.index("send")].cell_contents
    return inner if callable(inner) else send


class Connection:
    """The write side of one socket. ``send_text`` never blocks; ``close`` is idempotent."""

    __slots__ = ("_backlog", "_backlog_bytes", "_send", "_writer", "close_code", "closed", "limit", "raw")

    def __init__(self, send: Send, limit: int, raw: Any = None) -> None:
        # With ``raw`` (uvicorn's protocol when WS_IMPL=fastpath) ASGI ``send`` is never used; not
        # keeping it drops what it holds (Litestar's send wrappers may hold the ASGI scope).
        self._send: Send | None = send if raw is None else None
        self.raw = raw
        self.limit = limit
        self._backlog: deque[dict[str, Any]] | None = None  # made when a send first has to wait
        self._backlog_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self.closed = False
        self.close_code: int | None = None

    def send_text(self, text: str) -> None:
        """Write one text frame now if the transport takes it, else queue it (bounded)."""
        if self.closed:
            return
        if self.raw is not None:
            # One pre-framed write to the transport, no ASGI send (bench/RESULTS.md: about half the
            # server CPU per delivery). FALLBACK: a close frame was sent or the transport is
            # closing, so no data frame may follow; the frame is dropped, as ASGI send would.
            if fastpath.write_text(self.raw, text, self.limit) == fastpath.OVER:
                self._too_slow()
            return
        message = {"type": "websocket.send", "text": text}
        if self._writer is not None:
            self._queue(message)
            self._backlog_bytes += len(text)
            if self._backlog_bytes > self.limit:
                self._too_slow()
            return
        self._step(message)

    def send_texts(self, texts: Sequence[str], framed: bytes | None = None) -> None:
        """:meth:`send_text` for each, in order; with the fast path one transport write for all
        (``framed``: the same frames already built, as the fan-out has them for every socket)."""
        if self.closed or not texts:
            return
        if self.raw is not None:
            if framed is None:
                state = fastpath.write_texts(self.raw, texts, self.limit)
            else:
                state = fastpath.write_framed(self.raw, framed, self.limit)
            if state == fastpath.OVER:
                self._too_slow()
            return
        for text in texts:
            self.send_text(text)

    def _step(self, message: dict[str, Any]) -> None:
        assert self._send is not None  # only without the fast path
        coro = self._send(message)
        try:
            pending = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return
        except Exception:
            self._gone()
            return
        self._writer = asyncio.ensure_future(self._finish(coro, pending))  # type: ignore[arg-type]

    async def _finish(self, coro: Coroutine[Any, Any, None], pending: Any) -> None:
        try:
            await resume(coro, pending)
            while self._backlog:
                message = self._backlog.popleft()
                if message["type"] == "websocket.send":
                    self._backlog_bytes -= len(message["text"])
                assert self._send is not None
                await self._send(message)
        except Exception:
            self._gone()
        finally:
            self._writer = None
            self._backlog = None  # drained (or dropped): an idle socket keeps no deque

    def close(self, code: int) -> None:
        """Send a close frame after what is already queued (or instead of it for a slow reader)."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        if self.raw is not None:
            self.raw.close_with(code)
            return
        if code == CLOSE_SLOW:
            self._backlog = None
            self._backlog_bytes = 0
        message = {"type": "websocket.close", "code": code}
        if self._writer is not None:
            self._queue(message)
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort)
        else:
            self._step(message)

    def _abort(self) -> None:
        """The peer never read its close frame: drop the transport (uvicorn) so memory is freed."""
        if self._writer is None:
            return
        protocol = getattr(self._send, "__self__", None)
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.abort()
        self._writer.cancel()

    def _too_slow(self) -> None:
        """The reader does not keep up (its outbound bytes passed the bound): close with 1013."""
        metrics.SLOW_CONSUMERS.inc()
        self.close(CLOSE_SLOW)

    def _queue(self, message: dict[str, Any]) -> None:
        if self._backlog is None:
            self._backlog = deque()
        self._backlog.append(message)

    def _gone(self) -> None:
        self.closed = True
        self._backlog = None
        self._backlog_bytes = 0

    @property
    def backlog_bytes(self) -> int:
        return self._backlog_bytes
