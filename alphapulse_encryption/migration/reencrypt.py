"""Which key versions stored values use, moving them to the active version, retiring keys:
the service behind ``encryption_keys status|reencrypt|retire``.

It rewrites rows of every model with encrypted fields, so it sits above the fields and
the keys. Stored values are read raw (the envelope header names the key version), so
counting and finding rows to move never decrypts anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models, router, transaction
from django.db.models import ExpressionWrapper, F, TextField

from ..crypto import DecryptionError, KeyProviderError, key_version_of
from ..introspection import encrypted_fields
from ..introspection import encrypted_models as all_encrypted_models
from ..keys import EncryptionKeyManager, current_keyring, reset
from ..keys.events import record_key_operation

DEFAULT_BATCH_SIZE = 500
# Counted under this key when a stored value is not a readable envelope.
UNREADABLE = "unreadable"


class KeyVersionInUse(KeyProviderError):
    """A key version cannot be retired while stored values still use it."""

    def __init__(self, version: int, count: int) -> None:
        self.version = version
        self.count = count
        super().__init__(
            f"key version {version} is still used by {count} stored value(s); run "
            "`manage.py encryption_keys reencrypt` first"
        )


def encrypted_models(label: str | None = None) -> list[type[models.Model]]:
    """Installed models with encrypted fields, or the one named ``app_label.Model``."""
    if label is not None:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            raise ValueError(f"no installed model {label!r} (expected app_label.Model)") from None
        if not encrypted_fields(model):
            raise ValueError(f"{model._meta.label} has no encrypted fields")
        return [model]
    return all_encrypted_models()


def _stored_version(stored: Any) -> int | str:
    try:
        return key_version_of(stored)
    except DecryptionError:
        return UNREADABLE


def _raw_batches(
    model: type[models.Model], fields: list[models.Field[Any, Any]], batch_size: int
) -> Iterator[list[tuple[Any, ...]]]:
    """(pk, stored value, ...) in primary-key order, as the database holds the values."""
    # An output field without converters: the ciphertext, not the decrypted value.
    raw = {
        f"_stored_{i}": ExpressionWrapper(F(f.attname), output_field=TextField())
        for i, f in enumerate(fields)
    }
    queryset = model._base_manager.annotate(**raw).order_by("pk")
    last_pk = None
    while True:
        page = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
        rows = list(page.values_list("pk", *raw)[:batch_size])
        if not rows:
            return
        yield rows
        last_pk = rows[-1][0]


# -- status ------------------------------------------------------------------------------


@dataclass
class FieldUsage:
    label: str  # app_label.Model.field
    counts: Counter[int | str] = field(default_factory=Counter)


def key_version_usage(
    models_: Iterable[type[models.Model]] | None = None, batch_size: int = 2000
) -> list[FieldUsage]:
    """For every encrypted field: how many stored (non-NULL) values use each key version."""
    usage: list[FieldUsage] = []
    for model in encrypted_models() if models_ is None else models_:
        fields = encrypted_fields(model)
        per_field = [FieldUsage(f"{model._meta.label}.{f.name}") for f in fields]
        for rows in _raw_batches(model, fields, batch_size):
            for row in rows:
                for entry, stored in zip(per_field, row[1:], strict=True):
                    if stored is not None:
                        entry.counts[_stored_version(stored)] += 1
        usage.extend(per_field)
    return usage


def values_using(version: int, usage: list[FieldUsage] | None = None) -> int:
    usage = key_version_usage() if usage is None else usage
    return sum(entry.counts.get(version, 0) for entry in usage)


# -- re-encryption -----------------------------------------------------------------------


@dataclass
class ReencryptProgress:
    model: str
    scanned: int = 0  # rows looked at
    moved: int = 0  # rows rewritten under the active version
    failed: int = 0  # rows left as they were: a value does not decrypt
    batches: int = 0
    failed_pks: list[Any] = field(default_factory=list)


def reencrypt(
    model_label: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[ReencryptProgress], None] | None = None,
) -> list[ReencryptProgress]:
    """Rewrite, batch by batch, every row holding a value not under the active key version.

    Resumable: rows already under the active version are skipped, so a run that stopped
    half-way (or ran concurrently) is simply run again.
    """
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    selected = encrypted_models(model_label)
    reset()  # re-encrypt under the newest active version, not a cached one
    results = []
    for model in selected:
        progress = ReencryptProgress(model._meta.label)
        fields = encrypted_fields(model)
        for rows in _raw_batches(model, fields, batch_size):
            active = current_keyring().active_version
            stale = [
                row[0]
                for row in rows
                if any(v is not None and _stored_version(v) != active for v in row[1:])
            ]
            if stale:
                moved, failed = _rewrite_batch(model, fields, stale)
                progress.moved += moved
                progress.failed += len(failed)
                progress.failed_pks.extend(failed)
            progress.scanned += len(rows)
            progress.batches += 1
            if on_batch is not None:
                on_batch(progress)
        record_key_operation(
            "reencrypt",
            type(EncryptionKeyManager().provider),
            current_keyring().active_version,
            model=progress.model,
            scanned=progress.scanned,
            moved=progress.moved,
            failed=progress.failed,
        )
        results.append(progress)
    return results


def _rewrite_batch(
    model: type[models.Model], fields: list[models.Field[Any, Any]], pks: list[Any]
) -> tuple[int, list[Any]]:
    """Decrypt and re-save the rows (under the active version); returns (moved, failed pks).

    The rows are locked while they are rewritten, so a concurrent write is not overwritten
    with the value read before it.
    """
    names = [f.name for f in fields]
    with transaction.atomic(using=router.db_for_write(model)):
        rows = list(model._base_manager.select_for_update().filter(pk__in=pks).only(*names))
        movable, failed = [], []
        for obj in rows:
            try:
                for f in fields:
                    getattr(obj, f.attname)  # raises if the stored value does not decrypt
            except DecryptionError:
                failed.append(obj.pk)
            else:
                movable.append(obj)
        if movable:
            model._base_manager.bulk_update(movable, names)
    if failed:
        record_key_operation(
            "reencrypt_failed_rows", None, None, model=model._meta.label, pks=failed
        )
    return len(movable), failed


# -- retirement --------------------------------------------------------------------------


def retire(version: int, *, force: bool = False) -> int:
    """Retire ``version`` (the provider destroys its key); refused while stored values use
    it unless ``force``. Returns how many values were still using it."""
    manager = EncryptionKeyManager()
    reset()
    if version == current_keyring().active_version:
        raise KeyProviderError(
            f"key version {version} is the active version; rotate first, re-encrypt, then retire it"
        )
    in_use = values_using(version)
    if in_use and not force:
        raise KeyVersionInUse(version, in_use)
    manager.retire_key(version)
    if in_use:
        record_key_operation(
            "retire_forced", type(manager.provider), version, values_left_unreadable=in_use
        )
    return in_use
