"""Benchmarks: scripts run by hand, never collected by pytest (see conftest.py)."""
