"""Round trips, tamper detection, contexts, keys and search tokens of the crypto core."""

import base64
import datetime
import decimal
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphapulse_encryption.crypto import (
    TOKEN_LENGTH,
    Cipher,
    DecryptionError,
    EncryptionError,
    Keyring,
    key_version_of,
)
from alphapulse_encryption.crypto import envelope as env_mod

from .conftest import KEY_1, KEY_2, KEY_3

VALUES = [
    "alice@example.com",
    "",
    "ünïcødé ✓",
    0,
    -(2**80),
    12345,
    0.0,
    -1.5e-300,
    float("inf"),
    True,
    False,
    decimal.Decimal("0"),
    decimal.Decimal("-1234567.890123456789"),
    datetime.date(1987, 6, 5),
    datetime.datetime(2026, 11, 29, 3, 4, 5, 123456),
    datetime.datetime(
        2026, 11, 29, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    ),
    {"a": 1, "b": [1.5, "x", None, True], "nested": {"k": "v"}},
    [1, "2", 3.0],
    [],
    {},
    b"\x00\x01\xffbinary",
    b"",
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_round_trip_keeps_value_and_type(cipher, value):
    out = cipher.decrypt(cipher.encrypt(value, "ctx"), "ctx")
    assert out == value
    assert type(out) is type(value)


def test_datetime_offset_is_preserved(cipher):
    tz = datetime.timezone(datetime.timedelta(hours=-4))
    value = datetime.datetime(2026, 1, 2, 3, 4, tzinfo=tz)
    out = cipher.decrypt(cipher.encrypt(value, "c"), "c")
    assert out.utcoffset() == datetime.timedelta(hours=-4)


def test_nan_round_trips(cipher):
    out = cipher.decrypt(cipher.encrypt(float("nan"), "c"), "c")
    assert out != out


def test_json_leaves_keep_their_types(cipher):
    value = {"int": 5, "str": "5", "float": 5.5, "bool": False, "null": None}
    out = cipher.decrypt(cipher.encrypt(value, "c"), "c")
    assert out == value
    assert type(out["int"]) is int and type(out["str"]) is str


def test_unsupported_type_is_a_type_error(cipher):
    with pytest.raises(TypeError, match="set"):
        cipher.encrypt({1, 2}, "c")


def test_two_encryptions_of_one_value_differ(cipher):
    a, b = cipher.encrypt("same", "c"), cipher.encrypt("same", "c")
    assert a != b
    assert env_mod.decode(a).nonce != env_mod.decode(b).nonce


def test_text_form_is_ascii_and_recognisable(cipher):
    text = cipher.encrypt("x" * 40, "c")
    assert text.isascii() and text.startswith("ape:")
    assert env_mod.looks_like_envelope(text)
    assert not env_mod.looks_like_envelope("plain text")


def test_envelope_header_carries_format_and_key_version(cipher):
    parsed = env_mod.decode(cipher.encrypt("v", "c"))
    assert parsed.key_version == 2
    assert parsed.kdf_iterations == 100_000
    assert len(parsed.nonce) == 12
    assert len(parsed.sealed) == len(b"sv") + 16


def _raw(text: str) -> bytearray:
    body = text[4:]
    return bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _text(raw: bytes) -> str:
    return "ape:" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


# (region, byte offset in the binary envelope, expected reason)
REGIONS = [
    ("format version", 0, "malformed"),
    ("flags", 1, "malformed"),
    ("key version", 5, "unknown_key_version"),
    ("kdf iterations", 9, "authentication_failed"),
    ("nonce", 12, "authentication_failed"),
    ("ciphertext", 23, "authentication_failed"),
    ("tag", -1, "authentication_failed"),
]


@pytest.mark.parametrize(("region", "offset", "reason"), REGIONS, ids=[r[0] for r in REGIONS])
def test_bit_flip_in_each_region_is_detected(cipher, region, offset, reason):
    raw = _raw(cipher.encrypt("secret value", "ctx"))
    raw[offset] ^= 0x04
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(_text(raw), "ctx")
    assert info.value.reason == reason


def test_key_version_flip_to_another_configured_version_fails_authentication(cipher):
    raw = _raw(cipher.encrypt("secret", "ctx"))
    raw[5] = 1  # version 2 -> 1, which is configured
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(_text(raw), "ctx")
    assert info.value.reason == "authentication_failed"
    assert info.value.key_version == 1


def test_wrong_context_fails_authentication(cipher):
    text = cipher.encrypt("secret", "app.user.email")
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(text, "app.user.phone")
    assert info.value.reason == "authentication_failed"
    assert info.value.key_version == 2


def test_wrong_key_fails_authentication(cipher):
    text = cipher.encrypt("secret", "c")
    other = Cipher(Keyring({2: KEY_3}, 2))
    with pytest.raises(DecryptionError) as info:
        other.decrypt(text, "c")
    assert info.value.reason == "authentication_failed"


def test_unknown_version_is_reported(cipher):
    text = Cipher(Keyring({7: KEY_1}, 7)).encrypt("secret", "c")
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(text, "c")
    assert info.value.reason == "unknown_key_version"
    assert info.value.key_version == 7


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ape:",
        "ape:AAAA",
        "hello world",
        "ape:***not base64***",
        "ape:ünïcode",
        "ape:" + "A" * 5,
        b"\xff\xfe",
        "apt1" + "0" * 72,
    ],
    ids=repr,
)
def test_garbage_is_malformed(cipher, bad):
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(bad, "c")
    assert info.value.reason == "malformed"


def test_truncated_envelope_is_malformed(cipher):
    text = cipher.encrypt("secret", "c")
    for cut in (5, 20, 40):
        with pytest.raises(DecryptionError) as info:
            cipher.decrypt(text[:cut], "c")
        assert info.value.reason in {"malformed", "authentication_failed"}
    raw = _raw(text)
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(_text(raw[:37]), "c")
    assert info.value.reason == "malformed"


def test_forged_huge_iteration_count_is_refused_without_deriving(cipher):
    raw = _raw(cipher.encrypt("secret", "c"))
    raw[6:10] = (2**32 - 1).to_bytes(4, "big")
    with pytest.raises(DecryptionError) as info:
        cipher.decrypt(_text(raw), "c")
    assert info.value.reason == "malformed"


def test_decryption_error_is_an_encryption_error_and_names_no_secret(cipher):
    text = cipher.encrypt("top-secret-plaintext", "c")
    with pytest.raises(EncryptionError) as info:
        cipher.decrypt(text, "other")
    message = str(info.value)
    assert "top-secret-plaintext" not in message
    for key in (KEY_1, KEY_2):
        assert key.hex() not in message
        assert base64.b64encode(key).decode() not in message
    assert "authentication_failed" in message


def test_padding_hides_exact_length():
    padded = Cipher(Keyring({1: KEY_1}, 1, pad_to=32))
    short, longer = padded.encrypt("a", "c"), padded.encrypt("a" * 20, "c")
    assert len(short) == len(longer)
    assert padded.decrypt(longer, "c") == "a" * 20
    # A reader without padding configured still reads padded values (the flag is in the header).
    assert Cipher(Keyring({1: KEY_1}, 1)).decrypt(short, "c") == "a"


def test_search_tokens_equal_for_equal_values_and_differ_across_context_and_key(cipher):
    t1 = cipher.search_token("a@b.c", "users.email")
    assert t1 == cipher.search_token("a@b.c", "users.email")
    assert len(t1) == TOKEN_LENGTH
    assert t1 != cipher.search_token("a@b.d", "users.email")
    assert t1 != cipher.search_token("a@b.c", "users.backup_email")
    other_key = Cipher(Keyring({2: KEY_3}, 2))
    assert t1 != other_key.search_token("a@b.c", "users.email")
    assert t1 != cipher.search_token("a@b.c", "users.email", version=1)


def test_search_tokens_use_normalised_value(cipher):
    lower = str.lower
    assert cipher.search_token("A@B.c", "e", normalizer=lower) == cipher.search_token("a@b.c", "e")


def test_search_tokens_cover_every_configured_version(cipher):
    tokens = cipher.search_tokens("x", "c")
    assert [key_version_of(t + cipher.encrypt("x", "c")) for t in tokens] == [2, 2]
    assert [int(t[4:12], 16) for t in tokens] == [1, 2]


def test_searchable_value_decrypts_and_starts_with_its_token(cipher):
    text = cipher.encrypt_searchable("a@b.c", "e")
    assert text.startswith(cipher.search_token("a@b.c", "e"))
    assert cipher.decrypt(text, "e") == "a@b.c"
    assert key_version_of(text) == 2


def test_batch_matches_one_by_one(cipher):
    items = ["a", 1, None, 2.5, {"k": [1]}, b"z"]
    encrypted = cipher.batch_encrypt(items, context="c")
    assert encrypted[2] is None
    assert cipher.batch_decrypt(encrypted, context="c") == items
    assert [None if e is None else cipher.decrypt(e, "c") for e in encrypted] == items
    with pytest.raises(DecryptionError):
        cipher.batch_decrypt(encrypted[:1], context="other")


def test_keyring_repr_shows_no_key():
    ring = Keyring({1: KEY_1}, 1)
    text = repr(ring) + repr(Cipher(ring))
    assert KEY_1.hex() not in text and str(KEY_1) not in text
    assert "versions=[1]" in text


def test_no_key_or_plaintext_in_debug_logs(cipher, caplog):
    caplog.set_level(logging.DEBUG)
    cipher.decrypt(cipher.encrypt("very-secret-text", "c"), "c")
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "very-secret-text" not in logs
    assert KEY_2.hex() not in logs


@given(
    st.one_of(
        st.text(),
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.decimals(allow_nan=False),
        st.dates(),
        st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
        st.binary(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
            max_leaves=10,
        ).filter(lambda v: isinstance(v, dict | list)),
    )
)
def test_property_round_trip(value):
    cipher = Cipher(Keyring({1: KEY_1}, 1))
    out = cipher.decrypt(cipher.encrypt(value, "prop"), "prop")
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        # Same wall time and offset (comparing instants across zones is unreliable in a
        # DST fold, where Python deems ambiguous times unequal).
        assert out.replace(tzinfo=None) == value.replace(tzinfo=None)
        assert out.utcoffset() == value.utcoffset()
    else:
        assert out == value
    assert type(out) is type(value)


@given(st.binary(max_size=200))
def test_property_random_bytes_never_raise_anything_but_decryption_error(data):
    cipher = Cipher(Keyring({1: KEY_1}, 1))
    for candidate in (data, "ape:" + base64.urlsafe_b64encode(data).decode().rstrip("=")):
        with pytest.raises(DecryptionError):
            cipher.decrypt(candidate, "c")


def test_json_uses_compact_utf8(cipher):
    value = {"é": "ü"}
    assert cipher.decrypt(cipher.encrypt(value, "c"), "c") == value
    assert json.dumps(value)  # sanity: the value is JSON
