"""Dispatch from the command line to the scenario modules."""

from __future__ import annotations

import argparse
from typing import Any


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.scenario == "baseline":
        from bench.baseline import run_baseline

        return await run_baseline(args.sockets, args.events, args.rate)
    raise SystemExit(f"scenario {args.scenario} is not implemented yet")
