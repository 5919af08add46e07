"""A pytest plugin (loaded with ``-p tests.reliability.plugin``, see pyproject.toml) that
counts what the reliability tests did and writes it to ``.reliability/last-run-<vendor>.json``
at the end of the run, for ``tests/reliability_report.py``:

- inputs fuzzed: examples run by Hypothesis tests;
- faults injected: process kills and database failures that really happened;
- concurrent operations: operations run from racing threads;
- rows checked and rows lost after each fault or race.

It also selects tests by database backend: ``@pytest.mark.backends("postgresql", "mysql")``
deselects a test on the other backends (CI runs the suite on all three), and the summary
says how many were deselected and why.
"""

from __future__ import annotations

import datetime
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

FIGURES = ("inputs_fuzzed", "faults_injected", "concurrent_operations", "rows_checked", "rows_lost")
OUTPUT_DIR = Path(__file__).resolve().parents[2] / ".reliability"

# Tests owned by other files that exercise concurrency; counted when they pass, with the
# number of racing operations each runs (imported, so a change there changes the count).
_ROTATION = "tests/keys/test_concurrent_rotation.py::"
_WORKERS = "tests/migration/test_workers.py::"
_REUSED_CONCURRENCY = {
    _ROTATION + "test_concurrent_rotations_create_one_active_version_each": (
        "tests.keys.test_concurrent_rotation",
        "THREADS",
        "rotations",
    ),
    _ROTATION + "test_concurrent_first_use_bootstraps_a_single_version": (
        "tests.keys.test_concurrent_rotation",
        "THREADS",
        "keyring bootstraps",
    ),
    _WORKERS + "test_two_workers_at_once_process_no_row_twice_and_miss_none": (
        "tests.migration.test_workers",
        "ROWS",
        "rows migrated by two workers",
    ),
}


class Figures:
    """What the session's reliability tests did; tests add to it through the
    ``reliability`` fixture."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.by_test: dict[str, Counter[str]] = {}
        self.notes: dict[str, list[str]] = {}
        self.current: str | None = None

    def add(self, **figures: int) -> None:
        unknown = set(figures) - set(FIGURES)
        if unknown:
            raise ValueError(f"unknown figures: {sorted(unknown)}")
        self.totals.update(figures)
        if self.current is not None:
            self.by_test.setdefault(self.current, Counter()).update(figures)

    def note(self, text: str) -> None:
        if self.current is not None:
            self.notes.setdefault(self.current, []).append(text)


_figures = Figures()
_state: dict[str, Any] = {"started": time.monotonic(), "deselected": [], "failed": []}


@pytest.fixture
def reliability() -> Figures:
    """Add figures for the reliability report: ``reliability.add(rows_checked=10)``."""
    return _figures


def vendor() -> str:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    return {"sqlite3": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}.get(
        engine.rsplit(".", 1)[-1], engine
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*vendors): run only on these database backends (sqlite, postgresql, "
        "mysql); deselected elsewhere",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    current = vendor()
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        (drop if marker is not None and current not in marker.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
        _state["deselected"] = [item.nodeid for item in drop]


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Count Hypothesis examples (trylast: inside Hypothesis's own wrapper, whose
    statistics callback is kept)."""
    _figures.current = item.nodeid
    try:
        from hypothesis import is_hypothesis_test
        from hypothesis.statistics import collector
    except ImportError:  # pragma: no cover
        yield
        return
    if not is_hypothesis_test(getattr(item, "obj", None)):
        yield
        return
    outer = collector.value

    def note(stats: dict[str, Any]) -> None:
        _figures.add(inputs_fuzzed=_examples(stats))
        if outer is not None:
            outer(stats)

    with collector.with_value(note):
        yield


def _examples(stats: dict[str, Any]) -> int:
    # The statistics format is not a stable API; count what can be recognised.
    return sum(
        len(phase.get("test-cases", ()))
        for phase in stats.values()
        if isinstance(phase, dict) and isinstance(phase.get("test-cases"), list)
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        if report.failed:
            _state["failed"].append(report.nodeid)
        return
    if report.failed:
        _state["failed"].append(report.nodeid)
        return
    reused = _REUSED_CONCURRENCY.get(report.nodeid)
    if reused and report.passed:
        module, constant, what = reused
        import importlib

        count = int(getattr(importlib.import_module(module), constant))
        previous, _figures.current = _figures.current, report.nodeid
        _figures.add(concurrent_operations=count)
        _figures.note(f"{count} {what} (reused test)")
        _figures.current = previous


def pytest_terminal_summary(terminalreporter: Any) -> None:
    deselected = _state["deselected"]
    if deselected:
        terminalreporter.write_line(
            f"reliability: {len(deselected)} test(s) deselected on {vendor()}: they need a "
            "database server (see their docstrings); CI runs them on PostgreSQL and MariaDB"
        )
    if any(_figures.totals[name] for name in FIGURES):
        shown = ", ".join(f"{name.replace('_', ' ')} {_figures.totals[name]:,}" for name in FIGURES)
        terminalreporter.write_line(f"reliability: {shown}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not any(_figures.totals[name] for name in FIGURES):
        return
    import django

    record = {
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "vendor": vendor(),
        "django": django.get_version(),
        "seconds": round(time.monotonic() - _state["started"], 1),
        "exit_status": int(exitstatus),
        "figures": {name: _figures.totals[name] for name in FIGURES},
        "by_test": {nodeid: dict(counts) for nodeid, counts in sorted(_figures.by_test.items())},
        "notes": _figures.notes,
        "failed": sorted(set(_state["failed"])),
        "deselected": _state["deselected"],
    }
    OUTPUT_DIR.mkdir(exist_ok=True)
    (OUTPUT_DIR / f"last-run-{record['vendor']}.json").write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n"
    )
