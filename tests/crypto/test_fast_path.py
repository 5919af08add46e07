"""The inline decryption path (a header validated before) answers exactly as the full parser.

``Cipher.open_many`` (behind ``decrypt`` and ``batch_decrypt``) opens a value inline when
its 10-byte header is one this cipher has validated already; every other value goes through
``envelope.decode``. These tests decrypt
a good value first, so the header is known, and then check that every defect still gets
the reason and key version a fresh cipher gives it.
"""

import pytest

from alphapulse_encryption.crypto import Cipher, DecryptionError, Keyring

from .conftest import KEY_1, KEY_2, KEY_3
from .test_cipher import REGIONS, _raw, _text


def _reason(cipher: Cipher, text, context="ctx"):
    try:
        cipher.decrypt(text, context)
    except DecryptionError as exc:
        return exc.reason, exc.key_version
    return None


@pytest.fixture
def warm(keyring):
    """A cipher that has opened one value of each kind (plain and searchable) for "ctx"."""
    cipher = Cipher(keyring)
    assert cipher.decrypt(cipher.encrypt("warm", "ctx"), "ctx") == "warm"
    assert cipher.decrypt(cipher.encrypt_searchable("warm", "ctx"), "ctx") == "warm"
    return cipher


def _defects(cipher: Cipher) -> dict[str, str | bytes]:
    good = cipher.encrypt("secret value", "ctx")
    searchable = cipher.encrypt_searchable("secret value", "ctx")
    defects: dict[str, str | bytes] = {}
    for region, offset, _ in REGIONS:
        raw = _raw(good)
        raw[offset] ^= 0x04
        defects[f"flip {region}"] = _text(raw)
    raw = _raw(good)
    defects["truncated to the minimum minus one"] = _text(raw[:37])
    defects["header only"] = _text(raw[:10])
    defects["cut text"] = good[:40]
    defects["prefix missing"] = good[4:]
    defects["wrong prefix"] = "apx:" + good[4:]
    defects["non-ascii body"] = good[:-1] + "é"
    defects["padding inside"] = good[:20] + "=" + good[21:]
    defects["searchable, envelope tampered"] = searchable[:-2] + (
        "A" if searchable[-2] != "A" else "B"
    )
    defects["searchable, prefix of envelope missing"] = searchable[:76] + searchable[80:]
    return defects


def test_every_defect_gets_the_reason_a_fresh_cipher_gives(warm, keyring):
    for name, text in _defects(warm).items():
        cold = Cipher(keyring)
        expected = _reason(cold, text)
        assert expected is not None, name
        assert _reason(warm, text) == expected, name


def test_bytes_take_the_full_parser_and_open_the_same(warm):
    text = warm.encrypt_searchable("secret", "ctx")
    assert warm.decrypt(text.encode(), "ctx") == warm.decrypt(text, "ctx") == "secret"


def test_a_known_header_in_another_context_fails_authentication(warm):
    text = warm.encrypt("secret", "ctx")
    assert _reason(warm, text, "other") == ("authentication_failed", 2)
    assert warm.decrypt(text, "ctx") == "secret"


def test_the_same_header_under_another_key_fails_authentication(warm):
    stranger = Cipher(Keyring({2: KEY_3}, 2)).encrypt("secret", "ctx")
    assert _reason(warm, stranger) == ("authentication_failed", 2)


def test_headers_are_remembered_per_keyring_not_across_them():
    old = Cipher(Keyring({1: KEY_1, 2: KEY_2}, 2))
    text = old.encrypt("secret", "ctx")
    assert old.decrypt(text, "ctx") == "secret"
    retired = Cipher(Keyring({1: KEY_1}, 1))  # version 2 destroyed
    assert _reason(retired, text) == ("unknown_key_version", 2)


def test_open_many_returns_each_failure_in_place_and_goes_on(warm):
    good = [warm.encrypt(v, "ctx") for v in ("a", "b", "c")]
    tampered = _raw(good[1])
    tampered[-1] ^= 1
    items = [good[0], _text(tampered), None, "ape:AAAA", good[2]]
    results = warm.open_many(items, "ctx")
    assert results[0] == "a"
    assert isinstance(results[1], DecryptionError)
    assert results[1].reason == "authentication_failed"
    assert results[2] is None
    assert isinstance(results[3], DecryptionError)
    assert results[3].reason == "malformed"
    assert results[4] == "c"


def test_padded_values_open_inline_too():
    cipher = Cipher(Keyring({1: KEY_1}, 1, pad_to=16))
    texts = [cipher.encrypt(v, "ctx") for v in ("", "x" * 15, "y" * 16, "z" * 40)]
    assert cipher.batch_decrypt(texts, "ctx") == ["", "x" * 15, "y" * 16, "z" * 40]
    assert [cipher.decrypt(t, "ctx") for t in texts] == ["", "x" * 15, "y" * 16, "z" * 40]


def test_the_header_cache_is_bounded(keyring):
    from alphapulse_encryption.crypto import cipher as cipher_module

    cipher = Cipher(keyring)
    for i in range(cipher_module._MAX_CACHED_CONTEXTS + 5):
        context = f"c{i}"
        assert cipher.decrypt(cipher.encrypt(i, context), context) == i
    assert len(cipher._openers) <= cipher_module._MAX_CACHED_CONTEXTS
