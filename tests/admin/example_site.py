"""The example back office served for the browser test: its own database (a SQLite file,
or a database of its own on the server the test run uses), migrated, seeded with one row
per model of known plaintexts plus demo data, and ``manage.py runserver`` on a free port.

``python -m tests.admin.example_site seed`` (run by :func:`serve` with the example
project's settings) writes the rows and prints their plaintexts as JSON."""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "browser-test-pw"
CLERK_PASSWORD = "clerk-test-pw"
_UTC = datetime.UTC


@dataclass
class ExampleSite:
    url: str
    plaintexts: list[str]
    pks: dict[str, int]  # model name -> pk of its known row
    email: str  # the known profile's e-mail, revealed by the test


def _known_rows() -> dict[str, Any]:
    """One row per model, with values found nowhere else on an admin page."""
    from example_project.backoffice import models

    profile = models.UserProfile.objects.create(
        email="zephyrine.quill@alphapulse.example",
        phone="+1-555-867-5309",
        first_name="Zephyrine",
        last_name="Quillfeather",
        date_of_birth=datetime.date(1961, 7, 19),
        api_key="ak_live_VerySecretToken0X9",
        notification_settings={"digest": "weekly-pigeon-0"},
        is_verified=True,
    )
    account = models.TradingAccount.objects.create(
        owner=profile,
        account_number="DE89370400440532013000",
        balance=decimal.Decimal("73519.87"),
        credit_limit=48213.5,
        metadata={"desk": "zanzibar-desk-0"},
        opened_on=datetime.date(1987, 3, 14),
    )
    return {
        "userprofile": profile,
        "tradingaccount": account,
        "position": models.Position.objects.create(
            account=account,
            symbol="NVDA",
            quantity=918273,
            average_price=decimal.Decimal("187.4213"),
            unrealized_pnl=-6061.25,
            opened_at=datetime.datetime(2024, 2, 29, 13, 37, 11, tzinfo=_UTC),
        ),
        "trade": models.Trade.objects.create(
            account=account,
            symbol="NVDA",
            side="buy",
            executed_at=datetime.datetime(2024, 3, 1, 9, 41, 27, tzinfo=_UTC),
            execution={"venue": "XQUAGGA", "fill_id": "fill-7f3a9c"},
            realized_pnl=decimal.Decimal("4321.9876"),
            booked_on=datetime.date(2024, 3, 1),
        ),
        "pnlsnapshot": models.PnLSnapshot.objects.create(
            account=account,
            as_of=datetime.date(2024, 3, 2),
            realized=decimal.Decimal("51234.56"),
            unrealized=decimal.Decimal("-7654.32"),
            equity=998877.66,
            breakdown={"book": "quokka-book"},
        ),
        "riskmetric": models.RiskMetric.objects.create(
            account=account,
            computed_at=datetime.datetime(2024, 3, 2, 18, 0, tzinfo=_UTC),
            value_at_risk=12345.678,
            expected_shortfall=23456.789,
            leverage=decimal.Decimal("3.142"),
            max_drawdown=0.271828,
            notes="margin call drill with the walrus desk",
        ),
        # Saved with its plaintext columns: the dual write fills the encrypted twins.
        "legacyclient": models.LegacyClient.objects.create(
            full_name="Ignatius Plaintextson",
            email="ignatius@legacy.example",
            tax_id="987-65-4321",
            credit_score=811,
            preferences={"statements": "carrier-owl"},
        ),
    }


def _shown_forms(value: Any) -> list[str]:
    """How a value could appear on a page: as text, and as Django formats it."""
    if isinstance(value, bool) or value is None or value == "":
        return []  # no text that could be told apart from the page's own
    if isinstance(value, dict):
        return [json.dumps(value), *(str(v) for v in value.values())]
    if isinstance(value, datetime.datetime):
        # Not its date alone: a plain date column of the row may show the same day.
        return [value.isoformat(), f"{value:%Y-%m-%d %H:%M}", f"{value:%H:%M:%S}"]
    if isinstance(value, datetime.date):
        return [value.isoformat(), f"{value:%B} {value.day}, {value.year}"]
    forms = [str(value)]
    if isinstance(value, decimal.Decimal | float):
        forms.append(f"{value:,}")
    return forms


def _seed() -> None:
    import django

    django.setup()
    from django.contrib.auth.models import Permission, User

    from alphapulse_encryption.fields import SearchTokenIndex

    rows = _known_rows()
    plaintexts: set[str] = set()
    for obj in rows.values():
        legacy = obj._meta.model_name == "legacyclient"  # its plaintext columns are secret too
        for field in obj._meta.concrete_fields:
            if field.primary_key or field.is_relation or isinstance(field, SearchTokenIndex):
                continue
            encrypted = getattr(field, "encrypted", False)
            # Choice values are public (the form lists them as options).
            if (encrypted and not field.choices) or (legacy and not encrypted):
                plaintexts.update(_shown_forms(getattr(obj, field.attname)))
    User.objects.create_superuser("admin", "admin@alphapulse.example", ADMIN_PASSWORD)
    clerk = User.objects.create_user("clerk", "clerk@alphapulse.example", CLERK_PASSWORD)
    clerk.is_staff = True
    clerk.save()
    clerk.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="backoffice", codename__startswith="view_"
        )
    )
    print(
        json.dumps(
            {
                "plaintexts": sorted(plaintexts),
                "pks": {name: obj.pk for name, obj in rows.items()},
                "email": rows["userprofile"].email,
            }
        )
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHAPULSE_ENCRYPTION")}
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DATABASE_URL=database_url,
        ALPHAPULSE_ENCRYPTION_MASTER_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        DJANGO_DEBUG="true",  # runserver serves the static files (reveal.js)
        PYTHONPATH=str(ROOT),
    )
    return env


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"runserver exited:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"{url}/admin/login/", timeout=5):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"runserver did not answer within 60 s:\n{log.read_text()}")


@contextlib.contextmanager
def serve(database_url: str, workdir: Path) -> Iterator[ExampleSite]:
    """The example project on ``database_url`` (an empty database), served until the
    block ends."""
    env = _environment(database_url)
    _run(env, "manage.py", "migrate", "--no-input", "-v", "0")
    known = json.loads(_run(env, "-m", "tests.admin.example_site", "seed").splitlines()[-1])
    _run(env, "manage.py", "seed_demo", "--accounts", "5", "--seed", "7", "-v", "0")
    _run(env, "manage.py", "encryption_keys", "rotate")  # a key operation for the audit log
    port = _free_port()
    log = workdir / "runserver.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server, log)
        yield ExampleSite(url, known["plaintexts"], known["pks"], known["email"])
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__" and sys.argv[1:] == ["seed"]:
    _seed()
