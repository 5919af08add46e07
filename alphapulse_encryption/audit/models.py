"""Audit log tables: the entries, hash-chained, and the head of the chain (also the lock
that keeps the chain linear)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

GENESIS_HASH = "0" * 64


class AuditLogEntry(models.Model):
    """One audited event. Append-only: the hash covers the row and the previous row's hash."""

    class Action(models.TextChoices):
        REVEAL = "reveal", "reveal"
        REVEAL_DENIED = "reveal_denied", "reveal denied"
        CHANGE = "change", "change of an encrypted value"
        DECRYPTION_FAILED = "decryption_failed", "decryption failed"
        KEY_OPERATION = "key_operation", "key operation"
        MIGRATION_RUN = "migration_run", "migration run"

    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    # SET_NULL keeps the entry when the user goes; ``username`` keeps who it was (and is
    # what the hash covers, so deleting a user does not break the chain).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    model_label = models.CharField(max_length=255, blank=True)
    object_pk = models.TextField(blank=True)
    field_name = models.CharField(max_length=255, blank=True)
    ip_address = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        db_table = "alphapulse_encryption_auditlogentry"
        ordering = ["-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log entries"
        # Entries are only ever added by the package: no add/change/delete permissions.
        default_permissions = ("view",)
        permissions = [("reveal_encrypted", "Can reveal encrypted values of any model")]

    def __str__(self) -> str:
        return f"audit #{self.pk} {self.action}"


class AuditChainHead(models.Model):
    """The single row holding the last hash and the number of entries. Writers lock it, so
    entries are chained one at a time; ``audit_verify`` compares it with the table to find
    entries deleted from the end."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    entries = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "alphapulse_encryption_auditchainhead"

    def __str__(self) -> str:
        return "audit chain head"
