"""Benchmark of ``encrypt_migrate --migrate-data`` (and ``--verify``): rows/s, peak memory.

    python tests/benchmarks/migrate_benchmark.py [--rows 100000] [--batch-size 1000]
        [--write default|arrays|case|per-row] [--sync-commit] [--workers 1] [--repeat 1]
        [--tracemalloc]

``DATABASE_URL`` selects the database (default: the local PostgreSQL,
``postgres://postgres@127.0.0.1:5432/ape_mig``); the run uses its own scratch database
``ape_migrate_benchmark``, created and dropped by Django's test-database machinery. The
table has two plaintext columns (an e-mail and an integer kept as text) migrated to an
``EncryptedSearchableString`` with a ``SearchTokenIndex`` and an ``EncryptedInteger``.
Peak memory is the process's maximum resident set size (``getrusage``), before seeding
and after each step, so a growth with the row count would show; ``--tracemalloc`` adds
the Python heap peak (and slows the run down). ``--write`` compares the ways of storing a
batch (default: the engine's choice for the database; ``arrays``: PostgreSQL's unnest()
of arrays instead of comma-joined texts); ``--sync-commit`` keeps PostgreSQL's
``synchronous_commit`` on in the batches; ``--workers`` runs that many ``--migrate-data``
processes at once; ``--repeat`` seeds and migrates that many times and reports the median.
With one worker, the CPU time of this process and (when the server runs on this machine
and its ``/proc`` is readable) of its PostgreSQL backend show where the time goes.
Figures: docs/migration.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
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


def _per_row_write(pairs: Any, pks: list[Any], values: list[list[str]], connection: Any) -> int:
    """The alternative to one statement per batch: one UPDATE per row (executemany)."""
    if not pks:
        return 0
    qn = connection.ops.quote_name
    pk_field = pairs[0].model._meta.pk
    assignments = ", ".join(f"{qn(pair.column)} = %s" for pair in pairs)
    guards = " AND ".join(f"{qn(pair.column)} IS NULL" for pair in pairs)
    sql = (
        f"UPDATE {qn(pairs[0].table)} SET {assignments} "
        f"WHERE {qn(pk_field.column)} = %s AND {guards}"
    )
    rows = [
        (*(column[j] for column in values), pk_field.get_db_prep_value(pk, connection))
        for j, pk in enumerate(pks)
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    return len(pks)


def _worker(table: str, batch_size: int) -> None:
    from django.db import connections

    from alphapulse_encryption.migration import data

    connections.close_all()  # never share the parent's connection across fork()
    data.migrate_data(table, batch_size=batch_size)
    connections.close_all()


def _choose_write(write: str, sync_commit: bool) -> None:
    """Swap in the alternative being measured (inherited by forked workers)."""
    from alphapulse_encryption.migration import data, writers

    if write == "arrays":
        writers._joined = lambda texts: None  # type: ignore[assignment]
    elif write == "case":
        writers._write_unnest = writers._write_case  # type: ignore[assignment]
    elif write == "per-row":
        writers._write = _per_row_write  # type: ignore[assignment]
    if sync_commit:
        begin_batch = data._TableRun.begin_batch
        # As if inside a caller's transaction: synchronous_commit is left as it is.
        data._TableRun.begin_batch = lambda run, outermost: begin_batch(run, False)  # type: ignore[method-assign]


def _backend_cpu_seconds(connection: Any) -> float | None:
    """CPU time of this connection's PostgreSQL backend, when it runs on this machine."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _migrate_with_workers(workers: int, batch_size: int) -> None:
    import multiprocessing

    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_worker, args=(TABLE, batch_size)) for _ in range(workers)]
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


def _run_once(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """Seed the table, migrate it, verify it; the figures of that run."""
    from django.db import connection

    from alphapulse_encryption.migration import data
    from alphapulse_encryption.migration.verify import verify

    with connection.schema_editor() as editor:
        editor.create_model(model)
    try:
        started = time.perf_counter()
        _seed(args.rows)
        run: dict[str, Any] = {
            "seeded": time.perf_counter() - started,
            "rss_seeded": _max_rss_mib(),
        }
        if args.tracemalloc:
            tracemalloc.start()
        backend_cpu = _backend_cpu_seconds(connection)
        cpu = time.process_time()
        started = time.perf_counter()
        if args.workers > 1:
            _migrate_with_workers(args.workers, args.batch_size)
        else:
            data.migrate_data(TABLE, batch_size=args.batch_size)
        run["migrated"] = time.perf_counter() - started
        if args.workers == 1:
            run["cpu"] = time.process_time() - cpu
            after = _backend_cpu_seconds(connection)
            if backend_cpu is not None and after is not None:
                run["backend_cpu"] = after - backend_cpu
        if args.tracemalloc:
            run["heap_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        run["rss_migrated"] = _max_rss_mib()

        started = time.perf_counter()
        report = verify(TABLE, batch_size=args.batch_size)
        run["verified"] = time.perf_counter() - started
        run["rss_verified"] = _max_rss_mib()
        assert report.complete, report
        assert all(c.migrated == args.rows for c in report.columns), report
        return run
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--write", choices=["default", "arrays", "case", "per-row"], default="default"
    )
    parser.add_argument("--sync-commit", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()

    _setup_django()
    from django.db import connection

    database_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = TABLE
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        model = _benchmark_model()
        _choose_write(args.write, args.sync_commit)
        rss_start = _max_rss_mib()
        print(f"database       {connection.vendor} {connection.get_database_version()}")
        print(f"python         {platform.python_version()} on {platform.machine()}")
        print(f"rows           {args.rows:,} (2 encrypted columns, batch {args.batch_size})")
        commit = ", synchronous_commit on" if args.sync_commit else ""
        print(f"write          {args.write}{commit}, {args.workers} worker(s)")
        runs = []
        for _ in range(args.repeat):
            run = _run_once(args, model)
            runs.append(run)
            _print_run(args, run)
        if args.repeat > 1:
            rates = sorted(args.rows / run["migrated"] for run in runs)
            print(
                f"median         migrate-data {statistics.median(rates):,.0f} rows/s "
                f"(runs: {', '.join(f'{rate:,.0f}' for rate in rates)})"
            )
        print(
            f"max RSS (MiB)  start {rss_start:.0f}, seeded {runs[0]['rss_seeded']:.0f}, "
            f"migrated {runs[-1]['rss_migrated']:.0f}, verified {runs[-1]['rss_verified']:.0f}"
        )
        if args.workers > 1:
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            scale = 1024 * 1024 if sys.platform == "darwin" else 1024
            print(f"largest worker {children / scale:.0f} MiB max RSS")
    finally:
        connection.creation.destroy_test_db(database_name, verbosity=0)


def _print_run(args: argparse.Namespace, run: dict[str, Any]) -> None:
    rows, migrated = args.rows, run["migrated"]
    print(f"seed           {run['seeded']:.1f} s")
    print(
        f"migrate-data   {migrated:.1f} s: {rows / migrated:,.0f} rows/s "
        f"({2 * rows / migrated:,.0f} values/s)"
    )
    if "cpu" in run:
        line = f"cpu per row    python {run['cpu'] / rows * 1e6:.1f} us"
        if "backend_cpu" in run:
            line += f", database backend {run['backend_cpu'] / rows * 1e6:.1f} us"
        print(f"{line} (wall {migrated / rows * 1e6:.1f} us)")
    print(f"verify         {run['verified']:.1f} s: {rows / run['verified']:,.0f} rows/s")
    if "heap_peak" in run:
        print(f"heap peak      {run['heap_peak'] / (1024 * 1024):.1f} MiB during migrate-data")


if __name__ == "__main__":
    main()
