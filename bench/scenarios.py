"""Dispatch from the command line to the scenario modules."""

from __future__ import annotations

import argparse
from typing import Any


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.scenario == "baseline":
        from bench.baseline import run_baseline

        return await run_baseline(args.sockets, args.events, args.rate)
    from bench import corkboard

    if args.scenario == "fanout":
        out: dict[str, Any] = {"scenario": "fanout"}
        if not args.no_baseline:
            out["baseline"] = await run_baseline_first(args)
        out["corkboard"] = await corkboard.run_fanout(args.sockets, args.events, args.rate, ws=args.ws)
        if "baseline" in out:
            base = out["baseline"]["phases"][-1]["deliveries_per_s"]
            ours = out["corkboard"]["phases"][-1]["deliveries_per_s"]
            out["burst_ratio_to_baseline"] = round(ours / max(1, base), 3)
        return out
    if args.scenario == "idle":
        return {
            "scenario": "idle",
            **await corkboard.run_idle(args.sockets, args.boards, args.idle_seconds, ws=args.ws),
        }
    if args.scenario == "rest":
        return {"scenario": "rest", **await corkboard.run_rest(args.rate, args.seconds, args.workers)}
    if args.scenario == "replay":
        return {"scenario": "replay", **await corkboard.run_replay(args.behind, args.repeat)}
    if args.scenario == "cluster":
        return {"scenario": "cluster", **await corkboard.run_cluster(args.sockets, args.events, args.rate)}
    raise SystemExit(f"scenario {args.scenario} is not implemented yet")


async def run_baseline_first(args: argparse.Namespace) -> dict[str, Any]:
    from bench.baseline import run_baseline

    return await run_baseline(args.sockets, args.events, args.rate)
