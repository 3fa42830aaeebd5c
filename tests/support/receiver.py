"""A real local HTTP receiver for webhook tests: fails the first ``fail_first`` requests with 500
(or always, with ``fail_first=-1``), then answers 204; keeps every request it got."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.hits: list[Hit] = []
        self.lock = threading.RLock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    failing = receiver.fail_first < 0 or len(receiver.hits) < receiver.fail_first
                    status = 500 if failing else 204
                    receiver.hits.append(
                        Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def successes(self) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.answered < 300]

    async def wait_until(self, predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"receiver condition not met; hits: {[(h.answered, h.body[:80]) for h in self.hits]}"
        )
