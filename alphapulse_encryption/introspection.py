"""Which fields and models are encrypted: the one answer every layer asks for.

A leaf: it imports nothing of the package, so the key, migration, admin and audit layers
can ask without importing the fields. An encrypted field says so with ``encrypted = True``
(``EncryptedFieldMixin`` does; ``SearchTokenIndex`` says ``False``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps

if TYPE_CHECKING:
    from django.db import models


def is_encrypted(field: object) -> bool:
    """Whether ``field`` stores its values encrypted."""
    return getattr(field, "encrypted", False) is True


def encrypted_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """The concrete encrypted fields of ``model``, in declaration order."""
    return [field for field in model._meta.concrete_fields if is_encrypted(field)]


def encrypted_models() -> list[type[models.Model]]:
    """Installed models with encrypted fields, leaving out proxies and swapped models
    (their rows are another model's)."""
    return [
        model
        for model in apps.get_models()
        if not model._meta.proxy and not model._meta.swapped and encrypted_fields(model)
    ]
