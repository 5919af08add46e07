"""The process running ``encrypt_migrate --migrate-data`` or ``encryption_keys reencrypt`` is
killed with SIGKILL, again and again: at its n-th commit (the batch written but not
committed; the commit racing a kill; just committed) and after a random delay. After every
kill a rerun completes, and every row is there exactly once, equal to its original, with
the search token of its current value, under the active key only; the audit log's hash
chain is intact.

The processes are forked from a warm worker (tests/reliability/worker.py), so a round costs
the work, not a start-up. They need a database they can open: on PostgreSQL and MariaDB
the test database itself (hence ``transaction=True``), on SQLite a database file in a
temporary directory. Set ``APE_FAULT_SEED`` to replay a run's random choices (printed on
failure).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.reliability import scenarios

ROOT = Path(__file__).resolve().parents[2]
# Eight kills per command and backend, each followed by a completing rerun and a check.
KILLS = (
    "before_commit",
    "before_commit",
    "during_commit",
    "during_commit",
    "during_commit",
    "after_commit",
    "delay",
    "delay",
)
ROWS = {scenarios.LEGACY: 300, scenarios.CUSTOMERS: 150}
# Killing at the n-th commit of a run: after the key load's audit entry and at least one
# batch, and before the last batch (a migration run has about 90 batches, a
# re-encryption 15).
FIRST_COMMITS = (3, 12)
# A random kill lands within this many seconds of the start, usually mid-run.
DELAY = (0.03, 0.15)
TIMEOUT = 120

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Worker:
    """The warm worker process: send it a line, read its answers."""

    def __init__(self, database: dict[str, Any]) -> None:
        env = {**os.environ, "APE_FAULT_DATABASE": json.dumps(database)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(
            target=self._read, args=(self.process.stdout, self.lines), daemon=True
        ).start()
        threading.Thread(target=self._collect_errors, daemon=True).start()

    @staticmethod
    def _read(stream: Any, lines: queue.Queue[str]) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    def _collect_errors(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.errors.append(line.rstrip("\n"))

    def send(self, *words: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(" ".join(words) + "\n")
        self.process.stdin.flush()

    def expect(self, prefix: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no {prefix} from the worker: {self.errors[-20:]}") from None
            if line.startswith(prefix + " "):
                return line[len(prefix) + 1 :]

    def do(self, *words: str) -> list[str]:
        """Run an action to its end; returns the RESULT lines it printed."""
        self.send(*words)
        results = []
        while True:
            line = self.expect_any(("RESULT", "DONE"))
            if line[0] == "DONE":
                assert line[1] == "0", f"{words}: {self.errors[-20:]}"
                return results
            results.append(line[1])

    def expect_any(self, prefixes: tuple[str, ...]) -> tuple[str, str]:
        while True:
            line = self.expect_line()
            for prefix in prefixes:
                if line.startswith(prefix + " "):
                    return prefix, line[len(prefix) + 1 :]

    def expect_line(self) -> str:
        try:
            return self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"the worker is silent: {self.errors[-20:]}") from None

    def close(self) -> None:
        try:
            self.send("quit")
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def worker(tmp_path) -> Iterator[Worker]:
    """A worker on a database the subprocesses can open, with the package's tables."""
    if connection.vendor == "sqlite":
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "kills.db"),
            # No fsync: a killed process, unlike a power cut, loses nothing SQLite has
            # handed to the operating system, so what is tested here stays the same.
            "OPTIONS": {"init_command": "PRAGMA synchronous = OFF"},
        }
    else:
        settings = connection.settings_dict
        database = {
            key: settings[key]
            for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
            if key in settings
        }
    worker = Worker(database)
    try:
        if connection.vendor == "sqlite":
            worker.do("migrate")
        yield worker
    finally:
        worker.close()


def _killed_run(worker: Worker, kind: str, kill: str, rng: random.Random) -> bool:
    """Start the command and kill it; True if it died of SIGKILL (not finished first)."""
    fault = "-" if kill == "delay" else f"{kill}:{rng.randint(*FIRST_COMMITS)}"
    worker.send("run", kind, fault, str(rng.randrange(2**32)))
    pid = int(worker.expect("STARTED"))
    if kill == "delay":
        time.sleep(rng.uniform(*DELAY))
        # The run may have finished (and been reaped) before the delay ran out.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    status = int(worker.expect("EXIT"))
    assert status in (0, -signal.SIGKILL), worker.errors[-20:]
    return status == -signal.SIGKILL


@pytest.mark.parametrize("kind", [scenarios.LEGACY, scenarios.CUSTOMERS])
def test_killed_runs_resume_and_lose_no_row(worker, tmp_path, reliability, kind):
    seed = int(os.environ.get("APE_FAULT_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    state = tmp_path / f"{kind}.json"
    worker.do("seed", kind, str(ROWS[kind]), str(state))
    killed, mid_run = 0, 0
    for kill in KILLS:
        died = _killed_run(worker, kind, kill, rng)
        assert died or kill == "delay", f"{kill}: the run finished before the kill (seed {seed})"
        killed += died
        reliability.add(faults_injected=int(died))
        [output] = worker.do("finish", kind, str(state))
        result = json.loads(output)
        reliability.add(rows_checked=result["checked"], rows_lost=result["lost"])
        assert result["ok"] and result["audit_ok"], (kill, seed, result)
        assert result["checked"] == ROWS[kind]
        mid_run += died and 0 < result["left_by_the_killed_run"] < scenarios.work(kind, ROWS[kind])
    # A random delay may outlast a run; every kill at a commit lands.
    assert killed >= sum(kill != "delay" for kill in KILLS), f"seed {seed}"
    # Every kill at a commit leaves part of the work done and part to do (a random delay
    # may also land before the first batch or after the last).
    assert mid_run >= sum(kill != "delay" for kill in KILLS), f"seed {seed}"
    reliability.note(f"{killed} kills ({mid_run} mid-run), seed {seed}")
