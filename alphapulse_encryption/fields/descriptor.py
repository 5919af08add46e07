"""The model attribute of an encrypted field: decrypts a sealed value on first read and
raises for one that failed to decrypt."""

from __future__ import annotations

from typing import Any

from django.db.models.query_utils import DeferredAttribute

from ..signals import decryption_failed
from .stored import Prepared, Sealed, UndecryptableValue


class EncryptedAttribute(DeferredAttribute):
    """Loads deferred values like Django's, and raises on values that failed to decrypt.

    A data descriptor (it defines ``__set__``), so reads pass through ``__get__`` even when
    the value sits in the instance ``__dict__``.
    """

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        data = instance.__dict__
        field = self.field
        try:
            value = data[field.attname]
        except KeyError:  # deferred: Django loads it
            value = super().__get__(instance, cls)
        if type(value) is Sealed:
            value = data[field.attname] = value.open(field)  # type: ignore[arg-type]
        elif type(value) is Prepared:
            return value.value
        if type(value) is UndecryptableValue:
            where = f"{field.model._meta.label}.{field.name} (pk={instance.pk})"
            decryption_failed.send(
                sender=field.model,
                instance=instance,
                field=field,
                reason=value.error.reason,
                key_version=value.error.key_version,
            )
            raise value.error.located(where) from None
        return value
