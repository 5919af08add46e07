"""Model forms that open on an object whose stored value fails to decrypt: the field shows
"undecryptable", a new value replaces it, and an empty input leaves the stored bytes as
they are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django import forms

from ..crypto import DecryptionError
from ..introspection import is_encrypted
from .widgets import UNDECRYPTABLE_VALUE

_DERIVED = "_alphapulse_tolerant_form"


def _unreadable_fields(form_class: type[forms.BaseModelForm], instance: Any) -> list[Any]:
    """The encrypted model fields of the form whose value on ``instance`` fails to decrypt
    (reading them sends ``decryption_failed``: the failure is audited)."""
    if instance is None or instance._state.adding:
        return []
    names = getattr(form_class, "base_fields", {})
    unreadable = []
    for field in instance._meta.concrete_fields:
        if is_encrypted(field) and field.name in names:
            try:
                getattr(instance, field.attname)
            except DecryptionError:
                unreadable.append(field)
    return unreadable


@contextmanager
def _placeholders(instance: Any, fields: list[Any]) -> Iterator[None]:
    """While the form reads its initial values, each unreadable attribute reads as
    ``UNDECRYPTABLE_VALUE``; the stored value is back before anything can save it."""
    if not fields:
        yield
        return
    saved = {field.attname: instance.__dict__[field.attname] for field in fields}
    instance.__dict__.update(dict.fromkeys(saved, UNDECRYPTABLE_VALUE))
    try:
        yield
    finally:
        instance.__dict__.update(saved)


class UndecryptableTolerantForm(forms.BaseModelForm):
    """Mixed in before a model form class by :func:`tolerant_form`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        instance = kwargs.get("instance")
        unreadable = _unreadable_fields(type(self), instance)
        with _placeholders(instance, unreadable):
            super().__init__(*args, **kwargs)
        self.undecryptable_fields = frozenset(field.name for field in unreadable)
        self._kept_as_stored: set[str] = set()

    def _post_clean(self) -> None:
        cleaned = self.cleaned_data
        self._kept_as_stored = {
            name for name in self.undecryptable_fields if cleaned.get(name) is UNDECRYPTABLE_VALUE
        }
        for name in self._kept_as_stored:
            # Never assigned to the instance: save() writes the stored ciphertext back.
            del cleaned[name]
        super()._post_clean()  # type: ignore[misc]

    def _get_validation_exclusions(self) -> set[str]:
        # Model validation would read, and fail on, the values kept as stored.
        excluded = super()._get_validation_exclusions()  # type: ignore[misc]
        return set(excluded) | self._kept_as_stored


def tolerant_form(form_class: type[forms.BaseModelForm]) -> type[forms.BaseModelForm]:
    """``form_class`` with :class:`UndecryptableTolerantForm` mixed in, made once per class
    (kept on the class itself, so it lives as long as the class does)."""
    if issubclass(form_class, UndecryptableTolerantForm):
        return form_class
    derived = form_class.__dict__.get(_DERIVED)
    if derived is None:
        derived = type(
            form_class.__name__,
            (UndecryptableTolerantForm, form_class),
            {"__module__": form_class.__module__},
        )
        setattr(form_class, _DERIVED, derived)
    return derived
