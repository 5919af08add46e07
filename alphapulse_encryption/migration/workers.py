"""``--migrate-data --workers N``: start N - 1 more processes running the command with one
worker each, work in this one too, and wait for them. The rows are shared as between any
concurrent runs (each batch locks its rows; see docs/migration.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from .pairs import pending_rows, require_columns, select_pairs


class WorkersNeedSettings(RuntimeError):
    """The settings were configured in code, so a new process cannot load them."""


class WorkerFailed(RuntimeError):
    def __init__(self, index: int, status: int) -> None:
        self.index = index  # this process is worker 1
        self.status = status
        super().__init__(f"worker process {index} stopped with exit status {status}")


@dataclass
class WorkersDone:
    """What all the workers did together for one column."""

    label: str  # table.column
    done: int  # rows no longer pending
    pending: int  # rows still pending (failed rows included)
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0


def migrate_data_in_workers(
    table: str | None,
    *,
    batch_size: int,
    workers: int,
    work_here: Callable[[], None],
    on_started: Callable[[int], None] | None = None,
) -> list[WorkersDone]:
    """Start ``workers - 1`` processes, run ``work_here()`` in this one, wait for them.

    ``on_started(count)`` is called once the other processes run. Raises ``WorkerFailed``
    for the first process that did not exit cleanly.
    """
    if not settings.SETTINGS_MODULE:
        raise WorkersNeedSettings()
    selected = select_pairs(table)
    require_columns(selected)
    before = {pair.label: pending_rows(pair).count() for pair in selected}
    started = time.monotonic()
    children = _start(table, batch_size, workers - 1)
    if on_started is not None:
        on_started(len(children))
    try:
        work_here()
        statuses = [child.wait() for child in children]
    finally:
        for child in children:
            if child.poll() is None:  # this process failed or was interrupted
                child.terminate()
                child.wait()
    for index, status in enumerate(statuses, start=2):
        if status != 0:
            raise WorkerFailed(index, status)
    elapsed = time.monotonic() - started
    results = []
    for pair in selected:
        pending = pending_rows(pair).count()
        results.append(WorkersDone(pair.label, before[pair.label] - pending, pending, elapsed))
    return results


def _start(table: str | None, batch_size: int, count: int) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "django", "encrypt_migrate", "--migrate-data"]
    command += ["--batch-size", str(batch_size), "--verbosity", "0"]
    if table is not None:
        command += ["--table", table]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": str(settings.SETTINGS_MODULE),
        "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
    }
    return [subprocess.Popen(command, env=env) for _ in range(count)]  # noqa: S603
