"""The machinery shared by every encrypted field: encryption on the way to the database,
decryption on the way out, loud failures for lookups and ordering the database cannot do."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

from django.core import checks
from django.core.exceptions import FieldDoesNotExist, FieldError, ValidationError
from django.db.models import Count, Field, Func, Model
from django.db.models.expressions import Case, Col, CombinedExpression, OrderBy, Value, When
from django.db.models.functions import Cast
from django.db.models.lookups import IsNull
from django.db.models.query_utils import DeferredAttribute

from ..conf import encryption_settings
from ..crypto import DecryptionError, key_version_of
from ..crypto.serialize import serialize
from ..keys import current_cipher
from ..signals import decryption_failed
from .query_checks import check_query

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("alphapulse_encryption.fields")

PUBLIC_MODULE = "alphapulse_encryption.fields"
_WHY_NO_LOOKUP = (
    "encrypted values are stored with a random nonce, so the database cannot compare, "
    "order or search them"
)
_WHY_NOT_EQUAL = (
    "encrypted values are stored with a random nonce, so equal values are stored as "
    "different ciphertexts"
)


class UndecryptableValue:
    """Stands in for a stored value that failed to decrypt.

    Reading the model attribute raises the :class:`DecryptionError`; saving the model writes
    the stored ciphertext back unchanged; any other use of this object raises too.
    """

    __slots__ = ("error", "stored")

    def __init__(self, stored: str, error: DecryptionError) -> None:
        self.stored = stored
        self.error = error

    def __repr__(self) -> str:
        return f"<UndecryptableValue reason={self.error.reason}>"

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    __str__ = __eq__ = __hash__ = __bool__ = __len__ = __iter__ = __format__ = _refuse
    __int__ = __float__ = __lt__ = __gt__ = __le__ = __ge__ = __getitem__ = _refuse


class SealedBatch:
    """Up to :data:`SEALED_BATCH_SIZE` stored values of one column loaded by one query,
    decrypted together on the first read of any of them."""

    __slots__ = ("opened", "stored")

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.opened: list[Any] | None = None


class Sealed(tuple[SealedBatch, int]):
    """A stored value loaded with its model instance and not decrypted yet: the attribute
    decrypts it on first read, so rows whose encrypted fields are never read cost nothing.

    Values of one column loaded by one query share a :class:`SealedBatch`: the first read
    of any of them decrypts the batch at once (one key lookup, one tight loop). A tuple
    (batch, index in the batch), because one is made for every value loaded and a small
    tuple is the cheapest object to build and to hold.
    """

    __slots__ = ()

    def __new__(cls, stored: str) -> Sealed:
        """A value on its own (an unpickled one, say)."""
        batch = SealedBatch()
        batch.stored.append(stored)
        return tuple.__new__(cls, (batch, 0))

    @property
    def stored(self) -> str:
        batch, index = self
        return batch.stored[index]

    def __repr__(self) -> str:
        return "<Sealed: encrypted value, not read yet>"

    def __reduce__(self) -> tuple[type[Sealed], tuple[str]]:
        # Pickled (or deep-copied) alone: the batch holds other rows' values.
        return Sealed, (self.stored,)

    def open(self, field: EncryptedFieldMixin) -> Any:
        """The decrypted value, or an :class:`UndecryptableValue`."""
        batch, index = self
        opened = batch.opened
        # Shorter than the index: this value was sealed while another thread opened the batch.
        if opened is None or index >= len(opened):
            opened = batch.opened = field.open_many(batch.stored)
        return opened[index]


_new_sealed = tuple.__new__
# Values decrypted together on first read: Django fetches rows 100 at a time.
SEALED_BATCH_SIZE = 100


def _sealer() -> Callable[[Any, Any, Any], Sealed | None]:
    """The database converter of one column in one query execution: wraps each stored value
    in a :class:`Sealed` of the current batch. One per execution, so never shared across
    threads; a closure, the cheapest callable for a call per value loaded."""
    batch = SealedBatch()

    def seal(value: Any, expression: Any, connection: Any) -> Sealed | None:
        nonlocal batch
        if value is None:
            return None
        stored = batch.stored
        if len(stored) >= SEALED_BATCH_SIZE or batch.opened is not None:
            batch = SealedBatch()
            stored = batch.stored
        stored.append(value)
        return _new_sealed(Sealed, (batch, len(stored) - 1))

    return seal


class Prepared:
    """A value encrypted ahead of a bulk write (``bulk_create``, ``bulk_update``), where
    all values of a column are encrypted at once; the attribute still reads the value."""

    __slots__ = ("stored", "value")

    def __init__(self, stored: str, value: Any) -> None:
        self.stored = stored
        self.value = value

    def __repr__(self) -> str:
        return "<Prepared: encrypted for a bulk write>"


def _defined_in(cls: type, name: str) -> type:
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def _ours(cls: type) -> bool:
    """Whether a class is this library's or Django's (not a user's subclass)."""
    return cls.__module__.startswith(("alphapulse_encryption.", "django."))


def _under_active_key(stored: str) -> bool:
    try:
        return key_version_of(stored) == current_cipher().keyring.active_version
    except DecryptionError:
        return True  # not a readable envelope: nothing to move, keep it as it is


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


class EncryptedCol(Col):
    """A column of an encrypted field: selectable and countable, never ordered, aggregated
    or computed on (the database would work on ciphertext and answer wrongly)."""

    # Expressions allowed to wrap the column: Count, and the generated search-token column.
    allowed_wrappers: ClassVar[tuple[type, ...]] = (Count,)
    # Set while the query is compiled: True when the column is loaded into model instances
    # (not values()/values_list(), not an annotation), so decryption can wait for a read.
    lazy = False

    def select_format(self, compiler: Any, sql: Any, params: Any) -> Any:
        query = compiler.query
        self.lazy = bool(
            query.default_cols
            and not query.values_select
            and all(self is not a for a in query.annotation_select.values())
        )
        return super().select_format(compiler, sql, params)

    def get_db_converters(self, connection: Any) -> list[Any]:
        if self.lazy and self.target is self.output_field:
            return [_sealer()]
        return super().get_db_converters(connection)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        check_query(compiler)
        # OrderBy, aggregates and functions compile their expressions through
        # compiler.compile(); Django offers no hook that tells a column what it is compiled
        # for, so look a few frames up.
        frame: FrameType | None = sys._getframe(1)
        for _ in range(3):
            if frame is None:
                break
            caller = frame.f_locals.get("self")
            if isinstance(caller, OrderBy):
                raise FieldError(self.target.ordering_error())  # type: ignore[attr-defined]
            if isinstance(caller, Count) and caller.distinct:  # type: ignore[attr-defined]
                raise FieldError(self.target.distinct_error("Count(distinct=True)"))  # type: ignore[attr-defined]
            if isinstance(caller, Func | CombinedExpression) and not isinstance(
                caller, self.allowed_wrappers
            ):
                raise FieldError(
                    self.target.expression_error(type(caller).__name__)  # type: ignore[attr-defined]
                )
            frame = frame.f_back
        return super().as_sql(compiler, connection)


class EncryptedFieldMixin(Field):
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
        owner = _defined_in(type(self), "to_python")
        self._ready_type = self.python_type if _ours(owner) else None
        super().__init__(*args, **kwargs)

    # -- schema -------------------------------------------------------------------

    def contribute_to_class(self, cls: type[Model], name: str, **kwargs: Any) -> None:  # type: ignore[override]
        super().contribute_to_class(cls, name, **kwargs)
        if self._explicit_context is None:
            self.encryption_context = f"{cls._meta.app_label}.{cls._meta.model_name}.{self.name}"

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        # EncryptedSearchableString keeps its unique=True off the column (see there).
        if self._unique:  # type: ignore[attr-defined]
            errors.append(
                checks.Error(
                    f"{self.describe()} has unique=True, which a database cannot enforce on "
                    "randomly encrypted values.",
                    hint="Use EncryptedSearchableString with SearchTokenIndex(..., unique=True).",
                    obj=self,
                    id="alphapulse_encryption.E013",
                )
            )
        if self.db_index:  # type: ignore[attr-defined]
            errors.append(
                checks.Warning(
                    f"{self.describe()} has db_index=True; an index on ciphertext serves no query.",
                    hint="Remove db_index; for exact-match search use EncryptedSearchableString "
                    "with a SearchTokenIndex.",
                    obj=self,
                    id="alphapulse_encryption.W010",
                )
            )
        errors.extend(self._check_migrate_from())
        if isinstance(self.mask, str):
            from ..masking import MASKS

            if self.mask not in MASKS:
                errors.append(
                    checks.Error(
                        f"{self.describe()}: unknown mask {self.mask!r}.",
                        hint=f"Use one of {sorted(MASKS)}, or a callable.",
                        obj=self,
                        id="alphapulse_encryption.E016",
                    )
                )
        if self.has_db_default():
            errors.append(
                checks.Error(
                    f"{self.describe()} has db_default, which the database would store as "
                    "plaintext.",
                    hint="Use default= (encrypted by Django on save) instead.",
                    obj=self,
                    id="alphapulse_encryption.E014",
                )
            )
        return errors

    def _check_migrate_from(self) -> list[checks.CheckMessage]:
        if self.migrate_from is None:
            return []
        try:
            source = self.migrate_from_field()
        except FieldDoesNotExist:
            problem = f"migrate_from='{self.migrate_from}' names no field of the model"
        else:
            if getattr(source, "encrypted", False) or not source.concrete:
                problem = f"migrate_from='{self.migrate_from}' must name a plaintext column"
            elif not self.null:
                problem = "a field with migrate_from must have null=True until migrated"
            else:
                return []
        return [
            checks.Error(
                f"{self.describe()}: {problem}.",
                hint="See docs/migration.md.",
                obj=self,
                id="alphapulse_encryption.E015",
            )
        ]

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

    def describe(self) -> str:
        model = getattr(self, "model", None)
        owner = model._meta.label if model is not None else "<unbound>"
        return f"{type(self).__name__} '{self.name}' on {owner}"

    # -- validation -----------------------------------------------------------------

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

    # -- values to the database ---------------------------------------------------

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
            value = self.from_db_value(stored.stored, None, None)
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

    # -- migration from a plaintext field -------------------------------------------

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
        one, batch = _defined_in(type(self), "encrypt"), _defined_in(type(self), "seal_batch")
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
                _ours(_defined_in(cls, name))
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
        raise FieldError(
            f"{self.describe()} cannot be set from the database expression {kind}(): "
            "the database only sees ciphertext; assign a Python value instead"
        )

    # -- values from the database -------------------------------------------------

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

    def value_to_string(self, obj: Model) -> str:
        """The ciphertext: what serializers (dumpdata) write for this field."""
        stored = obj.__dict__.get(self.attname)
        if isinstance(stored, Sealed | UndecryptableValue):
            return stored.stored
        prepared = self.get_db_prep_value(self.value_from_object(obj), prepared=False)
        return "" if prepared is None else str(prepared)

    # -- lookups and ordering -----------------------------------------------------

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

    def lookup_error(self, lookup_name: str) -> str:
        allowed = ", ".join(sorted(self.allowed_lookups))
        return (
            f"{self.describe()} does not support the '{lookup_name}' lookup: {_WHY_NO_LOOKUP}. "
            f"Supported lookups: {allowed}."
            + (
                ""
                if "exact" in self.allowed_lookups
                else " For exact-match search use EncryptedSearchableString."
            )
        )

    def expression_error(self, expression: str) -> str:
        return (
            f"{self.describe()} cannot be used in the database expression {expression}(): "
            f"{_WHY_NO_LOOKUP}. Load the values and compute in Python (Count works)."
        )

    def ordering_error(self) -> str:
        return (
            f"{self.describe()} cannot be used in order_by(): {_WHY_NO_LOOKUP}. "
            "Order in Python after loading, or by a plaintext column."
        )

    def grouping_error(self) -> str:
        return (
            f"{self.describe()} cannot be grouped by (values() before annotate(), directly "
            f"or through a relation): {_WHY_NOT_EQUAL} and would fall into separate "
            "groups. Group in Python after loading, or by a plaintext column."
            + self.equality_hint("group by")
        )

    def distinct_error(self, how: str = "distinct()") -> str:
        fix = (
            "Select the primary key of its model too (rows are then told apart by identity), "
            "or deduplicate in Python after loading."
            if how == "distinct()"
            else "Deduplicate in Python after loading."
        )
        return (
            f"{self.describe()} cannot be used in {how}: {_WHY_NOT_EQUAL} and would all "
            f"count as distinct. {fix}" + self.equality_hint("deduplicate by")
        )

    def equality_hint(self, operation: str) -> str:
        """How to do ``operation`` by equality instead (the searchable field has a way)."""
        return ""
