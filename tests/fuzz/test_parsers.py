"""Bounded fuzzing of every parser of untrusted input (the long runs use atheris, see
tests/fuzz/atheris_envelope.py). Any input decodes to the right value or raises
DecryptionError / ValidationError / ConfigurationError: never another exception type."""

import base64
import contextlib
import struct

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphapulse_encryption.crypto import Cipher, ConfigurationError, DecryptionError, Keyring
from alphapulse_encryption.crypto import envelope as envelope_module
from alphapulse_encryption.crypto.serialize import deserialize
from alphapulse_encryption.fields import UndecryptableValue
from alphapulse_encryption.keys.providers import parse_master_key
from tests.testapp.models import Customer, Trade, TradingAccount

KEY = bytes(range(32))
CIPHER = Cipher(Keyring({1: KEY}, 1))
FUZZ = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def _text(raw: bytes) -> str:
    return "ape:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


envelope_like = st.builds(
    lambda fmt, flags, version, iterations, rest: (
        struct.pack(">BBII", fmt, flags, version, iterations) + rest
    ),
    st.sampled_from([0, 1, 2, 255]),
    st.integers(0, 255),
    st.sampled_from([0, 1, 2, 2**32 - 1]),
    st.sampled_from([0, 1, 100_000, 10_000_001, 2**32 - 1]),
    st.binary(max_size=80),
)


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), envelope_like.map(_text)))
def test_envelope_decoder_raises_only_decryption_error(data):
    try:
        envelope_module.decode(data)
    except DecryptionError as exc:
        assert exc.reason == "malformed"


@FUZZ
@given(envelope_like.map(_text))
def test_decrypt_of_forged_envelopes_raises_only_decryption_error(text):
    with pytest.raises(DecryptionError) as info:
        CIPHER.decrypt(text, "fuzz")
    assert info.value.reason in {"malformed", "unknown_key_version", "authentication_failed"}


@FUZZ
@given(st.binary(max_size=300))
def test_typed_value_decoder_raises_only_decryption_error(data):
    try:
        deserialize(data)
    except DecryptionError as exc:
        assert exc.reason == "malformed"


@FUZZ
@given(st.binary(max_size=300))
def test_authenticated_garbage_plaintext_is_malformed_not_a_crash(data):
    """Even a correctly sealed envelope whose plaintext is garbage fails cleanly."""
    keyring = CIPHER.keyring
    header = envelope_module.pack_header(0, 1, keyring.kdf_iterations)
    nonce = bytes(12)
    sealed = keyring.data_aead(1, "fuzz").encrypt(nonce, data, header + b"fuzz")
    text = envelope_module.encode(header, nonce, sealed)
    try:
        CIPHER.decrypt(text, "fuzz")
    except DecryptionError as exc:
        assert exc.reason == "malformed"


@FUZZ
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80), st.integers(), st.none()))
def test_master_key_parser_raises_only_configuration_error(value):
    try:
        key = parse_master_key(value, 1)
    except ConfigurationError as exc:
        assert "version 1" in str(exc)
    else:
        assert len(key) == 32


@pytest.mark.django_db
@FUZZ
@given(st.one_of(st.text(max_size=120), envelope_like.map(_text)))
def test_field_from_db_value_yields_a_placeholder_never_a_crash(stored):
    for model, name in ((Customer, "email"), (TradingAccount, "balance"), (Trade, "execution")):
        field = model._meta.get_field(name)
        value = field.from_db_value(stored, None, None)
        assert isinstance(value, UndecryptableValue)
        assert value.error.reason in {"malformed", "unknown_key_version", "authentication_failed"}


@FUZZ
@given(st.one_of(st.text(max_size=60), st.integers(), st.floats(), st.booleans()))
def test_field_to_python_raises_only_validation_error(value):
    for model, name in (
        (TradingAccount, "balance"),
        (TradingAccount, "credit_limit"),
        (TradingAccount, "opened_on"),
        (Trade, "executed_at"),
        (Trade, "is_short"),
    ):
        field = model._meta.get_field(name)
        with contextlib.suppress(ValidationError):
            field.to_python(value)
