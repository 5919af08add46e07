"""The read path of an encrypted field: stored values decrypted, one by one or a batch at
a time, into the field's type, or held as :class:`UndecryptableValue` when they fail."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Field

from ..crypto import DecryptionError
from ..keys import current_cipher
from .stored import UndecryptableValue


class ReadPath(Field):
    """Mixed into every encrypted field: values on their way from the database."""

    encryption_context: str
    # The type decryption gives back when to_python has nothing to do (None: always call it).
    _ready_type: type | None

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        try:
            decrypted = self.decrypt(value)
        except DecryptionError as exc:
            return UndecryptableValue(value, exc)
        return self._converted(value, decrypted)

    def open_many(self, stored: list[str]) -> list[Any]:
        """Decrypt stored values (none of them ``None``) at once: each result is the value,
        or an :class:`UndecryptableValue` for one that failed."""
        results = current_cipher().open_many(stored, self.encryption_context)
        ready = self._ready_type
        for i, value in enumerate(results):
            if type(value) is not ready:
                results[i] = self._converted(stored[i], value)
        return results

    def _converted(self, stored: str, value: Any) -> Any:
        """A decrypted value (or its :class:`DecryptionError`) as this field's value. One
        this field cannot hold (its type changed since the value was stored, say) is
        ``malformed`` for this field, and fails alone, without showing its content."""
        if type(value) is self._ready_type:
            return value
        if isinstance(value, DecryptionError):
            return UndecryptableValue(stored, value)
        try:
            return self.to_python(value)
        except (ValidationError, ValueError, TypeError):
            return UndecryptableValue(stored, DecryptionError("malformed"))

    def to_python(self, value: Any) -> Any:
        # Django's date and time fields raise TypeError for a value of the wrong type (an
        # int, say); report every unusable input as a validation error naming the value.
        try:
            return super().to_python(value)
        except TypeError:
            raise ValidationError(
                self.error_messages.get("invalid", "“%(value)s” is not a valid value."),
                code="invalid",
                params={"value": value},
            ) from None

    def decrypt(self, stored: str) -> Any:
        return current_cipher().decrypt(stored, self.encryption_context)
