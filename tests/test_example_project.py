"""The example project and the README quick start run as documented."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


# One master key for every process of a test: it wraps the example project's database
# keyring, so a process with another key could not read what an earlier one wrote.
_MASTER_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHAPULSE_ENCRYPTION")}
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'example.sqlite3'}",
        ALPHAPULSE_ENCRYPTION_MASTER_KEY=_MASTER_KEY,
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def _manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _git_status() -> str | None:
    """``git status`` of the repository, untracked files included; ``None`` outside a
    git checkout."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError:
        return None
    return result.stdout if result.returncode == 0 else None


# Opens admin pages of the database a demo left behind (the legacy plaintext columns
# dropped, the model code unchanged) as its superuser, and searches a legacy e-mail.
_ADMIN_AFTER_DEMO = """
import sys

import django
from django.test.utils import setup_test_environment

django.setup()
setup_test_environment()
from django.contrib.auth import get_user_model
from django.test import Client

client = Client()
client.force_login(get_user_model().objects.get(username="demo"))
for url in [
    "/admin/",
    "/admin/backoffice/userprofile/",
    "/admin/backoffice/legacyclient/",
    "/admin/backoffice/legacyclient/1/change/",
    "/admin/alphapulse_encryption/auditlogentry/",
]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
response = client.get("/admin/backoffice/legacyclient/", {"q": sys.argv[1].upper()})
assert response.status_code == 200
assert response.context["cl"].result_count == 1
assert sys.argv[1] not in response.content.decode()
print("admin ok")
"""


@pytest.mark.slow
def test_demo_without_server_runs_every_step_and_changes_no_repository_file(
    tmp_path: Path,
) -> None:
    status_before = _git_status()

    result = _manage(tmp_path, "demo", "--no-serve", "--accounts", "3")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    headings = ("0. A fresh", "1. Encrypt", "3. Migrating", "4. Exact-match search", "6. Key")
    for heading in headings:
        assert heading in out
    # The five steps of encrypt_migrate, each with what it reported.
    for command, report in (
        ("encrypt_migrate --add-columns", "The encrypted columns already exist"),
        ("encrypt_migrate --migrate-data", "row(s) encrypted, 0 failed"),
        ("encrypt_migrate --verify", "Verification complete"),
        ("encrypt_migrate --create-views", "Created view backoffice_legacyclient_encrypted"),
        ("encrypt_migrate --drop-unencrypted --confirm", "0004_remove_plaintext_legacyclient"),
    ):
        assert f"$ python manage.py {command}" in out
        assert report in out
    assert "refused without --confirm" in out
    assert "dual write" in out
    # Exact-match search, on a profile and on the migrated legacy table.
    assert "found #" in out
    assert '"email_search" IN (\'apt1' in out
    assert "plaintext e-mail in the SQL: False" in out
    assert "FieldError: EncryptedSearchableString 'email'" in out
    # Rotation, re-encryption and retirement with the database keyring.
    assert "KEY_PROVIDER: DatabaseKeyProvider" in out
    assert "EncryptionKeyManager().rotate_keys() -> 2" in out
    assert "sending one token per version: apt100000001..., apt100000002..." in out
    assert "$ python manage.py encryption_keys reencrypt\n" in out
    assert re.search(r"backoffice\.LegacyClient: \d+ of \d+ rows moved to key version 2", out)
    assert re.search(r"by key version: v1=0 v2=[\d,]+$", out, re.M)
    assert "Key version 1 is retired; its key is destroyed." in out
    assert "audit entries checked: the chain is intact." in out
    total = re.search(r"^  total +([\d.]+) s$", out, re.M)
    assert total is not None and float(total.group(1)) < 30
    assert re.search(r"superuser 'demo', password '\S+'", out)
    assert out.rstrip().endswith("Demo finished (--no-serve).")
    assert "Serving" not in out
    assert _git_status() == status_before

    legacy = re.search(r"on the migrated table -> \[\(\d+, '([^']+)'\)\]", out)
    assert legacy is not None
    admin = subprocess.run(
        [sys.executable, "-c", _ADMIN_AFTER_DEMO, legacy.group(1)],
        cwd=ROOT,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert admin.returncode == 0, admin.stderr
    assert "admin ok" in admin.stdout


def test_seed_demo_shows_progress_and_counts(tmp_path: Path) -> None:
    assert _manage(tmp_path, "migrate", "-v0").returncode == 0

    result = _manage(tmp_path, "seed_demo", "--accounts", "12", "--seed", "7")

    assert result.returncode == 0, result.stderr
    assert "10/12 accounts" in result.stdout
    assert "12/12 accounts" in result.stdout
    assert "12 TradingAccount" in result.stdout
    assert "12 LegacyClient" in result.stdout
    quiet = _manage(tmp_path, "seed_demo", "--accounts", "2", "-v0")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == ""


def test_example_project_migrations_match_its_models(tmp_path: Path) -> None:
    result = _manage(tmp_path, "makemigrations", "backoffice", "--check", "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr


def _quick_start_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", section, re.S)]


# Blocks headed "# settings.py" are settings, "# <app>/<module>.py" files of an app; the
# others run in order as a script, in a project made of those settings and apps.
_RUNNER = """
import sys
from pathlib import Path

import django
from django.conf import settings
from django.core.management import call_command

root = Path(sys.argv[1])
sys.path.insert(0, str(root))
namespace = {}
exec((root / "settings_block.py").read_text(), namespace)
apps = [name.name for name in root.iterdir() if (name / "__init__.py").exists()]
installed = []
for app in namespace["INSTALLED_APPS"]:
    if app is Ellipsis:
        installed += ["django.contrib.contenttypes", "django.contrib.auth", *apps]
    else:
        installed.append(app)
options = {k: v for k, v in namespace.items() if k.isupper() and k != "INSTALLED_APPS"}
settings.configure(
    INSTALLED_APPS=installed,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    USE_TZ=True,
    **options,
)
django.setup()
call_command("migrate", run_syncdb=True, verbosity=0)
for script in sorted(root.glob("script_*.py")):
    exec(compile(script.read_text(), str(script), "exec"), {"__name__": "__main__"})
print("quick start ok")
"""


def test_readme_quick_start_runs(tmp_path: Path) -> None:
    blocks = _quick_start_blocks()
    assert blocks, "README.md has no ```python block under '## Quick start'"
    settings_block = "INSTALLED_APPS = [..., 'alphapulse_encryption']"
    scripts = 0
    for block in blocks:
        first = block.splitlines()[0].strip()
        header = re.fullmatch(r"#\s*([\w/]+\.py)", first)
        if header and header.group(1) == "settings.py":
            settings_block = block
        elif header:
            path = tmp_path / header.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "__init__.py").touch()
            path.write_text(block)
        else:
            scripts += 1
            (tmp_path / f"script_{scripts:02d}.py").write_text(block)
    (tmp_path / "settings_block.py").write_text(settings_block)
    assert scripts, "the quick start has no block that uses the models"

    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(tmp_path)],
        cwd=tmp_path,
        env=_environment(tmp_path, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE=""),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "quick start ok" in result.stdout
