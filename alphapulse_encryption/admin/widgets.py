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


class _Unchanged:
    """What a masked widget submits when its input was left empty."""

    def __repr__(self) -> str:
        return "<unchanged>"


UNCHANGED = _Unchanged()


@dataclass(frozen=True)
class MaskedValue:
    """What a masked widget renders instead of the value: its mask, and where to reveal it."""

    mask: str = ""
    reveal_url: str | None = None
    keeps: bool = False
    can_clear: bool = False


def render_masked(mask: str, reveal_url: str | None = None) -> SafeString:
    """The mask, and for users allowed to reveal, a button that fetches the plaintext
    (``reveal.js``): shared by list columns, read-only fields and the widgets."""
    shown = format_html('<span class="ape-masked">{}</span>', mask)
    if not reveal_url:
        return shown
    return format_html(
        '{}<span class="ape-reveal-group"><button type="button" class="button ape-reveal" '
        'data-reveal-url="{}">Reveal</button>'
        '<output class="ape-revealed" hidden></output></span>',
        shown,
        reveal_url,
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
        if masked.keeps:
            parts.insert(0, render_masked(masked.mask or "(empty)", masked.reveal_url))
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
    ) -> None:
        self.field = field
        self.mask = mask
        self.reveal_url = reveal_url
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
                return self.stored
            value = ""
        return self.field.clean(value)

    def has_changed(self, initial: Any, data: Any) -> bool:
        if data is UNCHANGED:
            return not self.keeps and self.field.has_changed(initial, "")
        return self.field.has_changed(initial, data)


class MaskedBoundField(BoundField):
    field: MaskedField

    def value(self) -> MaskedValue:
        field = self.field
        if not field.keeps:
            return MaskedValue()
        shown = mask_value(field.stored, field.mask)
        url = None
        if shown and field.reveal_url is not None:
            url = field.reveal_url(self.form.instance)  # type: ignore[attr-defined]
        # Booleans clear through their own options; other optional values through a box.
        can_clear = not field.field.required and not isinstance(field.field, forms.BooleanField)
        return MaskedValue(shown, url, keeps=True, can_clear=can_clear)
