"""--create-views: one view per migrated table, encrypted columns under plaintext names."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from alphapulse_encryption.migration.pairs import select_pairs, table_columns
from alphapulse_encryption.migration.views import view_name, view_select
from tests.testapp.models import LegacyClient

from .conftest import TABLE, make_legacy_clients

# DDL commits implicitly on MariaDB, so these tests run outside a test transaction.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_view_left")]


def create_views() -> str:
    out = StringIO()
    call_command("encrypt_migrate", "--create-views", stdout=out)
    return out.getvalue()


def read_view(columns: str) -> list[tuple]:
    view = connection.ops.quote_name(view_name(TABLE, connection))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {view} ORDER BY id")
        return cursor.fetchall()


def read_table(columns: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {connection.ops.quote_name(TABLE)} ORDER BY id")
        return cursor.fetchall()


def test_the_view_shows_each_encrypted_column_in_place_of_its_plaintext_column():
    LegacyClient.objects.create(name="a", email="a@x.com", balance="5", preferences={"k": 1})
    LegacyClient.objects.create(name="b")
    output = create_views()
    name = view_name(TABLE, connection)
    assert name == f"{TABLE}_encrypted"
    expected = [
        c
        for c in table_columns(connection, TABLE)
        if c not in {"email_encrypted", "balance_encrypted", "preferences_encrypted"}
    ]
    assert f"Created view {name} over {TABLE}: {', '.join(expected)}." in output
    assert read_view("id, name, email, balance, preferences, email_encrypted_search") == read_table(
        "id, name, email_encrypted, balance_encrypted, preferences_encrypted, "
        "email_encrypted_search"
    )
    # The view has no column of its own for the encrypted values, and no plaintext.
    assert "a@x.com" not in repr(read_view("*"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(name)} WHERE 1 = 0")
        assert "email_encrypted" not in [d[0] for d in cursor.description]


def test_creating_the_views_again_replaces_them():
    LegacyClient.objects.create(name="a", email="a@x.com")
    create_views()
    LegacyClient.objects.create(name="b", email="b@x.com")
    create_views()
    create_views()
    assert [row[0] for row in read_view("name")] == ["a", "b"]


def test_the_view_is_refused_while_rows_are_left_to_migrate():
    make_legacy_clients(3)
    with pytest.raises(CommandError, match=r"Rows are not migrated yet: .*email_encrypted 3 row"):
        create_views()
    call_command("encrypt_migrate", "--migrate-data", stdout=StringIO())
    create_views()


def test_once_a_plaintext_column_is_gone_its_encrypted_column_takes_its_name():
    group = select_pairs(TABLE)
    columns = ["id", "name", "balance", "email_encrypted", "balance_encrypted", "x"]
    assert view_select(group, columns) == [
        ("id", "id"),
        ("name", "name"),
        ("balance_encrypted", "balance"),
        ("email_encrypted", "email"),
        ("x", "x"),
    ]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: it drops a view's grants with the view (MySQL/MariaDB keep "
    "them by name; SQLite has no grants)",
)
def test_creating_the_views_again_keeps_the_grants_given_on_them():
    LegacyClient.objects.create(name="a", email="a@x.com")
    create_views()
    view = connection.ops.quote_name(view_name(TABLE, connection))
    role = "ape_migration_test_reader"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
        cursor.execute(f"CREATE ROLE {role}")
        try:
            cursor.execute(f"GRANT SELECT ON {view} TO {role}")
            create_views()
            cursor.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", [role, view])
            assert cursor.fetchone()[0] is True
        finally:
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")
