"""``python -m bench SCENARIO [options]``: one command per scenario; figures as JSON on stdout."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from typing import Any

from bench.procs import machine, pin_self, raise_nofile


def _run(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="scenario", required=True)
    p = sub.add_parser("baseline", help="bare websockets.broadcast() server")
    p.add_argument("--sockets", type=int, default=2000)
    p.add_argument("--events", type=int, default=200)
    p.add_argument("--rate", type=float, default=50)
    p = sub.add_parser(
        "fanout", help="Corkboard: REST card updates fanned out to one board, beside the baseline"
    )
    p.add_argument("--sockets", type=int, default=2000)
    p.add_argument("--events", type=int, default=200)
    p.add_argument("--rate", type=float, default=50)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Corkboard's store: the embedded default, or PostgreSQL + Redis (a production setup)",
    )
    p.add_argument(
        "--ws",
        default=None,
        help="WS_IMPL for the server; a comma list runs each in turn (fastpath,websockets-sansio,...)",
    )
    p = sub.add_parser("idle", help="Corkboard: N joined idle sockets; RSS and CPU per socket")
    p.add_argument("--sockets", type=int, default=10000)
    p.add_argument("--boards", type=int, default=10)
    p.add_argument("--idle-seconds", type=float, default=30)
    p.add_argument("--ws", default=None)
    p.add_argument(
        "--tracemalloc",
        default=None,
        metavar="DIR",
        help="trace the server's allocations; snapshots before and after the joins (bench/memory.py)",
    )
    p = sub.add_parser("rest", help="Corkboard on PostgreSQL + Redis, --workers 2: card create/move/get")
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--workers", type=int, default=2)
    p = sub.add_parser(
        "rest-ab", help="Corkboard: this tree's REST CPU per request against another revision's, at once"
    )
    p.add_argument("--against", required=True, help="a git revision, or the path of another checkout")
    p.add_argument("--requests", type=int, default=200, help="per route, server and round")
    p.add_argument("--rounds", type=int, default=3)
    p = sub.add_parser(
        "board-get", help="Corkboard on PostgreSQL: GET of a big board, plain, gzip and revalidated"
    )
    p.add_argument("--cards", type=int, default=500)
    p.add_argument("--requests", type=int, default=200, help="per way of asking (and per server)")
    p.add_argument("--against", default=None, help="also serve this git revision or checkout, side by side")
    p = sub.add_parser("replay", help="Corkboard: rejoin N events behind")
    p.add_argument("--behind", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=5)
    p = sub.add_parser("cluster", help="Corkboard: two instances + Redis; cross- vs same-instance delivery")
    p.add_argument("--sockets", type=int, default=200)
    p.add_argument("--events", type=int, default=200)
    p.add_argument("--rate", type=float, default=50)
    p = sub.add_parser(
        "churn",
        help="Corkboard x2 + PostgreSQL + Redis: writers, socket clients, drops and a killed instance; "
        "every client's board must equal the database's",
    )
    p.add_argument(
        "--changes", type=int, default=2000, help="acknowledged changes to make, all boards together"
    )
    p.add_argument("--clients", type=int, default=40, help="socket clients, spread over the boards")
    p.add_argument("--boards", type=int, default=4)
    p.add_argument("--writers", type=int, default=4, help="REST writers per board")
    p.add_argument("--seed", type=int, default=None, help="the writers' choices (default: random)")
    p.add_argument("--no-kill", action="store_true", help="keep both instances up")
    p.add_argument(
        "--kill-inflight",
        action="store_true",
        help="SIGKILL with writes under way (their outcome is read from the log) instead of draining them",
    )
    for p in sub.choices.values():
        p.add_argument("--out", default=None, help="also write the JSON result to this file")
        p.add_argument(
            "--no-pin", action="store_true", help="pin neither the client nor the servers (taskset) to a core"
        )
        p.add_argument(
            "--profile",
            default=None,
            metavar="DIR",
            help="sample each corkboard server with py-spy into DIR (see python -m bench.profile)",
        )
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["BENCH_PROFILE"] = args.profile
    if getattr(args, "tracemalloc", None):
        os.environ["BENCH_TRACEMALLOC"] = args.tracemalloc

    raise_nofile()
    if args.no_pin:
        os.environ["BENCH_NO_PIN"] = "1"  # and the servers it starts (bench/procs.py)
    else:
        pin_self()
    from bench import scenarios

    result = _run(scenarios.run(args))
    result["machine"] = machine()
    result["command"] = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0 if result.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
