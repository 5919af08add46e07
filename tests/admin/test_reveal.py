"""The reveal view: POST only, CSRF-protected, permission-checked, rate-limited, one field
of one object, and never without its audit entry."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import DatabaseError

from alphapulse_encryption.admin import EncryptedFieldsAdminMixin
from alphapulse_encryption.models import AuditLogEntry
from tests.testapp import models

from .conftest import login, reveal_url

pytestmark = pytest.mark.django_db

REFUSED = EncryptedFieldsAdminMixin.REVEAL_REFUSED


def _entries(action: str) -> list[AuditLogEntry]:
    return list(AuditLogEntry.objects.filter(action=action).order_by("id"))


def test_reveal_returns_one_field_and_writes_exactly_one_audit_entry(seeded, revealer):
    client = login(revealer)
    customer = seeded.customer
    before = AuditLogEntry.objects.count()  # the key load when the data was seeded

    response = client.post(
        reveal_url(customer, "email"), HTTP_USER_AGENT="pytest-agent/1.0", REMOTE_ADDR="10.1.2.3"
    )

    assert response.status_code == 200
    assert response.json() == {"field": "email", "value": "zephyrine.quill@alphapulse.example"}
    assert "no-store" in response["Cache-Control"]
    [entry] = _entries("reveal")
    assert (entry.user, entry.username, entry.model_label, entry.object_pk, entry.field_name) == (
        revealer,
        "revealer",
        "testapp.Customer",
        str(customer.pk),
        "email",
    )
    assert (entry.ip_address, entry.user_agent) == ("10.1.2.3", "pytest-agent/1.0")
    assert AuditLogEntry.objects.count() == before + 1

    assert client.post(reveal_url(customer, "notification_settings")).json()["value"] == (
        '{"digest": "weekly-pigeon-0"}'
    )
    assert client.post(reveal_url(customer, "date_of_birth")).json()["value"] == "1961-07-19"
    assert len(_entries("reveal")) == 3


def test_change_page_offers_reveal_buttons_only_with_the_permission(seeded, revealer, viewer):
    page = f"/admin/testapp/customer/{seeded.customer.pk}/change/"
    with_permission = login(revealer).get(page).content.decode()
    assert f'data-reveal-url="{reveal_url(seeded.customer, "email")}"' in with_permission
    assert "alphapulse_encryption/admin/reveal.js" in with_permission
    assert "data-reveal-url" not in login(viewer).get(page).content.decode()


def test_fields_of_inline_objects_are_revealed_through_the_parent_admin(seeded, revealer):
    position = seeded.positions[0]
    url = reveal_url(position, "quantity", parent="tradingaccount")
    page = login(revealer).get(f"/admin/testapp/tradingaccount/{seeded.account.pk}/change/")
    assert url in page.content.decode()

    assert login(revealer).post(url).json() == {"field": "quantity", "value": "918273"}
    assert _entries("reveal")[0].model_label == "testapp.Position"


def test_the_per_model_permission_reveals_that_model_only(seeded, customer_revealer):
    client = login(customer_revealer)
    assert client.post(reveal_url(seeded.customer, "phone")).status_code == 200
    response = client.post(reveal_url(seeded.account, "account_number"))
    assert response.status_code == 403
    assert response.json() == {"error": REFUSED["permission"]}
    assert seeded.account.account_number not in response.content.decode()


def test_without_the_permission_the_reveal_is_refused_and_audited(seeded, viewer):
    response = login(viewer).post(reveal_url(seeded.customer, "email"))

    assert response.status_code == 403
    assert "zephyrine" not in response.content.decode()
    [entry] = _entries("reveal_denied")
    assert (entry.username, entry.field_name, entry.detail) == (
        "viewer",
        "email",
        {"reason": "permission"},
    )
    assert not _entries("reveal")


def test_get_is_refused(seeded, revealer):
    response = login(revealer).get(reveal_url(seeded.customer, "email"))
    assert response.status_code == 405
    assert "zephyrine" not in response.content.decode()
    assert not _entries("reveal")


def test_cross_site_post_without_csrf_token_is_refused(seeded, revealer):
    client = login(revealer, enforce_csrf_checks=True)
    response = client.post(reveal_url(seeded.customer, "email"), HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert "zephyrine" not in response.content.decode()
    assert not _entries("reveal")


def test_same_site_post_with_csrf_token_is_served(seeded, revealer):
    client = login(revealer, enforce_csrf_checks=True)
    client.get(f"/admin/testapp/customer/{seeded.customer.pk}/change/")  # sets the cookie
    token = client.cookies["csrftoken"].value
    response = client.post(reveal_url(seeded.customer, "email"), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("label", "object_id", "field_name"),
    [
        ("testapp.customer", "{pk}", "no_such_field"),
        ("testapp.customer", "{pk}", "created"),  # not encrypted
        ("testapp.customer", "{pk}", "email_search"),  # the token, not encrypted
        ("testapp.customer", "999999", "email"),  # no such object
        ("testapp.customer", "not-a-pk", "email"),
        ("auth.user", "1", "password"),  # not this admin's model
        ("testapp.tradingaccount", "{account_pk}", "metadata"),  # excluded from its admin
    ],
)
def test_forged_model_object_or_field_is_refused(seeded, revealer, label, object_id, field_name):
    object_id = object_id.format(pk=seeded.customer.pk, account_pk=seeded.account.pk)
    admin_of = "tradingaccount" if label == "testapp.tradingaccount" else "customer"
    url = f"/admin/testapp/{admin_of}/reveal/{label}/{object_id}/{field_name}/"

    response = login(revealer).post(url)

    assert response.status_code == 404
    assert response.json() == {"error": REFUSED["not_found"]}
    assert not _entries("reveal")
    assert _entries("reveal_denied")[0].detail["reason"] == "not_found"


def test_non_staff_users_are_sent_to_the_login_page(seeded, revealer):
    revealer.is_staff = False
    revealer.save()
    response = login(revealer).post(reveal_url(seeded.customer, "email"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_rate_limit_refusal_is_audited(seeded, revealer, monkeypatch):
    customer_admin = admin.site._registry[models.Customer]
    monkeypatch.setattr(customer_admin, "reveal_rate_limit", (2, 60))
    client = login(revealer)

    statuses = [client.post(reveal_url(seeded.customer, "email")).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert len(_entries("reveal")) == 2
    [denied] = _entries("reveal_denied")
    assert denied.detail == {"reason": "rate_limited"}


def test_a_failed_audit_write_fails_the_reveal(seeded, revealer, monkeypatch):
    def refuse(*args, **kwargs):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr(AuditLogEntry, "save", refuse)

    response = login(revealer).post(reveal_url(seeded.customer, "email"))

    assert response.status_code == 503
    assert response.json() == {"error": EncryptedFieldsAdminMixin.REVEAL_NOT_AUDITED}
    assert "zephyrine" not in response.content.decode()
