"""ORM benchmark: plaintext fields vs alphapulse-encryption vs django-fernet-encrypted-fields.

    pip install -e '.[bench,postgres]'
    python tests/benchmarks/orm_benchmark.py [--rows 10000] [--repeat 5] [--json out.json]
                                             [--plot out.png] [--profile]
    python tests/benchmarks/orm_benchmark.py --from-json a.json [b.json ...] [--plot out.png]
                                             [--markdown tables.md]

``DATABASE_URL`` selects the database (default: SQLite in a temporary file), e.g.
``postgres://postgres@127.0.0.1:5432/ape_bench`` (created when missing). Three models with
the same ten fields, five of them sensitive, are measured in one process with interleaved
repetitions; the table shows medians and ratios. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import cProfile
import datetime
import gc
import json
import operator
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
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

# Issue 8 targets: (name, how to compute the measured figure, limit, "max" or "min").
TARGETS: tuple[tuple[str, Callable[[dict[str, Any]], float | None], float, str], ...] = (
    ("full read, every field: ours / plaintext", lambda r: _ratio(r, "read_all"), 1.3, "max"),
    (
        "full read, no encrypted field: ours / plaintext",
        lambda r: _ratio(r, "read_none"),
        1.05,
        "max",
    ),
    ("bulk_create: ours / plaintext", lambda r: _ratio(r, "bulk_create"), 1.15, "max"),
    ("exact lookup: token / indexed plaintext", lambda r: _ratio(r, "lookup"), 1.1, "max"),
    ("peak memory of the full read: ours / plaintext", lambda r: _ratio(r, "memory"), 1.15, "max"),
    (
        "decrypt_field / raw AESGCM.decrypt",
        lambda r: r["crypto_us"]["decrypt_field"] / r["crypto_us"]["raw_decrypt"],
        3.0,
        "max",
    ),
    (
        "batch_decrypt per value / raw AESGCM.decrypt",
        lambda r: r["crypto_us"]["batch_decrypt"] / r["crypto_us"]["raw_decrypt"],
        2.0,
        "max",
    ),
    ("full read: peer / ours", lambda r: _ratio(r, "read_all", "peer", "ours"), 5.0, "min"),
    ("bulk_create: peer / ours", lambda r: _ratio(r, "bulk_create", "peer", "ours"), 2.5, "min"),
)


def _ratio(results: dict[str, Any], op: str, num: str = "ours", den: str = "plaintext") -> float:
    figures = results["orm"][op]
    return figures[num] / figures[den]


# -- Django set-up -----------------------------------------------------------------------


def _setup_django() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    import django

    django.setup()


def _define_models() -> dict[str, Any]:
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


def _ensure_postgres_database() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    name = connection.settings_dict["NAME"]
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')


def _create_tables(models: dict[str, Any]) -> None:
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


def _drop_tables(models: dict[str, Any]) -> None:
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in models.values():
            editor.delete_model(model)


def _empty_table(model: Any) -> None:
    from django.db import connection

    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE TABLE {table} RESTART IDENTITY")
        else:
            cursor.execute(f"DELETE FROM {table}")


def _analyze(model: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


# -- data --------------------------------------------------------------------------------


def _rows(count: int, seed: int) -> list[dict[str, Any]]:
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


def _changed(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_number": row["account_number"][:-1] + "X",
        "email": "new." + row["email"],
        "credit_limit": row["credit_limit"] + 1,
        "balance": row["balance"] + 0.5,
        "date_of_birth": row["date_of_birth"] + datetime.timedelta(days=1),
    }


# -- measurements ------------------------------------------------------------------------


def _seconds(run: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _orm_round(
    models: dict[str, Any],
    order: list[str],
    rows: list[dict[str, Any]],
    lookups: list[str],
    update_rows: int,
    samples: dict[str, dict[str, list[float]]],
    found: dict[str, dict[str, int]],
) -> None:
    """One repetition of every ORM measurement, each run for every model in ``order``."""
    touch_all = operator.attrgetter(*ALL_FIELDS)
    touch_plain = operator.attrgetter(*PLAIN_FIELDS)

    def read(model: Any, touch: Callable[[Any], object]) -> None:
        for obj in model.objects.all():
            touch(obj)

    def record(op: str, label: str, value: float) -> None:
        samples[op][label].append(value)

    for label in order:
        model = models[label]
        _empty_table(model)
        objs = [model(**row) for row in rows]
        create = model.objects.bulk_create
        record("bulk_create", label, _seconds(lambda c=create, o=objs: c(o, batch_size=1000)))
        if _vendor() == "postgresql":
            _analyze(model)  # fresh statistics, as autovacuum would give a real table
        table_mib, index_mib = _storage_mib(model)
        record("table_size", label, table_mib)
        record("index_size", label, index_mib)
    for label in order:
        record("read_all", label, _seconds(lambda m=models[label]: read(m, touch_all)))
    for label in order:
        record("read_none", label, _seconds(lambda m=models[label]: read(m, touch_plain)))
    for label in order:
        record("fetch_raw", label, _seconds(lambda m=models[label]: _fetch_raw(m)))
    for label in order:
        qs = models[label].objects.values_list("email", flat=True)
        record("values_list", label, _seconds(lambda qs=qs: list(qs)))
    # Lookups alternate between the models value by value: each pair sees the same load.
    searchable = [label for label in order if label != "peer"]
    lookup_seconds = dict.fromkeys(searchable, 0.0)
    get_seconds = dict.fromkeys(searchable, 0.0)
    hits = dict.fromkeys(order, 0)
    gc.collect()
    for value in lookups:
        for label in searchable:
            manager = models[label].objects
            start = time.perf_counter()
            matched = len(manager.filter(account_number=value).values_list("pk"))
            lookup_seconds[label] += time.perf_counter() - start
            hits[label] += matched
            start = time.perf_counter()
            touch_all(manager.get(account_number=value))
            get_seconds[label] += time.perf_counter() - start
    for value in lookups:  # not timed: random Fernet tokens, so the peer's match nothing
        hits["peer"] += len(models["peer"].objects.filter(account_number=value).values_list("pk"))
    for label in searchable:
        record("lookup", label, lookup_seconds[label] / len(lookups))
        record("lookup_get", label, get_seconds[label] / len(lookups))
    found["lookup"] = hits
    for label in order:
        model = models[label]
        objs = list(model.objects.order_by("pk")[:update_rows])
        for obj, row in zip(objs, rows, strict=False):
            for name, value in _changed(row).items():
                setattr(obj, name, value)
        record(
            "bulk_update",
            label,
            _seconds(lambda m=model, o=objs: m.objects.bulk_update(o, SENSITIVE_FIELDS)),
        )
    for label in order:
        record("memory", label, _peak_memory_mib(models[label], touch_all))


def _peak_memory_mib(model: Any, touch: Callable[[Any], object]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        objs = list(model.objects.all())
        for obj in objs:
            touch(obj)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del objs
    return peak / 2**20


def _fetch_raw(model: Any) -> None:
    """What the database and driver cost for the same columns the ORM reads."""
    from django.db import connection

    columns = ", ".join(connection.ops.quote_name(f.column) for f in model._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {connection.ops.quote_name(model._meta.db_table)}")
        cursor.fetchall()


def _storage_mib(model: Any) -> tuple[float, float]:
    """Bytes on disk of the table (with TOAST) and of its indexes."""
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_table_size(%s), pg_indexes_size(%s)", [table, table])
        else:
            cursor.execute(
                "SELECT COALESCE(SUM(CASE WHEN name = %s THEN pgsize END), 0), "
                "COALESCE(SUM(CASE WHEN name != %s THEN pgsize END), 0) FROM dbstat "
                "WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name = %s)",
                [table, table, table],
            )
        table_bytes, index_bytes = cursor.fetchone()
    return table_bytes / 2**20, index_bytes / 2**20


def _padded(body: bytes) -> bytes:
    return body + b"=" * (-len(body) % 4)


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


def _crypto_round(models: dict[str, Any], items: int, samples: dict[str, list[float]]) -> None:
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
    # The floor of any Python implementation of our format: the same bytes, no calls between.
    keyring = cipher.keyring
    data_aead = keyring.data_aead(keyring.active_version, CRYPTO_CONTEXT)
    aad_tail = CRYPTO_CONTEXT.encode()
    to_standard = bytes.maketrans(b"-_", b"+/")
    header = binascii.a2b_base64(_padded(texts[0][4:].encode().translate(to_standard)))[:10]

    def floor_encrypt(value: str) -> str:
        nonce = os.urandom(12)
        sealed = data_aead.encrypt(nonce, b"s" + value.encode(), header + aad_tail)
        return "ape:" + base64.urlsafe_b64encode(header + nonce + sealed).rstrip(b"=").decode()

    def floor_decrypt(text: str) -> str:
        raw = binascii.a2b_base64(_padded(text[4:].encode().translate(to_standard)))
        return data_aead.decrypt(raw[10:22], raw[22:], raw[:10] + aad_tail)[1:].decode()

    assert (
        floor_decrypt(texts[0])
        == VALUE_32
        == decrypt_field(floor_encrypt(VALUE_32), CRYPTO_CONTEXT)
    )
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
        samples[name].append(_seconds(run) / items * 1e6)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"benchmark", iterations=100_000)
    samples["pbkdf2"].append(_seconds(lambda: kdf.derive(os.urandom(32))) * 1e6)


def _pool_round(
    models: dict[str, Any], lookups: list[str], samples: dict[str, list[float]]
) -> None:
    """Short requests (open, one token lookup, close), in milliseconds per request: a new
    connection each time (CONN_MAX_AGE=0), psycopg's pool, and one persistent connection."""
    from django.db import connections

    model = models["ours"]
    ways = (("new_connection", "default", True), ("pool", "pooled", True))
    ways += (("persistent", "default", False),)
    for name, alias, close in ways:

        def requests(alias: str = alias, close: bool = close) -> None:
            for value in lookups:
                list(model.objects.using(alias).filter(account_number=value).values_list("pk"))
                if close:
                    connections[alias].close()  # what request_finished does with CONN_MAX_AGE=0

        samples[name].append(_seconds(requests) / len(lookups) * 1e3)
    connections["default"].close()


def _probe(kind: str) -> dict[str, float]:
    """Runs in a fresh process: the first encryption, key loading and PBKDF2 included."""
    _setup_django()
    models = _define_models()
    from django.db import connection

    from alphapulse_encryption import encrypt_field
    from alphapulse_encryption.keys import current_keyring

    connection.ensure_connection()  # a request would have it open already
    row = _rows(1, seed=1)[0]
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

    first = _seconds(run)
    again = _seconds(run)
    return {"first_ms": first * 1e3, "again_ms": again * 1e3}


def _fresh_process_round(samples: dict[str, list[float]], env: dict[str, str]) -> None:
    for kind in PROBES:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--probe", kind],
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


def _profile_full_read(model: Any, top: int = 15) -> dict[str, Any]:
    """cProfile one full read (every field touched): own time by area and the top functions."""
    touch_all = operator.attrgetter(*ALL_FIELDS)
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    for obj in model.objects.all():
        touch_all(obj)
    profiler.disable()
    entries = []
    areas: dict[str, float] = {}
    decrypt_path_ms = 0.0
    for (filename, line, func), (_cc, ncalls, own, cumulative, _) in pstats.Stats(
        profiler
    ).stats.items():  # type: ignore[attr-defined]
        if "alphapulse_encryption" in filename:
            area = "alphapulse_encryption (Python)"
        elif "django" in filename:
            area = "Django (Python)"
        elif filename == "~":
            area = "C: " + ("AESGCM" if "AESGCM" in func else "builtins, driver")
        else:
            area = "other Python (stdlib)"
        areas[area] = areas.get(area, 0.0) + own * 1e3
        # The field's entry points into decryption: a batch of lazily loaded values, or one
        # value (values_list, annotations).
        if func in ("open_many", "from_db_value") and "fields" in Path(filename).parts:
            decrypt_path_ms += cumulative * 1e3
        where = f"{Path(filename).name}:{line}" if line else filename
        entries.append(
            {
                "function": f"{func} ({where})",
                "ncalls": ncalls,
                "tottime_ms": own * 1e3,
                "cumtime_ms": cumulative * 1e3,
            }
        )
    entries.sort(key=operator.itemgetter("tottime_ms"), reverse=True)
    total = sum(areas.values())
    return {
        "total_ms": total,
        "decryption_cumulative_ms": decrypt_path_ms,
        "areas_ms": dict(sorted(areas.items(), key=operator.itemgetter(1), reverse=True)),
        "top": [{**e, "share": e["tottime_ms"] / total} for e in entries[:top]],
    }


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


def _machine() -> dict[str, Any]:
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("ORM_BENCHMARK_MASTER_KEY", _random_key())
    workdir = tempfile.mkdtemp(prefix="orm_benchmark_")
    env.setdefault("ORM_BENCHMARK_SQLITE", str(Path(workdir) / "bench.sqlite3"))
    os.environ.update(env)
    _setup_django()
    _ensure_postgres_database()
    models = _define_models()
    from django.db import connection, connections

    from alphapulse_encryption.keys import current_cipher
    from tests.benchmarks.crypto_benchmark import bench_value

    _create_tables(models)
    current_cipher().encrypt(VALUE_32, CRYPTO_CONTEXT)  # load keys outside every timing
    machine = _machine()
    rows = _rows(args.rows, seed=args.seed)
    # Rows that bulk_update leaves alone, so the pooling requests still find theirs.
    pool_of_rows = (
        rows[args.update_rows :] if args.rows - args.update_rows >= args.lookups else rows
    )
    sample = random.Random(args.seed).sample(pool_of_rows, args.lookups)
    lookups = [row["account_number"] for row in sample]
    orm: dict[str, dict[str, list[float]]] = {
        op: {lb: [] for lb in LABELS} for op, _, _ in ORM_OPERATIONS
    }
    found: dict[str, dict[str, int]] = {"lookup": {}}
    crypto: dict[str, list[float]] = {name: [] for name, _ in CRYPTO_OPERATIONS}
    fresh: dict[str, list[float]] = {
        f"{kind}_{what}": [] for kind in PROBES for what in ("first_ms", "again_ms", "process_ms")
    }
    pooled = connection.vendor == "postgresql" and not args.no_pool
    pool: dict[str, list[float]] = {"new_connection": [], "pool": [], "persistent": []}
    try:
        for rep in range(args.repeat):
            # Rotate the order too, so no model always runs first (cold caches) or last.
            order = list(LABELS[rep % 3 :] + LABELS[: rep % 3])
            print(f"repetition {rep + 1}/{args.repeat} ({', '.join(order)})", file=sys.stderr)
            _orm_round(models, order, rows, lookups, args.update_rows, orm, found)
            _crypto_round(models, args.items, crypto)
            if pooled:
                _pool_round(models, lookups, pool)
            if not args.no_fresh_process:
                _fresh_process_round(fresh, env)
        profile = _profile_full_read(models["ours"]) if args.profile else None
        core = bench_value(VALUE_32, items=args.items, repeat=args.repeat, iterations=100_000)
    finally:
        _drop_tables(models)
        if pooled:
            connections["pooled"].close_pool()
        connections.close_all()
        shutil.rmtree(workdir, ignore_errors=True)
    machine["loadavg_end"] = list(os.getloadavg())

    def medians(samples: dict[str, list[float]]) -> dict[str, float]:
        return {name: statistics.median(s) for name, s in samples.items() if s}

    results: dict[str, Any] = {
        "benchmark": "tests/benchmarks/orm_benchmark.py",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "parameters": {
            "rows": args.rows,
            "repeat": args.repeat,
            "lookups": args.lookups,
            "update_rows": args.update_rows,
            "crypto_items": args.items,
            "seed": args.seed,
        },
        "orm": {
            op: {lb: _scaled(op, statistics.median(s)) for lb, s in by_label.items() if s}
            for op, by_label in orm.items()
        },
        "orm_samples": {
            op: {lb: [_scaled(op, v) for v in s] for lb, s in by_label.items()}
            for op, by_label in orm.items()
        },
        "lookup_rows_found": found["lookup"],
        "crypto_us": medians(crypto),
        "crypto_core": core,
        "fresh_process": medians(fresh),
        "pool_ms_per_request": medians(pool),
        "profile_full_read_ours": profile,
    }
    results["targets"] = _evaluate_targets(results)
    return results


def _random_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _scaled(op: str, seconds_or_mib: float) -> float:
    """Seconds to the unit shown (ms, or us for per-lookup figures); MiB stays."""
    unit = {op: unit for op, _, unit in ORM_OPERATIONS}[op]
    return seconds_or_mib * {"ms": 1e3, "us": 1e6, "MiB": 1.0}[unit]


def _evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    evaluated = []
    for name, measure, limit, kind in TARGETS:
        try:
            value = measure(results)
        except (KeyError, ZeroDivisionError):
            value = None
        met = None if value is None else (value <= limit if kind == "max" else value >= limit)
        evaluated.append(
            {"target": name, "limit": limit, "kind": kind, "measured": value, "met": met}
        )
    return evaluated


# -- report ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    p = results["parameters"]
    lines = [
        f"ORM benchmark on {m['database']}: {p['rows']:,} rows, median of {p['repeat']} "
        f"interleaved repetitions ({results['date']})",
        f"revision {m.get('revision', 'unknown')}; "
        f"{m['nproc']} CPU(s) {m['cpu']}; Python {m['python']}, Django {m['django']}, "
        f"cryptography {m['cryptography']}, django-fernet-encrypted-fields "
        f"{m['django-fernet-encrypted-fields']}; load average {m['loadavg_start'][0]:.2f} "
        f"at start, {m['loadavg_end'][0]:.2f} at end",
        "",
        f"{'measurement':<46}{'unit':>5}{'plaintext':>11}{'ours':>10}{'peer':>10}"
        f"{'ours/pt':>9}{'peer/pt':>9}{'peer/ours':>10}",
    ]
    for op, label, unit in ORM_OPERATIONS:
        f = results["orm"].get(op, {})
        plain, ours, peer = f.get("plaintext"), f.get("ours"), f.get("peer")
        digits = 0 if unit == "us" else 1

        def ratio(a: float | None, b: float | None) -> str:
            return "-" if a is None or b is None else f"{a / b:.2f}x"

        lines.append(
            f"{label:<46}{unit:>5}{_fmt(plain, digits):>11}{_fmt(ours, digits):>10}"
            f"{_fmt(peer, digits):>10}{ratio(ours, plain):>9}{ratio(peer, plain):>9}"
            f"{ratio(peer, ours):>10}"
        )
    found = results.get("lookup_rows_found", {})
    if found:
        lines.append(
            f"  rows found by {p['lookups']} lookups: "
            + ", ".join(f"{lb} {n}" for lb, n in found.items())
            + " (the peer's lookups silently match nothing)"
        )
    c = results["crypto_us"]
    raw = {"encrypt": c["raw_encrypt"], "decrypt": c["raw_decrypt"]}
    lines += ["", f"{'per value, 32-byte string':<46}{'us':>9}{'vs raw':>9}"]
    for key, label in CRYPTO_OPERATIONS:
        if key not in c:
            continue
        if key == "pbkdf2":
            lines.append(f"{label:<46}{c[key] / 1e3:>9.2f} ms")
            continue
        base = raw["encrypt"] if "encrypt" in key or "prep" in key else raw["decrypt"]
        lines.append(f"{label:<46}{c[key]:>9.2f}{c[key] / base:>8.1f}x")
    fresh = results.get("fresh_process") or {}
    if fresh:
        lines += ["", "first encryption in a fresh process (key load and PBKDF2 included):"]
        names = {
            "key_load": "key load alone (settings, audit entry)",
            "encrypt_field": "encrypt_field(), first call",
            "ours_row": "one row of ours, 5 fields",
            "peer_row": "one row of the peer, 5 fields",
        }
        for kind, label in names.items():
            if f"{kind}_first_ms" not in fresh:
                continue
            lines.append(
                f"  {label:<44}{fresh[f'{kind}_first_ms']:>8.1f} ms first, "
                f"{fresh[f'{kind}_again_ms']:.3f} ms again; process "
                f"{fresh[f'{kind}_process_ms']:.0f} ms"
            )
    pool = results.get("pool_ms_per_request") or {}
    if pool:
        lines += [
            "",
            "short request (one token lookup), ms per request: "
            + ", ".join(f"{name.replace('_', ' ')} {v:.2f}" for name, v in pool.items())
            + f"; pool saves {pool['new_connection'] / pool['pool']:.1f}x",
        ]
    lines += ["", "targets (issue 8):"]
    for t in results["targets"]:
        sign = "<=" if t["kind"] == "max" else ">="
        status = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        lines.append(
            f"  {t['target']:<52}{sign} {t['limit']:<5} measured {_fmt(t['measured'], 2):>7}"
            f"  {status}"
        )
    profile = results.get("profile_full_read_ours")
    if profile:
        total = profile["total_ms"]
        decryption = profile.get("decryption_cumulative_ms", 0.0)
        lines += [
            "",
            f"cProfile of one full read of ours: {total:.0f} ms under the profiler; "
            f"decryption (the field's open_many/from_db_value) {decryption:.0f} ms "
            f"({decryption / total:.0%}) cumulative",
            "  own time by area: "
            + ", ".join(f"{a} {ms:.0f} ms" for a, ms in profile["areas_ms"].items()),
            "  top functions by own time:",
        ]
        for e in profile["top"]:
            lines.append(
                f"  {e['tottime_ms']:>8.1f} ms {e['share']:>5.0%} {e['ncalls']:>8} {e['function']}"
            )
    return "\n".join(lines)


def markdown(all_results: list[dict[str, Any]]) -> str:
    """The tables of docs/performance.md: ORM figures per database, targets side by side."""
    out: list[str] = []
    for results in all_results:
        m, p = results["machine"], results["parameters"]
        out += [
            f"**{m['database']}**, {p['rows']:,} rows, median of {p['repeat']} "
            f"(revision {m.get('revision', 'unknown')}, {results['date']}):",
            "",
            "| measurement | unit | plaintext | ours | peer | ours / plaintext "
            "| peer / plaintext | peer / ours |",
            "|---|---|--:|--:|--:|--:|--:|--:|",
        ]
        for op, label, unit in ORM_OPERATIONS:
            f = results["orm"].get(op, {})
            plain, ours, peer = f.get("plaintext"), f.get("ours"), f.get("peer")
            digits = 0 if unit == "us" else 1

            def ratio(a: float | None, b: float | None) -> str:
                return "n/a" if not a or not b else f"{a / b:.2f}x"

            out.append(
                f"| {label} | {unit.replace('us', 'µs')} | {_fmt(plain, digits)} "
                f"| {_fmt(ours, digits)} | {_fmt(peer, digits) if peer is not None else 'n/a'} "
                f"| **{ratio(ours, plain)}** | {ratio(peer, plain)} | {ratio(peer, ours)} |"
            )
        out.append("")
    out += [
        "| target (issue 8) | limit | "
        + " | ".join(r["machine"]["database"].split(" (")[0] for r in all_results)
        + " |",
        "|---|--:|" + "--:|" * len(all_results),
    ]
    for index, (name, _, limit, kind) in enumerate(TARGETS):
        cells = []
        for results in all_results:
            t = results["targets"][index]
            if t["measured"] is None:
                cells.append("not measured")
                continue
            if t["met"]:
                cells.append(f"{t['measured']:.2f}x met")
                continue
            off = t["measured"] / limit if kind == "max" else limit / t["measured"]
            cells.append(f"{t['measured']:.2f}x **not met** ({off:.1f}x off)")
        sign = "≤" if kind == "max" else "≥"
        out.append(f"| {name} | {sign} {limit}x | " + " | ".join(cells) + " |")
    dbs = " | ".join(r["machine"]["database"].split(" (")[0] for r in all_results)
    out += [
        "",
        f"| per value, 32-byte string (µs; x raw) | {dbs} |",
        "|---|" + "--:|" * len(all_results),
    ]
    for key, label in CRYPTO_OPERATIONS:
        cells = []
        for results in all_results:
            c = results["crypto_us"]
            if key not in c:
                cells.append("-")
            elif key == "pbkdf2":
                cells.append(f"{c[key] / 1e3:.1f} ms")
            else:
                base = c["raw_encrypt" if "encrypt" in key or "prep" in key else "raw_decrypt"]
                cells.append(f"{c[key]:.2f} ({c[key] / base:.1f}x)")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += [
        "",
        f"| fresh process: first call, ms (again, ms) | {dbs} |",
        "|---|" + "--:|" * len(all_results),
    ]
    for kind, label in (
        ("key_load", "key load alone (settings read, audit entry written)"),
        ("encrypt_field", "first encrypt_field() (key load, PBKDF2, HKDF)"),
        ("ours_row", "first row of ours, 5 fields"),
        ("peer_row", "first row of the peer, 5 fields"),
    ):
        cells = []
        for results in all_results:
            f = results.get("fresh_process") or {}
            first, again = f.get(f"{kind}_first_ms"), f.get(f"{kind}_again_ms")
            cells.append("-" if first is None else f"{first:.1f} ({again:.2f})")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    for results in all_results:
        pool = results.get("pool_ms_per_request")
        if pool:
            out += [
                "",
                f"Short requests on {results['machine']['database'].split(' (')[0]} (one token "
                "lookup each), ms per request: a new connection per request "
                f"**{pool['new_connection']:.2f}**, psycopg pool **{pool['pool']:.2f}**, "
                f"one persistent connection {pool['persistent']:.2f}.",
            ]
    return "\n".join(out)


def plot(all_results: Iterable[dict[str, Any]], path: str) -> None:
    """Ratios to plaintext per operation, one panel per database."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[bench]'") from None
    all_results = list(all_results)
    targets = {"read_all": 1.3, "read_none": 1.05, "bulk_create": 1.15, "lookup": 1.1}
    targets["memory"] = 1.15
    names = {"ours": "alphapulse-encryption", "peer": "django-fernet-encrypted-fields"}
    colors = {"ours": "#1f77b4", "peer": "#d62728"}
    fig, axes = plt.subplots(
        1, len(all_results), figsize=(5.2 * len(all_results) + 2.2, 5.0), squeeze=False
    )
    for index, (ax, results) in enumerate(zip(axes[0], all_results, strict=True)):
        ops = [
            (op, label)
            for op, label, _ in ORM_OPERATIONS
            if op in results["orm"] and not op.endswith("_size")
        ]
        top = 1.0
        for offset, lb in enumerate(("ours", "peer")):
            ys = [y + (offset - 0.5) * 0.38 for y in range(len(ops))]
            ratios = [
                results["orm"][op][lb] / results["orm"][op]["plaintext"]
                if lb in results["orm"][op]
                else None
                for op, _ in ops
            ]
            top = max([top, *(r for r in ratios if r)])
            bars = ax.barh(
                ys,
                [r or 0.0 for r in ratios],
                height=0.38,
                left=0.0,
                color=colors[lb],
            )
            ax.bar_label(bars, labels=[f"{r:.2f}x" if r else "" for r in ratios], fontsize=7)
            for y, r in zip(ys, ratios, strict=True):
                if r is None:
                    ax.text(1.02, y, "n/a (lookups match nothing)", va="center", fontsize=7)
        for y, (op, _) in enumerate(ops):
            if op in targets:
                ax.plot([targets[op]] * 2, [y - 0.45, y + 0.02], color="black", linewidth=2)
        ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        ax.set_xlim(0.8, top * 2.0)
        ax.set_yticks(range(len(ops)), [label for _, label in ops] if index == 0 else [])
        ax.tick_params(axis="y", labelsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("ratio to the plaintext model (log scale)", fontsize=8)
        m, p = results["machine"], results["parameters"]
        ax.set_title(f"{m['database']}, {p['rows']:,} rows, median of {p['repeat']}", fontsize=9)
    handles = [Patch(color=colors[lb], label=names[lb]) for lb in ("ours", "peer")]
    handles.append(Line2D([], [], color="black", linewidth=2, label="issue 8 target (ours)"))
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows per model (10000)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repetitions (5)")
    parser.add_argument("--lookups", type=int, default=500, help="exact lookups per sample (500)")
    parser.add_argument("--update-rows", type=int, default=1000, help="rows bulk_updated (1000)")
    parser.add_argument("--items", type=int, default=5000, help="values per crypto sample (5000)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="draw the ratios (needs matplotlib)")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    parser.add_argument("--profile", action="store_true", help="cProfile one full read of ours")
    parser.add_argument("--no-fresh-process", action="store_true", help="skip the probes")
    parser.add_argument("--no-pool", action="store_true", help="skip the pooling measurement")
    parser.add_argument(
        "--from-json", nargs="+", metavar="PATH", help="report and plot saved results instead"
    )
    parser.add_argument("--probe", choices=PROBES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(_probe(args.probe)))
        return 0
    if args.from_json:
        all_results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.from_json]
    else:
        if min(args.rows, args.repeat, args.lookups, args.update_rows, args.items) < 1:
            parser.error("counts must be positive")
        if args.lookups > args.rows or args.update_rows > args.rows:
            parser.error("--lookups and --update-rows cannot exceed --rows")
        all_results = [run(args)]
        if args.json:
            Path(args.json).write_text(
                json.dumps(all_results[0], indent=2) + "\n", encoding="utf-8"
            )
    for results in all_results:
        print(report(results))
        print()
    if args.markdown:
        Path(args.markdown).write_text(markdown(all_results) + "\n", encoding="utf-8")
    if args.plot:
        plot(all_results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
