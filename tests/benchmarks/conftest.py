"""Benchmarks are scripts run by hand (see docs/performance.md), not tests."""

collect_ignore = [
    "crypto_benchmark.py",
    "orm_benchmark.py",
    "orm_crypto.py",
    "orm_plot.py",
    "orm_report.py",
    "orm_rounds.py",
    "orm_settings.py",
    "orm_setup.py",
]
