"""The admin in a real browser: Debian's Chromium driven by Playwright. Without the
browser the tests are skipped with the reason, and fail under ``CI=true`` (CI installs
it; see .ci/run). ``CHROMIUM`` names another binary.

The example back office is served (tests/admin/example_site.py) on a database of its own
on the server the run uses, and every admin page of it is checked for plaintext. Its
screenshots go to pytest's temporary directory; with ``UPDATE_SCREENSHOTS=1`` they
replace the ones in docs/images/ that docs/admin.md shows."""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from alphapulse_encryption.admin.widgets import HIDDEN_BY_POLICY_NOTE, REVEAL_RECORDED
from alphapulse_encryption.models import AuditLogEntry

from ..conftest import needs
from .conftest import _seed
from .example_site import ADMIN_PASSWORD, CLERK_PASSWORD, ExampleSite, serve

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
SCREENSHOTS = (
    "admin-masked-list.png",
    "admin-change-form.png",
    "admin-revealed.png",
    "admin-audit-log.png",
    "admin-hidden-by-policy.png",
)
# A small laptop: every list must fit without scrolling sideways.
VIEWPORT = {"width": 1280, "height": 800}
EXAMPLE_MODELS = (
    "userprofile",
    "tradingaccount",
    "position",
    "trade",
    "pnlsnapshot",
    "riskmetric",
    "legacyclient",
)
AUDIT = "/admin/alphapulse_encryption/auditlogentry/"


needs_chromium = needs(CHROMIUM.exists(), f"no browser at {CHROMIUM} (apt-get install chromium)")


@contextlib.contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def _log_in(browser: Any, base_url: str, username: str, password: str) -> Any:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


def _open(page: Any, url: str) -> str:
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    html = page.content()
    assert "Traceback" not in html, url
    return html


def _assert_no_plaintext(html: str, plaintexts: list[str], where: str) -> None:
    for text in plaintexts:
        # Whole values only: "811" inside a CSRF token or an SVG path is not a leak.
        found = re.search(rf"(?<![\w.+-]){re.escape(text)}(?![\w.-])", html)
        assert found is None, f"plaintext {text!r} on {where}"


def _table_fits(page: Any) -> tuple[int, int]:
    return page.evaluate(
        "() => [document.querySelector('#result_list').scrollWidth,"
        " document.querySelector('#result_list').parentElement.clientWidth]"
    )


@contextlib.contextmanager
def _example_database(tmp_path: Path) -> Iterator[str]:
    """An empty database for the example project, on the server this run uses."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'example.sqlite3'}"
        return
    name = f"alphapulse_browser_{os.getpid()}"
    quoted = connection.ops.quote_name(name)
    force = " WITH (FORCE)" if connection.vendor == "postgresql" else ""
    charset = " CHARACTER SET utf8mb4" if connection.vendor == "mysql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quoted}{force}")
        cursor.execute(f"CREATE DATABASE {quoted}{charset}")
    url = urllib.parse.urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}")
    try:
        yield url.geturl()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted}{force}")


def _screenshots(tmp_path: Path) -> Path:
    shots = DOCS_IMAGES if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _visit_every_page(page: Any, site: ExampleSite, shots: Path) -> None:
    _assert_no_plaintext(_open(page, f"{site.url}/admin/"), site.plaintexts, "/admin/")
    for model in EXAMPLE_MODELS:
        listing = f"{site.url}/admin/backoffice/{model}/"
        _assert_no_plaintext(_open(page, listing), site.plaintexts, listing)
        scroll_width, room = _table_fits(page)
        assert scroll_width <= room, f"{listing}: {scroll_width} px of columns in {room} px"
        change = f"{listing}{site.pks[model]}/change/"
        _assert_no_plaintext(_open(page, change), site.plaintexts, change)
    page.goto(f"{site.url}/admin/backoffice/userprofile/")
    page.screenshot(path=str(shots / "admin-masked-list.png"))
    page.goto(f"{site.url}/admin/backoffice/userprofile/{site.pks['userprofile']}/change/")
    page.screenshot(path=str(shots / "admin-change-form.png"), full_page=True)


def _reveal_and_hide(page: Any, site: ExampleSite, shots: Path) -> None:
    from playwright.sync_api import expect

    field = page.locator(".field-email")
    field.locator("button.ape-reveal").click()
    expect(field.locator("output.ape-revealed")).to_have_text(site.email)
    expect(field.locator(".ape-reveal-note")).to_have_text(REVEAL_RECORDED)
    expect(field.locator(".ape-reveal-note")).to_be_visible()
    expect(field.locator("button.ape-reveal")).to_be_hidden()
    field.screenshot(path=str(shots / "admin-revealed.png"))

    field.locator("button.ape-hide").click()
    expect(field.locator("output.ape-revealed")).to_be_hidden()
    expect(field.locator("button.ape-reveal")).to_be_visible()
    expect(field.locator(".ape-reveal-note")).to_be_visible()  # the record stays
    _assert_no_plaintext(page.content(), site.plaintexts, "the change page after Hide")


def _check_audit_log(page: Any, site: ExampleSite, shots: Path) -> None:
    html = _open(page, f"{site.url}{AUDIT}")
    _assert_no_plaintext(html, site.plaintexts, AUDIT)
    scroll_width, room = _table_fits(page)
    assert scroll_width <= room, f"the audit list is {scroll_width} px wide in {room} px"
    first = page.locator("#result_list tbody tr").first
    cells = {
        name: first.locator(f"td.field-{name}, th.field-{name}").inner_text().strip()
        for name in ("what", "who", "on_what", "from_where", "result")
    }
    assert cells == {
        "what": "reveal",
        "who": "admin",
        "on_what": f"backoffice.UserProfile #{site.pks['userprofile']} · email",
        "from_where": "127.0.0.1",
        "result": "revealed",
    }
    rotated = page.locator("#result_list tbody tr", has_text="key rotate, v2")
    assert "command encryption_keys" in rotated.inner_text()
    page.screenshot(path=str(shots / "admin-audit-log.png"))
    first.locator("th a, td a").first.click()
    page.wait_for_url("**/change/")
    _assert_no_plaintext(page.content(), site.plaintexts, "an audit entry")
    assert "reveal" in page.locator("#content").inner_text()


def _check_policy_hint(browser: Any, site: ExampleSite, shots: Path) -> None:
    from playwright.sync_api import expect

    page = _log_in(browser, site.url, "clerk", CLERK_PASSWORD)
    html = _open(page, f"{site.url}/admin/backoffice/userprofile/")
    expect(page.locator(".messagelist")).to_contain_text(HIDDEN_BY_POLICY_NOTE)
    _assert_no_plaintext(html, site.plaintexts, "the clerk's list")
    page.screenshot(path=str(shots / "admin-hidden-by-policy.png"))
    html = _open(page, f"{site.url}/admin/backoffice/userprofile/{site.pks['userprofile']}/change/")
    assert "ape-reveal" not in html
    expect(page.locator(".field-email .ape-policy")).to_have_text("hidden by policy")
    _assert_no_plaintext(html, site.plaintexts, "the clerk's change page")


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_example_admin_page_shows_no_plaintext_until_revealed_and_after_hide(tmp_path):
    shots = _screenshots(tmp_path)
    with (
        _example_database(tmp_path) as database_url,
        serve(database_url, tmp_path) as site,
        _browser() as browser,
    ):
        page = _log_in(browser, site.url, "admin", ADMIN_PASSWORD)
        _visit_every_page(page, site, shots)
        _reveal_and_hide(page, site, shots)
        _check_audit_log(page, site, shots)
        _check_policy_hint(browser, site, shots)

    for name in SCREENSHOTS:
        assert (shots / name).stat().st_size > 1000
        assert (DOCS_IMAGES / name).exists(), f"docs/images/{name} is missing"


@needs_chromium
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_reveal_in_a_browser_writes_the_audit_entry_with_the_browser_and_address(
    live_server, settings
):
    from playwright.sync_api import expect

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seeded = _seed()
    customer = seeded.customer
    User.objects.create_superuser("admin", "admin@alphapulse.example", "browser-test-pw")

    # No ORM inside this block: Playwright runs an event loop in this thread, and Django
    # refuses synchronous database access while one runs.
    with _browser() as browser:
        page = _log_in(browser, live_server.url, "admin", "browser-test-pw")
        page.goto(f"{live_server.url}/admin/testapp/customer/")
        expect(page.locator("td.field-email").last).to_have_text("z***@a***.example")
        listing = page.content()
        page.goto(f"{live_server.url}/admin/testapp/customer/{customer.pk}/change/")
        masked = page.content()
        page.locator(".field-email button.ape-reveal").click()
        expect(page.locator(".field-email output.ape-revealed")).to_have_text(customer.email)
        page.locator(".field-email button.ape-hide").click()
        hidden = page.content()

    for html in (listing, masked, hidden):
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
