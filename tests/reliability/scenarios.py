"""The data the fault and concurrency tests work on, and the check that follows every fault
or race: each expected row present exactly once, every value equal to the value last
written, every search token that of the current value, every value under the active key.

Used in-process by the tests and in subprocesses by ``tests.reliability.worker``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from alphapulse_encryption.crypto import key_version_of
from alphapulse_encryption.crypto.cipher import split_searchable
from alphapulse_encryption.fields import UndecryptableValue
from alphapulse_encryption.keys import current_cipher, current_keyring
from alphapulse_encryption.migration.models import EncryptionMigrationFailure
from alphapulse_encryption.migration.verify import verify
from tests.migration.conftest import ENCRYPTED, make_legacy_clients, original_values
from tests.testapp.models import Customer, LegacyClient

LEGACY = "legacy"
CUSTOMERS = "customers"
CUSTOMER_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "date_of_birth",
    "api_secret",
    "notification_settings",
    "is_verified",
)
MAX_PROBLEMS = 20


def customer_values(i: int) -> dict[str, Any]:
    return {
        "email": f"Fault.Customer{i}@Example.com",
        "phone": f"+44 20 7946 {i:04d}",
        "first_name": f"Ada{i}",
        "last_name": "Lovelace-" + "x" * (i % 7),
        "date_of_birth": datetime.date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
        "api_secret": f"sk_fault_{i:06d}",
        "notification_settings": {"sms": i % 2 == 0, "limits": [i, 1.5], "tag": None},
        "is_verified": i % 3 == 0,
    }


def legacy_expected(i: int) -> dict[str, Any]:
    """The plaintext columns of a legacy row and what its encrypted twins must hold."""
    values = original_values(i)
    return {
        "email": values["email"],
        "balance": values["balance"],
        "preferences": values["preferences"],
        "email_encrypted": values["email"],
        "balance_encrypted": int(values["balance"]),
        "preferences_encrypted": values["preferences"],
    }


def seed(kind: str, rows: int) -> dict[Any, dict[str, Any]]:
    """``rows`` rows of ``kind``; returns {pk: expected values}."""
    if kind == LEGACY:
        originals = make_legacy_clients(rows)
        return {pk: legacy_expected(i) for i, pk in enumerate(sorted(originals))}
    created = Customer.objects.bulk_create([Customer(**customer_values(i)) for i in range(rows)])
    if any(customer.pk is None for customer in created):  # no RETURNING on this backend
        created = list(Customer.objects.order_by("pk"))[-rows:]
    return {customer.pk: customer_values(i) for i, customer in enumerate(created)}


@dataclass
class Check:
    """The outcome of :func:`check`: ``lost`` counts expected rows that are missing,
    duplicated or hold a value other than the last one written."""

    kind: str
    expected: int
    checked: int = 0
    lost: int = 0
    stale_tokens: int = 0
    old_key_values: int = 0
    problems: list[str] = field(default_factory=list)
    verify_complete: bool | None = None

    @property
    def ok(self) -> bool:
        return not (self.lost or self.stale_tokens or self.old_key_values) and (
            self.verify_complete is not False
        )

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "ok": self.ok}


def check(kind: str, expected: dict[Any, dict[str, Any]]) -> Check:
    result = Check(kind, len(expected))
    model = LegacyClient if kind == LEGACY else Customer
    names = list(next(iter(expected.values()))) if expected else []
    rows = list(model._base_manager.order_by("pk").values_list("pk", *names))
    seen: dict[Any, int] = {}
    for pk, *values in rows:
        seen[pk] = seen.get(pk, 0) + 1
        want = expected.get(pk)
        if want is None:
            continue  # not one of ours (a concurrent test's own rows are all expected)
        result.checked += 1
        for name, value in zip(names, values, strict=True):
            if isinstance(value, UndecryptableValue) or value != want[name]:
                result.lost += 1
                result.problem(f"pk={pk} {name}: holds a different value")
                break
    for pk in expected:
        if seen.get(pk, 0) != 1:
            result.lost += 1
            result.problem(f"pk={pk}: present {seen.get(pk, 0)} times")
    _check_tokens_and_versions(kind, expected, result)
    if kind == LEGACY:
        report = verify()
        result.verify_complete = report.complete and not EncryptionMigrationFailure.objects.exists()
        if not result.verify_complete:
            result.problem(f"verify incomplete: {[vars(c) for c in report.incomplete()]}")
    return result


def _stored(model: Any, columns: list[str]) -> list[tuple[Any, ...]]:
    qn = connection.ops.quote_name
    pk_column = model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(pk_column)}, {', '.join(qn(c) for c in columns)} "
            f"FROM {qn(model._meta.db_table)}"
        )
        return list(cursor.fetchall())


def _check_tokens_and_versions(
    kind: str, expected: dict[Any, dict[str, Any]], result: Check
) -> None:
    """Read the raw columns: every value under the active version, and the token column
    equal to the token of the value it sits beside, under that version."""
    model = LegacyClient if kind == LEGACY else Customer
    source = model._meta.get_field("email_encrypted" if kind == LEGACY else "email")
    token_field = model._meta.get_field(f"{source.name}_search")
    encrypted = [f for f in model._meta.concrete_fields if getattr(f, "encrypted", False)]
    columns = [f.column for f in encrypted]
    active = current_keyring().active_version
    cipher = current_cipher()
    index = columns.index(source.column)
    for pk, *stored, token in _stored(model, [*columns, token_field.column]):
        if pk not in expected:
            continue
        versions = {key_version_of(value) for value in stored if value is not None}
        if versions - {active}:
            result.old_key_values += 1
            result.problem(f"pk={pk}: values under key versions {sorted(versions)}")
        value = stored[index]
        if value is None:
            if token is not None:
                result.stale_tokens += 1
            continue
        plaintext = source.to_python(cipher.decrypt(value, source.encryption_context))
        wanted = cipher.search_token(
            plaintext,
            source.encryption_context,
            version=key_version_of(value),
            normalizer=source.normalizer,
        )
        if token != wanted or split_searchable(value)[0] != wanted:
            result.stale_tokens += 1
            result.problem(f"pk={pk}: stale search token")
        found = list(
            model._base_manager.filter(**{source.name: plaintext}).values_list("pk", flat=True)
        )
        if pk not in found:
            result.stale_tokens += 1
            result.problem(f"pk={pk}: not found by its {source.name}")


def unfinished(kind: str) -> int:
    """Work the command still has to do: empty encrypted cells of the legacy rows, or
    customers with a value under an older key version."""
    if kind == LEGACY:
        rows = LegacyClient._base_manager
        return sum(rows.filter(**{f"{name}__isnull": True}).count() for name in ENCRYPTED)
    active = current_keyring().active_version
    columns = [f.column for f in Customer._meta.concrete_fields if getattr(f, "encrypted", False)]
    return sum(
        1
        for _, *stored in _stored(Customer, columns)
        if any(value is not None and key_version_of(value) != active for value in stored)
    )


def work(kind: str, rows: int) -> int:
    """What :func:`unfinished` counts for ``rows`` rows with nothing done."""
    return rows * len(ENCRYPTED) if kind == LEGACY else rows


def reset_legacy() -> None:
    """Empty the encrypted columns again (as before ``--migrate-data``)."""
    from tests.migration.conftest import clear_encrypted_columns

    clear_encrypted_columns()


__all__ = ["CUSTOMERS", "ENCRYPTED", "LEGACY", "Check", "check", "customer_values", "seed"]
