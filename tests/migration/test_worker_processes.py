"""``encrypt_migrate --migrate-data --workers N``: more processes share the rows.

The worker processes open the database themselves, so it must be one they can open: on
PostgreSQL and MariaDB the test database (hence ``transaction=True``), on SQLite a file
in a temporary directory. Everything runs in subprocesses, as a user would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
ROWS = 400

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHECK = """
import json
from alphapulse_encryption.audit.models import AuditLogEntry
from alphapulse_encryption.migration.verify import verify
from tests.testapp.models import LegacyClient
report = verify()
runs = AuditLogEntry.objects.filter(action="migration_run").count()
print(json.dumps({"complete": report.complete, "runs": runs,
                  "rows": LegacyClient.objects.count()}))
"""


def _database(tmp_path: Path) -> dict:
    if connection.vendor == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "workers.db")}
    settings = connection.settings_dict
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    return {key: settings[key] for key in keys if key in settings}


def _django(database: dict, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "APE_FAULT_DATABASE": json.dumps(database),
        "DJANGO_SETTINGS_MODULE": "tests.reliability.subprocess_settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_two_workers_encrypt_every_row_once_and_each_run_is_audited(tmp_path):
    database = _database(tmp_path)
    if connection.vendor == "sqlite":
        assert _django(database, "migrate", "--verbosity", "0").returncode == 0
    seeded = _django(
        database,
        "shell",
        "-c",
        f"from tests.migration.conftest import make_legacy_clients; make_legacy_clients({ROWS})",
    )
    assert seeded.returncode == 0, seeded.stderr
    run = _django(
        database, "encrypt_migrate", "--migrate-data", "--workers", "2", "--batch-size", "20"
    )
    assert run.returncode == 0, run.stderr
    assert "done by 2 workers" in run.stdout
    assert "0 pending" in run.stdout
    checked = _django(database, "shell", "-c", CHECK)
    assert checked.returncode == 0, checked.stderr
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert result == {"complete": True, "runs": 2, "rows": ROWS}


def test_workers_go_with_migrate_data_alone():
    for args in (
        ["--verify", "--workers", "2"],
        ["--migrate-data", "--workers", "0"],
        ["--migrate-data", "--workers", "2", "--retry-failed"],
    ):
        with pytest.raises(CommandError, match="--workers"):
            call_command("encrypt_migrate", *args)
