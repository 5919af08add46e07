"""The audit log: hash-chained entries, audit_verify, read-only in the admin, and the
entries written for failed decryptions and key operations."""

from __future__ import annotations

import getpass
import socket
import sys
import threading
from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection

from alphapulse_encryption.audit import log as audit
from alphapulse_encryption.audit.log import entry_hash
from alphapulse_encryption.crypto import DecryptionError
from alphapulse_encryption.keys.events import record_key_operation
from alphapulse_encryption.management.commands.audit_verify import Command
from alphapulse_encryption.models import AuditChainHead, AuditLogEntry
from tests.testapp import models

from .conftest import login

pytestmark = pytest.mark.django_db


def _write(count: int) -> list[AuditLogEntry]:
    return [
        audit.record("key_operation", detail={"operation": "test", "n": n}) for n in range(count)
    ]


def _verify() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("audit_verify", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _verify_fails() -> str:
    err = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("audit_verify", stdout=StringIO(), stderr=err)
    return err.getvalue() + str(failure.value)


def test_entries_are_chained_and_verify_reports_an_intact_chain():
    AuditLogEntry.objects.all().delete()
    AuditChainHead.objects.all().delete()
    first, second, third = _write(3)

    assert first.previous_hash == "0" * 64
    assert (second.previous_hash, third.previous_hash) == (first.hash, second.hash)
    stored = AuditLogEntry.objects.get(pk=second.pk)
    assert entry_hash(stored) == stored.hash  # what the database returns hashes the same
    assert AuditChainHead.objects.get().entries == 3
    assert _verify() == (Command.INTACT.format(checked=3) + "\n", "")


def test_audit_verify_reports_an_edited_entry():
    entries = _write(3)
    AuditLogEntry.objects.filter(pk=entries[1].pk).update(username="someone-else")

    report = _verify_fails()

    assert Command.EDITED.format(entry_id=entries[1].pk) in report
    assert Command.FAILED.format(count=1) in report


def test_audit_verify_reports_a_deleted_entry():
    entries = _write(4)
    AuditLogEntry.objects.filter(pk=entries[1].pk).delete()

    report = _verify_fails()

    assert Command.BROKEN.format(entry_id=entries[2].pk, previous_id=entries[0].pk) in report


def test_audit_verify_reports_entries_deleted_from_the_end():
    entries = _write(3)
    total = AuditLogEntry.objects.count()
    AuditLogEntry.objects.filter(pk=entries[-1].pk).delete()

    report = _verify_fails()

    assert (
        Command.TRUNCATED.format(entry_id=entries[-2].pk, expected=total, found=total - 1) in report
    )


def test_a_rewritten_entry_with_a_recomputed_hash_still_breaks_the_chain():
    entries = _write(3)
    forged = AuditLogEntry.objects.get(pk=entries[1].pk)
    forged.username = "someone-else"
    forged.hash = entry_hash(forged)
    forged.save()

    report = _verify_fails()

    assert Command.BROKEN.format(entry_id=entries[2].pk, previous_id=entries[1].pk) in report


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite serialises writers by locking the database"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_the_chain_linear():
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            _write(5)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert _verify()[1] == ""
    assert AuditChainHead.objects.get().entries == AuditLogEntry.objects.count()


def test_the_admin_shows_the_audit_log_read_only(db):
    entry = _write(1)[0]
    superuser = User.objects.create_superuser("root", "root@example.com", None)
    client = login(superuser)
    base = "/admin/alphapulse_encryption/auditlogentry/"

    listing = client.get(base)
    assert listing.status_code == 200
    assert "delete_selected" not in listing.content.decode()
    change = client.get(f"{base}{entry.pk}/change/")
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{entry.pk}/change/", {"username": "x"}).status_code == 403
    assert client.post(f"{base}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(base, {"action": "delete_selected", "_selected_action": [entry.pk]})
    assert bulk.status_code == 200  # "no action selected": the action does not exist
    assert AuditLogEntry.objects.filter(pk=entry.pk, username="").exists()


def test_permissions_exist_for_viewing_and_revealing_only(db):
    codenames = set(
        Permission.objects.filter(content_type__app_label="alphapulse_encryption").values_list(
            "codename", flat=True
        )
    )
    assert {"view_auditlogentry", "reveal_encrypted"} <= codenames
    assert not {"add_auditlogentry", "change_auditlogentry", "delete_auditlogentry"} & codenames
    per_model = Permission.objects.filter(content_type__app_label="testapp")
    assert {"reveal_customer", "reveal_tradingaccount", "reveal_legacyclient"} <= set(
        per_model.values_list("codename", flat=True)
    )
    assert not Permission.objects.filter(codename="reveal_user").exists()  # nothing encrypted


def test_a_failed_decryption_is_audited_with_the_object_and_field(seeded):
    table = connection.ops.quote_name(models.Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET first_name = last_name WHERE id = %s", [seeded.customer.pk]
        )
    customer = models.Customer.objects.get(pk=seeded.customer.pk)

    with pytest.raises(DecryptionError):
        customer.first_name  # noqa: B018

    entry = AuditLogEntry.objects.get(action="decryption_failed")
    assert (entry.model_label, entry.object_pk, entry.field_name, entry.username) == (
        "testapp.Customer",
        str(customer.pk),
        "first_name",
        "",
    )
    assert entry.detail == {
        "reason": "authentication_failed",
        "key_version": 1,
        **_process_origin(),  # no request: the process that read the value
    }


def test_key_operations_are_audited(db):
    record_key_operation("rotate", User, 2, fingerprint="ab12cd34")

    entry = AuditLogEntry.objects.filter(action="key_operation").latest("id")
    assert entry.detail == {
        "operation": "rotate",
        "provider": "User",
        "key_version": 2,
        "fingerprint": "ab12cd34",
        **_process_origin(),
    }


def _process_origin() -> dict[str, str]:
    return {"os_user": getpass.getuser(), "host": socket.gethostname(), "command": "pytest"}


def test_an_entry_without_a_request_names_the_os_user_host_and_command(db, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["manage.py", "encryption_keys", "rotate", "--yes"])
    monkeypatch.setattr(getpass, "getuser", lambda: "deploy")
    monkeypatch.setattr(socket, "gethostname", lambda: "ops-01")

    entry = audit.record("key_operation", detail={"operation": "rotate"})

    assert entry.detail == {
        "operation": "rotate",
        "os_user": "deploy",
        "host": "ops-01",
        "command": "encryption_keys",  # the command's name only, never its arguments
    }
    assert entry_hash(AuditLogEntry.objects.get(pk=entry.pk)) == entry.hash
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/site-packages/django/__main__.py", "x"])
    assert audit.record("key_operation").detail["command"] == "x"  # python -m django x


def test_an_entry_with_a_request_names_no_os_user(db, rf):
    request = rf.get("/", REMOTE_ADDR="203.0.113.9")
    request.user = User.objects.create_user("clerk")

    by_user = audit.record("reveal", request=request)
    request.user = AnonymousUser()
    anonymous = audit.record("reveal_denied", request=request)

    assert (by_user.username, by_user.detail) == ("clerk", {})
    assert (anonymous.username, anonymous.ip_address, anonymous.detail) == ("", "203.0.113.9", {})


def test_a_failed_audit_write_does_not_change_the_decryption_error(seeded, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise DatabaseError("audit table unavailable")

    table = connection.ops.quote_name(models.Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET first_name = last_name WHERE id = %s", [seeded.customer.pk]
        )
    customer = models.Customer.objects.get(pk=seeded.customer.pk)
    monkeypatch.setattr(AuditLogEntry, "save", refuse)

    with pytest.raises(DecryptionError):
        customer.first_name  # noqa: B018

    assert "audit entry (decryption_failed) not written: DatabaseError" in caplog.text
