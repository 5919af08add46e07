"""The ORM benchmark's set-up: what is measured, the Django settings and the three models,
their tables, the rows stored, and the machine the figures come from."""

from __future__ import annotations

import datetime
import os
import platform
import random
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "tests.benchmarks.orm_settings"
LABELS = ("plaintext", "ours", "peer")
PLAIN_FIELDS = ("symbol", "side", "status", "quantity", "traded_at")
SENSITIVE_FIELDS = ("account_number", "email", "credit_limit", "balance", "date_of_birth")
ALL_FIELDS = PLAIN_FIELDS + SENSITIVE_FIELDS
CRYPTO_CONTEXT = "benchmarks.crypto.value"
VALUE_32 = "x" * 32

# (key, label, unit): the ORM measurements, in table order.
ORM_OPERATIONS = (
    ("bulk_create", "bulk_create, all rows", "ms"),
    ("read_all", "full read, every field touched", "ms"),
    ("read_none", "full read, no encrypted field touched", "ms"),
    ("fetch_raw", "raw SQL fetch of every column, no ORM", "ms"),
    ("values_list", "values_list of one encrypted column", "ms"),
    ("lookup", "exact lookup (token vs index), per lookup", "us"),
    ("lookup_get", "exact lookup + get() of the row, per lookup", "us"),
    ("bulk_update", "bulk_update, 5 sensitive fields", "ms"),
    ("memory", "peak memory of the full read", "MiB"),
    ("table_size", "table on disk", "MiB"),
    ("index_size", "indexes on disk", "MiB"),
)
# (key, label): per-value costs, microseconds.
CRYPTO_OPERATIONS = (
    ("raw_encrypt", "raw AESGCM.encrypt (+ os.urandom nonce)"),
    ("raw_decrypt", "raw AESGCM.decrypt"),
    ("encrypt_field", "encrypt_field()"),
    ("decrypt_field", "decrypt_field()"),
    ("batch_encrypt", "batch_encrypt(), per value"),
    ("batch_decrypt", "batch_decrypt(), per value"),
    ("ours_from_db_value", "our field's from_db_value()"),
    ("peer_from_db_value", "peer field's from_db_value()"),
    ("peer_get_prep_value", "peer field's get_prep_value()"),
    ("floor_encrypt", "inline reference: urandom, AESGCM, base64"),
    ("floor_decrypt", "inline reference: base64, AESGCM, decode"),
    ("pbkdf2", "PBKDF2-HMAC-SHA256, 100,000 iterations, once"),
)
PROBES = ("key_load", "encrypt_field", "ours_row", "peer_row")


# -- Django set-up -----------------------------------------------------------------------


def setup_django() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    import django

    django.setup()


def define_models() -> dict[str, Any]:
    """The same ten fields three ways; the five sensitive ones differ."""
    from django.db import models
    from encrypted_fields import fields as peer

    from alphapulse_encryption import fields as ours

    def plain_fields() -> dict[str, Any]:
        return {
            "symbol": models.CharField(max_length=12),
            "side": models.CharField(max_length=4),
            "status": models.CharField(max_length=16),
            "quantity": models.IntegerField(),
            "traded_at": models.DateTimeField(),
        }

    sensitive: dict[str, dict[str, Any]] = {
        "plaintext": {
            "account_number": models.CharField(max_length=34, db_index=True),
            "email": models.EmailField(),
            "credit_limit": models.IntegerField(),
            "balance": models.FloatField(),
            "date_of_birth": models.DateField(),
        },
        "ours": {
            "account_number": ours.EncryptedSearchableString(max_length=34),
            "account_number_search": ours.SearchTokenIndex("account_number"),
            "email": ours.EncryptedString(max_length=254),
            "credit_limit": ours.EncryptedInteger(),
            "balance": ours.EncryptedFloat(),
            "date_of_birth": ours.EncryptedDate(),
        },
        "peer": {
            "account_number": peer.EncryptedCharField(max_length=34),
            "email": peer.EncryptedEmailField(),
            "credit_limit": peer.EncryptedIntegerField(),
            "balance": peer.EncryptedFloatField(),
            "date_of_birth": peer.EncryptedDateField(),
        },
    }
    result = {}
    for label in LABELS:
        meta = type("Meta", (), {"app_label": "benchmarks", "db_table": f"ormbench_{label}"})
        attrs = {"__module__": __name__, "Meta": meta, **plain_fields(), **sensitive[label]}
        result[label] = type(f"Bench{label.capitalize()}", (models.Model,), attrs)
    return result


def ensure_postgres_database() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    name = connection.settings_dict["NAME"]
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')


def create_tables(models: dict[str, Any]) -> None:
    from django.core.management import call_command
    from django.db import connection

    # The library's own tables (the audit log records the key load), as in a deployment.
    call_command("migrate", verbosity=0)
    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in models.values():
            if model._meta.db_table in existing:
                editor.delete_model(model)
            editor.create_model(model)


def drop_tables(models: dict[str, Any]) -> None:
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in models.values():
            editor.delete_model(model)


# -- data --------------------------------------------------------------------------------


def make_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """Realistic, distinct values; no 0.0 or '' (the peer would store them as NULL)."""
    rng = random.Random(seed)
    start = datetime.datetime(2024, 1, 2, 9, 30, tzinfo=datetime.UTC)
    return [
        {
            "symbol": rng.choice(("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "TSLA", "META")),
            "side": rng.choice(("buy", "sell")),
            "status": rng.choice(("filled", "partial", "open", "cancelled")),
            "quantity": rng.randint(1, 10_000),
            "traded_at": start + datetime.timedelta(seconds=rng.randint(0, 90 * 86_400)),
            "account_number": f"GB{rng.randint(10, 99)}APBK{i:014d}",
            "email": f"trader.{i}.{rng.randint(1000, 9999)}@example.com",
            "credit_limit": rng.randint(1, 5_000_000),
            "balance": round(rng.uniform(1.0, 2_000_000.0), 2),
            "date_of_birth": datetime.date(1950, 1, 1)
            + datetime.timedelta(days=rng.randint(0, 20_000)),
        }
        for i in range(count)
    ]


# -- the machine -------------------------------------------------------------------------


def _revision() -> str:
    """The commit measured, marked when the library's files differ from it."""
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "alphapulse_encryption"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes" if dirty else head


def machine() -> dict[str, Any]:
    from django.db import connection

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            database = f"PostgreSQL {cursor.fetchone()[0]}"
    else:
        import sqlite3

        database = f"SQLite {sqlite3.sqlite_version}"

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": version("Django"),
        "database": database,
        "cryptography": version("cryptography"),
        "psycopg": version("psycopg"),
        "django-fernet-encrypted-fields": version("django-fernet-encrypted-fields"),
        "revision": _revision(),
        "loadavg_start": list(os.getloadavg()),
    }
