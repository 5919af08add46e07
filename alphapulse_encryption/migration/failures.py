"""The rows ``--migrate-data`` could not encrypt: recorded in the ``encryption_migrations``
table, skipped by later batches, counted, cleared once retried, and forgotten once the row
is no longer pending."""

from __future__ import annotations

import datetime
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


class KnownFailures:
    """The recorded failures of a table's columns that a batch leaves alone."""

    def __init__(self, pairs: Sequence[MigrationPair], since: datetime.datetime | None) -> None:
        self.pairs = pairs
        self.since = since  # only failures recorded since then, if given
        # Asked every batch, so compiled once.
        probe = table_failure_records(pairs).values_list("pk")[:1].query
        self._any_failure_sql = probe.get_compiler(pairs[0].using).as_sql()

    def among(self, pks: list[Any]) -> set[tuple[int, Any]]:
        """(pair index, pk) of these rows' recorded failures."""
        # Asked after the rows are locked: a failure another worker recorded for one of them
        # is committed with the row, so it is seen here.
        with self.pairs[0].connection.cursor() as cursor:
            cursor.execute(*self._any_failure_sql)
            if cursor.fetchone() is None:
                return set()
        texts = {pk_text(self.pairs[0], pk): pk for pk in pks}
        recorded = table_failure_records(self.pairs).filter(row_pk__in=list(texts))
        if self.since is not None:
            recorded = recorded.filter(updated_at__gte=self.since)  # failed again now
        index = {pair.column: i for i, pair in enumerate(self.pairs)}
        return {
            (index[column], texts[text])
            for column, text in recorded.values_list("column_name", "row_pk")
        }


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
