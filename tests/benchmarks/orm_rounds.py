"""The ORM benchmark's ORM measurements: one repetition of every ORM operation for every
model, short requests with and without a connection pool, and a profile of a full read."""

from __future__ import annotations

import cProfile
import datetime
import gc
import operator
import pstats
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.benchmarks.orm_setup import ALL_FIELDS, PLAIN_FIELDS, SENSITIVE_FIELDS


def timed(run: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


Samples = dict[str, dict[str, list[float]]]


def orm_round(
    models: dict[str, Any],
    order: list[str],
    rows: list[dict[str, Any]],
    lookups: list[str],
    update_rows: int,
    samples: Samples,
    found: dict[str, dict[str, int]],
) -> None:
    """One repetition of every ORM measurement, each run for every model in ``order``."""
    _create_round(models, order, rows, samples)
    _read_round(models, order, samples)
    _lookup_round(models, order, lookups, samples, found)
    _update_round(models, order, rows, update_rows, samples)
    for label in order:
        samples["memory"][label].append(_peak_memory_mib(models[label], _TOUCH_ALL))


_TOUCH_ALL = operator.attrgetter(*ALL_FIELDS)
_TOUCH_PLAIN = operator.attrgetter(*PLAIN_FIELDS)


def _create_round(
    models: dict[str, Any], order: list[str], rows: list[dict[str, Any]], samples: Samples
) -> None:
    for label in order:
        model = models[label]
        _empty_table(model)
        objs = [model(**row) for row in rows]
        create = model.objects.bulk_create
        samples["bulk_create"][label].append(timed(lambda c=create, o=objs: c(o, batch_size=1000)))
        if _vendor() == "postgresql":
            _analyze(model)  # fresh statistics, as autovacuum would give a real table
        table_mib, index_mib = _storage_mib(model)
        samples["table_size"][label].append(table_mib)
        samples["index_size"][label].append(index_mib)


def _read(model: Any, touch: Callable[[Any], object]) -> None:
    for obj in model.objects.all():
        touch(obj)


def _read_round(models: dict[str, Any], order: list[str], samples: Samples) -> None:
    for label in order:
        samples["read_all"][label].append(timed(lambda m=models[label]: _read(m, _TOUCH_ALL)))
    for label in order:
        samples["read_none"][label].append(timed(lambda m=models[label]: _read(m, _TOUCH_PLAIN)))
    for label in order:
        samples["fetch_raw"][label].append(timed(lambda m=models[label]: _fetch_raw(m)))
    for label in order:
        qs = models[label].objects.values_list("email", flat=True)
        samples["values_list"][label].append(timed(lambda qs=qs: list(qs)))


def _lookup_round(
    models: dict[str, Any],
    order: list[str],
    lookups: list[str],
    samples: Samples,
    found: dict[str, dict[str, int]],
) -> None:
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
            _TOUCH_ALL(manager.get(account_number=value))
            get_seconds[label] += time.perf_counter() - start
    for value in lookups:  # not timed: random Fernet tokens, so the peer's match nothing
        hits["peer"] += len(models["peer"].objects.filter(account_number=value).values_list("pk"))
    for label in searchable:
        samples["lookup"][label].append(lookup_seconds[label] / len(lookups))
        samples["lookup_get"][label].append(get_seconds[label] / len(lookups))
    found["lookup"] = hits


def _update_round(
    models: dict[str, Any],
    order: list[str],
    rows: list[dict[str, Any]],
    update_rows: int,
    samples: Samples,
) -> None:
    for label in order:
        model = models[label]
        objs = list(model.objects.order_by("pk")[:update_rows])
        for obj, row in zip(objs, rows, strict=False):
            for name, value in _changed(row).items():
                setattr(obj, name, value)
        samples["bulk_update"][label].append(
            timed(lambda m=model, o=objs: m.objects.bulk_update(o, SENSITIVE_FIELDS))
        )


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


def _changed(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_number": row["account_number"][:-1] + "X",
        "email": "new." + row["email"],
        "credit_limit": row["credit_limit"] + 1,
        "balance": row["balance"] + 0.5,
        "date_of_birth": row["date_of_birth"] + datetime.timedelta(days=1),
    }


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


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


def pool_round(models: dict[str, Any], lookups: list[str], samples: dict[str, list[float]]) -> None:
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

        samples[name].append(timed(requests) / len(lookups) * 1e3)
    connections["default"].close()


def profile_full_read(model: Any, top: int = 15) -> dict[str, Any]:
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
