"""The writers of ``--migrate-data``: store a batch's ciphertexts in their encrypted
columns with as few statements as the database allows, never over a value already there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from .pairs import MigrationPair

# Rows per UPDATE ... CASE statement, and the most parameters one may carry: under every
# backend's limit (SQLite: 32766) whatever --batch-size and the number of columns are.
_ROWS_PER_STATEMENT = 500
_PARAMS_PER_STATEMENT = 30_000


def write_columns(
    pairs: Sequence[MigrationPair],
    pks: list[Any],
    values: list[list[str]],
    connection: BaseDatabaseWrapper,
) -> list[int]:
    """Store ``values[i][j]`` in ``pairs[i]``'s column of row ``pks[j]``; returns how many
    were written per pair."""
    written = _write(pairs, pks, values, connection)
    if written == len(pks) or len(pairs) == 1:
        return [written] * len(pairs)
    # A row had one of these columns set already, so the statement left it whole. The
    # rows are locked, so only a writer in this very transaction could have done that;
    # still, write its other columns, one by one, and count what was kept.
    return [
        written + _write([pair], pks, [column], connection)
        for pair, column in zip(pairs, values, strict=True)
    ]


def _write(
    pairs: Sequence[MigrationPair],
    pks: list[Any],
    values: list[list[str]],
    connection: BaseDatabaseWrapper,
) -> int:
    """Store ``values[i][j]`` in ``pairs[i]``'s column of row ``pks[j]``, where every one
    of those columns is still NULL (which keeps a value another writer stored meanwhile);
    returns the rows written.

    Measured on PostgreSQL (tests/benchmarks/migrate_benchmark.py): one UPDATE per row
    is the slowest, one UPDATE ... CASE per chunk faster, unnest() of arrays fastest.
    """
    if not pks:
        return 0
    target = _Target.of(pairs, pks, connection)
    if connection.vendor == "postgresql":
        return _write_unnest(target, values, connection)
    return _write_case(target, values, connection)


@dataclass(frozen=True)
class _Target:
    """Where one statement writes: quoted table, primary-key and encrypted column names,
    the primary key's column type, and the rows' primary keys as the database takes them."""

    table: str
    pk_column: str
    pk_type: str
    columns: list[str]
    db_pks: list[Any]

    @classmethod
    def of(
        cls, pairs: Sequence[MigrationPair], pks: list[Any], connection: BaseDatabaseWrapper
    ) -> _Target:
        qn = connection.ops.quote_name
        pk_field = pairs[0].model._meta.pk
        assert pk_field is not None
        return cls(
            table=qn(pairs[0].table),
            pk_column=qn(str(pk_field.column)),
            pk_type=str(pk_field.rel_db_type(connection)),
            columns=[qn(pair.column) for pair in pairs],
            db_pks=[pk_field.get_db_prep_value(pk, connection) for pk in pks],
        )


def _write_unnest(target: _Target, values: list[list[str]], connection: BaseDatabaseWrapper) -> int:
    table, pk_column, columns = target.table, target.pk_column, target.columns
    pk_type = f"{target.pk_type}[]"
    joined = [_joined([str(pk) for pk in target.db_pks]), *(_joined(column) for column in values)]
    if None not in joined:
        # One comma-separated text per column, split by the server: the driver quotes a
        # string in one call, where an array costs it a call per element (most of the
        # time of the write, measured).
        params: list[Any] = joined
        arrays = [f"string_to_array(%s, ',')::{pk_type}"]
        arrays += ["string_to_array(%s, ',')"] * len(columns)
    else:
        params = [target.db_pks, *values]
        arrays = [f"%s::{pk_type}"] + ["%s::text[]"] * len(columns)
    assignments = ", ".join(f"{column} = v.s{i}" for i, column in enumerate(columns))
    names = ", ".join(f"s{i}" for i in range(len(columns)))
    guards = " AND ".join(f"{table}.{column} IS NULL" for column in columns)
    with connection.cursor() as cursor:
        # "= ANY" beside the join lets the planner find the rows through the primary key;
        # without it, it hashes the whole table for every batch (measured).
        cursor.execute(
            f"UPDATE {table} SET {assignments} "  # noqa: S608
            f"FROM unnest({', '.join(arrays)}) AS v(pk, {names}) "
            f"WHERE {table}.{pk_column} = v.pk AND {table}.{pk_column} = ANY({arrays[0]}) "
            f"AND {guards}",
            [*params, params[0]],
        )
        return cursor.rowcount


def _joined(texts: list[str]) -> str | None:
    """The texts joined by commas; ``None`` if one is empty or holds a comma (ciphertexts
    never do: they are ASCII letters, digits, '-', '_' and ':')."""
    joined = ",".join(texts)
    if joined.count(",") != len(texts) - 1 or not all(texts):
        return None
    return joined


def _write_case(target: _Target, values: list[list[str]], connection: BaseDatabaseWrapper) -> int:
    table, pk_column, columns = target.table, target.pk_column, target.columns
    per_statement = min(_ROWS_PER_STATEMENT, _PARAMS_PER_STATEMENT // (2 * len(columns) + 1))
    guards = " AND ".join(f"{column} IS NULL" for column in columns)
    db_pks = target.db_pks
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(db_pks), per_statement):
            chunk = db_pks[start : start + per_statement]
            whens = " ".join(["WHEN %s THEN %s"] * len(chunk))
            assignments = ", ".join(
                f"{column} = CASE {pk_column} {whens} END" for column in columns
            )
            params: list[Any] = []
            for column_values in values:
                for db_pk, stored in zip(
                    chunk, column_values[start : start + per_statement], strict=True
                ):
                    params += [db_pk, stored]
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET {assignments} "  # noqa: S608
                f"WHERE {pk_column} IN ({placeholders}) AND {guards}",
                [*params, *chunk],
            )
            written += cursor.rowcount
    return written
