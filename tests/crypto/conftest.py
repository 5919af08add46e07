import base64

import pytest

from alphapulse_encryption.crypto import Cipher, Keyring

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))
KEY_3 = bytes(range(64, 96))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring({1: KEY_1, 2: KEY_2}, 2)


@pytest.fixture
def cipher(keyring: Keyring) -> Cipher:
    return Cipher(keyring)
