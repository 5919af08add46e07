"""Signal receivers that write audit entries: failed decryptions and key operations (sent
by fields and key providers, which never import the audit log), and reveal permissions."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models.signals import post_migrate

from ..signals import decryption_failed, key_operation, migration_run
from .log import record
from .models import AuditLogEntry
from .permissions import create_reveal_permissions

logger = logging.getLogger("alphapulse_encryption.audit")


def connect_receivers() -> None:
    decryption_failed.connect(_on_decryption_failed, dispatch_uid="alphapulse_encryption.audit")
    key_operation.connect(_on_key_operation, dispatch_uid="alphapulse_encryption.audit")
    migration_run.connect(_on_migration_run, dispatch_uid="alphapulse_encryption.audit")
    post_migrate.connect(
        create_reveal_permissions, dispatch_uid="alphapulse_encryption.reveal_permissions"
    )


def _on_decryption_failed(
    sender: Any, instance: Any, field: Any, reason: str, key_version: int | None, **kwargs: Any
) -> None:
    _record(
        AuditLogEntry.Action.DECRYPTION_FAILED,
        model=sender,
        object_pk=instance.pk,
        field_name=field.name,
        detail={"reason": reason, "key_version": key_version},
    )


def _on_key_operation(
    sender: Any, action: str, key_version: int | None, detail: dict[str, Any], **kwargs: Any
) -> None:
    _record(
        AuditLogEntry.Action.KEY_OPERATION,
        detail={
            **detail,
            "operation": action,
            "provider": getattr(sender, "__name__", None),
            "key_version": key_version,
        },
    )


def _on_migration_run(
    sender: Any, step: str, table: str | None, outcome: str, **kwargs: Any
) -> None:
    _record(
        AuditLogEntry.Action.MIGRATION_RUN,
        detail={"step": step, "table": table, "outcome": outcome},
    )


def _record(action: str, **kwargs: Any) -> None:
    # The event already happened (a value failed to decrypt, a key was loaded); a failed
    # audit write is logged loudly but must not turn it into a different error.
    try:
        record(action, **kwargs)
    except Exception as exc:
        logger.error("audit entry (%s) not written: %s: %s", action, type(exc).__name__, exc)
