"""Misuse that would silently store or return wrong data is refused loudly."""

import decimal
import json
from io import StringIO

import pytest
from django.core import checks, serializers
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.core.serializers.base import SerializationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.db.models import Avg, Count, Max, Min, Sum

from alphapulse_encryption.fields import EncryptedFloat, EncryptedJSON, EncryptedString
from tests.factories import CustomerFactory, TradingAccountFactory
from tests.testapp.models import Customer, TradingAccount

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("aggregate", [Min, Max, Sum, Avg])
def test_aggregating_an_encrypted_field_raises(aggregate):
    TradingAccountFactory()
    with pytest.raises(FieldError, match=aggregate.__name__):
        TradingAccount.objects.aggregate(value=aggregate("balance"))


def test_count_of_an_encrypted_field_works():
    TradingAccountFactory(metadata=None)
    TradingAccountFactory()
    assert TradingAccount.objects.aggregate(n=Count("metadata"))["n"] == 1


def _field_checks(**kwargs):
    class Probe(models.Model):
        value = EncryptedString(**kwargs)

        class Meta:
            app_label = "testapp"

    return [m.id for m in Probe._meta.get_field("value").check()]


def test_unique_db_index_and_db_default_on_encrypted_fields_are_flagged():
    from django.apps import apps

    try:
        assert "alphapulse_encryption.E013" in _field_checks(unique=True)
        apps.all_models["testapp"].pop("probe", None)
        assert "alphapulse_encryption.W010" in _field_checks(db_index=True)
        apps.all_models["testapp"].pop("probe", None)
        assert "alphapulse_encryption.E014" in _field_checks(db_default="x")
    finally:
        apps.all_models["testapp"].pop("probe", None)
        apps.clear_cache()


def test_shipped_models_pass_the_checks():
    ids = [m.id for m in checks.run_checks() if m.id and m.id.startswith("alphapulse")]
    assert ids == []


def test_dumpdata_includes_rows_that_fail_to_decrypt_as_stored():
    customer = CustomerFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_customer SET api_secret = 'ape:AAAA' WHERE id = %s", [customer.pk]
        )
    out = StringIO()
    call_command("dumpdata", "testapp.customer", format="json", stdout=out)
    (row,) = json.loads(out.getvalue())
    assert row["fields"]["api_secret"] == "ape:AAAA"


def test_xml_is_refused_for_models_with_encrypted_fields():
    CustomerFactory()
    with pytest.raises(SerializationError, match="json"):
        serializers.serialize("xml", Customer.objects.all())


def test_encrypted_json_honours_encoder_and_decoder():
    field = EncryptedJSON(encoder=DjangoJSONEncoder)
    prepared = field.get_prep_value({"amount": decimal.Decimal("1.50")})
    assert prepared == {"amount": "1.50"}

    class Decoder(json.JSONDecoder):
        def __init__(self, **kwargs):
            super().__init__(parse_float=decimal.Decimal, **kwargs)

    assert EncryptedJSON(decoder=Decoder).to_python({"x": 1.5}) == {"x": decimal.Decimal("1.5")}


def test_decimal_too_large_for_its_digits_names_the_field():
    account = TradingAccountFactory.build(customer=CustomerFactory())
    account.credit_limit = decimal.Decimal("1E+30")
    with pytest.raises(ValueError, match="credit_limit"):
        account.save()


def test_unique_message_is_capitalised_and_blank_strings_are_checked():
    CustomerFactory(email="")
    duplicate = Customer(email="", first_name="E")
    with pytest.raises(Exception) as info:
        duplicate.full_clean()
    assert "Customer with this" in str(info.value)


def test_float_field_exact_lookup_message_suggests_searchable():
    field = EncryptedFloat()
    field.set_attributes_from_name("x")
    assert "EncryptedSearchableString" in field.lookup_error("exact")


def test_dates_and_functions_on_an_encrypted_field_raise():
    from django.db.models.functions import Length, Upper

    TradingAccountFactory()
    with pytest.raises(FieldError, match="opened_on"):
        list(TradingAccount.objects.dates("opened_on", "year"))
    with pytest.raises(FieldError, match="Length"):
        list(TradingAccount.objects.annotate(n=Length("account_number")))
    with pytest.raises(FieldError, match="Upper"):
        list(TradingAccount.objects.annotate(u=Upper("risk_profile")))
    from django.db.models import F

    with pytest.raises(FieldError, match="balance"):
        list(TradingAccount.objects.annotate(b=F("balance") + 1))


def test_mask_option_chooses_the_admin_mask_and_unknown_kinds_are_flagged():
    from alphapulse_encryption.masking import mask_for_field, mask_kind

    field = EncryptedString(mask="account")
    field.set_attributes_from_name("reference")
    assert mask_kind(field) == "account"
    assert mask_for_field(field)("DE89370400440532013000") == "****3000"
    assert field.deconstruct()[3]["mask"] == "account"
    from django.apps import apps

    try:
        assert "alphapulse_encryption.E016" in _field_checks(mask="nonsense")
    finally:
        apps.all_models["testapp"].pop("probe", None)
        apps.clear_cache()
