"""One place that logs a key operation and sends the ``key_operation`` signal."""

from __future__ import annotations

import logging

from ..signals import key_operation

logger = logging.getLogger("alphapulse_encryption.keys")

_WARNINGS = frozenset({"decrypt_failed", "reencrypt_failed_rows", "retire_forced"})


def record_key_operation(
    action: str, provider: type | None, key_version: int | None, **detail: object
) -> None:
    """Log ``action`` and tell listeners (the audit log). ``detail`` must hold no secret:
    versions, fingerprints, counts, model labels."""
    level = logging.WARNING if action in _WARNINGS else logging.INFO
    shown = " ".join(f"{name}={value}" for name, value in sorted(detail.items()))
    logger.log(
        level,
        "key operation %s: provider=%s key_version=%s %s",
        action,
        provider.__name__ if provider is not None else None,
        key_version,
        shown,
    )
    # A failing listener must not turn a key load or a decryption into an error.
    for receiver, result in key_operation.send_robust(
        sender=provider, action=action, key_version=key_version, detail=detail
    ):
        if isinstance(result, Exception):
            logger.error("key_operation receiver %r failed: %s", receiver, type(result).__name__)
