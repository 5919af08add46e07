"""The queryset of models with encrypted fields: ``update()`` and ``bulk_update()`` checks,
and the batch encryption of ``bulk_create()`` and ``bulk_update()``.

``AppConfig.ready`` gives the managers of every model with encrypted fields a queryset
class that (a) refuses, before any SQL runs, an ``update()`` that would set an encrypted
column from a database expression (the database only sees ciphertext), and (b) for fields
declared with ``migrate_from``, also writes the encrypted column whenever its plaintext
source is written ("dual write"; ``pre_save`` covers save, create and bulk_create, and a
``pre_save`` receiver guards ``save(update_fields=...)``).

``bulk_create`` and ``bulk_update`` encrypt each column's new values in one batch (one key
lookup, one draw of random nonces) before Django builds its query, and put the values
back on the instances afterwards.

The check lives here rather than in ``Field.get_placeholder()`` because defining that
method stops Django from using its fast ``UNNEST`` bulk insert on PostgreSQL.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from django.core.exceptions import FieldError
from django.db import models
from django.db.models import Value
from django.db.models.signals import pre_save

from ..introspection import encrypted_fields
from .base import EncryptedFieldMixin
from .stored import Prepared, Sealed, UndecryptableValue


def _encrypted_fields(model: type[models.Model]) -> list[EncryptedFieldMixin]:
    # introspection answers for every layer without importing the fields; these are ours.
    return cast("list[EncryptedFieldMixin]", encrypted_fields(model))


def migrating_fields(model: type[models.Model]) -> list[EncryptedFieldMixin]:
    return [f for f in _encrypted_fields(model) if f.migrate_from is not None]


# Values that are certainly new plaintext (the common case, checked first).
_PLAIN_TYPES = frozenset(
    {str, int, float, bool, decimal.Decimal, datetime.date, datetime.datetime, dict, list}
)


def _new_value(value: Any) -> bool:
    """Whether an attribute value is one to encrypt (not a stored one, not None, not a
    database expression)."""
    if type(value) in _PLAIN_TYPES:
        return True
    return not (
        value is None
        or isinstance(value, Sealed | UndecryptableValue | Prepared)
        or hasattr(value, "resolve_expression")
    )


@contextmanager
def _encrypted_ahead(
    objs: list[models.Model], fields: Iterable[EncryptedFieldMixin], *, as_expression: bool
) -> Iterator[None]:
    """Encrypt every new value of ``fields`` on ``objs`` in one batch per field, and hold
    the result on the instances (as a :class:`Prepared`, or a ``Value`` of one for
    ``bulk_update``, which reads attributes into ``CASE`` expressions) until the block ends;
    then the instances get their values back."""
    replaced: list[tuple[models.Model, str, Any]] = []
    try:
        for field in fields:
            if not field.can_encrypt_ahead():
                continue
            attname = field.attname
            owners = [obj for obj in objs if _new_value(obj.__dict__.get(attname))]
            if not owners:
                continue
            values = [obj.__dict__[attname] for obj in owners]
            sealed = field.encrypt_many([field.get_prep_value(value) for value in values])
            for obj, value, stored in zip(owners, values, sealed, strict=True):
                held: Any = None if stored is None else Prepared(stored, value)
                if as_expression and held is not None:
                    held = Value(held, output_field=field)
                obj.__dict__[attname] = held
                replaced.append((obj, attname, value))
        yield
    finally:
        for obj, attname, value in replaced:
            obj.__dict__[attname] = value


class EncryptedQuerySetMixin:
    model: type[models.Model]

    def bulk_create(self, objs: Iterable[models.Model], *args: Any, **kwargs: Any) -> Any:
        objs = list(objs)
        with _encrypted_ahead(objs, _encrypted_fields(self.model), as_expression=False):
            return super().bulk_create(objs, *args, **kwargs)  # type: ignore[misc]

    def update(self, **kwargs: Any) -> int:
        for field in _encrypted_fields(self.model):
            for name in {field.name, field.attname}.intersection(kwargs):
                if hasattr(kwargs[name], "resolve_expression"):
                    field.check_assigned_expression(kwargs[name])
        for field in migrating_fields(self.model):
            source = field.migrate_from_field()
            key = next((k for k in (source.name, source.attname) if k in kwargs), None)
            if key is None or field.name in kwargs or field.attname in kwargs:
                continue
            value = kwargs[key]
            if hasattr(value, "resolve_expression"):
                raise FieldError(
                    f"update() sets '{key}' from a database expression while it is being "
                    f"migrated to the encrypted field '{field.name}'; assign a Python value"
                )
            kwargs[field.name] = field.mirror_value(value)
        return super().update(**kwargs)  # type: ignore[misc]

    def bulk_update(
        self, objs: Iterable[models.Model], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        objs, fields = list(objs), list(fields)
        for field in migrating_fields(self.model):
            source = field.migrate_from_field()
            if source.name in fields and field.name not in fields:
                for obj in objs:
                    value = field.mirror_value(getattr(obj, source.attname))
                    setattr(obj, field.attname, value)
                fields.append(field.name)
        updated = [
            f for f in _encrypted_fields(self.model) if f.name in fields or f.attname in fields
        ]
        with _encrypted_ahead(objs, updated, as_expression=True):
            return super().bulk_update(objs, fields, batch_size=batch_size)  # type: ignore[misc]


def _check_update_fields(sender: type[models.Model], update_fields: Any = None, **_: Any) -> None:
    if not update_fields:
        return
    for field in migrating_fields(sender):
        if field.migrate_from in update_fields and field.name not in update_fields:
            raise FieldError(
                f"save(update_fields=...) names '{field.migrate_from}', which is being migrated "
                f"to the encrypted field '{field.name}'; add '{field.name}' to update_fields"
            )


def install(model: type[models.Model]) -> None:
    """Give ``model``'s managers the encrypted-field queryset (idempotent)."""
    if not encrypted_fields(model):
        return
    # The declared managers too: the app registry rebuilds _meta.managers from copies of
    # them whenever its cache is cleared (apps.clear_cache(), a model registered later).
    managers = (*model._meta.local_managers, *model._meta.managers, model._meta.base_manager)
    for manager in managers:
        manager_class = type(manager)
        queryset_class = manager._queryset_class  # type: ignore[attr-defined]
        if issubclass(queryset_class, EncryptedQuerySetMixin):
            continue
        dual_queryset = type(
            f"Encrypted{queryset_class.__name__}", (EncryptedQuerySetMixin, queryset_class), {}
        )
        # The subclass keeps its base's name and module, so tools that resolve a manager's
        # type by its import path (django-stubs' mypy plugin) still find it.
        manager.__class__ = type(
            manager_class.__name__,
            (manager_class,),
            {
                "_queryset_class": dual_queryset,
                "__module__": manager_class.__module__,
                "__qualname__": manager_class.__qualname__,
            },
        )
    if migrating_fields(model):
        pre_save.connect(_check_update_fields, sender=model, dispatch_uid=f"ape-dual-write-{model}")
