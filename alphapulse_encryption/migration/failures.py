"""The rows ``--migrate-data`` could not encrypt: recorded in the ``encryption_migrations``
table, counted, cleared once retried, and forgotten once the row is no longer pending."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import models
from django.db.models import Count
from django.utils import timezone

from .models import EncryptionMigrationFailure
from .pairs import MigrationPair, pending_rows


def failure_records(pair: MigrationPair) -> models.QuerySet[EncryptionMigrationFailure]:
    return EncryptionMigrationFailure.objects.using(pair.using).filter(
        table_name=pair.table, column_name=pair.column
    )


def table_failure_records(
    pairs: Sequence[MigrationPair],
) -> models.QuerySet[EncryptionMigrationFailure]:
    """The records of every column of ``pairs`` (all of one table)."""
    return EncryptionMigrationFailure.objects.using(pairs[0].using).filter(
        table_name=pairs[0].table, column_name__in=[pair.column for pair in pairs]
    )


def failed_counts(pairs: Sequence[MigrationPair]) -> dict[str, int]:
    """Recorded failures per column name of ``pairs`` (all of one table)."""
    return dict(
        table_failure_records(pairs)
        .values_list("column_name")
        .annotate(n=Count("id"))
        .values_list("column_name", "n")
        .order_by()
    )


def pk_text(pair: MigrationPair, pk: Any) -> str:
    """The primary key as the failure table stores it (as the database spells it)."""
    pk_field = pair.model._meta.pk
    assert pk_field is not None
    return str(pk_field.get_db_prep_value(pk, pair.connection))


def _pk_from_text(pair: MigrationPair, text: str) -> Any:
    pk_field = pair.model._meta.pk
    assert pk_field is not None
    return pk_field.to_python(text)


def record_failures(pair: MigrationPair, failures: list[tuple[Any, str]]) -> None:
    """Record (pk, error) of each row, counting the attempts of rows recorded before."""
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


def clear_failures(pair: MigrationPair, pks: Iterable[Any]) -> None:
    """Delete the records of rows that are encrypted now."""
    done = [pk_text(pair, pk) for pk in pks]
    if done:
        failure_records(pair).filter(row_pk__in=done).delete()


def forget_resolved_failures(pair: MigrationPair, chunk: int = 1000) -> None:
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
