"""The functional public API: encrypt_field / decrypt_field and the cipher getters."""

from __future__ import annotations

import base64
import datetime
import decimal
import logging

import pytest

from alphapulse_encryption import (
    DecryptionError,
    EncryptionError,
    EncryptionKeyManager,
    KeyProviderError,
    decrypt_field,
    encrypt_field,
    get_cipher,
    get_optimized_cipher,
    get_searchable_cipher,
    keys,
)
from alphapulse_encryption.crypto import (
    TOKEN_LENGTH,
    is_search_token,
    key_version_of,
    looks_like_envelope,
)
from alphapulse_encryption.crypto.kdf import root_key
from tests.settings import TEST_KEY_V1

IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))

VALUES = [
    "ACC-0042-7781",
    "",
    "naïve ✓ ünïcødé",
    0,
    -17,
    10**30,
    0.0,
    -273.15,
    True,
    False,
    decimal.Decimal("0.00"),
    decimal.Decimal("-1234567.8901234567890123"),
    datetime.date(1987, 6, 5),
    datetime.datetime(2026, 3, 4, 5, 6, 7, 890123),
    datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC),
    datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=IST),
    {"symbol": "AAPL", "qty": 100, "price": 187.25, "filled": False, "tags": ["a"], "x": None},
    {},
    [1, "2", 3.5, None, {"k": True}],
    [],
    b"\x00\x01\xfe\xffraw",
    b"",
]


def test_public_names_import_from_the_package_root():
    import alphapulse_encryption

    for name in (
        "encrypt_field",
        "decrypt_field",
        "get_cipher",
        "get_searchable_cipher",
        "get_optimized_cipher",
        "EncryptionKeyManager",
        "DecryptionError",
    ):
        assert name in alphapulse_encryption.__all__
        assert getattr(alphapulse_encryption, name) is not None
    assert EncryptionKeyManager is keys.EncryptionKeyManager


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_round_trip_keeps_value_and_type(value):
    encrypted = encrypt_field(value, context="accounts.account.number")
    assert isinstance(encrypted, str)
    assert looks_like_envelope(encrypted)
    decrypted = decrypt_field(encrypted, context="accounts.account.number")
    assert decrypted == value
    assert type(decrypted) is type(value)


def test_datetimes_keep_their_awareness_and_offset():
    naive = datetime.datetime(2026, 1, 2, 3, 4, 5)
    aware = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=IST)
    assert decrypt_field(encrypt_field(naive)).tzinfo is None
    out = decrypt_field(encrypt_field(aware))
    assert out.utcoffset() == datetime.timedelta(hours=5, minutes=30)


def test_json_leaves_keep_their_types():
    out = decrypt_field(encrypt_field({"n": 5, "s": "5", "f": 5.0, "b": True}))
    assert [type(out[k]) for k in ("n", "s", "f", "b")] == [int, str, float, bool]


def test_falsy_values_are_encrypted_not_turned_into_null():
    for value in ("", 0, 0.0, False):
        encrypted = encrypt_field(value)
        assert encrypted is not None and encrypted != value


def test_none_stays_none():
    assert encrypt_field(None) is None
    assert encrypt_field(None, searchable=True, context="c") is None
    assert decrypt_field(None) is None
    assert decrypt_field(None, context="c") is None


def test_default_context_is_default():
    encrypted = encrypt_field("x")
    assert decrypt_field(encrypted, context="default") == "x"
    assert get_cipher().decrypt(encrypted, "default") == "x"


def test_ciphertext_is_randomised_and_hides_the_plaintext():
    a, b = encrypt_field("4111111111111111"), encrypt_field("4111111111111111")
    assert a != b
    assert "4111111111111111" not in a


def test_ciphertext_carries_the_active_key_version(settings):
    assert key_version_of(encrypt_field("x")) == 1
    settings.ALPHAPULSE_ENCRYPTION = {
        "MASTER_KEYS": {1: TEST_KEY_V1, 7: base64.b64encode(bytes(range(32))).decode()},
        "ACTIVE_KEY_VERSION": 7,
    }
    assert key_version_of(encrypt_field("x")) == 7


def test_unsupported_type_is_a_type_error():
    with pytest.raises(TypeError):
        encrypt_field({1, 2})


# -- searchable values ----------------------------------------------------------------


def test_searchable_value_starts_with_its_search_token_and_decrypts():
    context = "users.user.email"
    encrypted = encrypt_field("alice@example.com", searchable=True, context=context)
    token = encrypted[:TOKEN_LENGTH]
    assert is_search_token(token)
    assert token == get_cipher().search_token("alice@example.com", context)
    assert looks_like_envelope(encrypted[TOKEN_LENGTH:])
    assert decrypt_field(encrypted, context=context) == "alice@example.com"


def test_search_tokens_are_deterministic_and_distinguish_values():
    first = encrypt_field("alice@example.com", searchable=True, context="e")
    second = encrypt_field("alice@example.com", searchable=True, context="e")
    other = encrypt_field("bob@example.com", searchable=True, context="e")
    elsewhere = encrypt_field("alice@example.com", searchable=True, context="f")
    assert first != second
    assert first[:TOKEN_LENGTH] == second[:TOKEN_LENGTH]
    assert first[:TOKEN_LENGTH] != other[:TOKEN_LENGTH]
    assert first[:TOKEN_LENGTH] != elsewhere[:TOKEN_LENGTH]


def test_plain_encryption_has_no_search_token():
    assert not is_search_token(encrypt_field("alice@example.com")[:TOKEN_LENGTH])


def test_searchable_cipher_prefixes_the_token_and_plain_cipher_reads_it():
    searchable = get_searchable_cipher()
    encrypted = searchable.encrypt(12345, "accounts.account.number")
    assert encrypted.startswith(get_cipher().search_token(12345, "accounts.account.number"))
    assert get_cipher().decrypt(encrypted, "accounts.account.number") == 12345
    assert decrypt_field(encrypted, context="accounts.account.number") == 12345


def test_searchable_cipher_encrypt_searchable_adds_exactly_one_token():
    searchable = get_searchable_cipher()
    encrypted = searchable.encrypt_searchable("A@B.C", "e", normalizer=str.lower)
    assert encrypted.startswith(get_cipher().search_token("a@b.c", "e"))
    assert looks_like_envelope(encrypted[TOKEN_LENGTH:])
    assert decrypt_field(encrypted, context="e") == "A@B.C"


# -- failures ------------------------------------------------------------------------


def test_wrong_context_fails_authentication_without_revealing_plaintext():
    encrypted = encrypt_field("top-secret-balance", context="accounts.account.balance")
    with pytest.raises(DecryptionError) as info:
        decrypt_field(encrypted, context="accounts.account.number")
    assert info.value.reason == "authentication_failed"
    assert info.value.key_version == 1
    assert "top-secret-balance" not in str(info.value)


def test_searchable_value_with_wrong_context_fails_authentication():
    encrypted = encrypt_field("a@b.c", searchable=True, context="users.user.email")
    with pytest.raises(DecryptionError) as info:
        decrypt_field(encrypted, context="users.user.phone")
    assert info.value.reason == "authentication_failed"


def test_tampered_ciphertext_fails_authentication():
    encrypted = encrypt_field("x" * 30, context="c")
    middle = len(encrypted) // 2
    tampered = (
        encrypted[:middle] + ("A" if encrypted[middle] != "A" else "B") + encrypted[middle + 1 :]
    )
    with pytest.raises(DecryptionError) as info:
        decrypt_field(tampered, context="c")
    assert info.value.reason == "authentication_failed"


@pytest.mark.parametrize("garbage", ["plain text", "ape:%%%", ""], ids=repr)
def test_garbage_is_malformed(garbage):
    with pytest.raises(DecryptionError) as info:
        decrypt_field(garbage)
    assert info.value.reason == "malformed"


def test_decryption_error_is_an_encryption_error():
    assert issubclass(DecryptionError, EncryptionError)
    with pytest.raises(EncryptionError):
        decrypt_field(encrypt_field("x", context="a"), context="b")


# -- batches ----------------------------------------------------------------------------


def test_batch_encrypt_and_decrypt_match_one_by_one():
    context = "trading.trade.details"
    items = [*VALUES, None]
    cipher = get_optimized_cipher()
    batch = cipher.batch_encrypt(items, context=context)
    assert len(batch) == len(items)
    assert batch[-1] is None
    assert all(key_version_of(text) == 1 for text in batch[:-1])
    one_by_one = [encrypt_field(item, context=context) for item in items]
    assert [decrypt_field(text, context=context) for text in batch] == items
    assert cipher.batch_decrypt(batch, context=context) == items
    assert cipher.batch_decrypt(one_by_one, context=context) == items
    decrypted = cipher.batch_decrypt(batch, context=context)
    assert [type(v) for v in decrypted] == [type(v) for v in items]


def test_batch_decrypt_fails_like_one_by_one():
    cipher = get_optimized_cipher()
    batch = cipher.batch_encrypt(["a", "b"], context="one")
    with pytest.raises(DecryptionError) as info:
        cipher.batch_decrypt(batch, context="two")
    assert info.value.reason == "authentication_failed"


def test_batch_decrypt_reads_searchable_values():
    cipher = get_optimized_cipher()
    items = ["a@b.c", "d@e.f"]
    encrypted = [encrypt_field(v, searchable=True, context="e") for v in items]
    assert cipher.batch_decrypt(encrypted, context="e") == items


# -- logging ------------------------------------------------------------------------------


def test_debug_logs_contain_neither_key_material_nor_plaintext(caplog):
    raw = base64.b64decode(TEST_KEY_V1)
    secrets = {
        TEST_KEY_V1,
        TEST_KEY_V1.rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        root_key(raw, 1, 100_000).hex(),
    }
    plaintexts = ["plaintext-account-9876", "plaintext-email@example.com", "plaintext-batch"]
    caplog.set_level(logging.DEBUG, logger="alphapulse_encryption")
    keys.reset()  # so loading the keys is logged too

    encrypted = encrypt_field(plaintexts[0], context="accounts.account.number")
    decrypt_field(encrypted, context="accounts.account.number")
    searchable = encrypt_field(plaintexts[1], searchable=True, context="users.user.email")
    decrypt_field(searchable, context="users.user.email")
    cipher = get_optimized_cipher()
    cipher.batch_decrypt(cipher.batch_encrypt([plaintexts[2]], context="b"), context="b")
    with pytest.raises(DecryptionError):
        decrypt_field(encrypted, context="wrong")
    with pytest.raises(KeyProviderError):
        EncryptionKeyManager().rotate_keys()

    assert caplog.records, "expected debug records from the package"
    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    assert "accounts.account.number" in logged  # the context is logged, the value is not
    for secret in secrets:
        assert secret not in logged
    for plaintext in plaintexts:
        assert plaintext not in logged


def test_searchable_cipher_batch_encrypt_prefixes_each_value_with_its_token():
    from alphapulse_encryption import get_searchable_cipher

    cipher = get_searchable_cipher()
    items = ["a@b.c", None, "d@e.f"]
    sealed = cipher.batch_encrypt(items, context="batch.search")
    assert sealed[1] is None
    assert sealed[0].startswith(cipher.search_token("a@b.c", "batch.search"))
    assert cipher.batch_decrypt(sealed, context="batch.search") == items
