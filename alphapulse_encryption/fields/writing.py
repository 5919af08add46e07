"""The write path of an encrypted field: the plaintext size limit, ``pre_save`` (with the
dual write of a field migrating from a plaintext one), encryption one by one or in a
batch, the refusal of database expressions, and the stored form that dumps write."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import FieldError, ValidationError
from django.db.models import Field, Model
from django.db.models.expressions import Case, Value, When
from django.db.models.functions import Cast

from ..conf import encryption_settings
from ..crypto import DecryptionError, key_version_of
from ..crypto.serialize import serialize
from ..keys import current_cipher
from .messages import FieldMessages
from .overrides import defined_in, is_ours
from .stored import Prepared, Sealed, UndecryptableValue

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("alphapulse_encryption.fields")


def _under_active_key(stored: str) -> bool:
    try:
        return key_version_of(stored) == current_cipher().keyring.active_version
    except DecryptionError:
        return True  # not a readable envelope: nothing to move, keep it as it is


class WritePath(FieldMessages):
    """Mixed into every encrypted field: values on their way to the database."""

    as_json: ClassVar[bool]
    encryption_context: str
    migrate_from: str | None

    def validate(self, value: Any, model_instance: Model | None) -> None:
        super().validate(value, model_instance)
        self._validate_plaintext_size(value)

    def _validate_plaintext_size(self, value: Any) -> None:
        """``MAX_PLAINTEXT_BYTES`` as a validation error, before saving would raise
        ``PlaintextTooLarge``."""
        limit = encryption_settings.MAX_PLAINTEXT_BYTES
        if value is None or type(limit) is not int:
            return
        try:
            size = len(serialize(self.get_prep_value(value), as_json=self.as_json)) - 1
        except (ValidationError, ValueError, TypeError):
            return  # not a value of this field: other validation reports it
        if size > limit:
            raise ValidationError(
                self.error_messages["max_plaintext_bytes"],
                code="max_plaintext_bytes",
                params={"limit": limit, "size": size},
            )

    def pre_save(self, model_instance: Model, add: bool) -> Any:
        stored = model_instance.__dict__.get(self.attname)
        if type(stored) is Prepared:
            return stored
        if self.migrate_from is not None:
            source = self.migrate_from_field()
            if source.attname in model_instance.__dict__:
                value = self.mirror_value(model_instance.__dict__[source.attname])
                setattr(model_instance, self.attname, value)
                return value
        if isinstance(stored, Sealed) and not _under_active_key(stored.stored):
            # Loaded before a rotation: `reencrypt` may have moved the row since, and
            # writing this ciphertext back would undo that, so it is stored anew.
            value = self.from_db_value(stored.stored, None, None)  # type: ignore[attr-defined]
            if not isinstance(value, UndecryptableValue):
                setattr(model_instance, self.attname, value)
                return super().pre_save(model_instance, add)
        if isinstance(stored, Sealed | UndecryptableValue):
            return stored  # never read (or unreadable): written back unchanged
        value = super().pre_save(model_instance, add)
        if hasattr(value, "resolve_expression"):
            # save() hands an assigned expression straight to SQL (no get_db_prep_save).
            self.check_assigned_expression(value)
        return value

    # -- dual write: migration from a plaintext field -------------------------------

    def migrate_from_field(self) -> Field:
        assert self.migrate_from is not None
        return self.model._meta.get_field(self.migrate_from)  # type: ignore[return-value]

    def mirror_value(self, plaintext: Any) -> Any:
        """The plaintext field's value as this field's type; ``None`` (left for
        ``encrypt_migrate --migrate-data`` to record as a failure) if it does not convert."""
        if plaintext is None:
            return None
        try:
            value = self.to_python(plaintext)
            self._validate_plaintext_size(value)
            return value
        except (ValidationError, ValueError, TypeError):
            logger.warning(
                "dual write: %s cannot hold the value of '%s'; left pending",
                self.describe(),
                self.migrate_from,
            )
            return None

    # -- encryption -------------------------------------------------------------------

    def get_db_prep_value(
        self, value: Any, connection: BaseDatabaseWrapper | None = None, prepared: bool = False
    ) -> Any:
        if isinstance(value, Sealed | UndecryptableValue | Prepared):
            return value.stored
        if not prepared:
            value = self.get_prep_value(value)
        if value is None:
            return None
        return self.encrypt(value)

    def get_db_prep_save(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        if hasattr(value, "as_sql"):
            self.check_assigned_expression(value)
            return value
        return self.get_db_prep_value(value, connection=connection, prepared=False)

    def encrypt(self, value: Any) -> str:
        return current_cipher().encrypt(value, self.encryption_context, as_json=self.as_json)

    def encrypt_many(self, values: Sequence[Any]) -> list[str | None]:
        """:meth:`encrypt` for many prepared values (``None`` stays ``None``): one batch
        (one key lookup, one draw of random nonces), unless a subclass overrides
        :meth:`encrypt` alone, whose own encryption is then used value by value."""
        one, batch = defined_in(type(self), "encrypt"), defined_in(type(self), "seal_batch")
        if one is not batch and issubclass(one, batch):
            return [None if value is None else self.encrypt(value) for value in values]
        return self.seal_batch(values)

    def seal_batch(self, values: Sequence[Any]) -> list[str | None]:
        """The batch form of :meth:`encrypt`; a subclass overriding one overrides both."""
        return current_cipher().batch_encrypt(values, self.encryption_context, as_json=self.as_json)

    def can_encrypt_ahead(self) -> bool:
        """Whether bulk writes may encrypt this field's values before ``pre_save``: not
        while it mirrors a plaintext field, not when ``pre_save`` sets the value, and not
        for a subclass that changes values on their way to the database."""
        cls = type(self)
        return (
            self.migrate_from is None
            and not getattr(self, "auto_now", False)
            and not getattr(self, "auto_now_add", False)
            and all(
                is_ours(defined_in(cls, name))
                for name in ("pre_save", "get_db_prep_save", "get_db_prep_value")
            )
        )

    def check_assigned_expression(self, expression: Any) -> None:
        if isinstance(expression, Value):
            if expression.value is None or expression._output_field_or_none is self:  # type: ignore[attr-defined]
                return
        elif isinstance(expression, Case):
            for case in expression.cases:
                self.check_assigned_expression(case)
            self.check_assigned_expression(expression.default)
            return
        elif isinstance(expression, When):
            self.check_assigned_expression(expression.result)
            return
        elif isinstance(expression, Cast):
            self.check_assigned_expression(expression.source_expressions[0])
            return
        kind = type(expression).__name__  # not its repr: that would show the value
        raise FieldError(self.assigned_expression_error(kind))

    def value_to_string(self, obj: Model) -> str:
        """The ciphertext: what serializers (dumpdata) write for this field."""
        stored = obj.__dict__.get(self.attname)
        if isinstance(stored, Sealed | UndecryptableValue):
            return stored.stored
        prepared = self.get_db_prep_value(self.value_from_object(obj), prepared=False)
        return "" if prepared is None else str(prepared)
