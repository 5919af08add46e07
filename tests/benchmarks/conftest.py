"""Benchmarks are scripts run by hand (see docs/performance.md), not tests."""

collect_ignore = ["orm_benchmark.py", "orm_settings.py"]
