"""Exact-match search through tokens: right rows, token column in the SQL, unique, rotation."""

import pytest
from django.core.exceptions import FieldError, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from alphapulse_encryption.fields import EncryptedSearchableString
from tests.factories import CustomerFactory, TradingAccountFactory
from tests.testapp.models import Customer, TradingAccount

from .conftest import raw_row

pytestmark = pytest.mark.django_db


def _sql(queryset) -> str:
    with CaptureQueriesContext(connection) as ctx:
        list(queryset.all())
    return ctx.captured_queries[-1]["sql"]


def test_filter_exact_finds_the_row_through_the_indexed_token_column():
    alice = CustomerFactory(email="alice@example.com")
    CustomerFactory(email="bob@example.com")
    assert list(Customer.objects.filter(email="alice@example.com")) == [alice]
    sql = _sql(Customer.objects.filter(email="alice@example.com"))
    assert "email_search" in sql and " IN (" in sql
    assert "alice@example.com" not in sql


def test_exact_without_a_companion_column_compares_the_stored_prefix():
    account = TradingAccountFactory(account_number="DE89370400440532013000")
    TradingAccountFactory(account_number="DE89370400440532013001")
    found = TradingAccount.objects.filter(account_number="DE89370400440532013000")
    assert list(found) == [account]
    assert "SUBSTR" in _sql(found).upper()


def test_get_exclude_in_and_isnull():
    a = CustomerFactory(email="a@example.com", phone="+1-555-0001")
    b = CustomerFactory(email="b@example.com", phone=None)
    c = CustomerFactory(email="c@example.com", phone="+1-555-0003")
    assert Customer.objects.get(email="b@example.com") == b
    assert set(Customer.objects.exclude(email="b@example.com")) == {a, c}
    assert set(Customer.objects.filter(email__in=["a@example.com", "c@example.com", "x@y"])) == {
        a,
        c,
    }
    assert set(Customer.objects.filter(phone__in=["+1-555-0001"])) == {a}
    assert list(Customer.objects.filter(email__in=[])) == []
    assert list(Customer.objects.filter(phone__isnull=True)) == [b]
    assert list(Customer.objects.filter(phone=None)) == [b]
    assert set(Customer.objects.exclude(phone__isnull=True)) == {a, c}
    with pytest.raises(Customer.DoesNotExist):
        Customer.objects.get(email="nobody@example.com")


def test_normalised_field_ignores_case_and_spaces_for_exact_and_iexact():
    alice = CustomerFactory(email="  Alice@Example.COM ")
    assert Customer.objects.get(email="alice@example.com") == alice
    assert Customer.objects.get(email__iexact="ALICE@EXAMPLE.COM") == alice
    # The stored value is the original; only the token is normalised.
    assert Customer.objects.get(pk=alice.pk).email == "  Alice@Example.COM "


def test_iexact_on_a_case_sensitive_field_raises():
    with pytest.raises(FieldError, match="iexact"):
        list(TradingAccount.objects.filter(account_number__iexact="de89"))


def test_non_normalised_exact_is_case_sensitive():
    TradingAccountFactory(account_number="ABC123")
    assert not TradingAccount.objects.filter(account_number="abc123").exists()
    assert TradingAccount.objects.filter(account_number="ABC123").exists()


def test_token_index_is_queryable_with_the_plaintext():
    alice = CustomerFactory(email="alice@example.com")
    assert list(Customer.objects.filter(email_search="ALICE@example.com")) == [alice]
    assert list(Customer.objects.filter(email_search__in=["alice@example.com"])) == [alice]
    assert alice.email_search is not None or Customer.objects.get(pk=alice.pk).email_search
    stored = raw_row(Customer, alice.pk)
    assert stored["email_search"] == stored["email"][:76]


@pytest.mark.parametrize(
    "write",
    ["save", "update", "bulk_update", "bulk_create", "update_or_create", "raw_sql"],
)
def test_token_column_stays_in_sync_on_every_write_path(write):
    customer = CustomerFactory(email="old@example.com")
    if write == "save":
        customer.email = "new@example.com"
        customer.save()
    elif write == "update":
        Customer.objects.filter(pk=customer.pk).update(email="new@example.com")
    elif write == "bulk_update":
        customer.email = "new@example.com"
        Customer.objects.bulk_update([customer], ["email"])
    elif write == "bulk_create":
        customer.delete()
        (customer,) = Customer.objects.bulk_create(
            [Customer(email="new@example.com", first_name="N")]
        )
        customer = Customer.objects.get(email="new@example.com")
    elif write == "update_or_create":
        Customer.objects.update_or_create(
            email="old@example.com", defaults={"email": "new@example.com"}
        )
    elif write == "raw_sql":
        stored = raw_row(Customer, CustomerFactory(email="new@example.com").pk)["email"]
        Customer.objects.filter(email="new@example.com").delete()
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE testapp_customer SET email = %s WHERE id = %s", [stored, customer.pk]
            )
    assert list(Customer.objects.filter(email="new@example.com")) == [customer]
    assert not Customer.objects.filter(email="old@example.com").exists()
    row = raw_row(Customer, customer.pk)
    assert row["email_search"] == row["email"][:76]


def test_unique_is_enforced_by_the_database_on_normalised_values():
    CustomerFactory(email="dup@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(email="  DUP@Example.com", first_name="X")


def test_unique_is_validated_by_full_clean_and_model_forms():
    from django import forms

    existing = CustomerFactory(email="dup@example.com")
    candidate = Customer(email="Dup@Example.com", first_name="X")
    with pytest.raises(ValidationError) as info:
        candidate.full_clean()
    assert "email" in info.value.message_dict
    existing.full_clean()  # the row itself is not its own duplicate

    class CustomerForm(forms.ModelForm):
        class Meta:
            model = Customer
            fields = ["email", "first_name"]

    form = CustomerForm(data={"email": "DUP@example.com", "first_name": "Y"})
    assert not form.is_valid()
    assert "email" in form.errors


def test_lookups_find_rows_written_under_every_configured_key_version(settings):
    from tests.settings import TEST_KEY_V1, TEST_KEY_V2

    old = CustomerFactory(email="old-key@example.com")
    rotated = {"MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2}, "ACTIVE_KEY_VERSION": 2}
    with override_settings(ALPHAPULSE_ENCRYPTION=rotated):
        new = CustomerFactory(email="new-key@example.com")
        assert raw_row(Customer, new.pk)["email_search"][4:12] == "00000002"
        assert raw_row(Customer, old.pk)["email_search"][4:12] == "00000001"
        assert Customer.objects.get(email="old-key@example.com") == old
        assert Customer.objects.get(email="new-key@example.com") == new
        assert set(
            Customer.objects.filter(email__in=["old-key@example.com", "new-key@example.com"])
        ) == {old, new}
        assert Customer.objects.get(pk=old.pk).email == "old-key@example.com"
        # Validation sees a duplicate even though its token was made under version 1.
        with pytest.raises(ValidationError):
            Customer(email="old-key@example.com", first_name="Z").full_clean()


def test_lookup_with_an_expression_is_refused():
    from django.db.models import F

    with pytest.raises(FieldError, match="Python values"):
        list(Customer.objects.filter(email=F("first_name")))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("unique", [False, True])
def test_a_token_index_can_be_added_to_an_existing_table(unique):
    """AddField of a generated token column works on every backend, SQLite included
    (where Django would otherwise use ALTER TABLE ADD COLUMN, which SQLite refuses for a
    STORED generated column), and fills the column for the rows already there."""
    from django.apps import apps
    from django.db import models

    from alphapulse_encryption.fields import SearchTokenIndex

    class Probe(models.Model):
        number = EncryptedSearchableString()

        class Meta:
            app_label = "testapp"
            db_table = f"testapp_probe_{int(unique)}"

    try:
        with connection.schema_editor() as editor:
            editor.create_model(Probe)
        row = Probe.objects.create(number="ACC-EXISTING")
        field = SearchTokenIndex("number", unique=unique)
        field.contribute_to_class(Probe, "number_search")
        with connection.schema_editor() as editor:
            editor.add_field(Probe, field)
        stored = raw_row(Probe, row.pk)
        assert stored["number_search"] == stored["number"][:76]
        assert Probe.objects.get(number_search="ACC-EXISTING") == row
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Probe)
        apps.all_models["testapp"].pop("probe", None)
        apps.clear_cache()


def test_the_token_column_is_fixed_width_and_has_no_pattern_index():
    field = Customer._meta.get_field("email_search")
    assert field.db_parameters(connection)["type"] == "char(76)"
    if connection.vendor != "postgresql":
        return  # only PostgreSQL adds pattern ("_like") indexes to varchar columns
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "testapp_customer")
    on_token = [name for name, c in constraints.items() if c["columns"] == ["email_search"]]
    assert len(on_token) == 1, constraints  # the unique index only, no "_like" twin


def test_rewriting_rows_as_the_docs_show_recomputes_their_tokens():
    """docs/searchable.md: after a normalize= change, bulk_update rewrites the tokens."""
    from itertools import islice

    customer = CustomerFactory(email="Mixed@Example.com")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_customer SET email = %s WHERE id = %s",
            ["apt1" + "0" * 72 + raw_row(Customer, customer.pk)["email"][76:], customer.pk],
        )
    assert not Customer.objects.filter(email="mixed@example.com").exists()
    rows = Customer.objects.only("pk", "email").iterator(chunk_size=1000)
    while batch := list(islice(rows, 1000)):
        Customer.objects.bulk_update(batch, ["email"])
    assert Customer.objects.get(email="mixed@example.com") == customer
