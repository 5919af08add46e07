"""``--migrate-data``: encrypt the plaintext columns into their encrypted twins, in batches.

Which rows are pending is read from the data itself (plaintext set, encrypted column
NULL), so a run that was killed simply runs again, and several workers can share a table:
each batch locks the rows it takes and the others skip them.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from ..crypto import looks_like_envelope
from ..crypto.cipher import split_searchable
from .models import EncryptionMigrationFailure
from .pairs import MigrationPair, has_plaintext_column, require_columns, select_pairs

DEFAULT_BATCH_SIZE = 1000
# Rows per UPDATE statement: keeps the parameter count under every backend's limit
# (SQLite: 32766) whatever --batch-size is.
_ROWS_PER_STATEMENT = 500
# What converting or encrypting a bad value raises; anything else (a missing key, a lost
# connection) stops the run instead of being recorded against every row.
_VALUE_ERRORS = (ValidationError, ValueError, TypeError, ArithmeticError)


@dataclass
class MigrateProgress:
    """How far one column has got; handed to ``on_batch`` after every batch."""

    label: str  # table.column
    pending: int  # rows to migrate when the run began (other workers take some)
    migrated: int = 0
    failed: int = 0
    # Rows another writer encrypted between our read and our write (none where rows lock).
    skipped: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)
    failures: list[tuple[str, str]] = field(default_factory=list)  # first few (pk, error)

    @property
    def done(self) -> int:
        return self.migrated + self.failed + self.skipped

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

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

    Rows recorded as failed are skipped unless ``retry_failed``; then each is tried once
    more in this run.
    """
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    pairs = select_pairs(table)
    require_columns(pairs)
    results = []
    for pair in pairs:
        if not has_plaintext_column(pair):
            continue  # already dropped: nothing left to migrate
        results.append(_migrate_pair(pair, batch_size, retry_failed, on_batch))
    return results


def pending_rows(pair: MigrationPair) -> models.QuerySet[Any]:
    """Rows whose plaintext is set and whose encrypted column is still NULL."""
    return pair.model._base_manager.using(pair.using).filter(
        **{f"{pair.source.name}__isnull": False, f"{pair.field.name}__isnull": True}
    )


def failure_records(pair: MigrationPair) -> models.QuerySet[EncryptionMigrationFailure]:
    return EncryptionMigrationFailure.objects.using(pair.using).filter(
        table_name=pair.table, column_name=pair.column
    )


def pk_text(pair: MigrationPair, pk: Any) -> str:
    """The primary key as the failure table stores it (as the database spells it)."""
    pk_field = pair.model._meta.pk
    assert pk_field is not None
    return str(pk_field.get_db_prep_value(pk, pair.connection))


def _migrate_pair(
    pair: MigrationPair,
    batch_size: int,
    retry_failed: bool,
    on_batch: Callable[[MigrateProgress], None] | None,
) -> MigrateProgress:
    run_started = timezone.now()
    known_failures = 0 if retry_failed else failure_records(pair).count()
    progress = MigrateProgress(
        pair.label, pending=max(pending_rows(pair).count() - known_failures, 0)
    )
    # Sweep in primary-key order until a sweep finds nothing to do: a second sweep picks
    # up rows another worker had locked and then rolled back.
    while True:
        worked = False
        after = None
        while True:
            last_pk, did = _run_batch(pair, after, batch_size, retry_failed, run_started, progress)
            if last_pk is None:
                break
            after = last_pk
            if did:
                worked = True
                progress.batches += 1
                if on_batch is not None:
                    on_batch(progress)
        if not worked:
            break
    _forget_resolved_failures(pair)
    return progress


def _run_batch(
    pair: MigrationPair,
    after: Any,
    batch_size: int,
    retry_failed: bool,
    run_started: datetime.datetime,
    progress: MigrateProgress,
) -> tuple[Any, bool]:
    """Encrypt the next batch after ``after`` in one transaction.

    Returns the batch's last primary key (``None`` at the end of the table) and whether
    the batch encrypted or recorded anything.
    """
    connection = pair.connection
    features = connection.features
    with transaction.atomic(using=pair.using):
        if not features.has_select_for_update:
            _take_write_lock(pair, connection)
        rows_query = pending_rows(pair).order_by("pk")
        if after is not None:
            rows_query = rows_query.filter(pk__gt=after)
        if features.has_select_for_update_skip_locked:
            rows_query = rows_query.select_for_update(skip_locked=True)
        elif features.has_select_for_update:
            rows_query = rows_query.select_for_update()  # waits instead of skipping
        selected = list(rows_query.values_list("pk", pair.source.attname)[:batch_size])
        if not selected:
            return None, False
        rows = _without_known_failures(pair, selected, retry_failed, run_started)
        encrypted, failures = _encrypt(pair, rows, connection)
        written = _write(pair, encrypted, connection)
        if failures:
            _record_failures(pair, failures)
        if retry_failed and encrypted:
            failure_records(pair).filter(
                row_pk__in=[pk_text(pair, pk) for pk, _ in encrypted]
            ).delete()
    progress.migrated += written
    progress.skipped += len(encrypted) - written
    progress.failed += len(failures)
    progress.failures.extend(failures[: max(0, 20 - len(progress.failures))])
    return selected[-1][0], bool(encrypted or failures)


def _take_write_lock(pair: MigrationPair, connection: BaseDatabaseWrapper) -> None:
    # Without row locks (SQLite), a write statement first thing in the transaction takes
    # the database's single write lock, so no other writer changes a row between our
    # read and our write; workers and the application take turns batch by batch.
    qn = connection.ops.quote_name
    column = qn(pair.column)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {qn(pair.table)} SET {column} = {column} WHERE 1 = 0")  # noqa: S608


def _without_known_failures(
    pair: MigrationPair,
    rows: list[tuple[Any, Any]],
    retry_failed: bool,
    run_started: datetime.datetime,
) -> list[tuple[Any, Any]]:
    # Asked after the rows are locked: a failure another worker recorded for one of them
    # is committed with the row, so it is seen here.
    if not failure_records(pair).exists():
        return rows
    texts = {pk_text(pair, pk): pk for pk, _ in rows}
    recorded = failure_records(pair).filter(row_pk__in=list(texts))
    if retry_failed:
        recorded = recorded.filter(updated_at__gte=run_started)  # failed again in this run
    skip = {texts[text] for text in recorded.values_list("row_pk", flat=True)}
    return [row for row in rows if row[0] not in skip] if skip else rows


def _encrypt(
    pair: MigrationPair, rows: Iterable[tuple[Any, Any]], connection: BaseDatabaseWrapper
) -> tuple[list[tuple[Any, str]], list[tuple[Any, str]]]:
    """(pk, ciphertext) for the rows that convert and encrypt, (pk, error) for the rest."""
    field_ = pair.field
    encrypted, failures = [], []
    for pk, plaintext in rows:
        if isinstance(plaintext, str) and looks_like_envelope(split_searchable(plaintext)[1]):
            # Encrypting it would bury the ciphertext under a second layer.
            failures.append((pk, "the plaintext column already holds an encrypted value"))
            continue
        try:
            # What field.mirror_value() does for dual write, keeping the error message.
            value = field_.to_python(plaintext)
            stored = None if value is None else field_.get_db_prep_save(value, connection)
        except _VALUE_ERRORS as exc:
            failures.append((pk, _error_text(exc, plaintext)))
            continue
        if stored is None:
            failures.append((pk, f"the value converts to NULL for {type(field_).__name__}"))
        else:
            encrypted.append((pk, stored))
    return encrypted, failures


def _error_text(exc: Exception, plaintext: Any) -> str:
    text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    # Keep the plaintext out of the failure table: it outlives the plaintext column.
    if isinstance(plaintext, str | int | float) and str(plaintext):
        text = text.replace(str(plaintext), "<value>")
    return f"{type(exc).__name__}: {text}"[:1000]


def _write(
    pair: MigrationPair, encrypted: list[tuple[Any, str]], connection: BaseDatabaseWrapper
) -> int:
    """Store the ciphertexts; returns the rows written. ``IS NULL`` keeps a value another
    writer stored meanwhile.

    Measured on PostgreSQL (tests/benchmarks/migrate_benchmark.py): one UPDATE per row
    is the slowest, one UPDATE ... CASE per chunk faster, unnest() of two arrays fastest.
    """
    if not encrypted:
        return 0
    if connection.vendor == "postgresql":
        return _write_unnest(pair, encrypted, connection)
    return _write_case(pair, encrypted, connection)


def _sql_names(
    pair: MigrationPair, connection: BaseDatabaseWrapper
) -> tuple[models.Field[Any, Any], str, str, str]:
    """The primary key field, and the quoted table, primary-key and encrypted column names."""
    qn = connection.ops.quote_name
    pk_field = pair.model._meta.pk
    assert pk_field is not None
    return pk_field, qn(pair.table), qn(str(pk_field.column)), qn(pair.column)


def _write_unnest(
    pair: MigrationPair, encrypted: list[tuple[Any, str]], connection: BaseDatabaseWrapper
) -> int:
    pk_field, table, pk_column, column = _sql_names(pair, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = v.stored "  # noqa: S608
            f"FROM unnest(%s::{pk_field.rel_db_type(connection)}[], %s::text[]) "
            f"AS v(pk, stored) WHERE {table}.{pk_column} = v.pk AND {table}.{column} IS NULL",
            [
                [pk_field.get_db_prep_value(pk, connection) for pk, _ in encrypted],
                [stored for _, stored in encrypted],
            ],
        )
        return cursor.rowcount


def _write_case(
    pair: MigrationPair, encrypted: list[tuple[Any, str]], connection: BaseDatabaseWrapper
) -> int:
    pk_field, table, pk_column, column = _sql_names(pair, connection)
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(encrypted), _ROWS_PER_STATEMENT):
            chunk = encrypted[start : start + _ROWS_PER_STATEMENT]
            pks = [pk_field.get_db_prep_value(pk, connection) for pk, _ in chunk]
            params: list[Any] = []
            for db_pk, (_, stored) in zip(pks, chunk, strict=True):
                params += [db_pk, stored]
            whens = " ".join(["WHEN %s THEN %s"] * len(chunk))
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET {column} = CASE {pk_column} {whens} END "  # noqa: S608
                f"WHERE {pk_column} IN ({placeholders}) AND {column} IS NULL",
                [*params, *pks],
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
