"""Abuse of the reveal view beyond tests/admin/test_reveal.py: refusals by method and CSRF
are audited too, sessions and CSRF tokens cannot be borrowed, hostile ids and field names
are refused, and the documented rate limit holds per user across sessions. Every refused
attempt by a logged-in staff user leaves exactly one ``reveal_denied`` entry."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client

from alphapulse_encryption.admin import EncryptedFieldsAdminMixin
from alphapulse_encryption.audit.log import verify
from alphapulse_encryption.models import AuditLogEntry
from tests.testapp import models

from .conftest import login, reveal_url

pytestmark = pytest.mark.django_db

REFUSED = EncryptedFieldsAdminMixin.REVEAL_REFUSED
SECRET = "zephyrine"


def _denied(reason: str | None = None) -> list[AuditLogEntry]:
    entries = AuditLogEntry.objects.filter(action="reveal_denied").order_by("id")
    return [e for e in entries if reason is None or e.detail.get("reason") == reason]


def _reveals() -> int:
    return AuditLogEntry.objects.filter(action="reveal").count()


@pytest.mark.parametrize("method", ["get", "head", "put", "delete", "options"])
def test_every_method_but_post_is_refused_and_audited(seeded, revealer, method):
    response = getattr(login(revealer), method)(reveal_url(seeded.customer, "email"))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert SECRET not in response.content.decode()
    [entry] = _denied("method")
    assert (entry.username, entry.field_name, entry.object_pk) == (
        "revealer",
        "email",
        str(seeded.customer.pk),
    )
    assert _reveals() == 0


def test_a_cross_site_post_is_refused_and_audited(seeded, revealer):
    client = login(revealer, enforce_csrf_checks=True)
    response = client.post(
        reveal_url(seeded.customer, "email"),
        HTTP_ORIGIN="https://evil.example",
        HTTP_REFERER="https://evil.example/phish",
    )
    assert response.status_code == 403
    assert response.json() == {"error": REFUSED["csrf"]}
    [entry] = _denied("csrf")
    assert entry.username == "revealer"
    assert _reveals() == 0


def test_a_csrf_token_from_another_users_session_is_refused(seeded, revealer, viewer):
    """The viewer replays a token the revealer's page carried: it matches no secret of
    the viewer's, so the request is refused before any permission is looked at."""
    theirs = login(revealer, enforce_csrf_checks=True)
    theirs.get(f"/admin/testapp/customer/{seeded.customer.pk}/change/")
    borrowed = theirs.cookies["csrftoken"].value
    mine = login(viewer, enforce_csrf_checks=True)
    mine.get(f"/admin/testapp/customer/{seeded.customer.pk}/change/")
    response = mine.post(reveal_url(seeded.customer, "email"), HTTP_X_CSRFTOKEN=borrowed)
    assert response.status_code == 403
    assert [e.username for e in _denied("csrf")] == ["viewer"]
    # With a token of the revealer's and the revealer's session: served (the control).
    response = theirs.post(reveal_url(seeded.customer, "email"), HTTP_X_CSRFTOKEN=borrowed)
    assert response.status_code == 200


def test_a_session_cookie_replayed_after_logout_reveals_nothing(seeded, revealer):
    client = login(revealer)
    stolen = client.cookies["sessionid"].value
    assert client.post(reveal_url(seeded.customer, "email")).status_code == 200
    client.post("/admin/logout/")
    replay = Client()
    replay.cookies["sessionid"] = stolen
    response = replay.post(reveal_url(seeded.customer, "email"))
    # Anonymous requests go to the login page and never reach the view: they are not
    # audited (anyone could fill the log with them); the server's access log has them.
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert SECRET not in response.content.decode()
    assert _reveals() == 1


def test_the_session_of_a_user_whose_permission_was_withdrawn_is_refused(seeded, revealer):
    client = login(revealer)
    assert client.post(reveal_url(seeded.customer, "email")).status_code == 200
    revealer.user_permissions.clear()
    response = client.post(reveal_url(seeded.customer, "email"))
    assert response.status_code == 403
    assert len(_denied("permission")) == 1


@pytest.mark.parametrize(
    ("object_id", "field_name"),
    [
        ("1' OR '1'='1", "email"),
        ("1;DROP TABLE testapp_customer", "email"),
        ("9" * 40, "email"),  # beyond any integer column
        ("-1", "email"),
        ("%00", "email"),
        ("{pk}", "email_search__startswith"),
        ("{pk}", "x" * 300),
        ("{pk}", "pk"),
        ("{pk}", "__class__"),
    ],
)
def test_hostile_object_ids_and_field_names_are_refused_and_audited(
    seeded, revealer, object_id, field_name
):
    object_id = object_id.format(pk=seeded.customer.pk)
    url = f"/admin/testapp/customer/reveal/testapp.customer/{object_id}/{field_name}/"
    response = login(revealer).post(url)
    assert response.status_code == 404
    assert response.json() == {"error": REFUSED["not_found"]}
    [entry] = _denied("not_found")
    assert len(entry.field_name) <= 255 and len(entry.object_pk) <= 255
    assert _reveals() == 0
    assert models.Customer.objects.count() == 2


def test_the_documented_rate_limit_holds_and_each_refusal_is_audited(seeded, revealer):
    limit, _ = EncryptedFieldsAdminMixin.reveal_rate_limit  # 30 per 60 s
    client = login(revealer)
    statuses = [
        client.post(reveal_url(seeded.customer, "email")).status_code for _ in range(limit + 15)
    ]
    assert statuses == [200] * limit + [429] * 15
    assert _reveals() == limit
    assert len(_denied("rate_limited")) == 15


def test_the_rate_limit_follows_the_user_across_sessions_and_no_one_else(
    seeded, revealer, customer_revealer, monkeypatch
):
    monkeypatch.setattr(admin.site._registry[models.Customer], "reveal_rate_limit", (3, 60))
    first, second = login(revealer), login(revealer)
    url = reveal_url(seeded.customer, "email")
    assert [first.post(url).status_code for _ in range(2)] == [200, 200]
    assert [second.post(url).status_code for _ in range(2)] == [200, 429]
    assert login(customer_revealer).post(url).status_code == 200
    assert [e.username for e in _denied("rate_limited")] == ["revealer"]


def test_one_audit_entry_per_refused_attempt_and_the_chain_stays_intact(seeded, revealer, viewer):
    url = reveal_url(seeded.customer, "email")
    attempts = [
        lambda: login(viewer).post(url),  # permission
        lambda: login(revealer).get(url),  # method
        lambda: login(revealer, enforce_csrf_checks=True).post(url),  # csrf
        lambda: login(revealer).post(url.replace("/email/", "/nope/")),  # not found
    ]
    for attempt in attempts:
        assert attempt().status_code in (403, 404, 405)
    reasons = sorted(e.detail["reason"] for e in _denied())
    assert reasons == ["csrf", "method", "not_found", "permission"]
    assert verify().ok
