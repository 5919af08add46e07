"""``--migrate-data``: encrypt the plaintext columns into their encrypted twins, in batches.

Which rows are pending is read from the data itself (plaintext set, encrypted column
NULL), so a run that was killed simply runs again, and several workers can share a table:
each batch locks the rows it takes and the others skip them. All the migrated columns of
a table are done in one pass, so a row is rewritten once, however many columns it has.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Count, ExpressionWrapper
from django.utils import timezone

from . import encryption, failures, writers
from .pairs import (
    MigrationPair,
    has_plaintext_column,
    pending_condition,
    require_columns,
    select_pairs,
)

DEFAULT_BATCH_SIZE = 1000


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
        # With retry_failed, a row recorded again since this run began is not tried twice.
        self.known_failures = failures.KnownFailures(
            pairs, since=timezone.now() if retry_failed else None
        )
        # Where each pair's plaintext sits in a selected row (two pairs may share one).
        sources = list(dict.fromkeys(pair.source.attname for pair in pairs))
        self.source_index = [1 + sources.index(pair.source.attname) for pair in pairs]
        self.flag_index = [1 + len(sources) + i for i in range(len(pairs))]
        self.rows_query = self._rows_query(sources)
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
        known = {} if self.retry_failed else failures.failed_counts(self.pairs)
        return [
            max(counts[f"pending_{i}"] - known.get(pair.column, 0), 0)
            for i, pair in enumerate(self.pairs)
        ]

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
            failures.forget_resolved_failures(pair)
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
        skip = self.known_failures.among([row[0] for row in selected])
        outcomes = []
        sealed: list[dict[Any, str]] = []  # per pair: pk -> ciphertext
        for i, pair in enumerate(self.pairs):
            value_at, flag_at = self.source_index[i], self.flag_index[i]
            rows = [
                (row[0], row[value_at])
                for row in selected
                if row[flag_at] and (not skip or (i, row[0]) not in skip)
            ]
            encrypted, failed = encryption.encrypt_rows(pair, rows, self.connection)
            sealed.append(dict(encrypted))
            outcomes.append(_ColumnOutcome(sent=len(encrypted), failures=failed))
        for key, pks in _write_groups(selected, sealed).items():
            values = [[sealed[i][pk] for pk in pks] for i in key]
            pairs = [self.pairs[i] for i in key]
            counts = writers.write_columns(pairs, pks, values, self.connection)
            for i, written in zip(key, counts, strict=True):
                outcomes[i].written += written
        for pair, outcome, stored in zip(self.pairs, outcomes, sealed, strict=True):
            if outcome.failures:
                failures.record_failures(pair, outcome.failures)
            if self.retry_failed:
                failures.clear_failures(pair, stored)
        return outcomes


def _write_groups(
    selected: list[tuple[Any, ...]], sealed: list[dict[Any, str]]
) -> dict[tuple[int, ...], list[Any]]:
    """The rows to write, grouped by which columns (pair indexes) each has a value for."""
    # Rows usually need every column; those that do not (a value failed, or dual
    # write got there first) are written by a statement of their own.
    groups: dict[tuple[int, ...], list[Any]] = {}
    if all(stored.keys() == sealed[0].keys() for stored in sealed[1:]):
        if sealed[0]:
            groups[tuple(range(len(sealed)))] = list(sealed[0])
        return groups
    for row in selected:
        pk = row[0]
        key = tuple(i for i, stored in enumerate(sealed) if pk in stored)
        if key:
            groups.setdefault(key, []).append(pk)
    return groups


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
