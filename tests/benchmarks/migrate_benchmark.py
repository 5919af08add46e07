"""Benchmark of ``encrypt_migrate --migrate-data`` (and ``--verify``): rows/s, peak memory.

    python tests/benchmarks/migrate_benchmark.py [--rows 100000] [--batch-size 1000]
        [--write default|case|per-row] [--workers 1] [--tracemalloc]

``DATABASE_URL`` selects the database (default: the local PostgreSQL,
``postgres://postgres@127.0.0.1:5432/ape_mig``); the run uses its own scratch database
``ape_migrate_benchmark``, created and dropped by Django's test-database machinery. The
table has two plaintext columns (an e-mail and an integer kept as text) migrated to an
``EncryptedSearchableString`` with a ``SearchTokenIndex`` and an ``EncryptedInteger``.
Peak memory is the process's maximum resident set size (``getrusage``), before seeding
and after each step, so a growth with the row count would show; ``--tracemalloc`` adds
the Python heap peak (and slows the run down). ``--write`` compares the ways of storing a
batch (default: the engine's choice for the database); ``--workers`` runs that many
``--migrate-data`` processes at once. Figures: docs/migration.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TABLE = "ape_migrate_benchmark"


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ape_mig")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()


def _benchmark_model() -> Any:
    from django.db import models

    from alphapulse_encryption.fields import (
        EncryptedInteger,
        EncryptedSearchableString,
        SearchTokenIndex,
    )

    class MigrateBenchmarkRow(models.Model):
        name = models.CharField(max_length=100)
        email = models.CharField(max_length=254, null=True)
        balance = models.CharField(max_length=20, null=True)
        email_encrypted = EncryptedSearchableString(
            null=True, normalize="lower", migrate_from="email"
        )
        email_encrypted_search = SearchTokenIndex("email_encrypted")
        balance_encrypted = EncryptedInteger(null=True, migrate_from="balance")

        class Meta:
            app_label = "testapp"
            db_table = TABLE

    return MigrateBenchmarkRow


def _seed(rows: int) -> None:
    from django.db import connection

    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {qn(TABLE)} (name, email, balance) "
                "SELECT 'client ' || i, 'Client' || i || '@Example.com', (i * 7 - 3)::text "
                "FROM generate_series(1, %s) AS i",
                [rows],
            )
            cursor.execute(f"ANALYZE {qn(TABLE)}")
            return
        chunk = 10_000
        for start in range(1, rows + 1, chunk):
            values = [
                (f"client {i}", f"Client{i}@Example.com", str(i * 7 - 3))
                for i in range(start, min(start + chunk, rows + 1))
            ]
            cursor.executemany(
                f"INSERT INTO {qn(TABLE)} (name, email, balance) VALUES (%s, %s, %s)",
                values,
            )


def _per_row_write(pair: Any, encrypted: list[tuple[Any, str]], connection: Any) -> int:
    """The alternative to the engine's UPDATE ... CASE: one UPDATE per row (executemany)."""
    if not encrypted:
        return 0
    qn = connection.ops.quote_name
    pk_field = pair.model._meta.pk
    sql = (
        f"UPDATE {qn(pair.table)} SET {qn(pair.column)} = %s "
        f"WHERE {qn(pk_field.column)} = %s AND {qn(pair.column)} IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            sql, [(stored, pk_field.get_db_prep_value(pk, connection)) for pk, stored in encrypted]
        )
    return len(encrypted)


def _worker(table: str, batch_size: int, write: str) -> None:
    from django.db import connections

    from alphapulse_encryption.migration import data

    connections.close_all()  # never share the parent's connection across fork()
    _choose_write(write)
    data.migrate_data(table, batch_size=batch_size)
    connections.close_all()


def _choose_write(write: str) -> None:
    from alphapulse_encryption.migration import data

    if write == "case":
        data._write = data._write_case  # type: ignore[assignment]
    elif write == "per-row":
        data._write = _per_row_write  # type: ignore[assignment]


def _migrate_with_workers(workers: int, batch_size: int, write: str) -> None:
    import multiprocessing

    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_worker, args=(TABLE, batch_size, write)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a worker failed with exit code {process.exitcode}")


def _max_rss_mib() -> float:
    # Linux reports kilobytes, macOS bytes.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--write", choices=["default", "case", "per-row"], default="default")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()

    _setup_django()
    from django.db import connection

    from alphapulse_encryption.migration import data
    from alphapulse_encryption.migration.verify import verify

    database_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = TABLE
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        model = _benchmark_model()
        with connection.schema_editor() as editor:
            editor.create_model(model)
        _choose_write(args.write)

        rss_start = _max_rss_mib()
        started = time.perf_counter()
        _seed(args.rows)
        seeded = time.perf_counter() - started
        rss_seeded = _max_rss_mib()

        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        if args.workers > 1:
            _migrate_with_workers(args.workers, args.batch_size, args.write)
        else:
            data.migrate_data(TABLE, batch_size=args.batch_size)
        migrated = time.perf_counter() - started
        heap_peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
        if args.tracemalloc:
            tracemalloc.stop()
        rss_migrated = _max_rss_mib()

        started = time.perf_counter()
        report = verify(TABLE, batch_size=args.batch_size)
        verified = time.perf_counter() - started
        rss_verified = _max_rss_mib()
        assert report.complete, report
        assert all(c.migrated == args.rows for c in report.columns), report
        values = 2 * args.rows
        print(f"database       {connection.vendor} {connection.get_database_version()}")
        print(f"python         {platform.python_version()} on {platform.machine()}")
        print(f"rows           {args.rows:,} (2 encrypted columns, batch {args.batch_size})")
        print(f"write          {args.write}, {args.workers} worker(s)")
        print(f"seed           {seeded:.1f} s")
        print(
            f"migrate-data   {migrated:.1f} s: {args.rows / migrated:,.0f} rows/s "
            f"({values / migrated:,.0f} values/s)"
        )
        print(f"verify         {verified:.1f} s: {args.rows / verified:,.0f} rows/s")
        print(
            f"max RSS (MiB)  start {rss_start:.0f}, seeded {rss_seeded:.0f}, "
            f"migrated {rss_migrated:.0f}, verified {rss_verified:.0f}"
        )
        if args.workers > 1:
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            scale = 1024 * 1024 if sys.platform == "darwin" else 1024
            print(f"largest worker {children / scale:.0f} MiB max RSS")
        if heap_peak is not None:
            print(f"heap peak      {heap_peak / (1024 * 1024):.1f} MiB during migrate-data")
    finally:
        connection.creation.destroy_test_db(database_name, verbosity=0)


if __name__ == "__main__":
    main()
