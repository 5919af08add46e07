"""Fixtures for the encrypt_migrate tests: legacy rows holding plaintext only, and a
temporary migrations package so that no test run touches tests/testapp/migrations."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from alphapulse_encryption.migration.views import view_name
from tests.testapp.models import LegacyClient

TABLE = LegacyClient._meta.db_table
ENCRYPTED = ("email_encrypted", "balance_encrypted", "preferences_encrypted")
PLAINTEXT = ("email", "balance", "preferences")
REPO_MIGRATIONS = Path(__file__).resolve().parents[1] / "testapp" / "migrations"

# tests/testapp/migrations/0002_legacyclient.py as a team has it before adopting
# encryption: the plaintext columns only.
PLAINTEXT_ONLY_0002 = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("testapp", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="LegacyClient",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("email", models.CharField(blank=True, max_length=254, null=True)),
                ("balance", models.CharField(blank=True, max_length=20, null=True)),
                ("preferences", models.JSONField(blank=True, null=True)),
            ],
        ),
    ]
"""


def original_values(i: int) -> dict[str, Any]:
    return {
        "name": f"client {i}",
        "email": f"Client{i}@Example.com",
        "balance": str(i * 100 - 7),
        "preferences": {"sms": i % 2 == 0, "tags": ["vip", i], "limit": 1.5},
    }


def clear_encrypted_columns() -> None:
    """Leave only the plaintext, as rows written before the encrypted fields existed."""
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(column)} = NULL" for column in ENCRYPTED)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {qn(TABLE)} SET {assignments}")


def make_legacy_clients(count: int, start: int = 0) -> dict[int, dict[str, Any]]:
    """``count`` rows with plaintext only; returns {pk: original values}."""
    LegacyClient.objects.bulk_create(
        [LegacyClient(**original_values(i)) for i in range(start, start + count)]
    )
    clear_encrypted_columns()
    return {
        pk: original_values(start + i)
        for i, pk in enumerate(
            LegacyClient.objects.filter(
                name__in=[f"client {i}" for i in range(start, start + count)]
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    }


def assert_migrated(originals: dict[int, dict[str, Any]]) -> None:
    """Every row's encrypted values equal its original plaintext."""
    stored = {
        row["pk"]: row
        for row in LegacyClient.objects.filter(pk__in=list(originals)).values("pk", *ENCRYPTED)
    }
    assert set(stored) == set(originals)
    for pk, values in originals.items():
        assert stored[pk]["email_encrypted"] == values["email"]
        assert stored[pk]["balance_encrypted"] == int(values["balance"])
        assert stored[pk]["preferences_encrypted"] == values["preferences"]


def historical_legacy_client() -> Any:
    """LegacyClient as the applied migrations describe it."""
    state = MigrationLoader(connection).project_state()
    return state.apps.get_model("testapp", "LegacyClient")


def drop_view() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"DROP VIEW IF EXISTS {connection.ops.quote_name(view_name(TABLE, connection))}"
        )


@pytest.fixture
def legacy_before_encryption(transactional_db, settings, tmp_path, monkeypatch) -> Iterator[Path]:
    """The state a team starts from: the model code declares the encrypted fields, while
    its migrations and table have only the plaintext columns. Migrations that the steps
    write go to a temporary package; the table is put back afterwards."""
    package = f"ape_tmp_migrations_{uuid.uuid4().hex[:12]}"
    directory = tmp_path / package
    directory.mkdir()
    (directory / "__init__.py").write_text("")
    shutil.copy(REPO_MIGRATIONS / "0001_initial.py", directory)
    (directory / "0002_legacyclient.py").write_text(PLAINTEXT_ONLY_0002)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MIGRATION_MODULES = {"testapp": package}
    with connection.schema_editor() as editor:
        for name in ("email_encrypted_search", *ENCRYPTED):
            editor.remove_field(LegacyClient, LegacyClient._meta.get_field(name))
    try:
        yield directory
    finally:
        # Put the table and the migration history back as the repository's migrations
        # left them (whatever step the test stopped at).
        drop_view()
        MigrationRecorder(connection).migration_qs.filter(app="testapp").exclude(
            name__in=["0001_initial", "0002_legacyclient"]
        ).delete()
        with connection.schema_editor() as editor:
            editor.delete_model(LegacyClient)
            editor.create_model(LegacyClient)


@pytest.fixture
def tmp_testapp_migrations(settings, tmp_path, monkeypatch) -> Path:
    """A copy of tests/testapp/migrations as the test app's migrations package, so that a
    step that writes a migration can never write into the repository."""
    package = f"ape_tmp_migrations_{uuid.uuid4().hex[:12]}"
    shutil.copytree(
        REPO_MIGRATIONS, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MIGRATION_MODULES = {"testapp": package}
    return tmp_path / package


@pytest.fixture
def no_view_left() -> Iterator[None]:
    """Views are not flushed between tests; a view left over would get in the way of
    tests that rebuild the table."""
    yield
    drop_view()
