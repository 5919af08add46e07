"""Seeded customers and accounts with distinctive plaintexts, and admin users with and
without the reveal permission."""

from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.db import connection
from django.test import Client

from tests.factories import CustomerFactory, PositionFactory, TradingAccountFactory
from tests.testapp import models


@dataclass
class Seeded:
    customers: list[models.Customer]
    accounts: list[models.TradingAccount]
    positions: list[models.Position]
    plaintexts: list[str] = field(default_factory=list)

    @property
    def customer(self) -> models.Customer:
        return self.customers[0]

    @property
    def account(self) -> models.TradingAccount:
        return self.accounts[0]


def _seed() -> Seeded:
    people = [
        ("zephyrine.quill@alphapulse.example", "+1-555-867-5309", "Zephyrine", "Quillfeather"),
        ("octavian.brisk@alphapulse.example", "+44 20 7946 0958", "Octavian", "Brisketti"),
    ]
    seeded = Seeded([], [], [])
    for n, (email, phone, first, last) in enumerate(people):
        customer = CustomerFactory(
            email=email,
            phone=phone,
            first_name=first,
            last_name=last,
            date_of_birth=datetime.date(1961, 7, 19 + n),
            api_secret=f"sk_live_VerySecretToken{n}X9",
            notification_settings={"digest": f"weekly-pigeon-{n}"},
        )
        account = TradingAccountFactory(
            customer=customer,
            account_number=f"DE8937040044053201{3000 + n}",
            balance=73519.87 + n,
            credit_limit=decimal.Decimal(f"48213.5{n}"),
            metadata={"desk": f"zanzibar-desk-{n}"},
            label=f"book-{n}",
        )
        position = PositionFactory(
            account=account,
            quantity=918273 + n,
            average_price=decimal.Decimal(f"187.421{n}"),
            unrealized_pnl=-6061.5 - n,
        )
        seeded.customers.append(customer)
        seeded.accounts.append(account)
        seeded.positions.append(position)
        seeded.plaintexts += [
            email,
            phone,
            first,
            last,
            f"1961-07-{19 + n}",
            f"July {19 + n}, 1961",
            f"sk_live_VerySecretToken{n}X9",
            f"weekly-pigeon-{n}",
            account.account_number,
            f"{73519.87 + n}",
            "73,51",
            f"48213.5{n}",
            f"zanzibar-desk-{n}",
            f"{918273 + n}",
            f"187.421{n}",
            f"{-6061.5 - n}",
        ]
    return seeded


@pytest.fixture
def seeded(db) -> Seeded:
    return _seed()


@pytest.fixture(autouse=True)
def _empty_cache():
    # The reveal rate limit counts in the cache.
    cache.clear()
    yield
    cache.clear()


def _staff(username: str, *permissions: str) -> User:
    # No password: clients log in with force_login (hashing one takes a while).
    user = User.objects.create_user(username, f"{username}@staff.example", is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


VIEW = ("testapp.view_customer", "testapp.view_tradingaccount", "testapp.view_position")
CHANGE = ("testapp.change_customer", "testapp.change_tradingaccount", "testapp.change_position")


@pytest.fixture
def viewer(db) -> User:
    """Staff with view permissions and no reveal permission."""
    return _staff("viewer", *VIEW)


@pytest.fixture
def editor(db) -> User:
    """Staff who may change customers and accounts, but not reveal."""
    return _staff("editor", *VIEW, *CHANGE, "testapp.add_customer")


@pytest.fixture
def revealer(db) -> User:
    """Staff with view permissions and the global reveal permission."""
    return _staff("revealer", *VIEW, "alphapulse_encryption.reveal_encrypted")


@pytest.fixture
def customer_revealer(db) -> User:
    """Staff who may reveal customers' values only (the per-model permission)."""
    return _staff("customer_revealer", *VIEW, "testapp.reveal_customer")


def login(user: User, **client_options: object) -> Client:
    client = Client(**client_options)  # type: ignore[arg-type]
    client.force_login(user)
    return client


def reveal_url(obj, field_name: str, parent: str | None = None) -> str:
    admin_of = parent or obj._meta.model_name
    return f"/admin/testapp/{admin_of}/reveal/{obj._meta.label_lower}/{obj.pk}/{field_name}/"


def stored(model, pk, column: str):
    """A column of a row as the database stores it, read with plain SQL."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]


def tamper(model, pk, column: str, source: str) -> None:
    """Overwrite ``column`` of a row with the ciphertext of its ``source`` column, in plain
    SQL: a valid envelope authenticated for another field, so it fails to decrypt."""
    table = connection.ops.quote_name(model._meta.db_table)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {quote(column)} = {quote(source)} WHERE id = %s", [pk])
