"""The change view of an object whose stored value fails to decrypt: it opens, shows
"undecryptable", lets a user with change permission replace the value (audited), and
keeps the stored bytes when the input is left empty."""

from __future__ import annotations

import pytest

from alphapulse_encryption.models import AuditLogEntry
from tests.testapp import models

from .conftest import login, stored, tamper

pytestmark = pytest.mark.django_db


def _change_url(obj) -> str:
    return f"/admin/testapp/{obj._meta.model_name}/{obj.pk}/change/"


def _field_html(html: str, name: str) -> str:
    return html.split(f'class="form-row field-{name}', 1)[1].split('class="form-row', 1)[0]


@pytest.mark.parametrize("user", ["editor", "viewer"])
def test_the_change_view_opens_and_shows_undecryptable(seeded, request, user):
    customer = seeded.customer
    tamper(models.Customer, customer.pk, "first_name", source="last_name")

    response = login(request.getfixturevalue(user)).get(_change_url(customer))

    assert response.status_code == 200
    html = response.content.decode()
    assert "undecryptable" in _field_html(html, "first_name")
    assert "z***@a***.example" in _field_html(html, "email")  # the other values as before
    assert "Traceback" not in html
    for plaintext in seeded.plaintexts:
        assert plaintext not in html
    entry = AuditLogEntry.objects.filter(action="decryption_failed").latest("id")
    assert (entry.username, entry.object_pk, entry.field_name) == (
        user,
        str(customer.pk),
        "first_name",
    )


def test_a_new_value_replaces_the_undecryptable_one_and_the_change_is_audited(seeded, editor):
    customer = seeded.customer
    tamper(models.Customer, customer.pk, "first_name", source="last_name")

    response = login(editor).post(_change_url(customer), {"first_name": "Zenobia"})

    assert response.status_code == 302, response.content.decode()[:3000]
    after = models.Customer.objects.get(pk=customer.pk)
    assert after.first_name == "Zenobia"
    assert (after.last_name, after.email) == ("Quillfeather", customer.email)
    [entry] = AuditLogEntry.objects.filter(action="change")
    assert (entry.username, entry.object_pk, entry.field_name) == (
        "editor",
        str(customer.pk),
        "first_name",
    )


def test_an_empty_input_keeps_the_stored_bytes_while_other_fields_change(seeded, editor):
    customer = seeded.customer
    tamper(models.Customer, customer.pk, "first_name", source="last_name")
    before = stored(models.Customer, customer.pk, "first_name")

    response = login(editor).post(
        _change_url(customer), {"first_name": "", "email": "moved@alphapulse.example"}
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    assert stored(models.Customer, customer.pk, "first_name") == before
    assert models.Customer.objects.get(pk=customer.pk).email == "moved@alphapulse.example"
    changed = AuditLogEntry.objects.filter(action="change").values_list("field_name", flat=True)
    assert list(changed) == ["email"]


def test_an_undecryptable_unique_searchable_value_can_be_kept_or_replaced(seeded, editor):
    customer, other = seeded.customers
    tamper(models.Customer, customer.pk, "email", source="phone")
    client = login(editor)
    page = client.get(_change_url(customer)).content.decode()
    assert "undecryptable" in _field_html(page, "email")
    before = stored(models.Customer, customer.pk, "email")

    kept = client.post(_change_url(customer), {"email": "", "first_name": "Zita"})
    assert kept.status_code == 302, kept.content.decode()[:3000]
    assert stored(models.Customer, customer.pk, "email") == before
    taken = client.post(_change_url(customer), {"email": other.email})
    assert taken.status_code == 200  # the new value is checked for uniqueness
    assert "already exists" in taken.content.decode()
    replaced = client.post(_change_url(customer), {"email": "zephyrine@alphapulse.example"})
    assert replaced.status_code == 302
    assert models.Customer.objects.get(email="zephyrine@alphapulse.example").pk == customer.pk


def test_an_undecryptable_inline_value_opens_in_the_parent_change_view(seeded, editor):
    position = seeded.positions[0]
    tamper(models.Position, position.pk, "quantity", source="average_price")

    response = login(editor).get(_change_url(seeded.account))

    assert response.status_code == 200
    assert "undecryptable" in response.content.decode()
