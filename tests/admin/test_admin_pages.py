"""Masked admin pages: no plaintext in any HTML for a user without the reveal permission;
masked forms keep or replace values; search by token; no sorting or filtering on
ciphertext."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db import DatabaseError
from django.utils.html import escape

from alphapulse_encryption.admin.widgets import (
    HIDDEN_BY_POLICY,
    HIDDEN_BY_POLICY_NOTE,
    REVEAL_HERE,
    REVEAL_ON_PAGE,
    REVEAL_RECORDED,
)
from alphapulse_encryption.models import AuditLogEntry
from tests.testapp import models

from .conftest import login

pytestmark = pytest.mark.django_db
# A mask as shown to a user who may not reveal it: the title says why it stays hidden.
POLICY_MASK = f'<span class="ape-masked" title="{HIDDEN_BY_POLICY}">'


def _pages(seeded) -> list[str]:
    customer, account = seeded.customer, seeded.account
    return [
        "/admin/testapp/customer/",
        f"/admin/testapp/customer/{customer.pk}/change/",
        f"/admin/testapp/customer/{customer.pk}/history/",
        "/admin/testapp/customer/?q=zephyrine.quill%40alphapulse.example",
        "/admin/testapp/customer/?q=Zephyrine",
        "/admin/testapp/tradingaccount/",
        f"/admin/testapp/tradingaccount/{account.pk}/change/",
        f"/admin/testapp/tradingaccount/{account.pk}/history/",
        f"/admin/testapp/tradingaccount/?q={account.account_number}",
    ]


def _assert_no_plaintext(html: str, plaintexts: list[str], url: str, searched: str = "") -> None:
    for text in plaintexts:
        if text == searched:
            # The search box shows what the user typed, and only that.
            continue
        assert text not in html, f"plaintext {text!r} in {url}"


def test_staff_without_reveal_sees_no_plaintext_on_list_change_history_and_search_pages(
    seeded, viewer, editor
):
    # Some history first: an edit that changes an encrypted value.
    login(editor).post(
        f"/admin/testapp/customer/{seeded.customer.pk}/change/",
        {"email": "", "first_name": "Zephyrina", "notification_settings": ""},
    )
    seeded.plaintexts.append("Zephyrina")
    for user in (viewer, editor):
        client = login(user)
        for url in _pages(seeded):
            response = client.get(url)
            assert response.status_code == 200, url
            searched = url.split("?q=")[-1].replace("%40", "@") if "?q=" in url else ""
            _assert_no_plaintext(response.content.decode(), seeded.plaintexts, url, searched)


def test_list_and_change_pages_show_masks_by_kind(seeded, viewer):
    client = login(viewer)
    listing = client.get("/admin/testapp/customer/").content.decode()
    assert "z***@a***.example" in listing
    assert "****5309" in listing
    assert f'<td class="field-first_name">{POLICY_MASK}••••</span>' in listing
    accounts = client.get("/admin/testapp/tradingaccount/").content.decode()
    assert "****3000" in accounts
    assert f'<td class="field-customer__email">{POLICY_MASK}z***@a***' in accounts
    assert f'<td class="field-balance">{POLICY_MASK}••••</span>' in accounts
    change = client.get(f"/admin/testapp/customer/{seeded.customer.pk}/change/").content.decode()
    assert "{…}" in change  # JSON
    assert "[API secret]" in change  # the admin's own mask for api_secret
    assert "data-reveal-url" not in change  # no reveal button without the permission


def test_inline_rows_of_a_plain_inline_are_masked(seeded, editor):
    html = login(editor).get(f"/admin/testapp/tradingaccount/{seeded.account.pk}/change/")
    content = html.content.decode()
    assert 'name="positions-0-quantity"' in content
    assert 'value="918273"' not in content
    assert content.count(f"{POLICY_MASK}••••</span>") >= 3


def test_masked_form_left_unchanged_keeps_every_stored_value(seeded, editor):
    customer = seeded.customer
    before = models.Customer.objects.get(pk=customer.pk)
    response = login(editor).post(
        f"/admin/testapp/customer/{customer.pk}/change/",
        {"email": "", "phone": "", "first_name": "", "last_name": "", "notification_settings": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    after = models.Customer.objects.get(pk=customer.pk)
    for name in ("email", "phone", "first_name", "last_name", "date_of_birth", "api_secret"):
        assert getattr(after, name) == getattr(before, name), name
    assert after.notification_settings == before.notification_settings
    assert after.is_verified is before.is_verified
    assert not AuditLogEntry.objects.filter(action="change").exists()
    assert LogEntry.objects.get().get_change_message() == "No fields changed."


def test_a_new_value_replaces_the_stored_one_and_the_change_is_audited_by_name(seeded, editor):
    customer = seeded.customer
    response = login(editor).post(
        f"/admin/testapp/customer/{customer.pk}/change/",
        {"email": "New.Address@alphapulse.example", "is_verified": "False", "phone-clear": "on"},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "New.Address@alphapulse.example"
    assert customer.is_verified is False
    assert customer.phone is None
    assert customer.first_name == "Zephyrine"
    entries = AuditLogEntry.objects.filter(action="change").order_by("field_name")
    assert [e.field_name for e in entries] == ["email", "is_verified", "phone"]
    entry = entries[0]
    assert (entry.username, entry.model_label, entry.object_pk) == (
        "editor",
        "testapp.Customer",
        str(customer.pk),
    )
    stored = repr(list(AuditLogEntry.objects.values()))
    assert "new.address" not in stored.lower() and "Zephyrine" not in stored


def test_a_change_is_rolled_back_when_its_audit_entry_cannot_be_written(
    seeded, editor, monkeypatch
):
    def refuse(*args, **kwargs):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr(AuditLogEntry, "save", refuse)
    with pytest.raises(DatabaseError):
        login(editor).post(
            f"/admin/testapp/customer/{seeded.customer.pk}/change/", {"first_name": "Mallory"}
        )
    assert models.Customer.objects.get(pk=seeded.customer.pk).first_name == "Zephyrine"


def test_list_editable_encrypted_fields_are_masked_kept_and_replaced(seeded, editor):
    client = login(editor)
    listing = client.get("/admin/testapp/tradingaccount/").content.decode()
    assert 'name="form-0-risk_profile"' in listing
    assert '<option value="">(keep)</option>' in listing  # the first option: selected
    first, second = sorted(seeded.accounts, key=lambda a: a.pk, reverse=True)  # list order
    response = client.post(
        "/admin/testapp/tradingaccount/",
        {
            "form-TOTAL_FORMS": "2",
            "form-INITIAL_FORMS": "2",
            "form-0-id": str(first.pk),
            "form-0-risk_profile": "high",
            "form-0-label": first.label,
            "form-1-id": str(second.pk),
            "form-1-risk_profile": "",
            "form-1-label": second.label,
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert models.TradingAccount.objects.get(pk=first.pk).risk_profile == "high"
    assert models.TradingAccount.objects.get(pk=second.pk).risk_profile == "medium"
    [entry] = AuditLogEntry.objects.filter(action="change")
    assert (entry.object_pk, entry.field_name) == (str(first.pk), "risk_profile")


def test_an_invalid_new_value_is_refused_and_not_rendered_back(seeded, editor):
    response = login(editor).post(
        f"/admin/testapp/customer/{seeded.customer.pk}/change/",
        {"date_of_birth": "not-a-date-1961", "notification_settings": "{broken"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Enter a valid date." in html
    assert "not-a-date-1961" not in html
    _assert_no_plaintext(html, seeded.plaintexts, "invalid form")


def test_adding_through_the_admin_saves_the_values_and_audits_the_fields(db, editor):
    response = login(editor).post(
        "/admin/testapp/customer/add/",
        {
            "email": "added@alphapulse.example",
            "first_name": "Added",
            "notification_settings": '{"digest": "daily"}',
            "is_verified": "True",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    customer = models.Customer.objects.get(email="added@alphapulse.example")
    assert (customer.first_name, customer.notification_settings) == ("Added", {"digest": "daily"})
    fields = set(AuditLogEntry.objects.filter(action="change").values_list("field_name", flat=True))
    assert {"email", "first_name", "notification_settings", "is_verified"} <= fields


def test_search_matches_the_whole_value_through_the_search_token(seeded, viewer):
    client = login(viewer)

    def found(url: str) -> int:
        return client.get(url).context["cl"].result_count

    assert found("/admin/testapp/customer/?q=ZEPHYRINE.quill%40alphapulse.example") == 1
    assert found("/admin/testapp/customer/?q=zephyrine") == 0  # no partial match
    assert found("/admin/testapp/customer/?q=%2B1-555-867-5309") == 1  # phone, no index
    account = seeded.account
    assert found(f"/admin/testapp/tradingaccount/?q={account.account_number}") == 1
    assert found("/admin/testapp/tradingaccount/?q=octavian.brisk%40alphapulse.example") == 1
    assert found("/admin/testapp/tradingaccount/?q=book-1") == 1  # plaintext field still works


def test_the_search_box_shows_when_every_search_field_is_encrypted(seeded, viewer):
    customers = admin.site._registry[models.Customer]
    original = customers.search_fields
    customers.search_fields = ["email", "=phone"]
    try:
        response = login(viewer).get("/admin/testapp/customer/")
        assert 'id="searchbar"' in response.content.decode()
        found = login(viewer).get("/admin/testapp/customer/?q=ZEPHYRINE.quill%40alphapulse.example")
        assert found.context["cl"].result_count == 1
    finally:
        customers.search_fields = original


def test_encrypted_fields_leave_ordering_sorting_and_filters(seeded, viewer, rf):
    request = rf.get("/")
    request.user = viewer
    customers = admin.site._registry[models.Customer]
    accounts = admin.site._registry[models.TradingAccount]
    assert customers.get_ordering(request) == ["-created"]
    assert customers.get_list_filter(request) == ["created"]
    assert accounts.get_list_filter(request) == ["label"]
    assert accounts.get_sortable_by(request) == ["id", "label"]
    response = login(viewer).get("/admin/testapp/customer/?o=2")  # 2 is the email column
    assert response.status_code == 200


def test_export_action_of_another_mixin_writes_masks(seeded, editor):
    response = login(editor).post(
        "/admin/testapp/customer/",
        {"action": "export_csv", "_selected_action": [c.pk for c in seeded.customers]},
    )
    body = response.content.decode()
    assert "z***@a***.example,****5309,••••" in body
    _assert_no_plaintext(body, seeded.plaintexts, "export")


def test_undecryptable_value_is_shown_as_such_in_the_list(seeded, viewer):
    from django.db import connection

    table = connection.ops.quote_name(models.Customer._meta.db_table)
    with connection.cursor() as cursor:
        # The e-mail's ciphertext in the last-name column: authenticated for another context.
        cursor.execute(
            f"UPDATE {table} SET last_name = (SELECT email FROM {table} WHERE id = %s) "
            "WHERE id = %s",
            [seeded.customers[1].pk, seeded.customer.pk],
        )
    html = login(viewer).get("/admin/testapp/customer/").content.decode()
    assert "undecryptable" in html
    entry = AuditLogEntry.objects.get(action="decryption_failed")
    assert (entry.username, entry.field_name) == ("viewer", "last_name")


def test_a_user_who_may_not_reveal_is_told_the_values_are_hidden_by_policy(seeded, editor):
    client = login(editor)
    listing = client.get("/admin/testapp/customer/").content.decode()
    assert HIDDEN_BY_POLICY_NOTE in listing  # once, above the list
    assert listing.count(HIDDEN_BY_POLICY_NOTE) == 1
    assert "ape-reveal" not in listing
    change = client.get(f"/admin/testapp/customer/{seeded.customer.pk}/change/").content.decode()
    # In the form, in words beside each masked value (there is room), and in its title.
    assert f'{POLICY_MASK}z***@a***.example</span> <small class="ape-policy"' in change
    assert change.count(">hidden by policy</small>") >= 6
    # The next page shows no stale copy of the note.
    assert HIDDEN_BY_POLICY_NOTE not in client.get("/admin/").content.decode()


def test_a_user_who_may_reveal_gets_reveal_and_hide_buttons_and_no_policy_note(seeded, revealer):
    client = login(revealer)
    listing = client.get("/admin/testapp/customer/").content.decode()
    assert HIDDEN_BY_POLICY_NOTE not in listing and HIDDEN_BY_POLICY not in listing
    on_page = escape(REVEAL_ON_PAGE)
    assert f'<span class="ape-masked" title="{on_page}">z***@a***.example' in listing
    change = client.get(f"/admin/testapp/customer/{seeded.customer.pk}/change/").content.decode()
    assert HIDDEN_BY_POLICY not in change and "ape-policy" not in change
    assert f'<span class="ape-masked" title="{REVEAL_HERE}">z***@a***.example' in change
    group = change.split('<span class="ape-reveal-group">', 2)[1].split("</span>", 1)[0]
    assert 'class="button ape-reveal"' in group
    # Hidden until a reveal succeeds (reveal.js; tests/admin/test_browser.py clicks them).
    assert '<button type="button" class="button ape-hide" hidden>Hide</button>' in group
    assert f'<small class="ape-reveal-note" role="status" hidden>{REVEAL_RECORDED}' in group
