"""The reveal flow in a real browser: Debian's Chromium driven by Playwright against the
live server. Without the browser the test is skipped with the reason, and fails under
``CI=true`` (CI installs it; see .ci/run). ``CHROMIUM`` names another binary.

Screenshots go to pytest's temporary directory; with ``UPDATE_SCREENSHOTS=1`` they
replace the ones in docs/images/ that docs/admin.md shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from alphapulse_encryption.models import AuditLogEntry

from ..conftest import needs
from .conftest import _seed

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SCREENSHOTS = ("admin-masked-list.png", "admin-change-form.png", "admin-revealed.png")


needs_chromium = needs(CHROMIUM.exists(), f"no browser at {CHROMIUM} (apt-get install chromium)")


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_reveal_in_a_browser_shows_the_value_and_writes_the_audit_entry(
    live_server, settings, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seeded = _seed()
    customer = seeded.customer
    User.objects.create_superuser("admin", "admin@alphapulse.example", "browser-test-pw")
    shots = DOCS_IMAGES if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)

    # No ORM inside this block: Playwright runs an event loop in this thread, and Django
    # refuses synchronous database access while one runs.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 640})
            page.goto(f"{live_server.url}/admin/login/?next=/admin/testapp/customer/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", "browser-test-pw")
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/testapp/customer/")
            expect(page.locator("td.field-email").last).to_have_text("z***@a***.example")
            listing = page.content()
            page.locator("#toggle-nav-sidebar").click()  # more room for the columns
            page.screenshot(path=str(shots / SCREENSHOTS[0]))

            page.goto(f"{live_server.url}/admin/testapp/customer/{customer.pk}/change/")
            masked = page.content()
            page.screenshot(path=str(shots / SCREENSHOTS[1]), full_page=True)

            page.locator(".field-email button.ape-reveal").click()
            revealed = page.locator(".field-email output.ape-revealed")
            expect(revealed).to_have_text(customer.email)
            page.locator(".field-email").screenshot(path=str(shots / SCREENSHOTS[2]))
        finally:
            browser.close()

    for html in (listing, masked):
        for plaintext in seeded.plaintexts:
            assert plaintext not in html
    [entry] = AuditLogEntry.objects.filter(action="reveal")
    assert (entry.username, entry.model_label, entry.object_pk, entry.field_name) == (
        "admin",
        "testapp.Customer",
        str(customer.pk),
        "email",
    )
    assert entry.ip_address == "127.0.0.1"
    assert "Chrome" in entry.user_agent
    for name in SCREENSHOTS:
        assert (shots / name).stat().st_size > 1000
        assert (DOCS_IMAGES / name).exists(), f"docs/images/{name} is missing"
