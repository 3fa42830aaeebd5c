"""``corkboard loadtest``: N users, one Phoenix socket each, over K boards, some of them writing.

The run has four stages: accounts (sign-up or ``--tokens-file``), boards (created by the first
account, the others added as members), sockets (opened at ``connect_rate``, each joined to its
board), then the load itself (REST card mutations at ``rate`` per second, ``ephemeral`` typing
pushes, heartbeats) until ``duration`` or ``max_mutations``. Afterwards each board's final ``seq``
is read and the sockets are given ``drain`` seconds to receive everything up to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import sys
import time
from collections.abc import Callable

import msgspec

from server.loadtest.phx import PhxPool, PhxSocket
from server.loadtest.report import Report, build_report
from server.loadtest.rest import Account, Rest, RestError, run_prefix
from server.serving import raise_nofile_limit


class LoadConfig(msgspec.Struct, kw_only=True):
    url: str
    users: int = 100
    boards: int = 10
    accounts: int = 0  # distinct accounts to sign up (0: one per user); sockets share them round robin
    tokens: list[str] = msgspec.field(default_factory=list)
    writers: float = 0.1  # share of users that mutate cards
    rate: float = 10.0  # card mutations per second, across all writers
    typing_rate: float = 5.0  # ephemeral typing pushes per second, across all users
    duration: float = 30.0
    max_mutations: int = 0  # stop after this many mutations (0: only the duration bounds the run)
    connect_rate: float = 500.0
    drain: float = 10.0
    password: str = "loadtest-Password-123"
    heartbeat: float = 30.0
    progress: bool = True


class BoardPlan(msgspec.Struct):
    id: str
    list_ids: list[str]
    cards: list[str] = msgspec.field(default_factory=list)


class LoadTest:
    """One run. :meth:`run` returns the :class:`Report`; ``say`` prints progress to stderr."""

    def __init__(self, config: LoadConfig, say: Callable[[str], None] | None = None) -> None:
        self.c = config
        self.rest = Rest(config.url)
        self.pool = PhxPool(config.url)
        self.accounts: list[Account] = []
        self.boards: list[BoardPlan] = []
        self.sockets: list[PhxSocket | None] = []
        self.join_ok = 0
        self.join_failed = 0
        self.mutations = 0
        self.ephemeral_sent = 0
        self.stage = "starting"
        self.load_seconds = 0.0
        self.started = time.monotonic()
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.rng = random.Random(7)

    # --- stages
    async def setup_accounts(self) -> None:
        self.stage = "accounts"
        c = self.c
        if c.tokens:
            sem = asyncio.Semaphore(16)

            async def who(token: str) -> Account | None:
                async with sem:
                    try:
                        return await self.rest.whoami(token)
                    except RestError:
                        return None

            found = await asyncio.gather(*(who(t) for t in c.tokens))
            self.accounts = [a for a in found if a is not None]
        else:
            prefix = run_prefix()
            wanted = c.accounts or c.users
            sem = asyncio.Semaphore(8)

            async def sign_up(i: int) -> Account | None:
                async with sem:
                    try:
                        return await self.rest.sign_up(prefix, i, c.password)
                    except RestError:
                        return None

            made = await asyncio.gather(*(sign_up(i) for i in range(wanted)))
            self.accounts = [a for a in made if a is not None]
        if not self.accounts:
            raise RuntimeError("no usable account: every sign-up or token failed (see errors)")

    async def setup_boards(self) -> None:
        self.stage = "boards"
        owner = self.accounts[0]
        for b in range(max(1, self.c.boards)):
            board = await self.rest.call(
                "POST",
                "/boards",
                "/boards",
                token=owner.token,
                json={"name": f"Load test board {b}"},
                expect=(201,),
            )
            lst = await self.rest.call(
                "POST",
                "/boards/{id}/lists",
                f"/boards/{board['id']}/lists",
                token=owner.token,
                json={"name": "To do"},
                expect=(201,),
            )
            lst2 = await self.rest.call(
                "POST",
                "/boards/{id}/lists",
                f"/boards/{board['id']}/lists",
                token=owner.token,
                json={"name": "Done"},
                expect=(201,),
            )
            self.boards.append(BoardPlan(id=str(board["id"]), list_ids=[str(lst["id"]), str(lst2["id"])]))
        # Every account that a user of a board logs in with must be a member of it.
        pairs = {(self.account_of(u).user_id, self.board_of(u).id) for u in range(self.c.users)}
        pairs = {(uid, bid) for uid, bid in pairs if uid != owner.user_id}
        sem = asyncio.Semaphore(16)

        async def add(uid: str, bid: str) -> None:
            async with sem:
                with contextlib.suppress(RestError):
                    await self.rest.call(
                        "POST",
                        "/boards/{id}/members",
                        f"/boards/{bid}/members",
                        token=owner.token,
                        json={"user_id": uid, "role": "member"},
                        expect=(200, 201, 409),
                    )

        await asyncio.gather(*(add(uid, bid) for uid, bid in sorted(pairs)))

    def account_of(self, user: int) -> Account:
        return self.accounts[user % len(self.accounts)]

    def board_of(self, user: int) -> BoardPlan:
        return self.boards[user % len(self.boards)]

    async def open_sockets(self) -> None:
        self.stage = "sockets"
        self.sockets = [None] * self.c.users
        interval = 1.0 / self.c.connect_rate if self.c.connect_rate > 0 else 0.0
        start = time.monotonic()
        tasks = []
        for u in range(self.c.users):
            if interval:
                delay = start + u * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._open(u)))
        await asyncio.gather(*tasks)

    async def _open(self, user: int) -> None:
        try:
            sock = await self.pool.connect(self.account_of(user).token, timeout=30)
        except Exception:
            return
        self.sockets[user] = sock
        try:
            await sock.join(f"board:{self.board_of(user).id}", {}, timeout=30)
            self.join_ok += 1
        except Exception as exc:
            self.join_failed += 1
            self.pool.errors[f"join:{getattr(exc, 'reason', type(exc).__name__)}"] += 1

    async def load(self) -> None:
        self.stage = "load"
        c = self.c
        writers = list(range(max(0, min(c.users, math.ceil(c.users * c.writers)))))
        deadline = time.monotonic() + c.duration
        tasks: set[asyncio.Task[None]] = set()
        sem = asyncio.Semaphore(256)
        background = [asyncio.create_task(self._heartbeats()), asyncio.create_task(self._typing(deadline))]
        try:
            if writers and c.rate > 0:
                start = time.monotonic()
                for n in itertools.count():
                    if c.max_mutations and n >= c.max_mutations:
                        break
                    at = start + n / c.rate
                    if at >= deadline:
                        break
                    delay = at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await sem.acquire()
                    task = asyncio.create_task(self._mutate(writers[n % len(writers)], sem))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            else:
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for t in background:
                t.cancel()

    async def _mutate(self, user: int, sem: asyncio.Semaphore) -> None:
        try:
            token = self.account_of(user).token
            board = self.board_of(user)
            roll = self.rng.random()
            if not board.cards or roll < 0.4:
                card = await self.rest.call(
                    "POST",
                    "/lists/{id}/cards",
                    f"/lists/{board.list_ids[0]}/cards",
                    token=token,
                    json={"title": f"Card {self.mutations}"},
                    expect=(201,),
                )
                board.cards.append(str(card["id"]))
            elif roll < 0.7:
                card_id = self.rng.choice(board.cards)
                await self.rest.call(
                    "POST",
                    "/cards/{id}/move",
                    f"/cards/{card_id}/move",
                    token=token,
                    json={"list_id": self.rng.choice(board.list_ids)},
                    expect=(200,),
                )
            else:
                card_id = self.rng.choice(board.cards)
                await self.rest.call(
                    "PATCH",
                    "/cards/{id}",
                    f"/cards/{card_id}",
                    token=token,
                    json={"title": f"Edited {self.mutations}"},
                    expect=(200,),
                )
            self.mutations += 1
        except RestError:
            pass
        finally:
            sem.release()

    async def _typing(self, deadline: float) -> None:
        if self.c.typing_rate <= 0:
            return
        interval = 1.0 / self.c.typing_rate
        while time.monotonic() < deadline:
            await asyncio.sleep(interval)
            user = self.rng.randrange(self.c.users)
            sock = self.sockets[user] if user < len(self.sockets) else None
            topic = f"board:{self.board_of(user).id}"
            if sock is not None and not sock.is_closed and topic in sock.subs:
                sock.push(topic, "ephemeral", b'{"kind":"typing","data":{"typing":true}}')
                self.ephemeral_sent += 1

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.c.heartbeat)
            self.pool.heartbeat_all()

    async def final_seqs(self) -> dict[str, int]:
        owner = self.accounts[0]
        out: dict[str, int] = {}
        for board in self.boards:
            try:
                body = await self.rest.call(
                    "GET", "/boards/{id}", f"/boards/{board.id}", token=owner.token, expect=(200,)
                )
                out[f"board:{board.id}"] = int(body["seq"])
            except (RestError, KeyError, TypeError, ValueError):
                pass
        return out

    def expected(self, final: dict[str, int]) -> tuple[int, int]:
        subs = (sub for s in self.sockets if s is not None for sub in s.subs.values())
        return self.pool.tracker.expected(subs, final)

    async def drain(self, final: dict[str, int]) -> None:
        self.stage = "drain"
        deadline = time.monotonic() + self.c.drain
        while time.monotonic() < deadline:
            expected, got = self.expected(final)
            if got >= expected:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)  # let late duplicates arrive

    # --- progress
    def progress_line(self) -> str:
        t = self.pool.tracker
        lat = t.latencies[-2000:]
        p99 = sorted(lat)[int(len(lat) * 0.99) - 1] * 1000 if len(lat) >= 10 else 0.0
        return (
            f"[{time.monotonic() - self.started:6.1f}s {self.stage:8}] sockets {self.pool.open_count}"
            f"/{self.c.users} failed {self.pool.failed} | joins {self.join_ok} | mutations {self.mutations}"
            f" rest err {sum(self.rest.errors.values())} | events {t.unique} dup {t.dups}"
            f" | recent p99 {p99:.1f} ms"
        )

    async def _progress(self) -> None:
        tty = sys.stderr.isatty()
        while True:
            await asyncio.sleep(1.0)
            line = self.progress_line()
            if tty:
                sys.stderr.write("\r" + line + "\x1b[K")
                sys.stderr.flush()
            else:
                self.say(line)

    async def run(self) -> Report:
        progress = asyncio.create_task(self._progress()) if self.c.progress else None
        final: dict[str, int] = {}
        fatal = ""
        try:
            await self.setup_accounts()
            await self.setup_boards()
            await self.open_sockets()
            load_started = time.monotonic()
            await self.load()
            self.load_seconds = time.monotonic() - load_started
            final = await self.final_seqs()
            await self.drain(final)
        except (RuntimeError, RestError) as exc:
            fatal = str(exc)
        finally:
            if progress is not None:
                progress.cancel()
                if sys.stderr.isatty():
                    sys.stderr.write("\n")
            self.pool.close_all()
            await asyncio.sleep(0.1)
            await self.rest.close()
        expected, got = self.expected(final)
        return build_report(self, expected, got, fatal)


def run_loadtest(config: LoadConfig, say: Callable[[str], None] | None = None) -> Report:
    """Run one load test to completion (its own event loop) and return its report."""
    raise_nofile_limit()

    async def main() -> Report:
        return await LoadTest(config, say).run()

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())
