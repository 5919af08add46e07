"""Tables of the keys area: the key ring of the database key provider, the lock that
serialises its changes, and the per-(version, context) encryption counts."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class KeyVersion(models.Model):
    """One data-key version, stored wrapped by a key-encryption key (never in the clear)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        RETIRED = "retired", "retired (decrypt-only)"
        DESTROYED = "destroyed", "destroyed"

    version = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    # Ciphertext of the version key; emptied when the version is destroyed.
    wrapped_key = models.TextField(blank=True)
    # Which key-encryption key wrapped it (a master-key version or a KMS key id).
    wrapped_by = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "alphapulse_encryption_keyversion"
        ordering = ["version"]
        verbose_name = "key version"

    def __str__(self) -> str:
        return f"key version {self.version} ({self.status})"

    def __repr__(self) -> str:
        return (
            f"<KeyVersion version={self.version} status={self.status} "
            f"fingerprint={self.fingerprint}>"
        )


class KeyringLock(models.Model):
    """A single row that rotations and retirements lock, so they run one at a time
    (MariaDB has no partial unique index to enforce "one active version" instead)."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    changes = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "alphapulse_encryption_keyringlock"

    def __str__(self) -> str:
        return "keyring lock"


class KeyUsage(models.Model):
    """How many values one key version has encrypted under one context. Each (version,
    context) pair is a separate AES-GCM key, whose random 96-bit nonces allow at most
    2**32 encryptions; processes count in memory and add their counts here now and then."""

    version = models.PositiveIntegerField()
    # The context, or for one longer than the column a prefix and a hash of it.
    context = models.CharField(max_length=255)
    encryptions = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "alphapulse_encryption_keyusage"
        ordering = ["version", "context"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "context"], name="alphapulse_keyusage_version_context"
            )
        ]
        verbose_name = "key usage"

    def __str__(self) -> str:
        return f"key version {self.version}, {self.context}: {self.encryptions} encryptions"
