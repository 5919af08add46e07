"""Fixtures shared by the Django-facing tests: a controlled key environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from alphapulse_encryption import keys

# Property tests explore the same examples on every run, so CI results are reproducible;
# HYPOTHESIS_PROFILE=explore searches afresh.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis_settings.register_profile("explore", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class KeyEnvironment:
    """Sets ``ALPHAPULSE_ENCRYPTION_*`` variables; keys are re-read after every change."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def set(self, **variables: str) -> None:
        for name, value in variables.items():
            self._monkeypatch.setenv(name, value)
        keys.reset()

    def unset(self, *names: str) -> None:
        for name in names:
            self._monkeypatch.delenv(name, raising=False)
        keys.reset()


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyEnvironment]:
    """No key variable from the outer environment; cached keys dropped before and after."""
    for name in list(os.environ):
        if name.startswith("ALPHAPULSE_ENCRYPTION"):
            monkeypatch.delenv(name)
    keys.reset()
    yield KeyEnvironment(monkeypatch)
    keys.reset()


@pytest.fixture
def env_keys_only(settings, key_env: KeyEnvironment) -> KeyEnvironment:
    """Keys come from the environment only: ``settings.ALPHAPULSE_ENCRYPTION`` is empty."""
    settings.ALPHAPULSE_ENCRYPTION = {}
    return key_env


def needs(available: bool, reason: str) -> pytest.MarkDecorator:
    """Skip a test whose system dependency this machine lacks, with the reason in the run
    summary; under ``CI=true`` run it anyway, so that it fails and CI proves every test."""
    in_ci = os.environ.get("CI", "").lower() == "true"
    return pytest.mark.skipif(not available and not in_ci, reason=reason)
