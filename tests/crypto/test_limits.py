"""The per-value plaintext limit and the per-key encryption count, in the pure core."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphapulse_encryption.crypto import (
    Cipher,
    ConfigurationError,
    Keyring,
    PlaintextTooLarge,
    key_version_of,
)

from .conftest import KEY_1, KEY_2

LIMIT = 64


@pytest.fixture
def seals() -> Counter:
    return Counter()


@pytest.fixture
def limited(seals) -> Cipher:
    def observe(version: int, context: str, count: int) -> None:
        seals[(version, context)] += count

    return Cipher(Keyring({1: KEY_1, 2: KEY_2}, 2), max_plaintext_bytes=LIMIT, on_seal=observe)


def test_a_value_of_exactly_the_limit_is_encrypted(limited):
    value = "é" * (LIMIT // 2)  # 64 bytes in UTF-8
    assert limited.decrypt(limited.encrypt(value, "ctx"), "ctx") == value


def test_one_byte_over_the_limit_is_refused_naming_the_context_and_the_limit(limited):
    with pytest.raises(PlaintextTooLarge) as info:
        limited.encrypt("x" * (LIMIT + 1), "billing.customer.notes")
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.context, error.size, error.limit) == ("billing.customer.notes", 65, 64)
    assert str(error) == (
        "the value for context 'billing.customer.notes' is 65 bytes, over the limit of "
        "64 bytes per value (MAX_PLAINTEXT_BYTES)"
    )
    assert "xxx" not in str(error)


@pytest.mark.parametrize(
    "value",
    [b"\x00" * (LIMIT + 1), {"k": "v" * LIMIT}, ["a" * LIMIT], "a" * (LIMIT + 1)],
    ids=["bytes", "dict", "list", "str"],
)
def test_every_path_refuses_oversized_values(limited, value):
    for encrypt in (
        lambda: limited.encrypt(value, "ctx"),
        lambda: limited.encrypt_searchable(value, "ctx"),
        lambda: limited.batch_encrypt(["ok", value], "ctx"),
    ):
        with pytest.raises(PlaintextTooLarge):
            encrypt()


def test_padding_does_not_count_against_the_limit():
    cipher = Cipher(Keyring({1: KEY_1}, 1, pad_to=4096), max_plaintext_bytes=LIMIT)
    assert cipher.decrypt(cipher.encrypt("x" * LIMIT, "ctx"), "ctx") == "x" * LIMIT


def test_no_limit_when_none():
    cipher = Cipher(Keyring({1: KEY_1}, 1))
    big = "y" * (2 * 1024 * 1024)
    assert cipher.decrypt(cipher.encrypt(big, "ctx"), "ctx") == big


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1024"])
def test_a_bad_limit_is_a_configuration_error(bad):
    with pytest.raises(ConfigurationError, match="MAX_PLAINTEXT_BYTES"):
        Cipher(Keyring({1: KEY_1}, 1), max_plaintext_bytes=bad)


def test_every_sealed_value_is_counted_per_version_and_context(limited, seals):
    limited.encrypt("a", "one")
    limited.encrypt_searchable("b", "one")
    limited.batch_encrypt(["c", None, "d", None], "two")
    assert seals == {(2, "one"): 2, (2, "two"): 2}
    limited.decrypt(limited.encrypt("e", "one"), "one")
    assert seals[(2, "one")] == 3  # decryption is not counted


def test_a_refused_value_is_not_counted_but_the_batch_values_sealed_before_it_are(limited, seals):
    with pytest.raises(PlaintextTooLarge):
        limited.encrypt("z" * 100, "ctx")
    assert seals == {}
    with pytest.raises(PlaintextTooLarge):
        limited.batch_encrypt(["ok", "fine", "z" * 100, "never"], "ctx")
    assert seals == {(2, "ctx"): 2}  # their nonces were used


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_any_value_either_round_trips_or_is_refused_by_size(value):
    cipher = Cipher(Keyring({1: KEY_1}, 1), max_plaintext_bytes=LIMIT)
    size = len(value.encode("utf-8")) if isinstance(value, str) else len(value)
    if size > LIMIT:
        with pytest.raises(PlaintextTooLarge):
            cipher.encrypt(value, "fuzz")
    else:
        stored = cipher.encrypt(value, "fuzz")
        assert key_version_of(stored) == 1
        assert cipher.decrypt(stored, "fuzz") == value
