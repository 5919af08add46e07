"""The package's tables, as Django finds them: each area defines its own (keys, audit,
migration) and this module only gathers them."""

from .audit.models import AuditChainHead, AuditLogEntry
from .keys.models import KeyringLock, KeyUsage, KeyVersion
from .migration.models import EncryptionMigrationFailure

__all__ = [
    "AuditChainHead",
    "AuditLogEntry",
    "EncryptionMigrationFailure",
    "KeyUsage",
    "KeyVersion",
    "KeyringLock",
]
