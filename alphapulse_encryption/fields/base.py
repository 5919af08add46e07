"""``EncryptedFieldMixin``, the base of every encrypted field: its options, its column
(text holding ciphertext), the lookups it allows; it joins the read path, the write path
and the error texts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django.core import checks
from django.core.exceptions import FieldError
from django.db.models import Field, Model
from django.db.models.expressions import Col
from django.db.models.lookups import IsNull

from . import checks as field_checks
from .columns import EncryptedCol
from .descriptor import EncryptedAttribute
from .overrides import defined_in, is_ours
from .reading import ReadPath

# Still importable from here: callers outside the fields, and instances pickled by
# earlier releases, name them as alphapulse_encryption.fields.base.*.
from .stored import Prepared as Prepared
from .stored import Sealed as Sealed
from .stored import UndecryptableValue as UndecryptableValue
from .writing import WritePath

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

PUBLIC_MODULE = "alphapulse_encryption.fields"


class EncryptedFieldMixin(ReadPath, WritePath, Field):
    """Mixed in before a Django field class; that class supplies Python-side behaviour
    (``to_python``, validation, form field) and this mixin the storage."""

    encrypted: ClassVar[bool] = True
    descriptor_class = EncryptedAttribute
    # Changing these alters no column, so the schema editor need not touch the table.
    non_db_attrs = (*Field.non_db_attrs, "migrate_from", "mask")
    allowed_lookups: ClassVar[frozenset[str]] = frozenset({"isnull"})
    as_json: ClassVar[bool] = False
    # The type decryption gives back when to_python has nothing to do (None: always call it).
    python_type: ClassVar[type | None] = None
    default_error_messages = {
        "max_plaintext_bytes": (
            "Ensure this value is at most %(limit)s bytes once encoded (it is %(size)s bytes)."
        ),
    }

    def __init__(
        self,
        *args: Any,
        context: str | None = None,
        migrate_from: str | None = None,
        mask: str | Callable[[Any], str] | None = None,
        **kwargs: Any,
    ) -> None:
        if context is not None and (not isinstance(context, str) or not context):
            raise ValueError("context must be a non-empty string")
        # The plaintext field this one replaces (see docs/migration.md): while it is set,
        # every write copies the plaintext value here ("dual write").
        self.migrate_from = migrate_from
        # How the admin shows the value (a kind from alphapulse_encryption.masking, or a
        # callable); None lets the admin choose from the field's type and name.
        self.mask = mask
        self._explicit_context = context
        # Not ``self.context``: DecimalField already uses that name for its decimal.Context.
        self.encryption_context = context or ""
        # Decrypted values of python_type need no to_python, unless a subclass outside
        # this library overrides to_python.
        owner = defined_in(type(self), "to_python")
        self._ready_type = self.python_type if is_ours(owner) else None
        super().__init__(*args, **kwargs)

    # -- schema -------------------------------------------------------------------

    def contribute_to_class(self, cls: type[Model], name: str, **kwargs: Any) -> None:  # type: ignore[override]
        super().contribute_to_class(cls, name, **kwargs)
        if self._explicit_context is None:
            self.encryption_context = f"{cls._meta.app_label}.{cls._meta.model_name}.{self.name}"

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [*super().check(**kwargs), *field_checks.encrypted_field_checks(self)]

    def get_internal_type(self) -> str:
        # "TextField" keeps backends from applying their date/bool/decimal converters to
        # our ciphertext; the column is text of unbounded length (no silent truncation).
        return "TextField"

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        return connection.data_types["TextField"]

    def rel_db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        raise FieldError(f"{self.describe()} cannot be the target of a relation")

    def cast_db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        return self.db_type(connection)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        path = f"{PUBLIC_MODULE}.{type(self).__name__}"
        if self._explicit_context is not None:
            kwargs["context"] = self._explicit_context
        if self.migrate_from is not None:
            kwargs["migrate_from"] = self.migrate_from
        if self.mask is not None:
            kwargs["mask"] = self.mask
        return name, path, args, kwargs

    # -- lookups ------------------------------------------------------------------

    def get_col(self, alias: str, output_field: Any = None) -> Col:
        # A new column each time, never a shared cached one: the column carries a per-query
        # flag (EncryptedCol.lazy).
        return EncryptedCol(alias, self, self if output_field is None else output_field)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name not in self.allowed_lookups:
            raise FieldError(self.lookup_error(lookup_name))
        if lookup_name == "isnull":
            return IsNull
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(self.lookup_error(lookup_name))
