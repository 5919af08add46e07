"""The ``normalize=`` option of a searchable field: named steps (``"strip+lower"``), a
list of them, or a callable, applied to a value before its search token is computed."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

NORMALIZE_STEPS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "lower": str.lower,
    "casefold": str.casefold,
    "nfkc": lambda text: unicodedata.normalize("NFKC", text),
}
_CASE_FOLDING = frozenset({"lower", "casefold"})

NormalizeOption = str | Sequence[str] | Callable[[str], str] | None


def _steps(normalize: NormalizeOption) -> list[str]:
    if normalize is None or callable(normalize):
        return []
    names = normalize.split("+") if isinstance(normalize, str) else list(normalize)
    unknown = [name for name in names if name not in NORMALIZE_STEPS]
    if unknown:
        raise ValueError(
            f"unknown normalize step(s) {unknown}; use any of {sorted(NORMALIZE_STEPS)}, "
            "joined with '+', a list of them, or a callable"
        )
    return names


def normalizes_case(normalize: NormalizeOption) -> bool:
    """Whether ``normalize`` makes values that differ only in case equal."""
    return bool(_CASE_FOLDING.intersection(_steps(normalize)))


def build_normalizer(normalize: NormalizeOption) -> Callable[[Any], Any] | None:
    if normalize is None:
        return None
    if callable(normalize):
        custom = normalize

        def apply_custom(value: Any) -> Any:
            return custom(value) if isinstance(value, str) else value

        return apply_custom
    functions = [NORMALIZE_STEPS[name] for name in _steps(normalize)]

    def apply_steps(value: Any) -> Any:
        if isinstance(value, str):
            for function in functions:
                value = function(value)
        return value

    return apply_steps
