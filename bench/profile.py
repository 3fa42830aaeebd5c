"""Summarise py-spy collapsed stacks (``--format raw``): where the samples are, by function.

``python -m bench.profile FILE [--top N]`` prints self time per function (the leaf of each
stack) and inclusive time per function, as shares of all samples. Idle samples (the event loop
waiting in ``select``/``epoll``) are counted apart so the shares are of busy time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>.*?)(?::\d+)?\)$")
IDLE = ("select (selectors.py", "_run_once (asyncio/base_events.py", "run_forever (asyncio/base_events.py")


def _name(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    short = "/".join(path.split("/")[-2:])
    return f"{m.group('fn')} ({short})"


def summarise(path: Path, top: int = 25) -> str:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        leaf = frames[-1]
        total += n
        if any(leaf.startswith(i) for i in IDLE) or leaf.startswith("Runner.run (asyncio/runners.py"):
            idle += n
            continue
        self_time[_name(leaf)] += n
        for name in {_name(f) for f in frames}:
            inclusive[name] += n
    busy = max(1, total - idle)
    out = [f"{path.name}: {total} samples, {total - idle} busy (leaf not the idle loop)", "self time:"]
    out += [f"  {n / busy * 100:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    out.append("inclusive:")
    out += [f"  {n / busy * 100:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for f in args.files:
        print(summarise(f, args.top))


if __name__ == "__main__":
    main()
