"""The rate limiter's arithmetic and its in-memory counter (the Redis counter is exercised by
tests/integration/test_rate_limits.py across two app instances)."""

from __future__ import annotations

import pytest

from server.ratelimit import WINDOW, MemoryCounter, estimate, retry_after


def test_estimate_weights_the_previous_window_by_its_overlap() -> None:
    assert estimate(count=5, previous=0, elapsed=30) == 5
    assert estimate(count=0, previous=10, elapsed=0) == 10
    assert estimate(count=2, previous=10, elapsed=45) == pytest.approx(2 + 10 * 0.25)


@pytest.mark.parametrize(
    ("limit", "count", "previous", "elapsed"),
    [(3, 3, 0, 10.0), (3, 1, 6, 5.0), (1200, 1200, 0, 59.5), (10, 9, 3, 30.0), (20, 2, 40, 1.0)],
)
def test_retry_after_is_when_one_more_request_fits(
    limit: int, count: int, previous: int, elapsed: float
) -> None:
    wait = retry_after(limit, count, previous, elapsed)
    assert 1 <= wait <= 2 * WINDOW

    def fits(at: float) -> bool:  # one more request ``at`` seconds from now, nobody else asking
        moment = elapsed + at
        if moment < WINDOW:
            return estimate(count + 1, previous, moment) <= limit
        if moment < 2 * WINDOW:
            return estimate(1, count, moment - WINDOW) <= limit
        return True

    assert fits(wait)
    assert wait == 1 or not fits(wait - 1.01)  # and not much earlier: the header is not padded


async def test_memory_counter_counts_per_key_and_window_and_forgets_old_windows() -> None:
    counter = MemoryCounter()
    assert await counter.hit("a", 100) == (1, 0)
    assert await counter.hit("a", 100) == (2, 0)
    assert await counter.hit("b", 100) == (1, 0)
    await counter.undo("a", 100)
    assert await counter.hit("a", 101) == (1, 1)
    await counter.hit("a", 103)
    assert set(counter.windows) == {103}  # windows before the previous one are dropped
