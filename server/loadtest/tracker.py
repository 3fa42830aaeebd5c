"""Per socket and topic: which ``seq`` arrived, how often, and how long after its commit.

A :class:`Subscription` keeps one byte per expected event (``seq - base``), so loss, duplicates
and order are checked exactly, for a few hundred bytes per joined topic. The :class:`Tracker`
holds the latencies of the whole run in one ``array('d')``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from datetime import datetime


class Subscription:
    """One socket's join of one topic. ``base`` is the seq the join started after."""

    __slots__ = (
        "base",
        "bits",
        "delivered",
        "dups",
        "join_ref",
        "last",
        "out_of_order",
        "topic",
        "unexpected",
    )

    def __init__(self, join_ref: str, topic: str, base: int | None = None) -> None:
        self.join_ref = join_ref
        self.topic = topic
        self.base = base
        self.bits = bytearray()
        self.delivered = 0
        self.dups = 0
        self.out_of_order = 0
        self.unexpected = 0
        self.last = base or 0

    def start(self, base: int) -> None:
        if self.base is None:
            self.base = base
            self.last = base

    def unique_upto(self, final_seq: int) -> int:
        """How many distinct seqs in ``(base, final_seq]`` arrived."""
        if self.base is None:
            return 0
        return self.bits[: max(0, final_seq - self.base)].count(1)


def parse_at(text: str) -> float:
    """RFC 3339 (``Z`` or offset) to a POSIX timestamp."""
    return datetime.fromisoformat(text).timestamp()


class Tracker:
    """Counters and latencies across every subscription of a run."""

    def __init__(self) -> None:
        self.latencies = array("d")
        self._at: dict[str, float] = {}
        self.delivered = 0
        self.unique = 0
        self.dups = 0
        self.out_of_order = 0
        self.unexpected = 0
        self.first_receipt = 0.0
        self.last_receipt = 0.0

    def record(self, sub: Subscription, seq: int, at: str, now: float) -> None:
        self.delivered += 1
        self.last_receipt = now
        if not self.first_receipt:
            self.first_receipt = now
        base = sub.base
        if base is None or seq <= base:
            sub.unexpected += 1
            self.unexpected += 1
            return
        i = seq - base - 1
        bits = sub.bits
        if i >= len(bits):
            bits.extend(bytes(i - len(bits) + 64))
        if bits[i]:
            sub.dups += 1
            self.dups += 1
            return
        bits[i] = 1
        sub.delivered += 1
        self.unique += 1
        if seq < sub.last:
            sub.out_of_order += 1
            self.out_of_order += 1
        else:
            sub.last = seq
        if at:
            t = self._at.get(at)
            if t is None:
                if len(self._at) > 100_000:
                    self._at.clear()
                try:
                    t = self._at[at] = parse_at(at)
                except ValueError:
                    return
            self.latencies.append(now - t)

    @staticmethod
    def expected(subs: Iterable[Subscription], final_seq: dict[str, int]) -> tuple[int, int]:
        """(expected, delivered distinct) over ``subs`` given each topic's final seq."""
        expected = got = 0
        for sub in subs:
            final = final_seq.get(sub.topic)
            if final is None or sub.base is None:
                continue
            expected += max(0, final - sub.base)
            got += sub.unique_upto(final)
        return expected, got


def percentiles(values: Iterable[float], points: Iterable[float] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles plus ``max`` and ``count``; empty input gives zeros."""
    data = sorted(values)
    out: dict[str, float] = {}
    n = len(data)
    for p in points:
        key = f"p{p:g}"
        out[key] = data[min(n - 1, max(0, int(-(-p * n // 100)) - 1))] if n else 0.0
    out["max"] = data[-1] if n else 0.0
    out["count"] = float(n)
    return out
