"""Write ``v1.json``: values encrypted by this release, which every later release must read.

Run once, from the repository root::

    python tests/crypto/golden/make_golden.py            # refuses to overwrite v1.json
    python tests/crypto/golden/make_golden.py --force    # only if the format is unreleased
    python tests/crypto/golden/make_golden.py --markdown # print the docs/format.md vectors

Entries are written by the library itself (random nonces). The fixed-nonce ``vectors``
are computed here from the specification with bare primitives (hashlib, HKDF, AESGCM),
not by the library, so they check the library against the documented format.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import decimal
import hashlib
import hmac
import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from alphapulse_encryption import __version__
from alphapulse_encryption.crypto import Cipher, Keyring

GOLDEN = Path(__file__).with_name("v1.json")

# Test keys only: they are published in this repository.
KEYS = {1: bytes(range(32)), 2: bytes(range(32, 64))}
ITERATIONS = 100_000

TZ_IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
TZ_NEG = datetime.timezone(datetime.timedelta(hours=-4))

# (name, context, value, options); options: pad_to, as_json, searchable, normalizer,
# kdf_iterations. Each case is written under key version 1 and under key version 2.
CASES: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("str", "users.customer.email", "alice@example.com", {}),
    ("str-empty", "users.customer.nickname", "", {}),
    ("str-unicode", "users.customer.name", "Zoë Ünïcødé ✓ 名前 🙂", {}),
    ("int", "trading.position.quantity", 1_234_567_890, {}),
    ("int-zero", "trading.position.quantity", 0, {}),
    ("int-big-negative", "trading.account.exposure", -(2**127) - 12_345, {}),
    ("float", "trading.trade.price", 187.42, {}),
    ("float-tiny-negative", "risk.metric.var", -1.5e-300, {}),
    ("bool-true", "users.profile.sms_alerts", True, {}),
    ("bool-false", "users.profile.sms_alerts", False, {}),
    ("decimal", "trading.account.balance", decimal.Decimal("-1234567.890123456789"), {}),
    ("decimal-trailing-zero", "trading.account.balance", decimal.Decimal("0.10"), {}),
    ("date", "users.customer.date_of_birth", datetime.date(1987, 6, 5), {}),
    (
        "datetime-naive",
        "trading.trade.executed_at",
        datetime.datetime(2026, 11, 29, 3, 4, 5, 123_456),
        {},
    ),
    (
        "datetime-aware",
        "trading.trade.executed_at",
        datetime.datetime(2026, 11, 29, 3, 4, 5, 123_456, tzinfo=TZ_IST),
        {},
    ),
    (
        "datetime-aware-negative-offset",
        "trading.trade.settled_at",
        datetime.datetime(2026, 1, 2, 3, 4, tzinfo=TZ_NEG),
        {},
    ),
    (
        "dict",
        "trading.trade.details",
        {
            "symbol": "AAPL",
            "qty": 100,
            "price": 187.42,
            "filled": True,
            "note": None,
            "legs": [{"side": "buy", "venue": "XNAS"}],
            "clé": "välue",
        },
        {},
    ),
    ("dict-empty", "trading.trade.details", {}, {}),
    ("list", "users.profile.notification_channels", [1, "2", 3.5, False, None, ["x"]], {}),
    ("bytes", "users.api_credential.secret", b"\x00\x01\xfe\xffapi-secret", {}),
    ("bytes-empty", "users.api_credential.secret", b"", {}),
    ("str-as-json", "trading.trade.details", "5", {"as_json": True}),
    ("padded-str", "users.customer.phone", "+44 20 7946 0958", {"pad_to": 32}),
    ("padded-int", "trading.account.balance_cents", 42, {"pad_to": 16}),
    ("padded-exact-block", "users.customer.phone", "x" * 15, {"pad_to": 16}),
    ("searchable", "users.customer.email", "alice@example.com", {"searchable": True}),
    (
        "searchable-normalised",
        "users.customer.email",
        "  Alice@Example.COM ",
        {"searchable": True, "normalizer": "strip_lower"},
    ),
    ("iterations-120000", "default", "written at 120,000 iterations", {"kdf_iterations": 120_000}),
]

NORMALIZERS: dict[str, Callable[[Any], Any]] = {"strip_lower": lambda v: v.strip().lower()}


def encode_typed(value: Any) -> dict[str, Any]:
    """A JSON-safe ``{"type", "value"}`` form that keeps the Python type exactly."""
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value.hex()}
    if isinstance(value, decimal.Decimal):
        return {"type": "Decimal", "value": str(value)}
    if isinstance(value, datetime.datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, dict | list):
        return {"type": type(value).__name__, "value": value}
    if isinstance(value, bytes):
        return {"type": "bytes", "value": value.hex()}
    raise TypeError(type(value).__name__)


def make_entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for version in sorted(KEYS):
        keys = {v: k for v, k in KEYS.items() if v <= version}
        for name, context, value, options in CASES:
            keyring = Keyring(
                keys,
                version,
                kdf_iterations=options.get("kdf_iterations", ITERATIONS),
                pad_to=options.get("pad_to"),
            )
            cipher = Cipher(keyring)
            normalizer = NORMALIZERS.get(options.get("normalizer", ""))
            as_json = options.get("as_json", False)
            if options.get("searchable"):
                stored = cipher.encrypt_searchable(
                    value, context, normalizer=normalizer, as_json=as_json
                )
            else:
                stored = cipher.encrypt(value, context, as_json=as_json)
            entries.append(
                {
                    "name": f"v{version}/{name}",
                    "key_version": version,
                    "context": context,
                    "options": options,
                    "expected": encode_typed(value),
                    "stored": stored,
                }
            )
    return entries


# -- fixed-nonce vectors, from the specification (docs/format.md) -----------------------

VECTOR_CONTEXT = "users.customer.email"


def _spec_root(master: bytes, version: int, iterations: int) -> bytes:
    salt = b"alphapulse-encryption/root/v%d" % version
    return hashlib.pbkdf2_hmac("sha256", master, salt, iterations, 32)


def _spec_subkey(root: bytes, purpose: bytes, context: str) -> bytes:
    info = b"alphapulse-encryption/" + purpose + b"\x00" + context.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)


def _spec_serialize(value: Any) -> bytes:
    if isinstance(value, str):
        return b"s" + value.encode("utf-8")
    if isinstance(value, int):
        return b"i" + str(value).encode("ascii")
    return b"j" + json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _spec_pad(data: bytes, block: int) -> bytes:
    padded_len = (len(data) // block + 1) * block
    return data + b"\x80" + b"\x00" * (padded_len - len(data) - 1)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_vectors() -> dict[str, Any]:
    master, version = KEYS[1], 1
    root = _spec_root(master, version, ITERATIONS)
    data_key = _spec_subkey(root, b"data", VECTOR_CONTEXT)
    search_key = _spec_subkey(root, b"search", VECTOR_CONTEXT)
    aead = AESGCM(data_key)
    cases: list[tuple[str, Any, int | None]] = [
        ("str", "alice@example.com", None),
        ("int", -1_234_567_890_123, None),
        ("json", {"symbol": "AAPL", "qty": 100, "price": "187.42"}, None),
        ("padded-str", "alice@example.com", 32),
    ]
    envelopes: list[dict[str, Any]] = []
    for i, (name, value, pad_to) in enumerate(cases):
        nonce = bytes((16 * i + j) % 256 for j in range(12))  # a distinct nonce per vector
        flags = 1 if pad_to else 0
        header = struct.pack(">BBII", 1, flags, version, ITERATIONS)
        plaintext = _spec_serialize(value)
        sealed_input = _spec_pad(plaintext, pad_to) if pad_to else plaintext
        aad = header + VECTOR_CONTEXT.encode("utf-8")
        sealed = aead.encrypt(nonce, sealed_input, aad)
        envelopes.append(
            {
                "name": name,
                "expected": encode_typed(value),
                "pad_to": pad_to,
                "plaintext_hex": plaintext.hex(),
                "padded_plaintext_hex": sealed_input.hex() if pad_to else None,
                "header_hex": header.hex(),
                "nonce_hex": nonce.hex(),
                "aad_hex": aad.hex(),
                "ciphertext_hex": sealed[:-16].hex(),
                "tag_hex": sealed[-16:].hex(),
                "text": "ape:" + _b64url(header + nonce + sealed),
            }
        )
    token_value = "alice@example.com"
    mac = hmac.new(search_key, _spec_serialize(token_value), hashlib.sha256)
    token = f"apt1{version:08x}{mac.hexdigest()}"
    return {
        "master_key_hex": master.hex(),
        "key_version": version,
        "kdf_iterations": ITERATIONS,
        "context": VECTOR_CONTEXT,
        "root_salt": (b"alphapulse-encryption/root/v%d" % version).decode("ascii"),
        "root_key_hex": root.hex(),
        "data_key_hex": data_key.hex(),
        "search_key_hex": search_key.hex(),
        "envelopes": envelopes,
        "search": {
            "expected": encode_typed(token_value),
            "token": token,
            "stored": token + envelopes[0]["text"],
        },
    }


def markdown(vectors: dict[str, Any]) -> str:
    """The test-vector section of docs/format.md, generated from the golden file."""
    lines = [
        f"- master key (hex): `{vectors['master_key_hex']}`",
        f"- key version: {vectors['key_version']}, KDF iterations: {vectors['kdf_iterations']:,}",
        f"- PBKDF2 salt: `{vectors['root_salt']}`",
        f"- root key: `{vectors['root_key_hex']}`",
        f"- context: `{vectors['context']}`",
        f"- data subkey: `{vectors['data_key_hex']}`",
        f"- search subkey: `{vectors['search_key_hex']}`",
        "",
    ]
    for env in vectors["envelopes"]:
        typed = env["expected"]
        shown = typed["value"] if typed["type"] == "int" else json.dumps(typed["value"])
        lines += [
            f"#### `{env['name']}`: {typed['type']} `{shown}`"
            + (f", padded to {env['pad_to']}" if env["pad_to"] else ""),
            "",
            "```text",
            f"plaintext  {env['plaintext_hex']}",
        ]
        if env["padded_plaintext_hex"]:
            lines.append(f"padded     {env['padded_plaintext_hex']}")
        lines += [
            f"header     {env['header_hex']}",
            f"nonce      {env['nonce_hex']}",
            f"aad        {env['aad_hex']}",
            f"ciphertext {env['ciphertext_hex']}",
            f"tag        {env['tag_hex']}",
            "```",
            "",
            "```text",
            env["text"],
            "```",
            "",
        ]
    search = vectors["search"]
    lines += [
        f"#### Search token and searchable stored form of `{search['expected']['value']}`",
        "",
        "```text",
        search["token"],
        "```",
        "",
        "```text",
        search["stored"],
        "```",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite an existing v1.json")
    parser.add_argument(
        "--markdown", action="store_true", help="print the vectors of v1.json as markdown"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(GOLDEN.read_text(encoding="utf-8"))["vectors"]))
        return 0
    if GOLDEN.exists() and not args.force:
        print(
            f"{GOLDEN} exists; values written by a released version must never change. "
            "Use --force only if this format version was never released.",
            file=sys.stderr,
        )
        return 1
    document: dict[str, Any] = {
        "description": (
            "Golden values of envelope format 1, written by alphapulse-encryption "
            f"{__version__}. Every later release must decrypt them. Test keys only."
        ),
        "written_by": __version__,
        "format_version": 1,
        "keys_hex": {str(v): k.hex() for v, k in KEYS.items()},
        "kdf_iterations": ITERATIONS,
        "typed_encoding": (
            "expected = {type, value}: str/bool as is, dict/list as JSON, int and Decimal as "
            "decimal strings, float as float.hex(), date/datetime as isoformat(), bytes as hex"
        ),
        "entries": make_entries(),
        "vectors": make_vectors(),
    }
    GOLDEN.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({len(document['entries'])} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
