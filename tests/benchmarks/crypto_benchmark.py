"""Measure the crypto core against raw AES-GCM: ``python tests/benchmarks/crypto_benchmark.py``.

Uses only :mod:`alphapulse_encryption.crypto`, so it needs no Django settings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Run as a script from a checkout: the package is imported from it, installed or not.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alphapulse_encryption.crypto import DEFAULT_ITERATIONS, Cipher, Keyring  # noqa: E402
from alphapulse_encryption.crypto.envelope import NONCE_SIZE  # noqa: E402
from alphapulse_encryption.crypto.serialize import serialize  # noqa: E402

CONTEXT = "benchmarks.record.value"
VALUES: dict[str, Any] = {
    "str32": "x" * 32,
    "dict": {"symbol": "AAPL", "qty": 100, "price": "187.42", "side": "buy"},
}


def _per_item_us(run: Callable[[], object], items: int) -> float:
    start = time.perf_counter_ns()
    run()
    return (time.perf_counter_ns() - start) / items / 1000


def _first_encryption_ms(value: Any, iterations: int, repeat: int) -> float:
    # A fresh random master key each time, so the process-wide root-key cache cannot help.
    samples = []
    for _ in range(repeat):
        cipher = Cipher(Keyring({1: os.urandom(32)}, 1, kdf_iterations=iterations))
        start = time.perf_counter_ns()
        cipher.encrypt(value, CONTEXT)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(samples)


def bench_value(value: Any, *, items: int, repeat: int, iterations: int) -> dict[str, float]:
    """Median microseconds per item of each operation, and the derived ratios."""
    cipher = Cipher(Keyring({1: os.urandom(32)}, 1, kdf_iterations=iterations))
    cipher.encrypt(value, CONTEXT)  # derive and cache the keys outside the timings
    values = [value] * items
    texts = [cipher.encrypt(v, CONTEXT) for v in values]

    # Raw AES-GCM over the very bytes Cipher encrypts: what the primitive alone costs.
    aead = AESGCM(os.urandom(32))
    plaintext = serialize(value)
    raw_nonce = os.urandom(NONCE_SIZE)
    sealed = [aead.encrypt(raw_nonce, plaintext, None)] * items

    operations: dict[str, Callable[[], object]] = {
        "raw_encrypt": lambda: [
            aead.encrypt(os.urandom(NONCE_SIZE), plaintext, None) for _ in values
        ],
        "raw_decrypt": lambda: [aead.decrypt(raw_nonce, s, None) for s in sealed],
        "encrypt": lambda: [cipher.encrypt(v, CONTEXT) for v in values],
        "decrypt": lambda: [cipher.decrypt(t, CONTEXT) for t in texts],
        "batch_encrypt": lambda: cipher.batch_encrypt(values, CONTEXT),
        "batch_decrypt": lambda: cipher.batch_decrypt(texts, CONTEXT),
    }
    samples: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(repeat):
        # Interleaved, so drift (CPU frequency, other load) hits every operation alike.
        for name, run in operations.items():
            samples[name].append(_per_item_us(run, items))
    result = {f"{name}_us": statistics.median(s) for name, s in samples.items()}
    result["encrypt_vs_raw"] = result["encrypt_us"] / result["raw_encrypt_us"]
    result["decrypt_vs_raw"] = result["decrypt_us"] / result["raw_decrypt_us"]
    result["batch_encrypt_speedup"] = result["encrypt_us"] / result["batch_encrypt_us"]
    result["batch_decrypt_speedup"] = result["decrypt_us"] / result["batch_decrypt_us"]
    result["first_encrypt_fresh_key_ms"] = _first_encryption_ms(value, iterations, repeat)
    return result


def _report(results: dict[str, dict[str, float]], items: int, repeat: int, iterations: int) -> str:
    lines = [
        f"alphapulse-encryption crypto core: median of {repeat} interleaved runs of "
        f"{items} items; PBKDF2 {iterations:,} iterations",
        "",
        f"{'value':<8}{'operation':<16}{'us/item':>9}{'vs raw':>9}{'batch x':>9}",
    ]
    for label, r in results.items():
        for op in ("encrypt", "decrypt"):
            lines += [
                f"{label:<8}{'raw AESGCM ' + op[:3]:<16}{r[f'raw_{op}_us']:>9.2f}",
                f"{'':<8}{'Cipher.' + op:<16}{r[f'{op}_us']:>9.2f}{r[f'{op}_vs_raw']:>8.1f}x",
                f"{'':<8}{'batch_' + op:<16}{r[f'batch_{op}_us']:>9.2f}"
                f"{r[f'batch_{op}_us'] / r[f'raw_{op}_us']:>8.1f}x"
                f"{r[f'batch_{op}_speedup']:>8.2f}x",
            ]
        lines.append(
            f"{'':<8}{'first encrypt, fresh key (PBKDF2 included)':<34}"
            f"{r['first_encrypt_fresh_key_ms']:>8.1f} ms"
        )
    lines += [
        "",
        "raw: AESGCM over the same serialised bytes, cached AESGCM object, os.urandom nonce,",
        "no AAD, no serialisation or text encoding.",
        "vs raw: Cipher cost / raw cost.  batch x: one-by-one cost / batch cost.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/benchmarks/crypto_benchmark.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--items", type=int, default=2000, help="values per run (2000)")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved runs (7)")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="PBKDF2")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.items < 1 or args.repeat < 1 or args.iterations < 1:
        parser.error("--items, --repeat and --iterations must be positive")
    results = {
        label: bench_value(value, items=args.items, repeat=args.repeat, iterations=args.iterations)
        for label, value in VALUES.items()
    }
    print(_report(results, args.items, args.repeat, args.iterations))
    if args.json:
        document = {
            "items": args.items,
            "repeat": args.repeat,
            "kdf_iterations": args.iterations,
            "python": sys.version.split()[0],
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
