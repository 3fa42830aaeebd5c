"""Where a server's memory goes: ``tracemalloc`` snapshots of a real ``corkboard serve`` process.

``python -m bench idle --tracemalloc DIR`` starts the server through :func:`serve_traced` and
signals it (``SIGUSR1``) before the first socket and after the last join. The first signal starts
tracing Python's allocations (8 frames deep; tracing the start-up too would slow it past the
bench's deadline); each signal writes ``DIR/<n>.snap`` (a ``tracemalloc`` snapshot) and
``DIR/<n>.types.json`` (live objects counted by type, from ``gc``). ``python -m bench.memory
BEFORE AFTER --per N`` then prints what grew, in bytes per socket, by allocating line, by
traceback and by type.

Tracing makes the server slower and bigger; the RSS figures of the idle scenario come from runs
without it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

ENV = "BENCH_TRACEMALLOC"


def _dump(signum: int, frame: FrameType | None) -> None:
    out = Path(os.environ[ENV])
    out.mkdir(parents=True, exist_ok=True)
    n = len(list(out.glob("*.snap")))
    if not tracemalloc.is_tracing():
        tracemalloc.start(8)
    gc.collect()
    types = Counter(type(o).__qualname__ for o in gc.get_objects())
    (out / f"{n}.types.json").write_text(json.dumps(dict(types.most_common(400))))
    tracemalloc.take_snapshot().dump(str(out / f"{n}.snap"))
    (out / f"{n}.done").touch()


def serve_traced() -> None:
    """``python -m bench.memory serve ...``: ``corkboard`` with tracing and the snapshot signal."""
    signal.signal(signal.SIGUSR1, _dump)
    sys.argv = ["corkboard", *sys.argv[1:]]
    from server.cli import main

    main()


def report(before: Path, after: Path, per: int, top: int) -> str:
    a = tracemalloc.Snapshot.load(str(before))
    b = tracemalloc.Snapshot.load(str(after))
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    a, b = a.filter_traces(filters), b.filter_traces(filters)
    lines = []
    total = sum(s.size_diff for s in b.compare_to(a, "filename"))
    lines.append(f"traced Python heap grew {total / 1024:.0f} KiB = {total / per:.0f} B per socket")
    lines.append("\nby line (B per socket, allocations per socket):")
    for stat in b.compare_to(a, "lineno")[:top]:
        frame = stat.traceback[0]
        lines.append(
            f"{stat.size_diff / per:8.0f} {stat.count_diff / per:6.2f}  "
            f"{'/'.join(frame.filename.split('/')[-3:])}:{frame.lineno}"
        )
    lines.append("\nby traceback, largest (B per socket):")
    for stat in b.compare_to(a, "traceback")[: top // 2]:
        lines.append(f"{stat.size_diff / per:8.0f} {stat.count_diff / per:6.2f}")
        for frame in stat.traceback.format()[-8:]:
            lines.append("           " + frame.strip())
    ta = json.loads(before.with_suffix(".types.json").read_text())
    tb = json.loads(after.with_suffix(".types.json").read_text())
    grew = sorted(((tb[k] - ta.get(k, 0)) / per, k) for k in tb)
    lines.append("\nlive objects per socket, by type:")
    for count, name in reversed(grew[-top:]):
        if count >= 0.5:
            lines.append(f"{count:8.2f}  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "serve":
        serve_traced()
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--per", type=int, default=1, help="divide by this many sockets")
    parser.add_argument("--top", type=int, default=30)
    ns = parser.parse_args(args)
    print(report(ns.before, ns.after, ns.per, ns.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
