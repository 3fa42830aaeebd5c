"""The final report of a load run: a msgspec Struct (``--json``) and its text rendering."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from server.loadtest.tracker import percentiles

if TYPE_CHECKING:
    from server.loadtest.runner import LoadTest


class Sockets(msgspec.Struct):
    attempted: int
    opened: int
    failed: int
    closed_by_server: int
    close_codes: dict[str, int]
    joins_ok: int
    joins_failed: int


class Events(msgspec.Struct):
    expected: int
    delivered: int
    lost: int
    duplicated: int
    out_of_order: int
    unexpected: int


class Latency(msgspec.Struct):
    count: int
    p50: float
    p95: float
    p99: float
    max: float


class Report(msgspec.Struct):
    url: str
    users: int
    accounts: int
    boards: int
    load_seconds: float
    mutations: int
    sockets: Sockets
    events: Events
    delivery_latency_ms: Latency
    rest_latency_ms: dict[str, Latency]
    ephemeral: dict[str, int]
    errors: dict[str, int]
    fatal: str = ""

    @property
    def ok(self) -> bool:
        return not self.fatal and self.events.lost == 0 and self.events.duplicated == 0


def _latency(values: object, scale: float = 1000.0) -> Latency:
    p = percentiles(v * scale for v in values)  # type: ignore[attr-defined]
    return Latency(
        count=int(p["count"]),
        p50=round(p["p50"], 2),
        p95=round(p["p95"], 2),
        p99=round(p["p99"], 2),
        max=round(p["max"], 2),
    )


def build_report(run: LoadTest, expected: int, got: int, fatal: str) -> Report:
    pool, tracker = run.pool, run.pool.tracker
    errors = dict(pool.errors)
    for kind, n in run.rest.errors.items():
        errors[kind] = errors.get(kind, 0) + n
    closed_early = sum(
        1
        for s in pool.sockets
        if s.is_closed and s.proto.close_rcvd is not None and s.proto.close_rcvd.code != 1000
    )
    return Report(
        url=run.c.url,
        users=run.c.users,
        accounts=len(run.accounts),
        boards=len(run.boards),
        load_seconds=round(run.load_seconds, 2),
        mutations=run.mutations,
        sockets=Sockets(
            attempted=run.c.users if run.accounts and run.boards else 0,
            opened=pool.opened,
            failed=pool.failed,
            closed_by_server=closed_early,
            close_codes={str(k): v for k, v in pool.close_codes.items()},
            joins_ok=run.join_ok,
            joins_failed=run.join_failed,
        ),
        events=Events(
            expected=expected,
            delivered=got,
            lost=max(0, expected - got),
            duplicated=tracker.dups,
            out_of_order=tracker.out_of_order,
            unexpected=tracker.unexpected,
        ),
        delivery_latency_ms=_latency(tracker.latencies),
        rest_latency_ms={route: _latency(v) for route, v in sorted(run.rest.timings.items())},
        ephemeral={"sent": run.ephemeral_sent, "received": pool.other_pushes.get("ephemeral", 0)},
        errors=dict(sorted(errors.items())),
        fatal=fatal,
    )


def render(report: Report) -> str:
    s, e, d = report.sockets, report.events, report.delivery_latency_ms
    lines = [
        f"corkboard loadtest against {report.url}",
        f"  users {report.users} ({report.accounts} accounts) over {report.boards} boards, "
        f"{report.load_seconds}s of load, {report.mutations} card mutations",
        f"  sockets   opened {s.opened}/{s.attempted}, failed {s.failed}, "
        f"closed by server {s.closed_by_server}, joins ok {s.joins_ok} failed {s.joins_failed}",
        f"  events    expected {e.expected}, delivered {e.delivered}, lost {e.lost}, "
        f"duplicated {e.duplicated}, out of order {e.out_of_order}",
        f"  delivery  p50 {d.p50} ms, p95 {d.p95} ms, p99 {d.p99} ms, max {d.max} ms ({d.count} deliveries)",
        f"  ephemeral sent {report.ephemeral['sent']}, received {report.ephemeral['received']}",
        "  REST latency (ms):",
    ]
    for route, lat in report.rest_latency_ms.items():
        lines.append(
            f"    {route:28} n={lat.count:<6} p50 {lat.p50:<7} p95 {lat.p95:<7} "
            f"p99 {lat.p99:<7} max {lat.max}"
        )
    if report.errors:
        lines.append("  errors:")
        lines.extend(f"    {kind}: {n}" for kind, n in report.errors.items())
    if report.fatal:
        lines.append(f"  stopped early: {report.fatal}")
    lines.append("  result: " + ("OK (no loss, no duplicates)" if report.ok else "PROBLEMS (see above)"))
    return "\n".join(lines)
