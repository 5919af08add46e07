"""Per-value cost of encryption and decryption in CPU instructions, counted by valgrind.

    python tests/benchmarks/instruction_counts.py [--ops decrypt,batch_decrypt,...]

Timings of a few microseconds swing by a factor of two on a shared virtual machine;
instruction counts do not (callgrind counts the same total for the same binary and
input, whatever else the machine is doing). Each operation runs under
``valgrind --tool=callgrind`` twice, 1,000 and 6,000 times on a 32-character string, and
the difference divided by 5,000 is its cost per value: start-up and set-up cancel out
(and the Python loop around one-by-one calls is taken off). Takes about 7 minutes.
Needs valgrind (Debian: ``apt-get install valgrind``). Figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import binascii
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VALUE = "x" * 32
CONTEXT = "benchmark.value"
SMALL, LARGE = 1_000, 6_000
OPS = (
    "raw_decrypt",
    "floor_decrypt",
    "decrypt",
    "from_db_value",
    "batch_decrypt",
    "raw_encrypt",
    "encrypt",
    "batch_encrypt",
)
LABELS = {
    "raw_decrypt": "raw AESGCM.decrypt (cached key, no AAD)",
    "floor_decrypt": "inline reference: base64, AESGCM with AAD, decode",
    "decrypt": "Cipher.decrypt (what decrypt_field calls)",
    "from_db_value": "a field's from_db_value (values_list path)",
    "batch_decrypt": "batch_decrypt, per value",
    "raw_encrypt": "raw AESGCM.encrypt + os.urandom nonce",
    "encrypt": "Cipher.encrypt (what encrypt_field calls)",
    "batch_encrypt": "batch_encrypt, per value",
}


def _operations() -> dict[str, Callable[[int], object]]:
    """Set up Django and the keys, and return each operation as ``run(n)``."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import logging

    import django

    django.setup()
    logging.disable(logging.CRITICAL)  # no audit entry attempts: there is no database here
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from alphapulse_encryption.crypto import Cipher, envelope
    from alphapulse_encryption.fields import EncryptedString
    from alphapulse_encryption.keys import current_keyring

    cipher = Cipher(current_keyring())  # no key-usage counter: it writes to the database
    text = cipher.encrypt(VALUE, CONTEXT)
    cipher.decrypt(text, CONTEXT)  # derive the key and validate the header once
    field = EncryptedString(context=CONTEXT)
    aead = cipher.keyring.data_aead(cipher.keyring.active_version, CONTEXT)
    raw_key = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    sealed = raw_key.encrypt(nonce, b"s" + VALUE.encode(), None)
    tail = CONTEXT.encode()

    def floor(stored: str) -> str:
        body = stored[4:].encode().translate(envelope.URLSAFE_TO_STANDARD)
        raw = binascii.a2b_base64(body + envelope.PADDING[len(body) & 3])
        return str(aead.decrypt(raw[10:22], raw[22:], raw[:10] + tail)[1:].decode())

    assert floor(text) == VALUE
    plaintext = b"s" + VALUE.encode()
    field.from_db_value(text, None, None)

    def repeat(function: Callable[[], object]) -> Callable[[int], object]:
        return lambda n: [function() for _ in range(n)]

    return {
        "raw_decrypt": repeat(lambda: raw_key.decrypt(nonce, sealed, None)),
        "floor_decrypt": repeat(lambda: floor(text)),
        "decrypt": repeat(lambda: cipher.decrypt(text, CONTEXT)),
        "from_db_value": repeat(lambda: field.from_db_value(text, None, None)),
        "batch_decrypt": lambda n: cipher.batch_decrypt([text] * n, CONTEXT),
        "raw_encrypt": repeat(lambda: raw_key.encrypt(os.urandom(12), plaintext, None)),
        "encrypt": repeat(lambda: cipher.encrypt(VALUE, CONTEXT)),
        "batch_encrypt": lambda n: cipher.batch_encrypt([VALUE] * n, CONTEXT),
        "nothing": repeat(lambda: None),
    }


def _instructions(op: str, count: int) -> int:
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    result = subprocess.run(
        [*valgrind, sys.executable, __file__, "--run", op, str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", result.stderr)
    assert match, result.stderr[-2000:]
    return int(match.group(1))


def per_value(op: str) -> float:
    return (_instructions(op, LARGE) - _instructions(op, SMALL)) / (LARGE - SMALL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        op, count = args.run
        _operations()[op](int(count))
        return
    loop = per_value("nothing")  # the Python loop around each one-by-one call
    counts = {}
    for op in args.ops.split(","):
        cost = per_value(op)
        counts[op] = cost - (0 if op.startswith("batch") else loop)
    print(f"{'per value, 32-character string':<52}{'instructions':>14}{'x raw':>8}")
    for op, cost in counts.items():
        raw = counts.get("raw_encrypt" if "encrypt" in op else "raw_decrypt")
        ratio = f"{cost / raw:.1f}x" if raw else ""
        print(f"{LABELS[op]:<52}{cost:>14,.0f}{ratio:>8}")


if __name__ == "__main__":
    main()
