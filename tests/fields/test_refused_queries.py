"""Grouping, ``distinct()`` and ordering by an encrypted column are refused, directly and
through relations, and the legitimate queries around them keep working."""

import pytest
from django.core.exceptions import FieldError
from django.db import connection
from django.db.models import Count, F

from tests.factories import CustomerFactory, TradingAccountFactory
from tests.testapp.models import Customer, TradingAccount

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts():
    """Two accounts of one customer and one of another, all with equal risk profiles and
    balances: a grouping or DISTINCT on ciphertext would split equal values."""
    alice = CustomerFactory(first_name="Alice")
    bob = CustomerFactory(first_name="Alice")
    return [
        TradingAccountFactory(customer=alice, risk_profile="low", balance=5.0, label="a"),
        TradingAccountFactory(customer=alice, risk_profile="low", balance=5.0, label="a"),
        TradingAccountFactory(customer=bob, risk_profile="low", balance=5.0, label="b"),
    ]


GROUPINGS = {
    "direct": (
        lambda: TradingAccount.objects.values("risk_profile").annotate(n=Count("id")),
        "EncryptedString 'risk_profile' on testapp.TradingAccount",
    ),
    "through a relation": (
        lambda: TradingAccount.objects.values("customer__first_name").annotate(n=Count("id")),
        "EncryptedString 'first_name' on testapp.Customer",
    ),
    "through a reverse relation": (
        lambda: Customer.objects.values("accounts__balance").annotate(n=Count("id")),
        "EncryptedFloat 'balance' on testapp.TradingAccount",
    ),
    "an annotation of the column": (
        lambda: TradingAccount.objects.values(b=F("balance")).annotate(n=Count("id")),
        "EncryptedFloat 'balance' on testapp.TradingAccount",
    ),
    "a searchable field (not its token)": (
        lambda: Customer.objects.values("email").annotate(n=Count("id")),
        "EncryptedSearchableString 'email' on testapp.Customer",
    ),
    "with the pk of another table": (
        lambda: Customer.objects.values("id", "accounts__balance").annotate(n=Count("id")),
        "EncryptedFloat 'balance' on testapp.TradingAccount",
    ),
}


@pytest.mark.parametrize("case", list(GROUPINGS))
def test_grouping_by_an_encrypted_column_raises_naming_the_field(accounts, case):
    query, field = GROUPINGS[case]
    with pytest.raises(FieldError, match="cannot be grouped by") as info:
        list(query())
    assert field in str(info.value)
    assert "random nonce" in str(info.value)


def test_the_grouping_error_of_a_searchable_field_points_to_its_token_column(accounts):
    with pytest.raises(FieldError, match="SearchTokenIndex 'email_search'"):
        list(Customer.objects.values("email").annotate(n=Count("id")))


DISTINCTS = {
    "values": (
        lambda: TradingAccount.objects.values("risk_profile").distinct(),
        "EncryptedString 'risk_profile' on testapp.TradingAccount",
    ),
    "values_list flat": (
        lambda: TradingAccount.objects.values_list("balance", flat=True).distinct(),
        "EncryptedFloat 'balance' on testapp.TradingAccount",
    ),
    "through a relation": (
        lambda: TradingAccount.objects.values("label", "customer__first_name").distinct(),
        "EncryptedString 'first_name' on testapp.Customer",
    ),
    "through a reverse relation, the parent's pk selected": (
        lambda: Customer.objects.values("id", "accounts__balance").distinct(),
        "EncryptedFloat 'balance' on testapp.TradingAccount",
    ),
    "an annotation on model instances": (
        lambda: Customer.objects.annotate(b=F("accounts__balance")).distinct(),
        "EncryptedFloat 'balance' on testapp.TradingAccount",
    ),
}


@pytest.mark.parametrize("case", list(DISTINCTS))
def test_distinct_over_an_encrypted_column_raises_naming_the_field(accounts, case):
    query, field = DISTINCTS[case]
    with pytest.raises(FieldError, match=r"cannot be used in distinct\(\)") as info:
        list(query())
    assert field in str(info.value)
    assert "primary key" in str(info.value)


def test_counting_distinct_encrypted_values_raises(accounts):
    with pytest.raises(FieldError, match="risk_profile"):
        TradingAccount.objects.values("risk_profile").distinct().count()
    with pytest.raises(FieldError, match=r"Count\(distinct=True\)") as info:
        TradingAccount.objects.aggregate(n=Count("balance", distinct=True))
    assert "EncryptedFloat 'balance' on testapp.TradingAccount" in str(info.value)


@pytest.mark.skipif(
    not connection.features.can_distinct_on_fields, reason="DISTINCT ON is PostgreSQL's"
)
@pytest.mark.parametrize(
    "name, field",
    [
        ("risk_profile", "EncryptedString 'risk_profile' on testapp.TradingAccount"),
        ("customer__email", "EncryptedSearchableString 'email' on testapp.Customer"),
    ],
)
def test_distinct_on_an_encrypted_field_raises(accounts, name, field):
    with pytest.raises(FieldError, match=rf"distinct\('{name}'\)") as info:
        list(TradingAccount.objects.distinct(name))
    assert field in str(info.value)


def test_distinct_on_plain_fields_and_the_token_column_still_works(accounts):
    if not connection.features.can_distinct_on_fields:
        pytest.skip("DISTINCT ON is PostgreSQL's")
    rows = TradingAccount.objects.order_by("label").distinct("label")
    assert [a.label for a in rows] == ["a", "b"]
    assert Customer.objects.order_by("email_search").distinct("email_search").count() == 2


ORDERINGS = {
    "a selected column": (
        lambda: TradingAccount.objects.values("balance").order_by("balance"),
        "EncryptedFloat 'balance' on testapp.TradingAccount",
    ),
    "a selected column through a relation, descending": (
        lambda: TradingAccount.objects.values("customer__email").order_by("-customer__email"),
        "EncryptedSearchableString 'email' on testapp.Customer",
    ),
    "an F() of a selected column": (
        lambda: TradingAccount.objects.values("balance").order_by(F("balance").desc()),
        "EncryptedFloat 'balance' on testapp.TradingAccount",
    ),
    "an annotation alias of a related column": (
        lambda: TradingAccount.objects.annotate(e=F("customer__first_name")).order_by("e"),
        "EncryptedString 'first_name' on testapp.Customer",
    ),
    "a values_list column through a relation": (
        lambda: TradingAccount.objects.values_list("customer__first_name").order_by(
            "customer__first_name"
        ),
        "EncryptedString 'first_name' on testapp.Customer",
    ),
    "a relation, not selected": (
        lambda: TradingAccount.objects.order_by("-customer__first_name"),
        "EncryptedString 'first_name' on testapp.Customer",
    ),
    "a relation in a grouped query": (
        lambda: (
            TradingAccount.objects.values("label")
            .annotate(n=Count("id"))
            .order_by("customer__email")
        ),
        "EncryptedSearchableString 'email' on testapp.Customer",
    ),
}


@pytest.mark.parametrize("case", list(ORDERINGS))
def test_ordering_by_an_encrypted_column_raises_naming_the_field(accounts, case):
    query, field = ORDERINGS[case]
    with pytest.raises(FieldError, match=r"cannot be used in order_by\(\)") as info:
        list(query())
    assert field in str(info.value)


def test_rows_are_still_distinct_by_identity(accounts):
    assert TradingAccount.objects.distinct().count() == 3
    assert len(list(TradingAccount.objects.distinct())) == 3
    assert len(list(TradingAccount.objects.select_related("customer").distinct())) == 3
    rows = list(TradingAccount.objects.values("id", "risk_profile", "balance").distinct())
    assert sorted(r["id"] for r in rows) == sorted(a.pk for a in accounts)
    assert {r["risk_profile"] for r in rows} == {"low"}
    # A forward foreign key fixes the related row, so the customer's columns may come along.
    related = TradingAccount.objects.values("id", "customer__first_name").distinct()
    assert sorted(r["customer__first_name"] for r in related) == ["Alice"] * 3
    by_customer = Customer.objects.values("id", "first_name").distinct()
    assert len(list(by_customer)) == 2
    annotated = TradingAccount.objects.annotate(name=F("customer__first_name")).distinct()
    assert [a.name for a in annotated] == ["Alice"] * 3


def test_grouping_by_rows_plain_columns_and_tokens_still_works(accounts):
    alice = accounts[0].customer
    counts = {c.pk: c.n for c in Customer.objects.annotate(n=Count("accounts"))}
    assert counts == {alice.pk: 2, accounts[2].customer_id: 1}
    per_label = TradingAccount.objects.values("label").annotate(n=Count("balance"))
    assert sorted((r["label"], r["n"]) for r in per_label) == [("a", 2), ("b", 1)]
    # Equality is what a token shows: one group per e-mail address.
    per_email = TradingAccount.objects.values("customer__email_search").annotate(n=Count("id"))
    assert sorted(r["n"] for r in per_email) == [1, 2]
    grouped_rows = Customer.objects.values("id", "first_name").annotate(n=Count("accounts"))
    assert sorted(r["n"] for r in grouped_rows) == [1, 2]
    assert Customer.objects.aggregate(n=Count("email_search", distinct=True))["n"] == 2
    # Grouped by row first, then narrowed with values(): still one group per customer.
    names = Customer.objects.annotate(n=Count("accounts")).values("first_name", "n")
    assert sorted((r["first_name"], r["n"]) for r in names) == [("Alice", 1), ("Alice", 2)]
    assert Customer.objects.annotate(n=Count("accounts")).count() == 2
    assert Customer.objects.filter(accounts__balance__isnull=False).distinct().count() == 2
    ordered = TradingAccount.objects.values("label").annotate(n=Count("balance")).order_by("-n")
    assert [r["label"] for r in ordered] == ["a", "b"]


def test_loading_related_rows_still_works(accounts):
    customers = list(Customer.objects.prefetch_related("accounts").order_by("pk"))
    assert [len(c.accounts.all()) for c in customers] == [2, 1]
    assert {a.balance for c in customers for a in c.accounts.all()} == {5.0}
    loaded = TradingAccount.objects.select_related("customer").order_by("customer__pk", "pk")
    assert [a.customer.first_name for a in loaded] == ["Alice"] * 3
