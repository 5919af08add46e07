"""``loaddata`` takes plaintext (hand-written fixtures) and ciphertext (what ``dumpdata``
writes) for encrypted fields; ciphertext that fails to decrypt stops the load, named."""

import datetime
import decimal
import json
from io import StringIO

import pytest
from django.core import serializers
from django.core.management import call_command

from alphapulse_encryption import DecryptionError
from alphapulse_encryption.crypto import looks_like_envelope
from alphapulse_encryption.crypto.cipher import split_searchable
from alphapulse_encryption.keys import current_cipher
from tests.factories import CustomerFactory, TradingAccountFactory
from tests.settings import TEST_KEY_V1, TEST_KEY_V2
from tests.testapp.models import Customer, Position, RiskMetric, Trade, TradingAccount

from .conftest import assert_no_plaintext, raw_row

pytestmark = pytest.mark.django_db

HAND_WRITTEN = [
    {
        "model": "testapp.customer",
        "pk": 501,
        "fields": {
            "email": "  Alice.Trader@Example.COM ",
            "phone": "+1-555-0100",
            "first_name": "Alice",
            "last_name": "",
            "date_of_birth": "1980-05-17",
            "api_secret": "sk_live_hand_written_secret",
            "notification_settings": {"email": True, "sms": False, "limit": 5},
            "is_verified": True,
            "created": "2026-01-02T03:04:05Z",
        },
    },
    {
        "model": "testapp.tradingaccount",
        "pk": 601,
        "fields": {
            "customer": 501,
            "account_number": "DE89370400440532013000",
            "balance": 424242.5,
            "credit_limit": "31337.00",
            "risk_profile": "high",
            "metadata": {"desk": "fx-secret-desk", "limits": [1, 2.5]},
            "opened_on": "2011-11-11",
            "label": "main",
        },
    },
    {
        "model": "testapp.position",
        "pk": 701,
        "fields": {
            "account": 601,
            "symbol": "AAPL",
            "quantity": 8675309,
            "average_price": "187.42",
            "unrealized_pnl": -1520.5,
        },
    },
    {
        "model": "testapp.trade",
        "pk": 801,
        "fields": {
            "account": 601,
            "symbol": "MSFT",
            "executed_at": "2026-03-04T14:30:15.250Z",
            "execution": "a plain JSON string",
            "realized_pnl": "777.7777",
            "is_short": False,
        },
    },
    {
        "model": "testapp.riskmetric",
        "pk": 901,
        "fields": {
            "account": 601,
            "value_at_risk": 0.0,
            "exposure": 99.5,
            "notes": "hand-written risk note",
        },
    },
]
PLAINTEXTS = [
    "Alice.Trader",
    "alice.trader",
    "Alice",
    "1980-05-17",
    "sk_live_hand_written_secret",
    "DE89370400440532013000",
    "424242.5",
    "31337",
    "fx-secret-desk",
    "8675309",
    "187.42",
    "777.7777",
    "a plain JSON string",
    "hand-written risk note",
]


def _write(tmp_path, objects, name="fixture.json"):
    path = tmp_path / name
    path.write_text(json.dumps(objects))
    return path


def _dump(*labels):
    out = StringIO()
    call_command("dumpdata", *labels, format="json", stdout=out)
    return json.loads(out.getvalue())


def _load(path):
    call_command("loaddata", str(path), verbosity=0)


def test_a_hand_written_fixture_with_plaintext_of_every_field_type_loads(tmp_path):
    _load(_write(tmp_path, HAND_WRITTEN))
    customer = Customer.objects.get(pk=501)
    assert customer.email == "  Alice.Trader@Example.COM "  # normalised for its token only
    assert customer.phone == "+1-555-0100"
    assert (customer.first_name, customer.last_name) == ("Alice", "")
    assert customer.date_of_birth == datetime.date(1980, 5, 17)
    assert customer.api_secret == "sk_live_hand_written_secret"
    assert customer.notification_settings == {"email": True, "sms": False, "limit": 5}
    assert customer.is_verified is True
    account = TradingAccount.objects.get(pk=601)
    assert account.account_number == "DE89370400440532013000"
    assert account.balance == 424242.5
    assert account.credit_limit == decimal.Decimal("31337.00")
    assert account.risk_profile == "high"
    assert account.metadata == {"desk": "fx-secret-desk", "limits": [1, 2.5]}
    assert account.opened_on == datetime.date(2011, 11, 11)
    position = Position.objects.get(pk=701)
    assert (position.quantity, position.average_price) == (8675309, decimal.Decimal("187.42"))
    assert position.unrealized_pnl == -1520.5
    trade = Trade.objects.get(pk=801)
    assert trade.executed_at == datetime.datetime(2026, 3, 4, 14, 30, 15, 250000, datetime.UTC)
    assert trade.execution == "a plain JSON string"
    assert trade.realized_pnl == decimal.Decimal("777.7777")
    assert trade.is_short is False
    risk = RiskMetric.objects.get(pk=901)
    assert (risk.value_at_risk, risk.exposure) == (0.0, decimal.Decimal("99.5"))
    for model, pk in [
        (Customer, 501),
        (TradingAccount, 601),
        (Position, 701),
        (Trade, 801),
        (RiskMetric, 901),
    ]:
        assert_no_plaintext(model, pk, PLAINTEXTS)


def test_searchable_values_from_a_fixture_are_found_through_their_tokens(tmp_path):
    _load(_write(tmp_path, HAND_WRITTEN))
    assert Customer.objects.get(email="ALICE.trader@example.com").pk == 501
    assert Customer.objects.get(email_search="alice.trader@example.com").pk == 501
    assert Customer.objects.get(phone="+1-555-0100").pk == 501
    assert TradingAccount.objects.get(account_number="DE89370400440532013000").pk == 601
    field = Customer._meta.get_field("email")
    stored = raw_row(Customer, 501)
    assert stored["email_search"] == current_cipher().search_token(
        "alice.trader@example.com", field.encryption_context, normalizer=field.normalizer
    )
    assert split_searchable(stored["email"])[0] == stored["email_search"]


def test_dumpdata_still_writes_ciphertext_for_values_loaded_as_plaintext(tmp_path):
    _load(_write(tmp_path, HAND_WRITTEN))
    dump = json.dumps(_dump("testapp"))
    for plaintext in PLAINTEXTS:
        assert plaintext not in dump, plaintext
    (customer,) = _dump("testapp.customer")
    assert all(
        looks_like_envelope(split_searchable(customer["fields"][name])[1])
        for name in ("email", "phone", "first_name", "last_name", "notification_settings")
    )


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml", "python"])
def test_a_dump_loads_back_in_every_format_and_mixes_with_plaintext(tmp_path, fmt):
    account = TradingAccountFactory(metadata="ape-like but plain", balance=12.5)
    customer = account.customer
    dumped = serializers.serialize(fmt, [customer, account])
    TradingAccount.objects.all().delete()
    Customer.objects.all().delete()
    objects = list(serializers.deserialize(fmt, dumped))
    # A hand-edited value beside the ciphertext: plaintext, encrypted on save.
    objects[1].object.label = "edited"
    for obj in objects:
        obj.save()
    restored = TradingAccount.objects.get(pk=account.pk)
    assert (restored.balance, restored.metadata) == (12.5, "ape-like but plain")
    assert restored.customer.email == customer.email
    assert Customer.objects.get(email=customer.email).pk == customer.pk


def test_a_json_field_tells_a_dumped_envelope_from_a_plaintext_json_value(tmp_path):
    account = TradingAccountFactory(metadata="a string held in JSON")
    (dumped,) = _dump("testapp.tradingaccount")
    envelope = dumped["fields"]["metadata"]
    assert looks_like_envelope(envelope)
    customer = {"model": "testapp.customer", "pk": account.customer_id, "fields": {}}
    customer["fields"] = _dump("testapp.customer")[0]["fields"]
    TradingAccount.objects.all().delete()
    Customer.objects.all().delete()
    fixture = [customer]
    for pk, metadata in [
        (1, envelope),  # a string: the envelope dumpdata wrote, decrypted
        (2, "a plaintext string"),  # a string without the prefix: plaintext
        (3, {"note": envelope}),  # an object: plaintext, envelope-like leaves and all
        (4, [1, "two", None]),
        (5, 7),
    ]:
        fields = {**dumped["fields"], "metadata": metadata}
        fixture.append({"model": "testapp.tradingaccount", "pk": pk, "fields": fields})
    _load(_write(tmp_path, fixture))
    loaded = dict(TradingAccount.objects.values_list("pk", "metadata"))
    assert loaded == {
        1: "a string held in JSON",
        2: "a plaintext string",
        3: {"note": envelope},
        4: [1, "two", None],
        5: 7,
    }


def _fixture_with(tmp_path, field, make_value):
    customer = CustomerFactory(first_name="Alice", last_name="Omega")
    (dumped,) = _dump("testapp.customer")
    dumped["fields"][field] = make_value(dumped["fields"])
    Customer.objects.all().delete()
    return customer.pk, _write(tmp_path, [dumped], name="customers.json")


def _flip_a_tag_character(text):
    # Inside the 16-byte tag, not the last character: base64 ignores that one's low bits,
    # so changing it may change no byte at all.
    at = len(text) - 10
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def _swap_token(fields):
    other = CustomerFactory(email="someone-else@example.com")
    other_token = raw_row(Customer, other.pk)["email"][:76]
    other.delete()
    return other_token + fields["email"][76:]


@pytest.mark.parametrize(
    "field, make_value, reason",
    [
        ("first_name", lambda f: _flip_a_tag_character(f["first_name"]), "authentication_failed"),
        ("first_name", lambda f: f["last_name"], "authentication_failed"),  # wrong context
        ("api_secret", lambda f: "ape:AAAA", "malformed"),
        ("first_name", lambda f: "ape:plaintext that starts like an envelope", "malformed"),
    ],
    ids=["tampered", "wrong context", "truncated", "plaintext with the prefix"],
)
def test_ciphertext_that_fails_to_decrypt_stops_the_load_naming_where(
    tmp_path, field, make_value, reason
):
    pk, path = _fixture_with(tmp_path, field, make_value)
    with pytest.raises(DecryptionError) as info:
        _load(path)
    assert info.value.reason == reason
    message = str(info.value)
    assert "customers.json" in message
    assert f"testapp.Customer.{field} (pk={pk})" in message
    assert "Alice" not in message and "Omega" not in message
    assert not Customer.objects.exists()  # loaddata is atomic: nothing half-loaded


def test_a_search_token_edited_in_a_fixture_is_made_anew_from_the_value(tmp_path):
    pk, path = _fixture_with(tmp_path, "email", _swap_token)
    email = json.loads(path.read_text())[0]["fields"]["email"]
    _load(path)
    assert not Customer.objects.filter(email="someone-else@example.com").exists()
    assert Customer.objects.get(email=Customer.objects.get(pk=pk).email).pk == pk
    assert raw_row(Customer, pk)["email_search"] != email[:76]


def test_a_fixture_under_another_key_is_refused(tmp_path, settings):
    pk, path = _fixture_with(tmp_path, "first_name", lambda f: f["first_name"])
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {1: TEST_KEY_V2}, "ACTIVE_KEY_VERSION": 1}
    with pytest.raises(DecryptionError, match=r"testapp\.Customer\.\w+ \(pk=") as info:
        _load(path)
    assert info.value.reason == "authentication_failed"
    settings.ALPHAPULSE_ENCRYPTION = {"MASTER_KEYS": {2: TEST_KEY_V2}, "ACTIVE_KEY_VERSION": 2}
    with pytest.raises(DecryptionError) as info:
        _load(path)
    assert info.value.reason == "unknown_key_version"
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 2: TEST_KEY_V2},
        "ACTIVE_KEY_VERSION": 2,
    }
    _load(path)  # the old version still configured: loads, re-encrypted under the active one
    assert Customer.objects.get(pk=pk).first_name == "Alice"
    assert raw_row(Customer, pk)["first_name"].startswith("ape:AQAAAAAC")
