"""The subprocess side of the process-kill tests (tests/reliability/test_process_kills.py).

``python -m tests.reliability.worker serve`` starts Django once and then, for each line on
stdin, forks a child process that does one thing and exits:

    migrate                       -> DONE <status>
    seed KIND ROWS STATE_FILE     -> DONE <status>
    run KIND FAULT SEED           -> STARTED <pid>, later EXIT <status>
    finish KIND STATE_FILE        -> RESULT <json>, DONE <status>

``run`` executes the command of KIND (``encrypt_migrate --migrate-data`` or ``encryption_keys
reencrypt``), which the test kills: the child SIGKILLs itself at its n-th commit when FAULT
is ``before_commit:n`` (the batch is written, not committed), ``during_commit:n`` (a timer
fires 0-3 ms after the commit starts: before, while or just after the server commits) or
``after_commit:n``; with FAULT ``-`` the test kills it after a random delay. A status is
the child's exit code, or minus the signal that killed it. Forking a warm process makes a
kill round cost what the work costs, not a Python and Django start-up.

``APE_FAULT_DATABASE`` (JSON) names the database.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.reliability.subprocess_settings"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from alphapulse_encryption.audit.log import verify as verify_audit_log  # noqa: E402
from alphapulse_encryption.keys import EncryptionKeyManager  # noqa: E402
from alphapulse_encryption.migration import reencrypt as reencrypt_service  # noqa: E402
from tests.reliability import scenarios  # noqa: E402

COMMANDS = {
    scenarios.LEGACY: ["encrypt_migrate", "--migrate-data", "--batch-size", "10"],
    scenarios.CUSTOMERS: ["encryption_keys", "reencrypt", "--batch-size", "10"],
}


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_fault(spec: str, rng: random.Random) -> None:
    point, _, nth = spec.partition(":")
    target = int(nth)
    connection = connections["default"]
    real_commit = connection._commit
    calls = [0]

    def commit() -> None:
        calls[0] += 1
        if calls[0] != target:
            return real_commit()
        if point == "before_commit":
            _kill()
        elif point == "during_commit":
            threading.Timer(rng.uniform(0, 0.003), _kill).start()
            real_commit()
            time.sleep(10)  # the timer fires long before this ends
        elif point == "after_commit":
            real_commit()
            _kill()
        raise AssertionError(f"unknown fault point {point!r}")

    connection._commit = commit  # type: ignore[method-assign]


def run(kind: str, fault: str, seed: str) -> None:
    if fault != "-":
        install_fault(fault, random.Random(seed))
    call_command(*COMMANDS[kind], verbosity=0, stdout=StringIO(), stderr=StringIO())


def _expected(kind: str, state: Path) -> dict[Any, dict[str, Any]]:
    index = json.loads(state.read_text())
    make = scenarios.legacy_expected if kind == scenarios.LEGACY else scenarios.customer_values
    return {int(pk): make(i) for pk, i in index.items()}


def seed(kind: str, rows: str, state: str) -> None:
    expected = scenarios.seed(kind, int(rows))
    Path(state).write_text(json.dumps({pk: i for i, pk in enumerate(expected)}))
    if kind == scenarios.CUSTOMERS:
        EncryptionKeyManager().rotate_keys()  # the rows are now under an older version


def finish(kind: str, state: str) -> None:
    """Run the command to the end, check every row, then prepare the next round."""
    left = scenarios.unfinished(kind)
    started = time.monotonic()
    run(kind, "-", "")
    seconds = time.monotonic() - started
    result = scenarios.check(kind, _expected(kind, Path(state))).as_dict()
    result["audit_ok"] = verify_audit_log().ok
    result["rerun_seconds"] = round(seconds, 3)
    result["left_by_the_killed_run"] = left
    if kind == scenarios.LEGACY:
        scenarios.reset_legacy()
    else:
        manager = EncryptionKeyManager()
        for info in manager.key_versions():
            if info.status not in ("active", "destroyed"):
                reencrypt_service.retire(info.version)  # refused if any value still uses it
        manager.rotate_keys()
    print("RESULT " + json.dumps(result, default=str), flush=True)


def migrate() -> None:
    call_command("migrate", verbosity=0, interactive=False)


ACTIONS: dict[str, Callable[..., None]] = {
    "migrate": migrate,
    "seed": seed,
    "run": run,
    "finish": finish,
}


def _in_child(action: Callable[..., None], args: list[str]) -> int:
    """Fork; the child runs ``action`` and exits. Returns the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    status = 0
    try:
        action(*args)
    except BaseException as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        connections.close_all()
        sys.stdout.flush()
        os._exit(status)


def _status(pid: int) -> int:
    _, code = os.waitpid(pid, 0)
    return -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)


def serve() -> None:
    connections.close_all()  # children open their own connections
    for line in sys.stdin:
        action, *args = line.split()
        if action == "quit":
            return
        pid = _in_child(ACTIONS[action], args)
        if action == "run":
            print(f"STARTED {pid}", flush=True)
            print(f"EXIT {_status(pid)}", flush=True)
        else:
            print(f"DONE {_status(pid)}", flush=True)


if __name__ == "__main__":
    serve()
