"""The ``encryption_migrations`` table: rows that ``--migrate-data`` could not encrypt."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class EncryptionMigrationFailure(models.Model):
    """One row whose plaintext value could not be encrypted into its encrypted column.

    ``--migrate-data`` skips recorded rows (so one bad value does not stall every run)
    until the operator fixes the value and reruns with ``--retry-failed``.
    """

    app_label = models.CharField(max_length=100)
    model_name = models.CharField(max_length=100)
    table_name = models.CharField(max_length=128)
    column_name = models.CharField(max_length=128)
    source_column_name = models.CharField(max_length=128)
    # Text, so that any primary key type fits; 191 keeps the unique index within the
    # 3072-byte InnoDB key limit under utf8mb4.
    row_pk = models.CharField(max_length=191)
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "encryption_migrations"
        ordering = ["id"]
        verbose_name = "encryption migration failure"
        constraints = [
            models.UniqueConstraint(
                fields=["table_name", "column_name", "row_pk"],
                name="encryption_migrations_row_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.table_name}.{self.column_name} pk={self.row_pk}: {self.error}"
