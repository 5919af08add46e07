"""Form fields and widgets that never render a stored plaintext: they show its mask, a
reveal button for users allowed to reveal, and an empty input for a new value."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.forms.boundfield import BoundField
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..masking import mask_value

CLEAR_SUFFIX = "-clear"
KEEP_HELP = "Stored encrypted. Leave empty to keep the current value; type to replace it."
# Titles (hover, screen readers) of masked values, by what the user may do about them.
HIDDEN_BY_POLICY = "hidden by policy: you lack the reveal permission"
REVEAL_HERE = "masked: Reveal shows the value; each reveal is recorded in the audit log"
REVEAL_ON_PAGE = "masked: reveal it on the object's page; each reveal is recorded in the audit log"
REVEAL_RECORDED = "Reveal recorded in the audit log."
# Under the title of a change list that shows masked columns, for users who may not reveal.
HIDDEN_BY_POLICY_NOTE = "Encrypted values are hidden by policy: you may not reveal them."
UNDECRYPTABLE = "undecryptable"
UNDECRYPTABLE_HINT = (
    "The stored value cannot be decrypted (the failure is in the audit log); "
    "a user who may change it can enter a new value to replace it."
)


class _Unchanged:
    """What a masked widget submits when its input was left empty."""

    def __repr__(self) -> str:
        return "<unchanged>"


UNCHANGED = _Unchanged()


class _Undecryptable:
    """Stands in for a stored value that failed to decrypt, as the initial value of a
    masked form field: the form opens, shows "undecryptable", and never saves it back."""

    def __repr__(self) -> str:
        return "<undecryptable>"


UNDECRYPTABLE_VALUE = _Undecryptable()


@dataclass(frozen=True)
class MaskedValue:
    """What a masked widget renders instead of the value: its mask, and where to reveal it."""

    mask: str = ""
    reveal_url: str | None = None
    keeps: bool = False
    can_clear: bool = False
    can_reveal: bool = False
    undecryptable: bool = False


def render_masked(
    mask: str, reveal_url: str | None = None, *, can_reveal: bool, note: bool = False
) -> SafeString:
    """The mask, titled with what the user may do about it; for users allowed to reveal,
    a button that fetches the plaintext and one that hides it again (``reveal.js``).
    ``note``: say "hidden by policy" on the page too, not only in the title (forms have
    the room; list cells do not). Shared by list columns, read-only fields and widgets."""
    if reveal_url:
        title = REVEAL_HERE
    elif can_reveal:
        title = REVEAL_ON_PAGE
    else:
        title = HIDDEN_BY_POLICY
    shown = format_html('<span class="ape-masked" title="{}">{}</span>', title, mask)
    if not reveal_url:
        if note and not can_reveal:
            return format_html(
                '{} <small class="ape-policy" title="{}">hidden by policy</small>', shown, title
            )
        return shown
    return format_html(
        '{}<span class="ape-reveal-group"><button type="button" class="button ape-reveal" '
        'data-reveal-url="{}" title="{}">Reveal</button>'
        '<output class="ape-revealed" hidden></output>'
        '<button type="button" class="button ape-hide" hidden>Hide</button>'
        '<small class="ape-reveal-note" role="status" hidden>{}</small></span>',
        shown,
        reveal_url,
        REVEAL_HERE,
        REVEAL_RECORDED,
    )


def render_undecryptable() -> SafeString:
    """What list cells, read-only fields and widgets show for a value that failed to decrypt."""
    return format_html(
        '<span class="ape-undecryptable" title="{}">{}</span>', UNDECRYPTABLE_HINT, UNDECRYPTABLE
    )


class _MaskedWidgetMixin(forms.Widget):
    """Renders the mask and an empty input; submits ``UNCHANGED`` for an empty input."""

    placeholder: str | None = "type to replace"
    keep_help = KEEP_HELP

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        if data.get(name + CLEAR_SUFFIX):
            return ""
        value = super().value_from_datadict(data, files, name)
        return UNCHANGED if value in (None, "") else value

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return False

    def use_required_attribute(self, initial: Any) -> bool:
        # An empty input keeps the stored value; the field still validates server-side.
        return False

    def format_value(self, value: Any) -> Any:
        return None

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        masked = value if isinstance(value, MaskedValue) else MaskedValue()
        attrs = {**(attrs or {}), "autocomplete": "off"}
        if masked.keeps:
            attrs.setdefault("aria-description", self.keep_help)
            if self.placeholder:
                attrs.setdefault("placeholder", self.placeholder)
        control = super().render(name, None, attrs, renderer)
        parts = [control]
        if masked.undecryptable:
            parts.insert(0, render_undecryptable())
        elif masked.keeps:
            parts.insert(
                0,
                render_masked(
                    masked.mask or "(empty)",
                    masked.reveal_url,
                    can_reveal=masked.can_reveal,
                    note=True,
                ),
            )
        if masked.can_clear:
            parts.append(
                format_html(
                    '<label class="ape-clear"><input type="checkbox" name="{}"> clear</label>',
                    name + CLEAR_SUFFIX,
                )
            )
        inner = format_html_join(" ", "{}", ((part,) for part in parts))
        return format_html('<div class="ape-masked-widget">{}</div>', inner)


class MaskedInput(_MaskedWidgetMixin, forms.TextInput):
    pass


class MaskedTextarea(_MaskedWidgetMixin, forms.Textarea):
    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"rows": 3, **(attrs or {})})


class MaskedSelect(_MaskedWidgetMixin, forms.Select):
    """For choices and booleans: the first option keeps the stored value and is selected."""

    placeholder = None
    keep_help = "Stored encrypted. Choose an option to replace the current value."

    def __init__(self, choices: Any = ()) -> None:
        options = [(value, label) for value, label in choices if value not in ("", None)]
        super().__init__(choices=[("", "(keep)"), *options])

    def format_value(self, value: Any) -> list[str]:
        return []


def _masked_widget(field: forms.Field) -> forms.Widget:
    if isinstance(field, forms.NullBooleanField):
        return MaskedSelect([("true", "Yes"), ("false", "No"), ("unknown", "Unknown")])
    if isinstance(field, forms.BooleanField):
        return MaskedSelect([("True", "Yes"), ("False", "No")])
    if isinstance(field, forms.ChoiceField):
        return MaskedSelect(field.choices)
    if isinstance(field.widget, forms.Textarea):
        return MaskedTextarea()
    return MaskedInput()


class MaskedField(forms.Field):
    """Wraps the form field of an encrypted model field: renders a masked widget, keeps
    the stored value when the input is left empty, and validates a new value with the
    wrapped field."""

    def __init__(
        self,
        field: forms.Field,
        *,
        mask: Callable[[Any], str],
        reveal_url: Callable[[Any], str | None] | None = None,
        can_reveal: bool | None = None,
    ) -> None:
        self.field = field
        self.mask = mask
        self.reveal_url = reveal_url
        self.can_reveal = reveal_url is not None if can_reveal is None else can_reveal
        # Set per form by get_bound_field() (fields are deep-copied for every form).
        self.keeps = False
        self.stored: Any = None
        super().__init__(
            required=field.required,
            widget=_masked_widget(field),
            label=field.label,
            initial=field.initial,
            help_text=field.help_text,
            localize=field.localize,
            disabled=field.disabled,
            label_suffix=field.label_suffix,
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> MaskedField:
        result = super().__deepcopy__(memo)
        result.field = copy.deepcopy(self.field, memo)
        return result

    def get_bound_field(self, form: forms.BaseForm, field_name: str) -> BoundField:
        instance = getattr(form, "instance", None)
        self.keeps = instance is not None and not instance._state.adding
        if self.keeps:
            self.stored = form.get_initial_for_field(self, field_name)
        return MaskedBoundField(form, self, field_name)

    def clean(self, value: Any) -> Any:
        if value is UNCHANGED:
            if self.keeps:
                return self.stored  # UNDECRYPTABLE_VALUE: the form leaves the field alone
            value = ""
        return self.field.clean(value)

    def has_changed(self, initial: Any, data: Any) -> bool:
        if initial is UNDECRYPTABLE_VALUE:
            # The wrapped field cannot compare with it (JSON would fail to serialise it).
            return data is not UNCHANGED
        if data is UNCHANGED:
            return not self.keeps and self.field.has_changed(initial, "")
        return self.field.has_changed(initial, data)


class MaskedBoundField(BoundField):
    field: MaskedField

    def value(self) -> MaskedValue:
        field = self.field
        if not field.keeps:
            return MaskedValue()
        # Booleans clear through their own options; other optional values through a box.
        can_clear = not field.field.required and not isinstance(field.field, forms.BooleanField)
        if field.stored is UNDECRYPTABLE_VALUE:
            return MaskedValue(keeps=True, can_clear=can_clear, undecryptable=True)
        shown = mask_value(field.stored, field.mask)
        url = None
        if shown and field.reveal_url is not None:
            url = field.reveal_url(self.form.instance)  # type: ignore[attr-defined]
        return MaskedValue(shown, url, keeps=True, can_clear=can_clear, can_reveal=field.can_reveal)
