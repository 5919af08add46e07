"""Serializers for dumpdata/loaddata that keep encrypted fields encrypted.

Django's serializers pass ints, floats, Decimals and dates through without calling
``value_to_string``, so overriding that method alone would leak them. These subclasses
write every encrypted field as ciphertext and decrypt it again on load; a fixture value
that is not ciphertext is plaintext, encrypted on load. ``AppConfig.ready`` registers them
for the ``json``, ``jsonl``, ``python`` and ``yaml`` formats.
"""

from __future__ import annotations

from typing import Any

from django.core import serializers
from django.core.exceptions import FieldDoesNotExist
from django.core.serializers.base import DeserializationError, SerializationError
from django.db.models import Field, Model

from ..crypto import looks_like_envelope, split_searchable
from ..fields.stored import Sealed, UndecryptableValue
from ..introspection import encrypted_fields, is_encrypted

FORMATS = {
    "python": "alphapulse_encryption.serializers.python",
    "json": "alphapulse_encryption.serializers.json",
    "jsonl": "alphapulse_encryption.serializers.jsonl",
    "yaml": "alphapulse_encryption.serializers.pyyaml",
    # XML cannot carry typed ciphertext back through Django's deserializer; refuse it for
    # models with encrypted fields rather than load ciphertext as if it were plaintext.
    "xml": "alphapulse_encryption.serializers.xml",
}


class EncryptingSerializerMixin:
    def _value_from_field(self, obj: Model, field: Field) -> Any:
        if is_encrypted(field):
            # value_to_string passes a value that failed to decrypt through as stored, so one
            # damaged row never blocks a backup.
            stored = obj.__dict__.get(field.attname)
            if isinstance(stored, Sealed | UndecryptableValue) or (
                field.value_from_object(obj) is not None
            ):
                return field.value_to_string(obj)
            return None
        return super()._value_from_field(obj, field)  # type: ignore[misc]


def _looks_stored(value: Any) -> bool:
    """Whether a fixture value is ciphertext (an envelope, or a search token and an
    envelope), told by its prefix as ``encrypt_migrate`` tells it."""
    return isinstance(value, str) and looks_like_envelope(split_searchable(value)[1])


class DecryptingDeserializerMixin:
    """Ciphertext in a fixture (what dumpdata writes) is decrypted, and must decrypt; any
    other value is plaintext (a hand-written fixture) for Django to convert as usual. Saving
    then encrypts either one under the active key version."""

    def _handle_object(self, obj: dict[str, Any]) -> Any:
        try:
            model = self._get_model_from_node(obj["model"])  # type: ignore[attr-defined]
        except (DeserializationError, KeyError):
            return super()._handle_object(obj)  # type: ignore[misc]
        fields = dict(obj.get("fields", {}))
        for name, value in fields.items():
            if not _looks_stored(value):
                continue
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if not is_encrypted(field):
                continue
            # from_db_value, as for a row read from the database: a value that fails, or
            # decrypts to something the field cannot hold, is refused here, before Django's
            # error for a bad value could quote the decrypted plaintext.
            opened = field.from_db_value(value, None, None)
            if isinstance(opened, UndecryptableValue):
                pk = obj.get("pk")
                which = "an object without pk" if pk is None else f"pk={pk}"
                where = f"{model._meta.label}.{field.name} ({which})"
                raise opened.error.located(where) from None
            fields[name] = opened
        return super()._handle_object({**obj, "fields": fields})  # type: ignore[misc]


def refuse_encrypted_models(model: type[Model], format_name: str) -> None:
    if encrypted_fields(model):
        raise SerializationError(
            f"{model._meta.label} has encrypted fields, which the {format_name} format "
            "cannot round-trip; use --format json or jsonl"
        )


def register() -> None:
    """Replace Django's built-in formats (not ones the project configured itself)."""
    for format_name, module in FORMATS.items():
        try:
            current = serializers.get_serializer(format_name)
        except serializers.SerializerDoesNotExist:
            continue  # yaml without PyYAML
        if current.__module__.startswith("django.core.serializers"):
            serializers.register_serializer(format_name, module)
