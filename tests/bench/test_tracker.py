from __future__ import annotations

from server.loadtest.tracker import Subscription, Tracker, percentiles


def test_tracker_counts_loss_duplicates_and_order() -> None:
    t = Tracker()
    sub = Subscription("1", "board:x", base=10)
    for seq in (11, 12, 12, 14, 13, 9):
        t.record(sub, seq, "2026-11-21T10:00:00.000000Z", 1_795_255_200.5)
    assert t.unique == 4
    assert t.dups == 1
    assert t.out_of_order == 1
    assert t.unexpected == 1  # seq 9 is before the join
    assert Tracker.expected([sub], {"board:x": 15}) == (5, 4)  # 15 never came
    assert len(t.latencies) == 4


def test_subscription_without_base_counts_unexpected() -> None:
    t = Tracker()
    sub = Subscription("1", "board:x")
    t.record(sub, 1, "", 0.0)
    sub.start(0)
    t.record(sub, 1, "", 0.0)
    assert (t.unexpected, t.unique) == (1, 1)


def test_percentiles_nearest_rank() -> None:
    p = percentiles(range(1, 101))
    assert (p["p50"], p["p95"], p["p99"], p["max"], p["count"]) == (50, 95, 99, 100, 100)
    assert percentiles([])["p99"] == 0.0
