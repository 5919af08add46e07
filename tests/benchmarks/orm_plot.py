"""The ORM benchmark's picture: ratios to plaintext per operation, one panel per database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.benchmarks.orm_setup import ORM_OPERATIONS

# Issue 8 targets drawn as black ticks (ours / plaintext).
_TARGETS = {"read_all": 1.3, "read_none": 1.05, "bulk_create": 1.15, "lookup": 1.1, "memory": 1.15}
_NAMES = {"ours": "alphapulse-encryption", "peer": "django-fernet-encrypted-fields"}
_COLORS = {"ours": "#1f77b4", "peer": "#d62728"}


def plot(all_results: Iterable[dict[str, Any]], path: str) -> None:
    """Ratios to plaintext per operation, one panel per database."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[bench]'") from None
    all_results = list(all_results)
    fig, axes = plt.subplots(
        1, len(all_results), figsize=(5.2 * len(all_results) + 2.2, 5.0), squeeze=False
    )
    for index, (ax, results) in enumerate(zip(axes[0], all_results, strict=True)):
        _panel(ax, results, first=index == 0)
    handles = [Patch(color=_COLORS[lb], label=_NAMES[lb]) for lb in ("ours", "peer")]
    handles.append(Line2D([], [], color="black", linewidth=2, label="issue 8 target (ours)"))
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)


def _panel(ax: Any, results: dict[str, Any], first: bool) -> None:
    ops = [
        (op, label)
        for op, label, _ in ORM_OPERATIONS
        if op in results["orm"] and not op.endswith("_size")
    ]
    top = 1.0
    for offset, lb in enumerate(("ours", "peer")):
        ys = [y + (offset - 0.5) * 0.38 for y in range(len(ops))]
        ratios = [
            results["orm"][op][lb] / results["orm"][op]["plaintext"]
            if lb in results["orm"][op]
            else None
            for op, _ in ops
        ]
        top = max([top, *(r for r in ratios if r)])
        bars = ax.barh(
            ys,
            [r or 0.0 for r in ratios],
            height=0.38,
            left=0.0,
            color=_COLORS[lb],
        )
        ax.bar_label(bars, labels=[f"{r:.2f}x" if r else "" for r in ratios], fontsize=7)
        for y, r in zip(ys, ratios, strict=True):
            if r is None:
                ax.text(1.02, y, "n/a (lookups match nothing)", va="center", fontsize=7)
    for y, (op, _) in enumerate(ops):
        if op in _TARGETS:
            ax.plot([_TARGETS[op]] * 2, [y - 0.45, y + 0.02], color="black", linewidth=2)
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlim(0.8, top * 2.0)
    ax.set_yticks(range(len(ops)), [label for _, label in ops] if first else [])
    ax.tick_params(axis="y", labelsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio to the plaintext model (log scale)", fontsize=8)
    m, p = results["machine"], results["parameters"]
    ax.set_title(f"{m['database']}, {p['rows']:,} rows, median of {p['repeat']}", fontsize=9)
