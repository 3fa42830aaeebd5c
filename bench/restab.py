"""``python -m bench rest-ab --against REV``: this tree's REST path against another revision's,
measured at the same moment.

The machines these benchmarks run on change speed by tens of percent from one minute to the next
(bench/RESULTS.md, sessions 5 and 6), so two ``rest`` runs minutes apart compare the machine with
itself. Here both trees serve at once: one worker each, pinned to the same core, each with its own
PostgreSQL database (migrated by its own tree) and the same Redis. The client sends the same
requests to both, one at a time, alternating which goes first; the figure is each server's CPU
per request (``/proc``), by route and round, and the ratio of this tree's to the other's. One
request at a time measures what a request costs, not latency under load: that is ``rest``.

``REV`` is anything ``git worktree add`` accepts (a commit, a branch, ``HEAD~3``), or the path of
another checkout.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import log
from bench.corkboard import Board, _pg_env, make_board, sign_up_many
from bench.procs import ROOT, SERVER_CPU, PrivateDatabase, Proc, corkboard_server, tree_cpu_by_process
from server.loadtest.rest import Account, Rest

ROUTES = ("GET /cards/{id}", "POST /cards/{id}/move", "POST /lists/{id}/cards")
WARMUP = 10  # requests per route and server before each measured round (statement caches, pools)


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[tuple[Path, str]]:
    """``(tree, what it is)``: a directory given as is, else a temporary worktree at ``rev``."""
    if Path(rev).is_dir():
        yield Path(rev).resolve(), str(Path(rev).resolve())
        return
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    tmp = Path(tempfile.mkdtemp(prefix="corkboard-ab-"))
    tree = tmp / "tree"
    _git("worktree", "add", "--detach", str(tree), commit)
    try:
        yield tree, commit
    finally:
        remove = ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)]
        subprocess.run(remove, capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def this_tree() -> str:
    """This checkout's commit, ``+changes`` when it has uncommitted ones."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return str(ROOT)
    return commit + ("+changes" if dirty else "")


class Side:
    """One server under test, with its account and board."""

    def __init__(self, name: str, proc: Proc, rest: Rest, account: Account, board: Board) -> None:
        self.name = name
        self.proc = proc
        self.rest = rest
        self.account = account
        self.board = board

    def cpu(self) -> float:
        return sum(tree_cpu_by_process(self.proc.pid).values())

    async def call(self, route: str, i: int) -> None:
        token, b = self.account.token, self.board
        if route == "GET /cards/{id}":
            await self.rest.call("GET", route, f"/cards/{b.card_id}", token=token)
        elif route == "POST /cards/{id}/move":
            body = {"list_id": b.list_ids[i % 2]}
            await self.rest.call("POST", route, f"/cards/{b.card_id}/move", token=token, json=body)
        else:
            body = {"title": f"Card {i}"}
            await self.rest.call("POST", route, f"/lists/{b.list_ids[0]}/cards", token=token, json=body)


async def run_rest_ab(against: str, requests: int, rounds: int) -> dict[str, Any]:
    sides: list[Side] = []
    with checkout(against) as (other, other_is):
        async with PrivateDatabase(ROOT) as db_this, PrivateDatabase(other) as db_other:
            try:
                for name, root, db in (("this", ROOT, db_this), ("against", other, db_other)):
                    proc, url = corkboard_server(_pg_env(db), workers=1, cpu=SERVER_CPU, root=root)
                    rest = Rest(url, concurrency=4)
                    sides.append(Side(name, proc, rest, Account(token=""), Board("", [], "")))
                    sides[-1].account = (await sign_up_many(rest, 1))[0]
                    sides[-1].board = await make_board(rest, sides[-1].account, "A/B")
                cpu_ms: dict[str, dict[str, list[float]]] = {r: {s.name: [] for s in sides} for r in ROUTES}
                for round_no in range(rounds):
                    for route in ROUTES:
                        for i in range(WARMUP):
                            for side in sides:
                                await side.call(route, i)
                        before = {s.name: s.cpu() for s in sides}
                        for i in range(requests):
                            for side in sides if i % 2 == 0 else sides[::-1]:
                                await side.call(route, i)
                        for side in sides:
                            spent = side.cpu() - before[side.name]
                            cpu_ms[route][side.name].append(spent / requests * 1000)
                    log(f"rest-ab: round {round_no + 1}/{rounds} done")
            finally:
                for side in sides:
                    await side.rest.close()
                    side.proc.stop()
    errors: dict[str, int] = {}
    for side in sides:
        for kind, n in side.rest.errors.items():
            errors[f"{side.name}: {kind}"] = n
    routes: dict[str, Any] = {}
    for route, by_side in cpu_ms.items():
        # A side that read no CPU in a round spent less than /proc's clock tick (10 ms) on it: too
        # little to measure, not free; such a round has no ratio.
        ratios = [t / a for t, a in zip(by_side["this"], by_side["against"], strict=True) if t > 0 and a > 0]
        routes[route] = {
            "this_cpu_ms_per_request": [round(v, 3) for v in by_side["this"]],
            "against_cpu_ms_per_request": [round(v, 3) for v in by_side["against"]],
            "ratio_per_round": [round(r, 3) for r in ratios],
            "ratio_median": round(statistics.median(ratios), 3) if ratios else None,
        }
    return {
        "this": this_tree(),
        "against": against,
        "against_tree": other_is,
        "requests_per_round": requests,
        "rounds": rounds,
        "routes": routes,
        "errors": errors,
    }
