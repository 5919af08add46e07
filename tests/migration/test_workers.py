"""Several --migrate-data workers on one table process no row twice and miss none."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
from django.db import connection, connections

from alphapulse_encryption.migration import data, encryption
from alphapulse_encryption.migration.verify import verify

from .conftest import ENCRYPTED, assert_migrated, make_legacy_clients

ROWS = 120


def record_processed_rows(monkeypatch, on_first_batch=None) -> dict[str, list[tuple[str, int]]]:
    """(column, pk) of every row each worker encrypted, by worker (thread) name."""
    processed: dict[str, list[tuple[str, int]]] = defaultdict(list)
    real_encrypt = encryption.encrypt_rows
    seen = threading.local()

    def recording_encrypt(pair, rows, connection):
        rows = list(rows)
        processed[threading.current_thread().name].extend((pair.column, pk) for pk, _ in rows)
        if on_first_batch is not None and not getattr(seen, "done", False):
            seen.done = True
            on_first_batch()
        return real_encrypt(pair, rows, connection)

    monkeypatch.setattr(encryption, "encrypt_rows", recording_encrypt)
    return processed


def assert_each_row_once_by_exactly_these_workers(processed, workers, pks):
    assert set(processed) == set(workers)
    everything = [item for items in processed.values() for item in items]
    assert len(everything) == len(set(everything)), "a row was processed twice"
    assert set(everything) == {(column, pk) for column in ENCRYPTED for pk in pks}
    assert all(processed[name] for name in workers), "a worker did nothing"


def two_workers_at_once(monkeypatch) -> tuple[dict[str, list[tuple[str, int]]], list[str]]:
    """Each worker holds its first batch's row locks until both have one."""
    barrier = threading.Barrier(2)
    processed = record_processed_rows(monkeypatch, lambda: barrier.wait(timeout=20))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            data.migrate_data(batch_size=10)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return processed, ["worker-1", "worker-2"]


def second_worker_between_batches(
    monkeypatch,
) -> tuple[dict[str, list[tuple[str, int]]], list[str]]:
    """The second worker runs between two batches of the first (SQLite's write lock)."""
    processed = record_processed_rows(monkeypatch)
    errors: list[BaseException] = []

    def second_worker() -> None:
        try:
            data.migrate_data(batch_size=10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def between_batches(progress) -> None:
        if "worker-2" not in processed:
            thread = threading.Thread(target=second_worker, name="worker-2")
            thread.start()
            thread.join(timeout=120)

    data.migrate_data(batch_size=10, on_batch=between_batches)
    assert not errors, errors
    return processed, [threading.current_thread().name, "worker-2"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_process_no_row_twice_and_miss_none(monkeypatch):
    """Two threads, each with its own database connection, run --migrate-data together.

    Where the database has SKIP LOCKED (PostgreSQL; MariaDB 10.6+) the workers run truly
    at once: each holds its first batch's row locks until both have one, which only
    works if the second worker skips the rows the first has locked. SQLite has a single
    writer and no row locks, so there the second worker runs between two batches of the
    first (the order its write lock imposes) and the same accounting is checked.
    """
    originals = make_legacy_clients(ROWS)
    if connection.features.has_select_for_update_skip_locked:
        processed, workers = two_workers_at_once(monkeypatch)
    else:
        processed, workers = second_worker_between_batches(monkeypatch)
    assert_each_row_once_by_exactly_these_workers(processed, workers, originals)
    assert verify().complete
    assert_migrated(originals)
