"""Jittered card keys (server/boards/positions.py): inside the gap, valid, and distinct."""

from __future__ import annotations

from fractional_indexing import generate_key_between, validate_order_key

from server.boards.positions import jittered


def test_jittered_keys_stay_in_the_gap_and_are_valid_keys() -> None:
    for lower, upper in [(None, None), ("a0", None), ("a0", "a1"), ("a0", "a0V"), (None, "a0"), ("Zz", "a0")]:
        key = generate_key_between(lower, upper)
        for _ in range(200):
            out = jittered(key, upper)
            validate_order_key(out)
            assert lower is None or lower < out
            assert upper is None or out < upper
            # later keys can still be made on either side of it
            assert out < generate_key_between(out, upper)
            assert generate_key_between(lower, out) < out


def test_concurrent_writers_in_one_gap_get_different_keys() -> None:
    key = generate_key_between("a0", "a1")
    keys = {jittered(key, "a1") for _ in range(50)}
    assert len(keys) >= 49  # 62**3 suffixes: a repeat among 50 is rare, and the constraint catches it


def test_no_suffix_fits_when_upper_extends_the_key() -> None:
    # upper = key + "0…1": every suffix sorts above it, so the key is returned as is
    assert jittered("a0", "a0001") == "a0"
