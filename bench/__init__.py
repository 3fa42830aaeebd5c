"""Benchmarks: one command per scenario (``python -m bench --help``); figures in bench/RESULTS.md."""
