"""Retrying a write that SQLite refuses at once because another connection holds its lock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connections

# SQLite reports a lock held by another connection of a shared-cache database (e.g. the
# in-memory test database) at once instead of waiting for its busy timeout.
_SQLITE_LOCK_RETRIES = 400
_SQLITE_LOCK_PAUSE = 0.025

T = TypeVar("T")


def waiting_for_sqlite_locks(using: str, operation: Callable[[], T]) -> T:
    """``operation()``, tried again while SQLite says the database is locked; once on
    other databases, whose own lock waits apply."""
    attempts = _SQLITE_LOCK_RETRIES if connections[using].vendor == "sqlite" else 1
    for attempt in range(attempts):
        try:
            return operation()
        except OperationalError as exc:
            if attempt + 1 == attempts or "locked" not in str(exc):
                raise
            time.sleep(_SQLITE_LOCK_PAUSE)
    raise AssertionError("unreachable")
