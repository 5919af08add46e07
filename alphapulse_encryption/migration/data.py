"""``--migrate-data``: encrypt the plaintext columns into their encrypted twins, in batches.

Which rows are pending is read from the data itself (plaintext set, encrypted column
NULL), so a run that was killed simply runs again, and several workers can share a table:
each batch locks the rows it takes and the others skip them. All the migrated columns of
a table are done in one pass, so a row is rewritten once, however many columns it has.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.utils import timezone

from ..crypto import looks_like_envelope
from ..crypto.cipher import split_searchable
from .models import EncryptionMigrationFailure
from .pairs import MigrationPair, has_plaintext_column, require_columns, select_pairs

DEFAULT_BATCH_SIZE = 1000
# Rows per UPDATE ... CASE statement, and the most parameters one may carry: under every
# backend's limit (SQLite: 32766) whatever --batch-size and the number of columns are.
_ROWS_PER_STATEMENT = 500
_PARAMS_PER_STATEMENT = 30_000
# What converting or encrypting a bad value raises; anything else (a missing key, a lost
# connection) stops the run instead of being recorded against every row.
_VALUE_ERRORS = (ValidationError, ValueError, TypeError, ArithmeticError)


@dataclass
class MigrateProgress:
    """How far one column has got; handed to ``on_batch`` after every batch that
    encrypted or recorded a value of this column."""

    label: str  # table.column
    pending: int  # rows to migrate when the run began (other workers take some)
    migrated: int = 0
    failed: int = 0
    # Rows another writer encrypted between our read and our write (none where rows lock).
    skipped: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)  # first few (pk, error)

    @property
    def done(self) -> int:
        return self.migrated + self.failed + self.skipped

    @property
    def elapsed(self) -> float:
        end = time.monotonic() if self.finished is None else self.finished
        return end - self.started

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, if a rate is known."""
        rate = self.rate
        if not rate:
            return None
        return max(self.pending - self.done, 0) / rate


def migrate_data(
    table: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    retry_failed: bool = False,
    on_batch: Callable[[MigrateProgress], None] | None = None,
) -> list[MigrateProgress]:
    """Encrypt every pending row of every migrated column (or of one table's columns).

    Returns one progress per column. Rows recorded as failed are skipped unless
    ``retry_failed``; then each is tried once more in this run.
    """
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    pairs = select_pairs(table)
    require_columns(pairs)
    by_model: dict[type[models.Model], list[MigrationPair]] = {}
    for pair in pairs:
        if has_plaintext_column(pair):  # else already dropped: nothing left to migrate
            by_model.setdefault(pair.model, []).append(pair)
    results = []
    for model_pairs in by_model.values():
        results.extend(_TableRun(model_pairs, batch_size, retry_failed, on_batch).run())
    return results


def pending_condition(pair: MigrationPair) -> Q:
    """Plaintext set, encrypted column still NULL."""
    return Q(**{f"{pair.source.name}__isnull": False, f"{pair.field.name}__isnull": True})


def pending_rows(pair: MigrationPair) -> models.QuerySet[Any]:
    """Rows whose plaintext is set and whose encrypted column is still NULL."""
    return pair.model._base_manager.using(pair.using).filter(pending_condition(pair))


def failure_records(pair: MigrationPair) -> models.QuerySet[EncryptionMigrationFailure]:
    return EncryptionMigrationFailure.objects.using(pair.using).filter(
        table_name=pair.table, column_name=pair.column
    )


def pk_text(pair: MigrationPair, pk: Any) -> str:
    """The primary key as the failure table stores it (as the database spells it)."""
    pk_field = pair.model._meta.pk
    assert pk_field is not None
    return str(pk_field.get_db_prep_value(pk, pair.connection))


class _TableRun:
    """One pass over a table that migrates all of its pending columns together: each
    batch selects the rows where any column is pending, encrypts every pending value,
    and writes them back with one UPDATE."""

    def __init__(
        self,
        pairs: list[MigrationPair],
        batch_size: int,
        retry_failed: bool,
        on_batch: Callable[[MigrateProgress], None] | None,
    ) -> None:
        self.pairs = pairs
        self.using = pairs[0].using
        self.connection = pairs[0].connection
        self.batch_size = batch_size
        self.retry_failed = retry_failed
        self.on_batch = on_batch
        self.started_at = timezone.now()
        # Where each pair's plaintext sits in a selected row (two pairs may share one).
        sources = list(dict.fromkeys(pair.source.attname for pair in pairs))
        self.source_index = [1 + sources.index(pair.source.attname) for pair in pairs]
        self.flag_index = [1 + len(sources) + i for i in range(len(pairs))]
        self.rows_query = self._rows_query(sources)
        # Asked every batch, so compiled once.
        probe = self._failure_records().values_list("pk")[:1].query
        self.any_failure_sql = probe.get_compiler(self.using).as_sql()
        self.progress = [
            MigrateProgress(pair.label, pending=pending)
            for pair, pending in zip(pairs, self._pending_counts(), strict=True)
        ]

    def _rows_query(self, sources: list[str]) -> models.QuerySet[Any]:
        conditions = [pending_condition(pair) for pair in self.pairs]
        # Which columns of a row are pending, as the database sees it under the row lock
        # (a JSON null is pending: SQL NULL is not, though both load as None).
        flags = {
            f"_pending_{i}": ExpressionWrapper(condition, output_field=BooleanField())
            for i, condition in enumerate(conditions)
        }
        query = (
            self.pairs[0]
            .model._base_manager.using(self.using)
            .filter(reduce(operator.or_, conditions))
            .annotate(**flags)
            .order_by("pk")
        )
        features = self.connection.features
        # NO KEY UPDATE where there is one (PostgreSQL): it blocks what our UPDATE would
        # block and no more, so the application can still insert rows that reference these.
        no_key = features.has_select_for_no_key_update
        if features.has_select_for_update_skip_locked:
            query = query.select_for_update(skip_locked=True, no_key=no_key)
        elif features.has_select_for_update:
            query = query.select_for_update(no_key=no_key)  # waits instead of skipping
        return query.values_list("pk", *sources, *flags)

    def _pending_counts(self) -> list[int]:
        model = self.pairs[0].model
        counts = model._base_manager.using(self.using).aggregate(
            **{
                f"pending_{i}": Count("pk", filter=pending_condition(pair))
                for i, pair in enumerate(self.pairs)
            }
        )
        known: dict[str, int] = {}
        if not self.retry_failed:
            known = dict(
                self._failure_records()
                .values_list("column_name")
                .annotate(n=Count("id"))
                .values_list("column_name", "n")
                .order_by()
            )
        return [
            max(counts[f"pending_{i}"] - known.get(pair.column, 0), 0)
            for i, pair in enumerate(self.pairs)
        ]

    def _failure_records(self) -> models.QuerySet[EncryptionMigrationFailure]:
        return EncryptionMigrationFailure.objects.using(self.using).filter(
            table_name=self.pairs[0].table, column_name__in=[pair.column for pair in self.pairs]
        )

    def run(self) -> list[MigrateProgress]:
        # Sweep in primary-key order until a sweep finds nothing to do: a second sweep picks
        # up rows another worker had locked and then rolled back.
        while True:
            worked = False
            after = None
            while True:
                last_pk, touched = _run_batch(self, after)
                if last_pk is None:
                    break
                after = last_pk
                for progress in touched:
                    worked = True
                    progress.batches += 1
                    if self.on_batch is not None:
                        self.on_batch(progress)
            if not worked:
                break
        for pair in self.pairs:
            _forget_resolved_failures(pair)
        finished = time.monotonic()
        for progress in self.progress:
            progress.finished = finished
        return self.progress

    def begin_batch(self, outermost: bool) -> None:
        """First thing in a batch's transaction."""
        connection = self.connection
        if not connection.features.has_select_for_update:
            _take_write_lock(self.pairs[0], connection)
        if outermost and connection.vendor == "postgresql":
            # A batch lost in a server crash is pending again (the run resumes from the
            # data), so its commit need not wait for the WAL flush; SET LOCAL ends with
            # the transaction. Not inside a caller's transaction: it would cover theirs.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")

    def migrate_rows(self, selected: list[tuple[Any, ...]]) -> list[_ColumnOutcome]:
        """Encrypt and write the pending values of the selected (locked) rows."""
        connection = self.connection
        skip = self._known_failures(selected)
        outcomes = []
        sealed: list[dict[Any, str]] = []  # per pair: pk -> ciphertext
        for i, pair in enumerate(self.pairs):
            value_at, flag_at = self.source_index[i], self.flag_index[i]
            rows = [
                (row[0], row[value_at])
                for row in selected
                if row[flag_at] and (not skip or (i, row[0]) not in skip)
            ]
            encrypted, failures = _encrypt(pair, rows, connection)
            sealed.append(dict(encrypted))
            outcomes.append(_ColumnOutcome(sent=len(encrypted), failures=failures))
        # Rows usually need every column; those that do not (a value failed, or dual
        # write got there first) are written by a statement of their own.
        groups: dict[tuple[int, ...], list[Any]] = {}  # pair indexes -> pks
        if all(stored.keys() == sealed[0].keys() for stored in sealed[1:]):
            if sealed[0]:
                groups[tuple(range(len(sealed)))] = list(sealed[0])
        else:
            for row in selected:
                pk = row[0]
                key = tuple(i for i, stored in enumerate(sealed) if pk in stored)
                if key:
                    groups.setdefault(key, []).append(pk)
        for key, pks in groups.items():
            values = [[sealed[i][pk] for pk in pks] for i in key]
            counts = _write_columns([self.pairs[i] for i in key], pks, values, connection)
            for i, written in zip(key, counts, strict=True):
                outcomes[i].written += written
        for pair, outcome in zip(self.pairs, outcomes, strict=True):
            if outcome.failures:
                _record_failures(pair, outcome.failures)
        if self.retry_failed:
            for pair, stored in zip(self.pairs, sealed, strict=True):
                if stored:
                    done = [pk_text(pair, pk) for pk in stored]
                    failure_records(pair).filter(row_pk__in=done).delete()
        return outcomes

    def _known_failures(self, selected: list[tuple[Any, ...]]) -> set[tuple[int, Any]]:
        """(pair index, pk) of the selected rows' recorded failures to leave alone."""
        # Asked after the rows are locked: a failure another worker recorded for one of them
        # is committed with the row, so it is seen here.
        with self.connection.cursor() as cursor:
            cursor.execute(*self.any_failure_sql)
            if cursor.fetchone() is None:
                return set()
        records = self._failure_records()
        texts = {pk_text(self.pairs[0], row[0]): row[0] for row in selected}
        recorded = records.filter(row_pk__in=list(texts))
        if self.retry_failed:
            recorded = recorded.filter(updated_at__gte=self.started_at)  # failed again now
        index = {pair.column: i for i, pair in enumerate(self.pairs)}
        return {
            (index[column], texts[text])
            for column, text in recorded.values_list("column_name", "row_pk")
        }


@dataclass
class _ColumnOutcome:
    """What one batch did for one column."""

    sent: int  # values encrypted and sent to the database
    failures: list[tuple[Any, str]]
    written: int = 0


def _run_batch(run: _TableRun, after: Any) -> tuple[Any, list[MigrateProgress]]:
    """Encrypt the next batch after ``after`` in one transaction.

    Returns the batch's last primary key (``None`` at the end of the table) and the
    progress of each column for which the batch encrypted or recorded anything.
    """
    # Outermost: not inside a transaction of the caller (atomic, or autocommit turned off).
    outermost = not run.connection.in_atomic_block and run.connection.get_autocommit()
    with transaction.atomic(using=run.using):
        run.begin_batch(outermost)
        rows_query = run.rows_query if after is None else run.rows_query.filter(pk__gt=after)
        selected = list(rows_query[: run.batch_size])
        if not selected:
            return None, []
        outcomes = run.migrate_rows(selected)
    touched = []
    for progress, outcome in zip(run.progress, outcomes, strict=True):
        progress.migrated += outcome.written
        progress.skipped += outcome.sent - outcome.written
        progress.failed += len(outcome.failures)
        progress.failures.extend(outcome.failures[: max(0, 20 - len(progress.failures))])
        if outcome.sent or outcome.failures:
            touched.append(progress)
    return selected[-1][0], touched


def _take_write_lock(pair: MigrationPair, connection: BaseDatabaseWrapper) -> None:
    # Without row locks (SQLite), a write statement first thing in the transaction takes
    # the database's single write lock, so no other writer changes a row between our
    # read and our write; workers and the application take turns batch by batch.
    qn = connection.ops.quote_name
    column = qn(pair.column)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {qn(pair.table)} SET {column} = {column} WHERE 1 = 0")  # noqa: S608


def _encrypt(
    pair: MigrationPair, rows: Iterable[tuple[Any, Any]], connection: BaseDatabaseWrapper
) -> tuple[list[tuple[Any, str]], list[tuple[Any, str]]]:
    """(pk, ciphertext) for the rows that convert and encrypt, (pk, error) for the rest."""
    field_ = pair.field
    to_python, get_prep_value = field_.to_python, field_.get_prep_value
    converted: list[tuple[Any, Any, Any]] = []  # (pk, value to encrypt, plaintext)
    failures = []
    for pk, plaintext in rows:
        if isinstance(plaintext, str) and looks_like_envelope(split_searchable(plaintext)[1]):
            # Encrypting it would bury the ciphertext under a second layer.
            failures.append((pk, "the plaintext column already holds an encrypted value"))
            continue
        try:
            # What field.mirror_value() and then saving do, keeping the error message.
            value = to_python(plaintext)
            if value is not None:
                value = get_prep_value(value)
        except _VALUE_ERRORS as exc:
            failures.append((pk, _error_text(exc, plaintext)))
            continue
        if value is None:
            failures.append((pk, f"the value converts to NULL for {type(field_).__name__}"))
        else:
            converted.append((pk, value, plaintext))
    if not converted:
        return [], failures
    try:
        # No value is None here, so neither is any result.
        sealed = cast(list[str], field_.encrypt_many([value for _, value, _ in converted]))
    except _VALUE_ERRORS:
        # One value the cipher refuses (too large, say) fails the batch call: find it.
        encrypted = []
        for pk, value, plaintext in converted:
            try:
                encrypted.append((pk, field_.encrypt(value)))
            except _VALUE_ERRORS as exc:
                failures.append((pk, _error_text(exc, plaintext)))
        return encrypted, failures
    return [(pk, stored) for (pk, _, _), stored in zip(converted, sealed, strict=True)], failures


def _error_text(exc: Exception, plaintext: Any) -> str:
    text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    # Keep the plaintext out of the failure table: it outlives the plaintext column.
    if isinstance(plaintext, str | int | float) and str(plaintext):
        text = text.replace(str(plaintext), "<value>")
    return f"{type(exc).__name__}: {text}"[:1000]


def _write_columns(
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
    if connection.vendor == "postgresql":
        return _write_unnest(pairs, pks, values, connection)
    return _write_case(pairs, pks, values, connection)


def _sql_names(
    pairs: Sequence[MigrationPair], connection: BaseDatabaseWrapper
) -> tuple[models.Field[Any, Any], str, str, list[str]]:
    """The primary key field, and the quoted table, primary-key and encrypted column names."""
    qn = connection.ops.quote_name
    pk_field = pairs[0].model._meta.pk
    assert pk_field is not None
    columns = [qn(pair.column) for pair in pairs]
    return pk_field, qn(pairs[0].table), qn(str(pk_field.column)), columns


def _write_unnest(
    pairs: Sequence[MigrationPair],
    pks: list[Any],
    values: list[list[str]],
    connection: BaseDatabaseWrapper,
) -> int:
    pk_field, table, pk_column, columns = _sql_names(pairs, connection)
    pk_type = f"{pk_field.rel_db_type(connection)}[]"
    db_pks = [pk_field.get_db_prep_value(pk, connection) for pk in pks]
    joined = [_joined([str(pk) for pk in db_pks]), *(_joined(column) for column in values)]
    if None not in joined:
        # One comma-separated text per column, split by the server: the driver quotes a
        # string in one call, where an array costs it a call per element (most of the
        # time of the write, measured).
        params: list[Any] = joined
        arrays = [f"string_to_array(%s, ',')::{pk_type}"]
        arrays += ["string_to_array(%s, ',')"] * len(columns)
    else:
        params = [db_pks, *values]
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


def _write_case(
    pairs: Sequence[MigrationPair],
    pks: list[Any],
    values: list[list[str]],
    connection: BaseDatabaseWrapper,
) -> int:
    pk_field, table, pk_column, columns = _sql_names(pairs, connection)
    per_statement = min(_ROWS_PER_STATEMENT, _PARAMS_PER_STATEMENT // (2 * len(columns) + 1))
    guards = " AND ".join(f"{column} IS NULL" for column in columns)
    db_pks = [pk_field.get_db_prep_value(pk, connection) for pk in pks]
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


def _record_failures(pair: MigrationPair, failures: list[tuple[Any, str]]) -> None:
    now = timezone.now()
    records = failure_records(pair)
    for pk, error in failures:
        text = pk_text(pair, pk)
        updated = records.filter(row_pk=text).update(
            error=error, attempts=models.F("attempts") + 1, updated_at=now
        )
        if not updated:
            EncryptionMigrationFailure.objects.using(pair.using).create(
                app_label=pair.model._meta.app_label,
                model_name=pair.model_name,
                table_name=pair.table,
                column_name=pair.column,
                source_column_name=pair.source_column,
                row_pk=text,
                error=error,
                created_at=now,
                updated_at=now,
            )


def _forget_resolved_failures(pair: MigrationPair, chunk: int = 1000) -> None:
    """Delete failure records of rows that are no longer pending (fixed, deleted, or
    encrypted through dual write)."""
    last_id = 0
    while True:
        records = list(
            failure_records(pair)
            .filter(id__gt=last_id)
            .order_by("id")
            .values_list("id", "row_pk")[:chunk]
        )
        if not records:
            return
        last_id = records[-1][0]
        pks = {text: record_id for record_id, text in records}
        still_pending = {
            pk_text(pair, pk)
            for pk in pending_rows(pair)
            .filter(pk__in=[_pk_from_text(pair, t) for t in pks])
            .values_list("pk", flat=True)
        }
        resolved = [record_id for text, record_id in pks.items() if text not in still_pending]
        if resolved:
            EncryptionMigrationFailure.objects.using(pair.using).filter(id__in=resolved).delete()


def _pk_from_text(pair: MigrationPair, text: str) -> Any:
    pk_field = pair.model._meta.pk
    assert pk_field is not None
    return pk_field.to_python(text)
