"""``--create-views``: per migrated table, a view ``<table>_encrypted`` with each encrypted
column in place of (and named like) its plaintext column, for SQL readers that must stop
seeing plaintext."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import truncate_name

from .pairs import (
    MigrationPair,
    MigrationStepError,
    by_table,
    pending_rows,
    require_columns,
    select_pairs,
    table_columns,
)


class NotMigrated(MigrationStepError):
    """Rows are still unencrypted, so a view would show them as NULL."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        listed = ", ".join(f"{label} ({count})" for label, count in counts.items())
        super().__init__(f"rows not migrated yet: {listed}")


@dataclass
class CreatedView:
    table: str
    view: str
    columns: list[str]  # the view's column names


def view_name(table: str, connection: BaseDatabaseWrapper) -> str:
    return truncate_name(f"{table}_encrypted", connection.ops.max_name_length())


def create_views(table: str | None = None) -> list[CreatedView]:
    """Create (or replace) the views; refused while rows are left to migrate."""
    pairs = select_pairs(table)
    require_columns(pairs)
    tables = by_table(pairs)
    counts = {
        pair.label: left
        for pair in pairs
        if (left := _unmigrated(pair, table_columns(pair.connection, pair.table) or []))
    }
    if counts:
        raise NotMigrated(counts)
    return [_create_view(group) for group in tables.values()]


def _unmigrated(pair: MigrationPair, columns: list[str]) -> int:
    if pair.source_column not in columns:
        return 0
    return pending_rows(pair).count()


def view_select(group: list[MigrationPair], columns: list[str]) -> list[tuple[str, str]]:
    """(expression column, view column) pairs in the table's column order."""
    replaced = {pair.source_column: pair.column for pair in group}
    encrypted = {pair.column: pair.source_column for pair in group}
    selected = []
    for column in columns:
        if column in replaced:
            selected.append((replaced[column], column))
        elif column in encrypted:
            if encrypted[column] not in columns:  # the plaintext column is already dropped
                selected.append((column, encrypted[column]))
        else:
            selected.append((column, column))
    return selected


def _create_view(group: list[MigrationPair]) -> CreatedView:
    pair = group[0]
    connection = pair.connection
    qn = connection.ops.quote_name
    columns = table_columns(connection, pair.table) or []
    selected = view_select(group, columns)
    select = ", ".join(
        qn(source) if source == name else f"{qn(source)} AS {qn(name)}" for source, name in selected
    )
    name = view_name(pair.table, connection)
    query = f"SELECT {select} FROM {qn(pair.table)}"  # noqa: S608
    with transaction.atomic(using=pair.using), connection.cursor() as cursor:
        # PostgreSQL forgets the grants on a view it drops; CREATE OR REPLACE keeps them
        # (while the columns stay the same). MySQL/MariaDB keep grants across DROP VIEW.
        replaced = connection.vendor == "postgresql" and _create_or_replace(
            pair.using, cursor, qn(name), query
        )
        if not replaced:
            cursor.execute(f"DROP VIEW IF EXISTS {qn(name)}")
            cursor.execute(f"CREATE VIEW {qn(name)} AS {query}")
    return CreatedView(pair.table, name, [view_column for _, view_column in selected])


def _create_or_replace(using: str, cursor: Any, name: str, query: str) -> bool:
    try:
        with transaction.atomic(using=using):
            cursor.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")
    except DatabaseError:
        return False
    return True


def drop_views(pairs: list[MigrationPair]) -> list[str]:
    """Drop the views of these pairs' tables; returns the tables whose view existed."""
    dropped = []
    for table, group in by_table(pairs).items():
        connection = group[0].connection
        name = view_name(table, connection)
        with connection.cursor() as cursor:
            exists = name in connection.introspection.table_names(cursor, include_views=True)
            if exists:
                cursor.execute(f"DROP VIEW {connection.ops.quote_name(name)}")
                dropped.append(table)
    return dropped
