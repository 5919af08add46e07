"""How the commands name a database failure to the user."""

from __future__ import annotations

from django.db import DatabaseError


def database_error(exc: DatabaseError) -> str:
    """The error's type and first line: enough to act on, short of the full statement."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
