"""Masks that show what kind of value a field holds without showing the value: the admin
displays them in place of plaintext, and the logging filter applies them to free text.

Three styles only, so a reader learns them once: ``a***@e***.com`` (e-mail), ``****1234``
(the last four characters of an account or phone number), ``••••`` (anything else);
JSON shows as ``{…}``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db import models

EMAIL = "email"
PHONE = "phone"
ACCOUNT = "account"
NUMBER = "number"
JSON = "json"
DEFAULT = "default"

Mask = str | Callable[[Any], str]

_EMAIL_WORDS = frozenset({"email", "mail"})
_PHONE_WORDS = frozenset({"phone", "mobile", "tel", "telephone", "fax", "msisdn"})
_ACCOUNT_WORDS = frozenset({"iban", "pan"})
# "account_number", "card_no"; not "card_holder" (a name keeps no digits worth showing).
_NUMBERED_WORDS = frozenset({"account", "acct", "card"})
_NUMBER_WORDS = frozenset({"number", "no", "num", "nr"})
# Shorter values would be shown almost whole by "keep the last four".
_MIN_TAIL_LENGTH = 8
_MIN_PHONE_DIGITS = 7
_HIDDEN_PREFIX = "****"
_HIDDEN = "••••"


def mask_email(value: Any) -> str:
    """``alice@example.com`` -> ``a***@e***.com``; parts too short to hide lose their first
    letter too."""
    text = str(value).strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return mask_default(value)
    name, dot, tld = domain.rpartition(".")
    if not dot:
        name, tld = domain, ""
    return f"{_initial(local)}***@{_initial(name)}***{dot}{tld}"


def mask_phone(value: Any) -> str:
    """``+1 555 010 1234`` -> ``****1234``, the style of account numbers."""
    digits = re.sub(r"\D", "", str(value))
    if len(digits) < _MIN_PHONE_DIGITS:
        return mask_default(value)
    return f"{_HIDDEN_PREFIX}{digits[-4:]}"


def mask_account(value: Any) -> str:
    """``DE89 3704 0044 0532 0130 00`` -> ``****3000``."""
    compact = re.sub(r"[\s-]", "", str(value))
    if len(compact) < _MIN_TAIL_LENGTH:
        return mask_default(value)
    return f"{_HIDDEN_PREFIX}{compact[-4:]}"


def mask_number(value: Any) -> str:
    # The same as text: a shorter mask for numbers would read as a different kind of secret.
    return mask_default(value)


def mask_json(value: Any) -> str:
    return "{…}"


def mask_default(value: Any) -> str:
    return _HIDDEN


def _initial(part: str) -> str:
    return part[0] if len(part) >= 3 else ""


MASKS: dict[str, Callable[[Any], str]] = {
    EMAIL: mask_email,
    PHONE: mask_phone,
    ACCOUNT: mask_account,
    NUMBER: mask_number,
    JSON: mask_json,
    DEFAULT: mask_default,
}


def mask_kind(field: models.Field) -> str:
    """The kind of mask for ``field``: its ``mask`` attribute when it has one, else guessed
    from its type (JSON, numbers) and its name (``email``, ``phone``, ``account_number``)."""
    declared = getattr(field, "mask", None)
    if isinstance(declared, str) and declared in MASKS:
        return declared
    if isinstance(field, models.JSONField):
        return JSON
    if isinstance(field, models.EmailField):
        return EMAIL
    words = set(field.name.lower().split("_"))
    if words & _EMAIL_WORDS:
        return EMAIL
    if words & _PHONE_WORDS:
        return PHONE
    if words & _ACCOUNT_WORDS or (words & _NUMBERED_WORDS and words & _NUMBER_WORDS):
        return ACCOUNT
    if isinstance(field, models.IntegerField | models.FloatField | models.DecimalField):
        return NUMBER
    return DEFAULT


def resolve_mask(mask: Mask) -> Callable[[Any], str]:
    """The function behind a mask kind name, or ``mask`` itself when it is a callable."""
    if callable(mask):
        return mask
    try:
        return MASKS[mask]
    except KeyError:
        raise ValueError(
            f"unknown mask {mask!r}; use one of {sorted(MASKS)} or a callable"
        ) from None


def mask_for_field(field: models.Field, override: Mask | None = None) -> Callable[[Any], str]:
    """The mask function for ``field``: ``override`` (a kind or a function) if given, else
    the one for the field's kind."""
    if override is not None:
        return resolve_mask(override)
    return MASKS[mask_kind(field)]


def mask_value(value: Any, mask: Mask = DEFAULT) -> str:
    """``value`` masked; ``None`` and the empty string stay empty (nullness is not secret:
    the database shows it too)."""
    if value is None or value == "":
        return ""
    return resolve_mask(mask)(value)


# -- free text (log records) ------------------------------------------------------------

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.ASCII)
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_CARD_RE = re.compile(r"(?<![\w.])\d(?:[ -]?\d){11,18}(?![\w.])")
_PHONE_RE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,5}(?!\w)"  # +49 (30) 1234567
    r"|(?<![\w+])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w)"  # North American: (555) 010-1234
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    # Long digit runs that fail the Luhn check are ids, timestamps or amounts.
    return mask_account(digits) if _luhn_valid(digits) else match.group()


def mask_text(text: str) -> str:
    """``text`` with e-mail addresses, IBANs, card numbers and phone numbers masked."""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group()), text)
    text = _IBAN_RE.sub(lambda m: mask_account(m.group()), text)
    text = _CARD_RE.sub(_mask_card, text)
    return _PHONE_RE.sub(lambda m: mask_phone(m.group()), text)
