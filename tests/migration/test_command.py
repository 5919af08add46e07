"""encrypt_migrate refuses misuse with a CommandError that says what to do instead."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from alphapulse_encryption.management.commands.encrypt_migrate import Command
from alphapulse_encryption.migration import pairs

from .conftest import TABLE, make_legacy_clients


def run(*args: str, **options) -> str:
    out = StringIO()
    call_command("encrypt_migrate", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


@pytest.mark.parametrize(
    "args",
    [(), ("--verify", "--migrate-data"), ("--table", TABLE)],
    ids=["no step", "two steps", "only options"],
)
def test_exactly_one_step_is_required(args):
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert str(caught.value) == Command.ONE_STEP


@pytest.mark.parametrize("size", ["0", "-5"])
def test_a_batch_size_below_one_is_refused(size):
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        run("--migrate-data", "--batch-size", size)


def test_retry_failed_goes_with_migrate_data_only():
    with pytest.raises(CommandError) as caught:
        run("--verify", "--retry-failed")
    assert str(caught.value) == Command.RETRY_ONLY_WITH_MIGRATE


@pytest.mark.django_db
def test_an_unknown_table_is_refused_with_the_tables_being_migrated():
    with pytest.raises(CommandError) as caught:
        run("--verify", "--table", "testapp_customer")
    assert "'testapp_customer'" in str(caught.value)
    assert f"tables being migrated: {TABLE}" in str(caught.value)


@pytest.mark.django_db
def test_without_any_migrate_from_field_there_is_nothing_to_do(monkeypatch):
    monkeypatch.setattr(pairs, "all_pairs", lambda: [])
    for step in ("--add-columns", "--migrate-data", "--verify", "--create-views"):
        with pytest.raises(CommandError) as caught:
            run(step)
        assert str(caught.value) == Command.NO_MIGRATING_FIELDS


def test_dropping_needs_confirm():
    with pytest.raises(CommandError) as caught:
        run("--drop-unencrypted")
    assert str(caught.value) == Command.DROP_NEEDS_CONFIRM


@pytest.mark.django_db
def test_dropping_is_refused_until_verification_is_complete(tmp_testapp_migrations):
    make_legacy_clients(2)
    out = StringIO()
    with pytest.raises(CommandError, match="verification is not complete for") as caught:
        call_command("encrypt_migrate", "--drop-unencrypted", "--confirm", stdout=out)
    assert f"{TABLE}.email_encrypted" in str(caught.value)
    assert "pending" in out.getvalue()  # the verification table is shown
    assert sorted(p.name for p in tmp_testapp_migrations.glob("0*.py")) == [
        "0001_initial.py",
        "0002_legacyclient.py",
    ]


@pytest.mark.django_db(transaction=True)
def test_steps_that_need_the_encrypted_columns_say_to_add_them_first(legacy_before_encryption):
    for step in ("--migrate-data", "--verify", "--create-views"):
        with pytest.raises(CommandError, match=r"do not exist in the database yet") as caught:
            run(step)
        assert "--add-columns" in str(caught.value)
        assert f"{TABLE}.email_encrypted_search" in str(caught.value)
    with pytest.raises(CommandError, match="do not exist in the database yet"):
        run("--drop-unencrypted", "--confirm")


@pytest.mark.django_db
def test_verify_fails_the_command_unless_complete():
    make_legacy_clients(1)
    with pytest.raises(CommandError, match="Verification incomplete"):
        run("--verify")
    run("--migrate-data")
    assert Command.VERIFY_COMPLETE in run("--verify")


@pytest.mark.django_db
def test_add_columns_reports_columns_that_exist():
    output = run("--add-columns")
    assert Command.COLUMNS_EXIST.split(":")[0] in output
    assert f"{TABLE}.email_encrypted" in output


@pytest.mark.django_db
def test_every_run_is_recorded_in_the_audit_log():
    from alphapulse_encryption.audit.models import AuditLogEntry

    make_legacy_clients(2)
    call_command("encrypt_migrate", "--migrate-data", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("encrypt_migrate", "--create-views", "--table", "nope", stdout=StringIO())
    runs = list(
        AuditLogEntry.objects.filter(action="migration_run")
        .order_by("pk")
        .values_list("detail", flat=True)
    )
    assert [(r["step"], r["outcome"]) for r in runs] == [
        ("migrate_data", "ok"),
        ("create_views", "error"),
    ]


def test_verify_says_which_columns_were_compared_and_which_only_decrypted():
    from alphapulse_encryption.migration.verify import ColumnReport, VerifyReport

    compared = ColumnReport("t.a_encrypted", "app.T", total=2, migrated=2)
    dropped = ColumnReport("t.b_encrypted", "app.T", total=2, migrated=2, plaintext_dropped=True)
    command = Command()
    assert command._verify_complete(VerifyReport([compared])) == Command.VERIFY_COMPLETE
    assert command._verify_complete(VerifyReport([dropped])) == Command.VERIFY_COMPLETE_DROPPED
    assert command._verify_complete(
        VerifyReport([compared, dropped])
    ) == Command.VERIFY_COMPLETE_PARTLY_DROPPED.format(
        compared="t.a_encrypted", dropped="t.b_encrypted"
    )


def test_nested_commands_write_to_the_callers_streams_not_through_a_second_wrapper():
    from django.core.management.base import OutputWrapper

    from alphapulse_encryption.migration.schema import _nested_options

    out, err = StringIO(), StringIO()
    options = _nested_options(OutputWrapper(out), OutputWrapper(err), 0)
    assert options["stdout"] is out and options["stderr"] is err
    assert options["verbosity"] == 0 and options["interactive"] is False
    assert "stdout" not in _nested_options(None, None, 1)
