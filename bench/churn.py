"""Churn: proof that every client ends up with exactly the board the database holds.

Two ``corkboard serve`` instances on one PostgreSQL database and one Redis; several boards; socket
clients spread over both instances, each loading its board (a ``snapshot`` join, or
``GET /boards/{id}`` and a join with ``last_seq``) and folding every event into its own copy
(:mod:`bench.fold`); concurrent writers over REST making every kind of change with ``version``,
retrying 409s with the ``current`` version. Meanwhile sockets are dropped abruptly (the TCP
connection aborted, no ``phx_leave``) and rejoin with their last applied seq on either instance,
and one instance is killed (SIGKILL) and restarted. At the end, for every board:

- each client saw every seq after its starting point exactly once, in order;
- each client's copy equals ``GET /boards/{id}`` field for field (collections keyed by id), and
  its comments and checklist items equal the cards' own;
- no event names an assignee, label, list or card an earlier event removed (:func:`fold.dangling`),
  checked on every client and on the whole log folded from the empty board;
- the acknowledged changes (2xx answers of writes that make events) are as many as the log's
  events, and the log is gapless.

Before the kill, writes to the doomed instance are drained (no new ones, the running ones
answered), so every change has a known answer and the count can be exact; its sockets die with it.
With ``kill_inflight`` (``--kill-inflight``) it is killed with writes under way: those have no
answer, and each writer's events in the log must then lie between its acknowledged changes and
those plus its unanswered ones (every writer has its own account on a board).

Used by ``python -m bench churn`` (full size) and ``tests/integration/test_churn.py`` (small).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bench.common import log
from bench.fold import BoardCopy, apply, dangling, differences, normalized
from bench.procs import Proc, corkboard_server, free_port

PASSWORD = "churn-Password-123"
ROOT_PREFIX = str(Path(__file__).resolve().parents[1]) + "/"
COLORS = ("green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black", "gray")
HEARTBEAT_EVERY = 20.0


@dataclass
class ChurnConfig:
    changes: int = 2000
    clients: int = 40
    boards: int = 4
    writers: int = 4  # per board
    pool: int = 4  # users added to and removed from every board
    seed: int = 0
    kill: bool = True
    kill_inflight: bool = False  # SIGKILL with writes under way: their outcome is read from the log
    converge_timeout: float = 60.0


# ---------------------------------------------------------------------------------------- servers


class Node:
    """One ``corkboard serve`` instance on a fixed port, so it can be killed and started again."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/socket/websocket?vsn=2.0.0"
        self.proc: Proc | None = None
        self.accepting = False  # REST goes here
        self.inflight = 0
        self.logs: list[Path] = []  # one per start

    def start(self) -> None:
        # a shared machine under load can take a minute to start one
        self.proc, _ = corkboard_server(self.env, port=self.port, cpu=None, ready_timeout=180)
        self.logs.append(self.proc.log)
        self.accepting = True

    def logged_errors(self) -> list[str]:
        """The error lines of its logs: the event, the path, the exception's last line."""
        out = []
        for path in self.logs:
            for line in path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(entry, dict) or entry.get("level") not in ("error", "critical"):
                    continue
                lines = [x.strip() for x in str(entry.get("exception", "")).splitlines()]
                # the exception's own line (its last), and the project frame it came through
                errors = [x for x in lines if x.startswith(("sqlalchemy.", "asyncpg.")) or "Error:" in x]
                frames = [x for x in lines if x.startswith('File "') and "/site-packages/" not in x]
                cause = " ".join(x.split(ROOT_PREFIX)[-1][:200] for x in (errors[-1:] + frames[-2:]) if x)
                where = f"{entry.get('method', '')} {entry.get('path', '')}"
                out.append(f"{self.name}: {entry.get('event')} {where}: {cause}")
        return out

    async def kill(self, *, drain: bool = True) -> None:
        """Stop sending it writes, wait for the ones under way (``drain``), then SIGKILL."""
        self.accepting = False
        while drain and self.inflight:
            await asyncio.sleep(0.005)
        assert self.proc is not None
        assert self.proc.proc is not None
        self.proc.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.proc.wait)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


class Api:
    """JSON over REST to whichever instance takes writes; answers ``(status, body)``."""

    def __init__(self, nodes: list[Node], rng: random.Random) -> None:
        self.nodes = nodes
        self.rng = rng
        # Idle connections are given up before uvicorn closes them (after 5 s): a request sent on
        # one it is closing fails with no answer, and a change must have one.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(keepalive_timeout=2), timeout=aiohttp.ClientTimeout(total=60)
        )

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self, method: str, path: str, token: str, body: Any = None, if_match: int | None = None
    ) -> tuple[int, Any]:
        while True:
            up = [n for n in self.nodes if n.accepting]
            if up:
                break
            await asyncio.sleep(0.01)
        node = self.rng.choice(up)
        headers = {"Authorization": f"Bearer {token}"}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        node.inflight += 1
        try:
            async with self.session.request(
                method, f"{node.url}/api/v1{path}", json=body, headers=headers
            ) as response:
                raw = await response.read()
                return response.status, (json.loads(raw) if raw else None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            return 0, {"error": error, "node": node.name, "killed": not node.accepting}
        finally:
            node.inflight -= 1


# ------------------------------------------------------------------------------------ the tally


@dataclass
class Tally:
    target: int
    acked: Counter[str] = field(default_factory=Counter)  # board id -> 2xx of event-making writes
    by_op: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)  # "op status": lost races (404/409/422)
    retried_409: int = 0
    errors: list[str] = field(default_factory=list)  # 5xx and transport failures: each a failure
    error_count: int = 0
    go: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: writers wait
    # by (board id, actor id): 2xx answers, and writes left with no answer by the killed instance
    acked_by: Counter[tuple[str, str]] = field(default_factory=Counter)
    unknown_by: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def changes(self) -> int:
        return sum(self.acked.values())

    def done(self) -> bool:
        return self.changes >= self.target


# ------------------------------------------------------------------------------------- clients


class Client:
    """A socket client folding one board's events into its own copy, rejoining after drops."""

    def __init__(
        self, n: int, board_id: str, token: str, nodes: list[Node], api: Api, snapshot: bool
    ) -> None:
        self.n = n
        self.board_id = board_id
        self.topic = f"board:{board_id}"
        self.token = token
        self.nodes = nodes
        self.api = api
        self.snapshot = snapshot
        self.rng = random.Random(n)
        self.refs = itertools.count(1)
        self.copy: BoardCopy | None = None
        self.start_seq: int | None = None
        self.seen: list[int] = []  # every event seq received, in order
        self.restarts: list[tuple[int, int]] = []  # after a resync: (the reload's seq, len(seen))
        self.problems: list[str] = []
        self.ws: Any = None
        self.joined = asyncio.Event()
        self.back = asyncio.Event()  # cleared: parked, stays away until set
        self.back.set()
        self.stopping = False
        self.sessions = 0
        self.drops = 0
        self.resyncs = 0
        self.unavailable = 0  # joins answered ``unavailable`` (the database could not be reached)
        self.node_of_session: list[str] = []

    def note(self, problem: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(problem)

    async def run(self) -> None:
        while not self.stopping:
            await self.back.wait()
            node = self.rng.choice(self.nodes)
            try:
                ws = await websockets.connect(
                    f"{node.ws_url}&token={self.token}", open_timeout=5, max_size=None, ping_interval=None
                )
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError):
                await asyncio.sleep(0.05 + self.rng.random() * 0.1)
                continue
            if not self.back.is_set():  # parked while connecting
                await ws.close()
                continue
            self.ws = ws
            self.sessions += 1
            self.node_of_session.append(node.name)
            try:
                await self._session(ws)
            except (ConnectionClosed, OSError):
                pass
            except Exception as exc:  # the client's own failure: said, and it joins again
                self.note(f"client error {type(exc).__name__}: {exc}"[:300])
            finally:
                self.ws = None
            if not self.stopping:
                await asyncio.sleep(self.rng.random() * 0.1)

    async def _session(self, ws: Any) -> None:
        payload: dict[str, Any]
        if self.copy is not None:
            payload = {"last_seq": self.copy.seq}
        elif self.snapshot:
            payload = {"snapshot": True}
        else:
            await self._load()
            assert self.copy is not None
            payload = {"last_seq": self.copy.seq}
        ref = str(next(self.refs))
        await ws.send(json.dumps([ref, ref, self.topic, "phx_join", payload]))
        replied = False
        async for raw in ws:
            frame = msgspec.json.decode(raw)
            _, reply_ref, topic, event, body = frame
            if event == "phx_reply":
                if reply_ref == ref:
                    replied = True
                    await self._joined(body)
                continue
            if topic != self.topic or event in ("presence_state", "presence_diff"):
                continue
            if event in ("phx_close", "phx_error"):
                self.note(f"{event} on {topic}")
                return
            if not replied:
                self.note(f"{event} seq {body.get('seq')} before the join reply")
            self._event(body)

    async def _fetch(self, path: str) -> Any:
        """A GET the client needs; any answer but 200 ends this socket session (it joins again)."""
        status, body = await self.api.call("GET", path, self.token)
        if status != 200:
            if status >= 500 and status != 503:
                self.note(f"GET {path} answered {status}: {str(body)[:200]}")
            raise OSError(f"GET {path} answered {status}")
        return body

    async def _load(self) -> None:
        self.copy = BoardCopy.from_body(await self._fetch(f"/boards/{self.board_id}"))
        if self.start_seq is None:
            self.start_seq = self.copy.seq

    async def _reload(self) -> BoardCopy:
        """The board and its cards' comments and checklist items, read now."""
        fresh = BoardCopy.from_body(await self._fetch(f"/boards/{self.board_id}"))
        for card_id in list(fresh.cards):
            try:
                detail = await self._fetch(f"/cards/{card_id}")
                comments = (await self._fetch(f"/cards/{card_id}/comments?limit=200"))["items"]
            except OSError:
                continue  # deleted since the board was read: its card.deleted event follows
            fresh.checklist.update({x["id"]: x for x in detail["checklist"]})
            fresh.comments.update({x["id"]: x for x in comments})
        return fresh

    async def _joined(self, reply: dict[str, Any]) -> None:
        if reply.get("status") != "ok":
            if reply.get("response", {}).get("reason") == "unavailable":  # no database: rejoin later
                self.unavailable += 1
                await asyncio.sleep(0.5)
            else:
                self.note(f"join refused: {reply}")
            raise OSError("join refused")
        response = reply["response"]
        if "board" in response and self.copy is None:
            self.copy = BoardCopy.from_body(response["board"])
            self.start_seq = self.copy.seq
            if response["board"]["seq"] != response["seq"]:
                self.note(f"snapshot at {response['board']['seq']}, reply seq {response['seq']}")
        if response.get("resync"):
            # Beyond the replay window: reload the board, and its cards' comments and checklist
            # items, and go on from the board's seq. Live events up to that seq, already in the
            # reload, are skipped; comments read a little later than the board are put right by
            # the events after it (each replaces or deletes by id). Should the reload fail, the
            # old copy stays and the next join resyncs again.
            self.resyncs += 1
            self.copy = await self._reload()
            self.restarts.append((self.copy.seq, len(self.seen)))
        self.joined.set()

    def _event(self, envelope: dict[str, Any]) -> None:
        seq = envelope["seq"]
        self.seen.append(seq)
        copy = self.copy
        assert copy is not None
        if self.restarts and seq <= self.restarts[-1][0]:
            return  # in the reload already (see _joined)
        if seq <= copy.seq:
            self.note(f"seq {seq} again (copy at {copy.seq})")
            return
        if seq != copy.seq + 1:
            self.note(f"seq {seq} after {copy.seq}: a gap")
        problems = dangling(copy, envelope)
        if self.restarts and envelope["type"].startswith(("comment.", "checklist.")):
            # After a resync the comments and checklist items were read after the board, so they
            # may be ahead of the events that follow it: their versions are not checked.
            problems = [p for p in problems if " names version " not in p]
        for problem in problems:
            self.note(problem)
        apply(copy, envelope)

    def drop(self) -> bool:
        """Abort the TCP connection: no ``phx_leave``, no close frame."""
        ws = self.ws
        if ws is None:
            return False
        ws.transport.abort()
        self.drops += 1
        return True

    def heartbeat(self) -> None:
        ws = self.ws
        if ws is not None:
            ref = str(next(self.refs))
            task = asyncio.ensure_future(ws.send(json.dumps([None, ref, "phoenix", "heartbeat", {}])))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def close(self) -> None:
        self.stopping = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


# ------------------------------------------------------------------------------------- writers


@dataclass
class BoardRun:
    id: str
    created: dict[str, Any]
    owner: str  # token
    pool: list[str]  # user ids of the users added and removed


class Writer:
    """One REST writer on one board: picks a change from its (possibly stale) view of the board,
    sends it with the ``version`` it knows and, on 409, again with the ``current`` one."""

    OPS = (
        ("list_create", 2),
        ("list_rename", 1),
        ("list_move", 2),
        ("list_archive", 1),
        ("list_delete", 1),
        ("card_create", 6),
        ("card_edit", 3),
        ("card_assign", 3),
        ("card_label", 3),
        ("card_archive", 2),
        ("card_move", 6),
        ("card_delete", 2),
        ("comment_create", 3),
        ("comment_edit", 2),
        ("comment_delete", 1),
        ("checklist_create", 3),
        ("checklist_toggle", 2),
        ("checklist_delete", 1),
        ("label_create", 2),
        ("label_edit", 1),
        ("label_delete", 1),
        ("member_add", 2),
        ("member_role", 1),
        ("member_remove", 2),
        ("board_rename", 1),
    )

    def __init__(
        self, board: BoardRun, token: str, user_id: str, api: Api, tally: Tally, rng: random.Random
    ) -> None:
        self.board = board
        self.token = token
        self.user_id = user_id
        self.api = api
        self.tally = tally
        self.rng = rng
        self.view: dict[str, Any] = {}
        self.comments: dict[str, int] = {}  # my comments: id -> version
        self.deck: list[str] = []

    def _draw(self) -> str:
        if not self.deck:
            self.deck = [op for op, weight in self.OPS for _ in range(weight)]
            self.rng.shuffle(self.deck)
        return self.deck.pop()

    async def run(self) -> None:
        stale = True
        while not self.tally.done():
            await self.tally.go.wait()
            if stale or self.rng.random() < 0.3:
                status, body = await self.api.call("GET", f"/boards/{self.board.id}", self.token)
                if status != 200:
                    if status == 503:
                        self.tally.lost["view 503"] += 1
                    else:
                        self._failed("view", "GET", f"/boards/{self.board.id}", status, body)
                    await asyncio.sleep(0.05 if status != 503 else 0.5)
                    continue
                self.view = body
            stale = not await getattr(self, self._draw())()

    # The outcome of one change: True when acknowledged.

    def _failed(self, op: str, method: str, path: str, status: int, body: Any) -> None:
        self.tally.error_count += 1
        if len(self.tally.errors) < 40:
            self.tally.errors.append(f"{op}: {method} {path} -> {status} {json.dumps(body)[:400]}")

    async def change(
        self, op: str, method: str, path: str, body: dict[str, Any] | None = None, version: int | None = None
    ) -> Any:
        """Send one event-making write; the answer's body when it is acknowledged, else None."""
        for _ in range(4):
            if version is not None and method != "DELETE":
                body = {**(body or {}), "version": version}
            status, answer = await self.api.call(
                method, path, self.token, body, if_match=version if method == "DELETE" else None
            )
            if 200 <= status < 300:
                self.tally.acked[self.board.id] += 1
                self.tally.acked_by[self.board.id, self.user_id] += 1
                self.tally.by_op[op] += 1
                return answer if answer is not None else {}
            if status == 409 and isinstance(answer, dict) and isinstance(answer.get("current"), dict):
                self.tally.retried_409 += 1
                version = answer["current"]["version"]
                continue
            if status == 0 and answer.get("killed"):  # may or may not have been committed
                self.tally.unknown_by[self.board.id, self.user_id] += 1
                self.tally.lost[f"{op} no answer (instance killed)"] += 1
                return None
            if status == 503:  # the database unreachable: documented to change nothing (the count checks it)
                self.tally.lost[f"{op} 503"] += 1
                return None
            if status in (404, 409, 422):  # a lost race: what it named is gone or changed
                self.tally.lost[f"{op} {status}"] += 1
                return None
            self._failed(op, method, path, status, answer)
            return None
        self.tally.lost[f"{op} 409x4"] += 1
        return None

    def _pick(self, name: str, **where: Any) -> dict[str, Any] | None:
        items = [x for x in self.view.get(name, []) if all(x.get(k) == v for k, v in where.items())]
        return self.rng.choice(items) if items else None

    def _some(self, ids: list[str], most: int = 3) -> list[str]:
        return self.rng.sample(ids, self.rng.randint(0, min(most, len(ids))))

    def _word(self) -> str:
        return uuid.uuid4().hex[:8]

    # Lists

    async def list_create(self) -> bool:
        body: dict[str, Any] = {"name": f"list {self._word()}"}
        other = self._pick("lists")
        if other is not None and self.rng.random() < 0.5:
            body[self.rng.choice(("after_id", "before_id"))] = other["id"]
        return await self.change("list_create", "POST", f"/boards/{self.board.id}/lists", body) is not None

    async def list_rename(self) -> bool:
        lst = self._pick("lists")
        if lst is None:
            return await self.list_create()
        path = f"/lists/{lst['id']}"
        return (
            await self.change("list_rename", "PATCH", path, {"name": f"list {self._word()}"}, lst["version"])
            is not None
        )

    async def list_move(self) -> bool:
        lists = self.view.get("lists", [])
        if len(lists) < 2:
            return await self.list_create()
        lst, other = self.rng.sample(lists, 2)
        side = self.rng.choice(("after_id", "before_id"))
        return (
            await self.change(
                "list_move", "PATCH", f"/lists/{lst['id']}", {side: other["id"]}, lst["version"]
            )
            is not None
        )

    async def list_archive(self) -> bool:
        lst = self._pick("lists")
        if lst is None:
            return await self.list_create()
        body = {"archived": not lst["archived"]}
        return (
            await self.change("list_archive", "PATCH", f"/lists/{lst['id']}", body, lst["version"])
            is not None
        )

    async def list_delete(self) -> bool:
        if len(self.view.get("lists", [])) < 4:
            return await self.list_create()
        lst = self._pick("lists")
        assert lst is not None
        return (
            await self.change("list_delete", "DELETE", f"/lists/{lst['id']}", None, lst["version"])
            is not None
        )

    # Cards

    def _member_ids(self) -> list[str]:
        return [m["user_id"] for m in self.view.get("members", [])]

    def _label_ids(self) -> list[str]:
        return [x["id"] for x in self.view.get("labels", [])]

    async def card_create(self) -> bool:
        lst = self._pick("lists")
        if lst is None:
            return await self.list_create()
        body: dict[str, Any] = {"title": f"card {self._word()}"}
        sibling = self._pick("cards", list_id=lst["id"])
        if sibling is not None and self.rng.random() < 0.5:
            body[self.rng.choice(("after_id", "before_id"))] = sibling["id"]
        if self.rng.random() < 0.5:
            body["assignee_ids"] = self._some(self._member_ids())
        if self.rng.random() < 0.5:
            body["label_ids"] = self._some(self._label_ids())
        if self.rng.random() < 0.3:
            body["due_at"] = f"2027-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}T12:00:00Z"
        return await self.change("card_create", "POST", f"/lists/{lst['id']}/cards", body) is not None

    async def _card_patch(self, op: str, make: Any) -> bool:
        card = self._pick("cards")
        if card is None:
            return await self.card_create()
        return await self.change(op, "PATCH", f"/cards/{card['id']}", make(card), card["version"]) is not None

    async def card_edit(self) -> bool:
        def make(card: dict[str, Any]) -> dict[str, Any]:
            choice = self.rng.randrange(3)
            if choice == 0:
                return {"title": f"card {self._word()}"}
            if choice == 1:
                return {"description": f"about {self._word()}"}
            return {"due_at": None if card["due_at"] else "2027-03-04T05:06:07Z"}

        return await self._card_patch("card_edit", make)

    async def card_assign(self) -> bool:
        return await self._card_patch(
            "card_assign", lambda c: {"assignee_ids": self._some(self._member_ids())}
        )

    async def card_label(self) -> bool:
        return await self._card_patch("card_label", lambda c: {"label_ids": self._some(self._label_ids())})

    async def card_archive(self) -> bool:
        return await self._card_patch("card_archive", lambda c: {"archived": not c["archived"]})

    async def card_move(self) -> bool:
        card, lst = self._pick("cards"), self._pick("lists")
        if card is None or lst is None:
            return await self.card_create()
        body: dict[str, Any] = {"list_id": lst["id"]}
        sibling = self._pick("cards", list_id=lst["id"])
        if sibling is not None and sibling["id"] != card["id"] and self.rng.random() < 0.7:
            body[self.rng.choice(("after_id", "before_id"))] = sibling["id"]
        return (
            await self.change("card_move", "POST", f"/cards/{card['id']}/move", body, card["version"])
            is not None
        )

    async def card_delete(self) -> bool:
        if len(self.view.get("cards", [])) < 6:
            return await self.card_create()
        card = self._pick("cards")
        assert card is not None
        return (
            await self.change("card_delete", "DELETE", f"/cards/{card['id']}", None, card["version"])
            is not None
        )

    # Comments and checklist items

    async def comment_create(self) -> bool:
        card = self._pick("cards")
        if card is None:
            return await self.card_create()
        names = [m["username"] for m in self.view.get("members", [])]
        text = f"note {self._word()}" + (
            f" @{self.rng.choice(names)}" if names and self.rng.random() < 0.4 else ""
        )
        out = await self.change("comment_create", "POST", f"/cards/{card['id']}/comments", {"body": text})
        if out is not None:
            self.comments[out["id"]] = out["version"]
        return out is not None

    async def comment_edit(self) -> bool:
        if not self.comments:
            return await self.comment_create()
        comment_id = self.rng.choice(list(self.comments))
        out = await self.change(
            "comment_edit",
            "PATCH",
            f"/comments/{comment_id}",
            {"body": f"edited {self._word()}"},
            self.comments[comment_id],
        )
        if out is None:
            self.comments.pop(comment_id, None)  # gone with its card, most likely
            return False
        self.comments[comment_id] = out["version"]
        return True

    async def comment_delete(self) -> bool:
        if not self.comments:
            return await self.comment_create()
        comment_id = self.rng.choice(list(self.comments))
        version = self.comments.pop(comment_id)
        return (
            await self.change("comment_delete", "DELETE", f"/comments/{comment_id}", None, version)
            is not None
        )

    async def checklist_create(self) -> bool:
        card = self._pick("cards")
        if card is None:
            return await self.card_create()
        body = {"text": f"step {self._word()}", "done": self.rng.random() < 0.3}
        return (
            await self.change("checklist_create", "POST", f"/cards/{card['id']}/checklist", body) is not None
        )

    async def _checklist_item(self) -> dict[str, Any] | None:
        card = self._pick("cards")
        if card is None:
            return None
        status, body = await self.api.call("GET", f"/cards/{card['id']}", self.token)
        if status != 200 or not body["checklist"]:
            return None
        item: dict[str, Any] = self.rng.choice(body["checklist"])
        return item

    async def checklist_toggle(self) -> bool:
        item = await self._checklist_item()
        if item is None:
            return await self.checklist_create()
        body = {"done": not item["done"]} if self.rng.random() < 0.7 else {"text": f"step {self._word()}"}
        path = f"/checklist-items/{item['id']}"
        return await self.change("checklist_toggle", "PATCH", path, body, item["version"]) is not None

    async def checklist_delete(self) -> bool:
        item = await self._checklist_item()
        if item is None:
            return await self.checklist_create()
        path = f"/checklist-items/{item['id']}"
        return await self.change("checklist_delete", "DELETE", path, None, item["version"]) is not None

    # Labels, members, the board

    async def label_create(self) -> bool:
        body = {"color": self.rng.choice(COLORS), "name": f"label {self._word()}"}
        return await self.change("label_create", "POST", f"/boards/{self.board.id}/labels", body) is not None

    async def label_edit(self) -> bool:
        label = self._pick("labels")
        if label is None:
            return await self.label_create()
        body = {"name": f"label {self._word()}", "color": self.rng.choice(COLORS)}
        return (
            await self.change("label_edit", "PATCH", f"/labels/{label['id']}", body, label["version"])
            is not None
        )

    async def label_delete(self) -> bool:
        if len(self.view.get("labels", [])) < 3:
            return await self.label_create()
        label = self._pick("labels")
        assert label is not None
        return (
            await self.change("label_delete", "DELETE", f"/labels/{label['id']}", None, label["version"])
            is not None
        )

    def _pool_members(self) -> list[dict[str, Any]]:
        pool = set(self.board.pool)
        return [m for m in self.view.get("members", []) if m["user_id"] in pool]

    async def member_add(self) -> bool:
        present = {m["user_id"] for m in self.view.get("members", [])}
        absent = [u for u in self.board.pool if u not in present]
        if not absent:
            return await self.member_remove()
        body = {"user_id": self.rng.choice(absent), "role": self.rng.choice(("member", "observer"))}
        return await self.change("member_add", "POST", f"/boards/{self.board.id}/members", body) is not None

    async def member_role(self) -> bool:
        members = self._pool_members()
        if not members:
            return await self.member_add()
        member = self.rng.choice(members)
        role = self.rng.choice([r for r in ("member", "observer", "admin") if r != member["role"]])
        path = f"/boards/{self.board.id}/members/{member['user_id']}"
        return await self.change("member_role", "PATCH", path, {"role": role}, member["version"]) is not None

    async def member_remove(self) -> bool:
        members = self._pool_members()
        if not members:
            return await self.member_add()
        member = self.rng.choice(members)
        path = f"/boards/{self.board.id}/members/{member['user_id']}"
        return await self.change("member_remove", "DELETE", path, None, member["version"]) is not None

    async def board_rename(self) -> bool:
        body = {"name": f"board {self._word()}"}
        version = self.view["version"]
        return (
            await self.change("board_rename", "PATCH", f"/boards/{self.board.id}", body, version) is not None
        )


# ---------------------------------------------------------------------------------- the run


async def _account(api: Api, name: str) -> tuple[str, str, str]:
    """Register and log in ``name``: (token, user id, username)."""
    status, user = await api.call(
        "POST",
        "/auth/register",
        "",
        {"email": f"{name}@churn.invalid", "username": name, "password": PASSWORD},
    )
    if status != 201:
        raise RuntimeError(f"register {name}: {status} {user}")
    status, tokens = await api.call("POST", "/auth/login", "", {"login": name, "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"login {name}: {status} {tokens}")
    return tokens["access_token"], user["id"], name


async def _setup_call(
    api: Api, tally: Tally, board_id: str | None, method: str, path: str, owner: tuple[str, str], body: Any
) -> Any:
    status, answer = await api.call(method, path, owner[0], body)
    if not 200 <= status < 300:
        raise RuntimeError(f"setup {method} {path}: {status} {answer}")
    board_id = board_id or answer["id"]
    tally.acked[board_id] += 1
    tally.acked_by[board_id, owner[1]] += 1
    return answer


async def _events(api: Api, board_id: str, token: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        status, page = await api.call("GET", f"/boards/{board_id}/events?after_seq={after}&limit=200", token)
        if status != 200:
            raise RuntimeError(f"events of {board_id}: {status} {page}")
        out += page["items"]
        if not page["next_cursor"]:
            return out
        after = int(page["next_cursor"])


async def _pages(api: Api, path: str, token: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        sep = "&" if "?" in path else "?"
        status, page = await api.call("GET", f"{path}{sep}limit=200{cursor}", token)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {page}")
        out += page["items"]
        if not page["next_cursor"]:
            return out
        cursor = f"&cursor={page['next_cursor']}"


async def run_churn(env: dict[str, str], config: ChurnConfig) -> dict[str, Any]:
    """The whole run on two instances started with ``env`` (their database already migrated)."""
    rng = random.Random(config.seed)
    env = {"SECRET_KEY": "churn-secret-" + uuid.uuid4().hex, **env}  # one key: tokens work on both
    nodes = [Node("A", env), Node("B", env)]
    started = time.monotonic()
    await asyncio.gather(*(asyncio.to_thread(n.start) for n in nodes))
    api = Api(nodes, rng)
    tally = Tally(target=config.changes)
    clients: list[Client] = []
    tasks: list[asyncio.Task[Any]] = []
    timeline: list[str] = []
    try:
        prefix = "ch" + uuid.uuid4().hex[:6]
        owner, owner_id, _ = await _account(api, f"{prefix}owner")
        writers = [await _account(api, f"{prefix}w{i}") for i in range(config.writers)]
        watchers = [await _account(api, f"{prefix}v{i}") for i in range(2)]
        pool = [await _account(api, f"{prefix}p{i}") for i in range(config.pool)]
        boards: list[BoardRun] = []
        for b in range(config.boards):
            created = await _setup_call(
                api, tally, None, "POST", "/boards", (owner, owner_id), {"name": f"churn {b}"}
            )
            bid = created["id"]
            members = [(u, "admin") for _, u, _ in writers] + [(u, "observer") for _, u, _ in watchers]
            for user_id, role in members:
                body = {"user_id": user_id, "role": role}
                await _setup_call(api, tally, bid, "POST", f"/boards/{bid}/members", (owner, owner_id), body)
            for name in ("To do", "Doing", "Done"):
                await _setup_call(
                    api, tally, bid, "POST", f"/boards/{bid}/lists", (owner, owner_id), {"name": name}
                )
            boards.append(BoardRun(bid, created, owner, [u for _, u, _ in pool]))

        tokens = [owner] + [t for t, _, _ in watchers]
        for i in range(config.clients):
            client = Client(
                i, boards[i % len(boards)].id, tokens[i % len(tokens)], nodes, api, snapshot=i % 2 == 0
            )
            clients.append(client)
            tasks.append(asyncio.create_task(client.run()))
        await asyncio.wait_for(asyncio.gather(*(c.joined.wait() for c in clients)), 60)
        timeline.append(f"{time.monotonic() - started:.1f}s: {len(clients)} clients joined")

        async def keepalive() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_EVERY)
                for c in clients:
                    c.heartbeat()

        tasks.append(asyncio.create_task(keepalive()))
        tally.go.set()
        writer_tasks = [
            asyncio.create_task(Writer(board, token, user_id, api, tally, random.Random(rng.random())).run())
            for board in boards
            for token, user_id, _ in writers
        ]

        async def at(fraction: float) -> None:
            while tally.changes < fraction * config.changes and not all(t.done() for t in writer_tasks):
                await asyncio.sleep(0.01)

        def drop(share: float) -> int:
            dropped = sum(c.drop() for c in rng.sample(clients, max(1, int(len(clients) * share))))
            timeline.append(
                f"{time.monotonic() - started:.1f}s, {tally.changes} changes: dropped {dropped} sockets"
            )
            return dropped

        for step in (0.1, 0.2, 0.3):
            await at(step)
            drop(0.3)
        # Two clients stay away for 40 % of the changes: a long replay when they come back, or,
        # beyond REPLAY_WINDOW, a resync and a reload.
        parked = clients[:2]
        for c in parked:
            c.back.clear()
            c.drop()
        timeline.append(f"{time.monotonic() - started:.1f}s, {tally.changes} changes: 2 clients away")
        if config.kill:
            await at(0.4)
            victim = nodes[1]
            await victim.kill(drain=not config.kill_inflight)
            timeline.append(
                f"{time.monotonic() - started:.1f}s, {tally.changes} changes: SIGKILL {victim.name}"
            )
            await at(0.55)
            drop(0.3)
            await at(0.6)
            tally.go.clear()  # the rest of the run has both instances again
            await asyncio.to_thread(victim.start)
            tally.go.set()
            timeline.append(
                f"{time.monotonic() - started:.1f}s, {tally.changes} changes: {victim.name} restarted"
            )
        await at(0.7)
        for c in parked:
            c.back.set()
        timeline.append(f"{time.monotonic() - started:.1f}s, {tally.changes} changes: 2 clients back")
        for step in (0.7, 0.8, 0.9):
            await at(step)
            drop(0.3)
        await asyncio.gather(*writer_tasks)
        timeline.append(f"{time.monotonic() - started:.1f}s: {tally.changes} changes acknowledged")
        writing_s = time.monotonic() - started

        # Every client reaches its board's last seq (or the deadline passes).
        finals: dict[str, dict[str, Any]] = {}
        for board in boards:
            status, body = await api.call("GET", f"/boards/{board.id}", owner)
            if status != 200:
                raise RuntimeError(f"GET board {board.id}: {status} {body}")
            finals[board.id] = body
        deadline = time.monotonic() + config.converge_timeout
        while time.monotonic() < deadline and any(
            c.copy is None or c.copy.seq < finals[c.board_id]["seq"] for c in clients
        ):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # anything sent twice shows up here
        timeline.append(f"{time.monotonic() - started:.1f}s: clients caught up (or gave up)")
        for c in clients:
            await c.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        failures: list[str] = [f"server error: {e}" for e in tally.errors]
        if tally.error_count > len(tally.errors):
            failures.append(f"... {tally.error_count - len(tally.errors)} more server errors")
        events_total = 0
        for board in boards:
            failures += await _verify_board(
                api, board, finals[board.id], tally, [c for c in clients if c.board_id == board.id]
            )
            events_total += finals[board.id]["seq"]
        return {
            "ok": not failures,
            "changes": tally.changes,
            "events": events_total,
            "boards": len(boards),
            "clients": len(clients),
            "writers": len(writer_tasks),
            "seed": config.seed,
            "writing_seconds": round(writing_s, 1),
            "seconds": round(time.monotonic() - started, 1),
            "changes_per_s": round(tally.changes / max(writing_s, 1e-9), 1),
            "by_op": dict(sorted(tally.by_op.items())),
            "lost_races": dict(sorted(tally.lost.items())),
            "retried_409": tally.retried_409,
            "server_errors": tally.error_count,
            "unanswered_writes": sum(tally.unknown_by.values()),
            "drops": sum(c.drops for c in clients),
            "socket_sessions": sum(c.sessions for c in clients),
            "resyncs": sum(c.resyncs for c in clients),
            "joins_unavailable": sum(c.unavailable for c in clients),
            "killed": config.kill,
            "timeline": timeline,
            "server_log_errors": [e for n in nodes for e in n.logged_errors()][:40],
            "failures": failures[:60],
            "failure_count": len(failures),
        }
    finally:
        for t in tasks:
            t.cancel()
        await api.close()
        for n in nodes:
            n.stop()


async def _verify_board(
    api: Api, board: BoardRun, truth: dict[str, Any], tally: Tally, clients: list[Client]
) -> list[str]:
    bid = board.id
    at = f"board {bid[-6:]}"
    failures: list[str] = []
    log_events = await _events(api, bid, board.owner)
    seqs = [e["seq"] for e in log_events]
    if seqs != list(range(1, truth["seq"] + 1)):
        failures.append(f"{at}: the log holds seqs {seqs[:5]}..{seqs[-5:]}, not 1..{truth['seq']}")
    if not any(n for (b, _), n in tally.unknown_by.items() if b == bid):
        if tally.acked[bid] != len(log_events):
            failures.append(
                f"{at}: {tally.acked[bid]} changes acknowledged, {len(log_events)} events in the log"
            )
    else:  # some writes had no answer: each actor's events lie between its answers and those
        made = Counter(e["actor_id"] for e in log_events)
        for (b, actor), acked in tally.acked_by.items():
            unknown = tally.unknown_by[b, actor]
            if b == bid and not acked <= made[actor] <= acked + unknown:
                failures.append(
                    f"{at}: actor {actor[-6:]} had {acked} changes acknowledged and {unknown} unanswered, "
                    f"and made {made[actor]} events"
                )
    # The cards' comments and checklist items, as the server has them.
    comments: list[dict[str, Any]] = []
    checklist: list[dict[str, Any]] = []
    for card in truth["cards"]:
        comments += await _pages(api, f"/cards/{card['id']}/comments", board.owner)
        status, detail = await api.call("GET", f"/cards/{card['id']}", board.owner)
        if status != 200:
            raise RuntimeError(f"GET card: {status} {detail}")
        checklist += detail["checklist"]
    expected = normalized(truth)
    expected_comments = {c["id"]: c for c in comments}
    expected_checklist = {c["id"]: c for c in checklist}
    # The whole log folded from the empty board.
    replay = BoardCopy.from_body({**board.created, "seq": 0})
    for event in log_events:
        failures += [f"{at} log: {p}" for p in dangling(replay, event)]
        apply(replay, event)
    failures += [f"{at} log fold: {d}" for d in differences(expected, normalized(replay.body()))]
    failures += [f"{at} log fold comments: {d}" for d in differences(expected_comments, replay.comments)]
    failures += [f"{at} log fold checklist: {d}" for d in differences(expected_checklist, replay.checklist)]
    by_problem: dict[str, list[int]] = {}  # what several clients saw alike is said once
    for c in clients:
        problems = list(c.problems)
        if c.copy is None or c.start_seq is None:
            problems.append("never loaded the board")
        else:
            start, seen = c.start_seq, c.seen
            if c.restarts:  # the events after the last reload
                start, index = c.restarts[-1]
                seen = [s for s in seen[index:] if s > start]
            wanted = list(range(start + 1, truth["seq"] + 1))
            if seen != wanted:
                counts = Counter(seen)
                missing = [s for s in wanted if s not in counts]
                twice = [s for s, n in counts.items() if n > 1]
                problems.append(
                    f"saw {len(seen)} events for seqs {start + 1}..{truth['seq']}; "
                    f"missing {missing[:10]}, more than once {twice[:10]}"
                )
            problems += [f"copy {d}" for d in differences(expected, normalized(c.copy.body()), limit=5)]
            problems += [f"comments {d}" for d in differences(expected_comments, c.copy.comments, limit=5)]
            problems += [f"checklist {d}" for d in differences(expected_checklist, c.copy.checklist, limit=5)]
        for p in problems:
            by_problem.setdefault(p, []).append(c.n)
    for p, who in by_problem.items():
        failures.append(f"{at} client{'s' if len(who) > 1 else ''} {','.join(map(str, who))}: {p}")
    return failures


async def run_churn_scenario(args: Any) -> dict[str, Any]:
    """``python -m bench churn``: a private database on the bench PostgreSQL, a Redis key prefix of
    its own; a text summary on stderr, the figures as JSON."""
    from bench.procs import REDIS, PrivateDatabase

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    config = ChurnConfig(
        changes=args.changes,
        clients=args.clients,
        boards=args.boards,
        writers=args.writers,
        seed=seed,
        kill=not args.no_kill,
        kill_inflight=args.kill_inflight,
    )
    async with PrivateDatabase() as db_url:
        env = {
            **CHEAP_HASHING,
            "DATABASE_URL": db_url,
            "REDIS_URL": REDIS,
            "REDIS_PREFIX": f"churn:{uuid.uuid4().hex[:8]}",
        }
        out = await run_churn(env, config)
    for line in summary_lines(out):
        log(line)
    return out


CHEAP_HASHING = {  # sign-ups are not what this measures
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8192",
    "PASSWORD_HASH_PARALLELISM": "1",
}


def summary_lines(out: dict[str, Any]) -> list[str]:
    lines = [
        f"churn: {'CONVERGED' if out['ok'] else 'FAILED'}: {out['changes']} changes "
        f"({out['changes_per_s']}/s), {out['events']} events, {out['boards']} boards, "
        f"{out['clients']} clients, {out['writers']} writers, seed {out['seed']}",
        f"  {out['drops']} sockets dropped, {out['socket_sessions']} socket sessions, "
        f"{out['resyncs']} resyncs, {out['retried_409']} 409s retried, {out['server_errors']} server errors, "
        f"{out['unanswered_writes']} writes unanswered (killed)",
        f"  lost races: {out['lost_races']}",
        *(f"  {t}" for t in out["timeline"]),
    ]
    lines += [f"  FAIL {f}" for f in out["failures"]]
    lines += [f"  server log: {e}" for e in out["server_log_errors"]]
    if out["failure_count"] > len(out["failures"]):
        lines.append(f"  ... {out['failure_count'] - len(out['failures'])} more failures")
    return lines
