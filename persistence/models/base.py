"""Declarative base: UUID v7 primary keys, ``created_at`` / ``updated_at`` from advanced-alchemy."""

from __future__ import annotations

from advanced_alchemy.base import UUIDv7AuditBase, orm_registry
from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

metadata = orm_registry.metadata


class Base(UUIDv7AuditBase):
    """Every table: ``id`` (UUID v7), ``created_at``, ``updated_at`` (UTC)."""

    __abstract__ = True


class VersionedMixin:
    """Optimistic concurrency: ``version`` starts at 1 and rises by one on every change."""

    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
