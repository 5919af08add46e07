"""``--verify``: count each migrated column's rows and prove that every encrypted value
decrypts: to its plaintext while the plaintext column exists, at all once it is dropped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, F, Q, TextField

from ..fields.stored import UndecryptableValue
from .failures import failure_records, pk_text
from .pairs import MigrationPair, has_plaintext_column, require_columns, select_pairs

MISMATCHES_KEPT = 100


@dataclass
class ColumnReport:
    """One table.column. ``migrated`` counts the rows whose encrypted value matches the
    plaintext (once the plaintext is dropped: that decrypts), rows with neither value
    included."""

    label: str  # table.column
    model: str
    total: int = 0
    migrated: int = 0
    pending: int = 0
    failed: int = 0
    mismatched: int = 0
    mismatches: list[tuple[str, str]] = field(default_factory=list)  # first (pk, reason)
    plaintext_dropped: bool = False

    @property
    def complete(self) -> bool:
        return not (self.pending or self.failed or self.mismatched)


@dataclass
class VerifyReport:
    columns: list[ColumnReport]

    @property
    def complete(self) -> bool:
        return all(column.complete for column in self.columns)

    def incomplete(self) -> list[ColumnReport]:
        return [column for column in self.columns if not column.complete]


def verify(table: str | None = None, *, batch_size: int = 1000) -> VerifyReport:
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    pairs = select_pairs(table)
    require_columns(pairs)
    return VerifyReport([verify_pair(pair, batch_size) for pair in pairs])


def verify_pair(pair: MigrationPair, batch_size: int = 1000) -> ColumnReport:
    report = ColumnReport(pair.label, pair.model._meta.label)
    if not has_plaintext_column(pair):
        # Nothing to compare with any more; still prove every value decrypts.
        report.plaintext_dropped = True
    for rows in _batches(pair, batch_size, with_plaintext=not report.plaintext_dropped):
        _check_rows(pair, rows, report)
    return report


def _batches(
    pair: MigrationPair, batch_size: int, *, with_plaintext: bool
) -> Iterator[list[tuple[Any, Any, bool, Any]]]:
    """(pk, plaintext, plaintext is not NULL in SQL, stored ciphertext) in primary-key
    order. The SQL test matters for JSON: a JSON ``null`` loads as None but is a value
    to migrate, as ``--migrate-data`` sees it."""
    # An output field without converters reads the ciphertext, not the decrypted value.
    stored = ExpressionWrapper(F(pair.field.attname), output_field=TextField())
    is_set = ExpressionWrapper(
        Q(**{f"{pair.source.name}__isnull": False}), output_field=BooleanField()
    )
    rows_query = pair.model._base_manager.using(pair.using).order_by("pk")
    if with_plaintext:
        rows_query = rows_query.annotate(_stored=stored, _is_set=is_set).values_list(
            "pk", pair.source.attname, "_is_set", "_stored"
        )
    else:
        rows_query = rows_query.annotate(_stored=stored).values_list("pk", "_stored")
    after = None
    while True:
        page = rows_query if after is None else rows_query.filter(pk__gt=after)
        rows = list(page[:batch_size])
        if not rows:
            return
        yield rows if with_plaintext else [(pk, None, False, value) for pk, value in rows]
        after = rows[-1][0]


def _check_rows(
    pair: MigrationPair, rows: list[tuple[Any, Any, bool, Any]], report: ColumnReport
) -> None:
    field_ = pair.field
    connection = pair.connection
    unencrypted = []
    for pk, plaintext, is_set, stored in rows:
        report.total += 1
        if stored is None:
            if is_set:
                unencrypted.append(pk)
            else:
                report.migrated += 1
            continue
        value = field_.from_db_value(stored, None, connection)
        if isinstance(value, UndecryptableValue):
            _mismatch(pair, report, pk, f"does not decrypt ({value.error.reason})")
        elif report.plaintext_dropped:
            report.migrated += 1
        elif plaintext is None:
            _mismatch(pair, report, pk, "the plaintext is NULL but the encrypted value is not")
        elif value != field_.mirror_value(plaintext):
            _mismatch(pair, report, pk, "decrypts to a value different from the plaintext")
        else:
            report.migrated += 1
    if unencrypted:
        texts = [pk_text(pair, pk) for pk in unencrypted]
        failed = failure_records(pair).filter(row_pk__in=texts).count()
        report.failed += failed
        report.pending += len(unencrypted) - failed


def _mismatch(pair: MigrationPair, report: ColumnReport, pk: Any, reason: str) -> None:
    report.mismatched += 1
    if len(report.mismatches) < MISMATCHES_KEPT:
        report.mismatches.append((pk_text(pair, pk), reason))
