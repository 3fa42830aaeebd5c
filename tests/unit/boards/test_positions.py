"""Fractional-index keys: strictly between neighbours, byte-ordered, many inserts at one spot."""

from __future__ import annotations

from fractional_indexing import generate_key_between


def test_repeated_inserts_at_one_spot_stay_strictly_ordered():
    left, right = generate_key_between(None, None), None
    right = generate_key_between(left, None)
    keys = [left, right]
    for _ in range(500):
        middle = generate_key_between(keys[0], keys[1])
        assert keys[0] < middle < keys[1]
        keys.insert(1, middle)
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert all(k.isascii() for k in keys)  # byte order == str order
