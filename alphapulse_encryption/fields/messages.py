"""The texts of the errors an encrypted field raises for what the database cannot do with
ciphertext: lookups, ordering, grouping, ``distinct()``, expressions."""

from __future__ import annotations

from typing import ClassVar

from django.db.models import Field

_WHY_NO_LOOKUP = (
    "encrypted values are stored with a random nonce, so the database cannot compare, "
    "order or search them"
)
_WHY_NOT_EQUAL = (
    "encrypted values are stored with a random nonce, so equal values are stored as "
    "different ciphertexts"
)


class FieldMessages(Field):
    """Mixed into every encrypted field; each text names the field and says why."""

    allowed_lookups: ClassVar[frozenset[str]]

    def describe(self) -> str:
        model = getattr(self, "model", None)
        owner = model._meta.label if model is not None else "<unbound>"
        return f"{type(self).__name__} '{self.name}' on {owner}"

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

    def assigned_expression_error(self, expression: str) -> str:
        return (
            f"{self.describe()} cannot be set from the database expression {expression}(): "
            "the database only sees ciphertext; assign a Python value instead"
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
