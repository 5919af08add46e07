"""Encrypted counterparts of Django's scalar and JSON fields."""

from __future__ import annotations

import datetime
import decimal
import json
import math
from typing import Any

from django.core import checks
from django.core.exceptions import ValidationError
from django.db import models

from . import checks as field_checks
from .base import EncryptedFieldMixin


class EncryptedString(EncryptedFieldMixin, models.CharField):
    """A string; ``max_length`` is optional and, when given, validates the plaintext."""

    python_type = str

    def __init__(self, *args: Any, max_length: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, max_length=max_length, **kwargs)

    def _check_max_length_attribute(self, **kwargs: Any) -> list[checks.CheckMessage]:
        if self.max_length is None:
            return []
        return super()._check_max_length_attribute(**kwargs)  # type: ignore[misc]


class EncryptedText(EncryptedFieldMixin, models.TextField):
    """Long text."""

    python_type = str


class EncryptedInteger(EncryptedFieldMixin, models.IntegerField):
    """An integer of any size (no database range applies to the ciphertext)."""

    python_type = int

    @property
    def validators(self) -> list[Any]:
        # IntegerField adds the database's integer range; ours is stored as text.
        return [*self.default_validators, *self._validators]  # type: ignore[attr-defined]


class EncryptedFloat(EncryptedFieldMixin, models.FloatField):
    """A float, stored exactly (IEEE 754 binary64)."""

    python_type = float


class EncryptedDecimal(EncryptedFieldMixin, models.DecimalField):
    """A Decimal; ``max_digits`` and ``decimal_places`` are optional. When
    ``decimal_places`` is given, values are quantized to it on save, as a database would."""

    python_type = decimal.Decimal

    def __init__(
        self,
        *args: Any,
        max_digits: int | None = None,
        decimal_places: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        if (self.max_digits is None) != (self.decimal_places is None):
            return [*models.Field.check(self, **kwargs), field_checks.decimal_digits_error(self)]
        if self.max_digits is None:
            return models.Field.check(self, **kwargs)
        return super().check(**kwargs)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, decimal.Decimal):
            return value
        try:
            if isinstance(value, float):
                if math.isnan(value):
                    raise ValueError("NaN")
                if self.max_digits is None:
                    return decimal.Decimal(repr(value))
                return decimal.Context(prec=self.max_digits).create_decimal_from_float(value)
            return decimal.Decimal(value)
        except (decimal.InvalidOperation, TypeError, ValueError):
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None

    def get_prep_value(self, value: Any) -> Any:
        value = self.to_python(value)
        if value is not None and self.decimal_places is not None and value.is_finite():
            try:
                value = value.quantize(decimal.Decimal(1).scaleb(-self.decimal_places))
            except decimal.InvalidOperation:
                raise ValueError(
                    f"{self.describe()}: {self.max_digits} digits with {self.decimal_places} "
                    "decimal places cannot hold the value assigned"
                ) from None
        return value


class EncryptedDate(EncryptedFieldMixin, models.DateField):
    """A date."""

    python_type = datetime.date


class EncryptedDateTime(EncryptedFieldMixin, models.DateTimeField):
    """A datetime; an aware value keeps its UTC offset."""

    python_type = datetime.datetime


class EncryptedBoolean(EncryptedFieldMixin, models.BooleanField):
    """A boolean; ``False`` is encrypted like any other value, never stored as NULL."""

    python_type = bool


class EncryptedJSON(EncryptedFieldMixin, models.JSONField):
    """Any JSON value; leaves keep their JSON types (5 stays 5, "5" stays "5")."""

    as_json = True

    # The encoder and decoder apply as they would for a JSON column: the value is stored
    # as the JSON the encoder produces and read back through the decoder.
    def get_prep_value(self, value: Any) -> Any:
        if value is not None and self.encoder is not None:
            return json.loads(json.dumps(value, cls=self.encoder))
        return value

    def to_python(self, value: Any) -> Any:
        if value is not None and self.decoder is not None:
            return json.loads(json.dumps(value), cls=self.decoder)
        return value
