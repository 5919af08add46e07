"""The audit log's admin list: every entry says what happened, who, on what, from where,
and the result, key operations and command-line entries included."""

from __future__ import annotations

import getpass
import re
import socket
import sys

import pytest
from django.contrib.auth.models import User

from alphapulse_encryption.audit import log as audit
from alphapulse_encryption.keys import DatabaseKeyProvider, SettingsKeyProvider
from alphapulse_encryption.keys.events import record_key_operation
from alphapulse_encryption.models import AuditLogEntry
from tests.testapp import models

from .conftest import login

pytestmark = pytest.mark.django_db

LIST = "/admin/alphapulse_encryption/auditlogentry/"
COLUMNS = ("what", "who", "on_what", "from_where", "result")
_CELL = re.compile(r'<td class="field-(\w+)">(.*?)</td>', re.S)
_TAG = re.compile(r"<[^>]+>")


def _rows(html: str) -> list[dict[str, str]]:
    body = html.split('<table id="result_list">', 1)[1].split("</table>", 1)[0]
    rows = []
    for row in body.split("<tr")[2:]:  # the header row first
        cells = {name: _TAG.sub("", text).strip() for name, text in _CELL.findall(row)}
        rows.append({name: cells[name] for name in COLUMNS})
    return rows


@pytest.fixture
def from_a_command(monkeypatch):
    """Entries written as by ``manage.py encryption_keys ...`` run by deploy@ops-01."""
    monkeypatch.setattr(sys, "argv", ["manage.py", "encryption_keys", "rotate"])
    monkeypatch.setattr(getpass, "getuser", lambda: "deploy")
    monkeypatch.setattr(socket, "gethostname", lambda: "ops-01")


def test_each_entry_shows_what_who_on_what_from_where_and_the_result(from_a_command, rf):
    clerk = User.objects.create_user("clerk", is_staff=True)
    request = rf.post("/", REMOTE_ADDR="203.0.113.9")
    request.user = clerk
    customer = models.Customer
    record_key_operation("load", SettingsKeyProvider, 1, versions=[1])
    record_key_operation("rotate", DatabaseKeyProvider, 2, fingerprint="ab12")
    record_key_operation("retire", DatabaseKeyProvider, 1, fingerprint="cd34")
    record_key_operation("decrypt_failed", DatabaseKeyProvider, 3, reason="unknown_key_version")
    audit.record("reveal", request=request, model=customer, object_pk=7, field_name="email")
    audit.record(
        "reveal_denied",
        request=request,
        model=customer,
        object_pk=7,
        field_name="phone",
        detail={"reason": "rate_limited"},
    )
    audit.record(
        "change",
        request=request,
        model=customer,
        object_pk=7,
        field_name="first_name",
        detail={"via": "admin", "added": False},
    )
    audit.record(
        "decryption_failed",
        model=customer,
        object_pk=8,
        field_name="last_name",
        detail={"reason": "authentication_failed", "key_version": 1},
    )
    audit.record("migration_run", detail={"step": "migrate_data", "table": "t", "outcome": "error"})
    superuser = User.objects.create_superuser("root", "root@example.com", None)

    response = login(superuser).get(LIST)

    assert response.status_code == 200
    command = {"who": "deploy@ops-01", "from_where": "command encryption_keys"}
    by_clerk = {"who": "clerk", "from_where": "203.0.113.9"}
    assert list(reversed(_rows(response.content.decode()))) == [
        {"what": "key load, v1", "on_what": "SettingsKeyProvider", "result": "ok", **command},
        {"what": "key rotate, v2", "on_what": "DatabaseKeyProvider", "result": "ok", **command},
        {"what": "key retire, v1", "on_what": "DatabaseKeyProvider", "result": "ok", **command},
        {
            "what": "key decrypt failed, v3",
            "on_what": "DatabaseKeyProvider",
            "result": "failed: unknown key version",
            **command,
        },
        {
            "what": "reveal",
            "on_what": "testapp.Customer #7 · email",
            "result": "revealed",
            **by_clerk,
        },
        {
            "what": "reveal denied",
            "on_what": "testapp.Customer #7 · phone",
            "result": "refused: rate limited",
            **by_clerk,
        },
        {
            "what": "change",
            "on_what": "testapp.Customer #7 · first_name",
            "result": "changed",
            **by_clerk,
        },
        {
            "what": "decryption failed",
            "on_what": "testapp.Customer #8 · last_name",
            "result": "failed: authentication failed",
            **command,
        },
        {"what": "migration: migrate data", "on_what": "t", "result": "error", **command},
    ]


def test_an_entry_page_shows_the_summary_and_the_stored_columns(from_a_command):
    record_key_operation("rotate", DatabaseKeyProvider, 2, fingerprint="ab12")
    entry = AuditLogEntry.objects.get(detail__operation="rotate")
    superuser = User.objects.create_superuser("root", "root@example.com", None)

    html = login(superuser).get(f"{LIST}{entry.pk}/change/").content.decode()

    text = _TAG.sub("", html)
    for shown in ("key rotate, v2", "deploy@ops-01", "command encryption_keys", entry.hash):
        assert shown in text
    assert 'name="_save"' not in html
