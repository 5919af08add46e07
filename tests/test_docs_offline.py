"""The guide builds and reads offline: no page loads a script, stylesheet or font from
another host, and code is highlighted at build time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a browser fetches by itself while rendering: scripts, stylesheets, images, fonts.
_FETCHED = re.compile(
    r"<(?:script|img|source|iframe)\b[^>]*\bsrc=\"([^\"]+)\""
    r"|<link\b[^>]*\bhref=\"([^\"]+)\""
    r"|url\(\s*['\"]?([^'\")]+)"
)


def _external(address: str) -> bool:
    return address.startswith(("http:", "https:", "//"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(target)],
        cwd=ROOT,
        check=True,
    )
    return target


def test_no_page_or_stylesheet_fetches_from_another_host(site: Path) -> None:
    files = [*site.rglob("*.html"), *site.rglob("*.css")]
    assert len(files) > 10
    fetched = {
        (path.relative_to(site).as_posix(), address)
        for path in files
        for match in _FETCHED.finditer(path.read_text(encoding="utf-8", errors="replace"))
        for address in match.groups()
        if address and _external(address)
    }
    assert fetched == set()


def test_code_blocks_are_highlighted_in_the_html(site: Path) -> None:
    page = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert '<div class="codehilite">' in page
    assert '<span class="kn">from</span>' in page  # a token Pygments marked, not plain text
    assert (site / "css" / "pygments.css").read_text().count(".codehilite") > 10
