"""Database failures injected in the middle of a batch, through Django's execute wrappers:
just before the n-th UPDATE of a table, the connection is dropped by the server, a
statement times out, or the database reports that it is full."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from django.db import OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

# Run just before the chosen statement; may raise, or return a cleanup run after it.
Action = Callable[[BaseDatabaseWrapper], Callable[[], None] | None]


class Injector:
    """``with connection.execute_wrapper(Injector(table, 3, action)):`` runs ``action``
    before the third UPDATE of ``table``."""

    def __init__(self, table: str, nth: int, action: Action) -> None:
        self.table = table
        self.nth = nth
        self.action = action
        self.seen = 0
        self.fired = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        connection = context["connection"]
        if (
            sql.lstrip().upper().startswith("UPDATE")
            and connection.ops.quote_name(self.table) in sql
        ):
            self.seen += 1
            if self.seen == self.nth:
                self.fired += 1
                cleanup = self.action(connection)
                try:
                    return execute(sql, params, many, context)
                finally:
                    if cleanup is not None:
                        cleanup()
        return execute(sql, params, many, context)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def drop_connection(connection: BaseDatabaseWrapper) -> None:
    """The server ends our session from another connection (an administrator, a failover,
    a proxy timing out): ``pg_terminate_backend`` / ``KILL CONNECTION``."""
    other = connections.create_connection(connection.alias)
    try:
        with other.cursor() as cursor:
            if connection.vendor == "postgresql":
                pid = connection.connection.info.backend_pid
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

                def gone() -> bool:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                    return cursor.fetchone()[0] == 0
            elif connection.vendor == "mysql":
                thread_id = int(connection.connection.thread_id())
                cursor.execute(f"KILL CONNECTION {thread_id}")

                def gone() -> bool:
                    cursor.execute(
                        "SELECT count(*) FROM information_schema.processlist WHERE id = %s",
                        [thread_id],
                    )
                    return cursor.fetchone()[0] == 0
            else:
                raise AssertionError(f"no server connection to drop on {connection.vendor}")
            _wait_until(gone, "the server has ended the session")
    finally:
        other.close()


def statement_timeout(connection: BaseDatabaseWrapper) -> Callable[[], None] | None:
    """A real timeout from the database: a statement past PostgreSQL's statement_timeout
    or MariaDB's max_statement_time; on SQLite, the write lock held by another connection
    (what a busy database reports instead)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '20ms'")
            cursor.execute("SELECT pg_sleep(1)")
    elif connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SET STATEMENT max_statement_time = 0.02 FOR SELECT SLEEP(1)")
    else:
        other = sqlite3.connect(connection.settings_dict["NAME"], uri=True, timeout=0)
        other.execute("BEGIN IMMEDIATE")

        def release() -> None:
            other.rollback()
            other.close()

        return release
    raise AssertionError("the statement did not time out")


_FULL = {
    "postgresql": 'could not extend file "base/16384/24576": No space left on device',
    "mysql": "(1114, \"The table 'testapp' is full\")",
    "sqlite": "database or disk is full",
}


def disk_full(connection: BaseDatabaseWrapper) -> None:
    """What the database says when its disk is full (raised in place of the statement)."""
    raise OperationalError(_FULL[connection.vendor])


FAULTS: dict[str, Action] = {
    "connection_dropped": drop_connection,
    "statement_timeout": statement_timeout,
    "disk_full": disk_full,
}
