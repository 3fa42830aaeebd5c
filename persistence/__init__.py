"""Persistence: models, repositories, services and the per-board event log."""
