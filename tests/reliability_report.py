"""The reliability report: what the bounded fuzzing, fault-injection and concurrency
suites did, and how many rows they lost (must be zero).

    python tests/reliability_report.py                  # run the suites on $DATABASE_URL
    python tests/reliability_report.py --database-url postgres://... --database-url mysql://...
    python tests/reliability_report.py --last           # figures of the last runs only
    python tests/reliability_report.py --markdown       # as a table for docs/security.md

The figures come from ``.reliability/last-run-<backend>.json``, which the pytest plugin
``tests/reliability/plugin.py`` writes after every test run that includes these tests (so
``make test`` refreshes them too). Exit status 1 if a row was lost or a test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".reliability"
SUITES = [
    "tests/fuzz",
    "tests/crypto/test_limits.py",
    "tests/reliability",
    "tests/keys/test_concurrent_rotation.py",
    "tests/keys/test_key_refresh.py",
    "tests/keys/test_key_usage.py",
    "tests/migration/test_workers.py",
    "tests/fields/test_lazy_rotation.py",
    "tests/admin/test_reveal_abuse.py",
]
ROWS = [
    ("inputs_fuzzed", "inputs fuzzed"),
    ("faults_injected", "faults injected"),
    ("concurrent_operations", "concurrent operations"),
    ("rows_checked", "rows checked"),
    ("rows_lost", "rows lost"),
]
ORDER = ["sqlite", "postgresql", "mysql"]
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL"}


def run_suites(database_url: str | None) -> int:
    env = dict(os.environ)
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES]
    print(f"$ DATABASE_URL={database_url or '(SQLite)'} {' '.join(command[1:])}", file=sys.stderr)
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def load() -> dict[str, dict[str, Any]]:
    runs = {}
    for path in sorted(RESULTS.glob("last-run-*.json")):
        record = json.loads(path.read_text())
        runs[record["vendor"]] = record
    return dict(
        sorted(runs.items(), key=lambda item: ORDER.index(item[0]) if item[0] in ORDER else 9)
    )


def table(runs: dict[str, dict[str, Any]], markdown: bool) -> str:
    headers = ["", *(NAMES.get(v, v) for v in runs)]
    body = [[label, *(f"{run['figures'][key]:,}" for run in runs.values())] for key, label in ROWS]
    body.append(["tests failed", *(str(len(run["failed"])) for run in runs.values())])
    body.append(["Django", *(run["django"] for run in runs.values())])
    body.append(["seconds", *(f"{run['seconds']:.0f}" for run in runs.values())])
    body.append(
        ["finished (UTC)", *(run["finished"][:16].replace("T", " ") for run in runs.values())]
    )
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [headers, *body]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--last", action="store_true", help="Do not run; report the last runs.")
    parser.add_argument(
        "--database-url",
        action="append",
        help="Run on this database (repeatable); default: $DATABASE_URL, else SQLite.",
    )
    parser.add_argument("--markdown", action="store_true", help="Print a Markdown table.")
    args = parser.parse_args(argv)
    status = 0
    if not args.last:
        for url in args.database_url or [os.environ.get("DATABASE_URL") or ""]:
            status |= run_suites(url or None) != 0
    runs = load()
    if not runs:
        print("No figures yet: run the suites first (without --last).", file=sys.stderr)
        return 1
    print("Reliability report: bounded fuzzing, fault injection and concurrency suites")
    print(table(runs, args.markdown))
    lost = sum(run["figures"]["rows_lost"] for run in runs.values())
    failed = sum(len(run["failed"]) for run in runs.values())
    print(f"Rows lost: {lost} (must be 0). Failed tests: {failed}.")
    return 1 if status or lost or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
