"""Dispatch from the command line to the scenario modules."""

from __future__ import annotations

import argparse
from typing import Any


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.scenario == "baseline":
        from bench.baseline import run_baseline

        return await run_baseline(args.sockets, args.events, args.rate)
    if args.scenario == "churn":
        from bench.churn import run_churn_scenario

        return {"scenario": "churn", **await run_churn_scenario(args)}
    from bench import corkboard

    if args.scenario == "fanout":
        out: dict[str, Any] = {"scenario": "fanout"}
        if not args.no_baseline:
            out["baseline"] = await run_baseline_first(args)
        impls = (args.ws or "fastpath").split(",")
        runs = []
        for ws in impls:
            try:
                runs.append(
                    await corkboard.run_fanout(
                        args.sockets, args.events, args.rate, ws=ws, database=args.database
                    )
                )
            except RuntimeError as exc:  # e.g. WS_IMPL=wsproto without the wsproto package
                runs.append({"ws_impl": ws, "error": str(exc)[-500:], "phases": []})
        out["corkboard"] = runs[0]
        if len(runs) > 1:
            out["corkboard_by_ws_impl"] = dict(zip(impls, runs, strict=True))
        if "baseline" in out:
            base = out["baseline"]["phases"][-1]
            for run in runs:
                if not run["phases"]:
                    continue
                ours = run["phases"][-1]
                run["burst_ratio_to_baseline"] = round(
                    ours["deliveries_per_s"] / max(1, base["deliveries_per_s"]), 3
                )
                run["server_cpu_ratio_to_baseline"] = round(
                    ours["fanout_us_per_delivery"] / max(1e-9, base["server_us_per_delivery"]), 3
                )
            out["burst_ratio_to_baseline"] = runs[0].get("burst_ratio_to_baseline")
        return out
    if args.scenario == "idle":
        return {
            "scenario": "idle",
            **await corkboard.run_idle(args.sockets, args.boards, args.idle_seconds, ws=args.ws),
        }
    if args.scenario == "rest":
        return {"scenario": "rest", **await corkboard.run_rest(args.rate, args.seconds, args.workers)}
    if args.scenario == "rest-ab":
        from bench.restab import run_rest_ab

        return {"scenario": "rest-ab", **await run_rest_ab(args.against, args.requests, args.rounds)}
    if args.scenario == "board-get":
        from bench.boardget import run_board_get

        return {"scenario": "board-get", **await run_board_get(args.cards, args.requests, args.against)}
    if args.scenario == "replay":
        return {"scenario": "replay", **await corkboard.run_replay(args.behind, args.repeat)}
    if args.scenario == "cluster":
        return {"scenario": "cluster", **await corkboard.run_cluster(args.sockets, args.events, args.rate)}
    raise SystemExit(f"scenario {args.scenario} is not implemented yet")


async def run_baseline_first(args: argparse.Namespace) -> dict[str, Any]:
    from bench.baseline import run_baseline

    return await run_baseline(args.sockets, args.events, args.rate)
