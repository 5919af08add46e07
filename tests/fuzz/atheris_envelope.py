"""Long-running coverage-guided fuzzing of the envelope and value decoders (not part of
the test suite). Run: ``pip install atheris && python tests/fuzz/atheris_envelope.py
-max_total_time=3600``. Any exception other than DecryptionError is a finding."""

import base64
import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from alphapulse_encryption.crypto import Cipher, DecryptionError, Keyring

CIPHER = Cipher(Keyring({1: bytes(range(32))}, 1))


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    mode = provider.ConsumeIntInRange(0, 2)
    payload = provider.ConsumeBytes(provider.remaining_bytes())
    candidate: str | bytes
    if mode == 0:  # well-formed base64: the binary header and body parsers get the input
        candidate = "ape:" + base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    elif mode == 1:  # arbitrary text after the prefix: the text decoder
        candidate = "ape:" + payload.decode("latin-1")
    else:  # arbitrary bytes
        candidate = payload
    with contextlib.suppress(DecryptionError):
        CIPHER.decrypt(candidate, "fuzz")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
