"""The layer contracts in pyproject.toml ([tool.importlinter]) hold, and fail when a
forbidden import is added (run on a copy of the package, so the real one is untouched)."""

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import alphapulse_encryption

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(alphapulse_encryption.__file__).parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def package_copy(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / PACKAGE.name, ignore=shutil.ignore_patterns("static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_package_keeps_its_layers():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "module, forbidden, contract",
    [
        ("crypto/cipher.py", "import django.conf", "crypto imports neither Django"),
        ("crypto/envelope.py", "from .. import masking", "crypto imports neither Django"),
        ("keys/manager.py", "from ..admin import widgets", "keys never import fields"),
        ("keys/providers.py", "from .. import fields", "keys never import fields"),
        ("fields/__init__.py", "from ..audit import log", "fields never import admin"),
        ("audit/log.py", "from .. import admin", "audit never imports admin"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(package_copy, module, forbidden, contract):
    path = package_copy / PACKAGE.name / module
    path.write_text(path.read_text() + f"\n{forbidden}  # added by the test\n")
    result = _lint_imports(package_copy)
    assert result.returncode != 0
    verdicts = [
        line.rsplit(" ", 1)[-1]
        for line in result.stdout.splitlines()
        if line.startswith(contract) and line.endswith(("KEPT", "BROKEN"))
    ]
    assert verdicts == ["BROKEN"], result.stdout


def test_crypto_contract_names_every_other_module_of_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    source = [f"{PACKAGE.name}.crypto"]
    (crypto,) = (c for c in config["contracts"] if c["source_modules"] == source)
    siblings = {
        f"{PACKAGE.name}.{info.name}"
        for info in pkgutil.iter_modules([str(PACKAGE)])
        if info.name != "crypto"
    }
    assert set(crypto["forbidden_modules"]) == siblings | {"django"}
