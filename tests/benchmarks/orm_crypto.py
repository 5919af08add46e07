"""The ORM benchmark's crypto measurements: per-value costs against raw AES-GCM and the
peer, and the first encryption in a fresh process (key load and PBKDF2 included)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.benchmarks.orm_rounds import timed
from tests.benchmarks.orm_setup import (
    CRYPTO_CONTEXT,
    PROBES,
    SENSITIVE_FIELDS,
    VALUE_32,
    define_models,
    make_rows,
    setup_django,
)

# The script the fresh-process probes run.
SCRIPT = Path(__file__).with_name("orm_benchmark.py")


def crypto_round(models: dict[str, Any], items: int, samples: dict[str, list[float]]) -> None:
    """Per-value costs in microseconds, each over ``items`` values, interleaved."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    from django.db import connection

    from alphapulse_encryption import decrypt_field, encrypt_field, get_optimized_cipher

    aead = AESGCM(os.urandom(32))
    plaintext = VALUE_32.encode()
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, plaintext, None)
    cipher = get_optimized_cipher()
    values = [VALUE_32] * items
    texts = [encrypt_field(VALUE_32, context=CRYPTO_CONTEXT)] * items
    floor_encrypt, floor_decrypt = _floor(cipher, texts[0])
    ours_field = models["ours"]._meta.get_field("email")
    peer_field = models["peer"]._meta.get_field("email")
    ours_stored = [ours_field.get_db_prep_save(VALUE_32, connection)] * items
    peer_stored = [peer_field.get_db_prep_save(VALUE_32, connection)] * items
    operations: dict[str, Callable[[], object]] = {
        "raw_encrypt": lambda: [aead.encrypt(os.urandom(12), plaintext, None) for _ in values],
        "raw_decrypt": lambda: [aead.decrypt(nonce, sealed, None) for _ in values],
        "encrypt_field": lambda: [encrypt_field(v, context=CRYPTO_CONTEXT) for v in values],
        "decrypt_field": lambda: [decrypt_field(t, context=CRYPTO_CONTEXT) for t in texts],
        "batch_encrypt": lambda: cipher.batch_encrypt(values, context=CRYPTO_CONTEXT),
        "batch_decrypt": lambda: cipher.batch_decrypt(texts, context=CRYPTO_CONTEXT),
        "ours_from_db_value": lambda: [
            ours_field.from_db_value(s, None, None) for s in ours_stored
        ],
        "peer_from_db_value": lambda: [
            peer_field.from_db_value(s, None, None) for s in peer_stored
        ],
        "peer_get_prep_value": lambda: [peer_field.get_prep_value(v) for v in values],
        "floor_encrypt": lambda: [floor_encrypt(v) for v in values],
        "floor_decrypt": lambda: [floor_decrypt(t) for t in texts],
    }
    for name, run in operations.items():
        samples[name].append(timed(run) / items * 1e6)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"benchmark", iterations=100_000)
    samples["pbkdf2"].append(timed(lambda: kdf.derive(os.urandom(32))) * 1e6)


def _floor(cipher: Any, text: str) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """The floor of any Python implementation of our format: the same bytes, no calls
    between. Returns (encrypt, decrypt) of one value."""
    from alphapulse_encryption import decrypt_field

    keyring = cipher.keyring
    data_aead = keyring.data_aead(keyring.active_version, CRYPTO_CONTEXT)
    aad_tail = CRYPTO_CONTEXT.encode()
    to_standard = bytes.maketrans(b"-_", b"+/")
    header = binascii.a2b_base64(_padded(text[4:].encode().translate(to_standard)))[:10]

    def floor_encrypt(value: str) -> str:
        nonce = os.urandom(12)
        sealed = data_aead.encrypt(nonce, b"s" + value.encode(), header + aad_tail)
        return "ape:" + base64.urlsafe_b64encode(header + nonce + sealed).rstrip(b"=").decode()

    def floor_decrypt(text: str) -> str:
        raw = binascii.a2b_base64(_padded(text[4:].encode().translate(to_standard)))
        return data_aead.decrypt(raw[10:22], raw[22:], raw[:10] + aad_tail)[1:].decode()

    assert floor_decrypt(text) == VALUE_32 == decrypt_field(floor_encrypt(VALUE_32), CRYPTO_CONTEXT)
    return floor_encrypt, floor_decrypt


def _padded(body: bytes) -> bytes:
    return body + b"=" * (-len(body) % 4)


def probe(kind: str) -> dict[str, float]:
    """Runs in a fresh process: the first encryption, key loading and PBKDF2 included."""
    setup_django()
    models = define_models()
    from django.db import connection

    from alphapulse_encryption import encrypt_field
    from alphapulse_encryption.keys import current_keyring

    connection.ensure_connection()  # a request would have it open already
    row = make_rows(1, seed=1)[0]
    if kind == "key_load":

        def run() -> object:
            return current_keyring()  # settings read, audit entry written; no PBKDF2 yet

    elif kind == "encrypt_field":

        def run() -> object:
            return encrypt_field(VALUE_32, context=CRYPTO_CONTEXT)

    else:
        model = models[kind.removesuffix("_row")]
        fields = [model._meta.get_field(name) for name in SENSITIVE_FIELDS]

        def run() -> object:
            obj = model(**row)
            return [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]

    first = timed(run)
    again = timed(run)
    return {"first_ms": first * 1e3, "again_ms": again * 1e3}


def fresh_process_round(samples: dict[str, list[float]], env: dict[str, str]) -> None:
    for kind in PROBES:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--probe", kind],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"probe {kind} failed:\n{done.stderr}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        samples[f"{kind}_first_ms"].append(figures["first_ms"])
        samples[f"{kind}_again_ms"].append(figures["again_ms"])
        samples[f"{kind}_process_ms"].append(wall * 1e3)
