"""The ORM benchmark's results as text: the issue 8 targets and whether they are met, the
report printed after a run, and the Markdown tables of docs/performance.md."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tests.benchmarks.orm_setup import CRYPTO_OPERATIONS, ORM_OPERATIONS

# Issue 8 targets: (name, how to compute the measured figure, limit, "max" or "min").
TARGETS: tuple[tuple[str, Callable[[dict[str, Any]], float | None], float, str], ...] = (
    ("full read, every field: ours / plaintext", lambda r: _ratio(r, "read_all"), 1.3, "max"),
    (
        "full read, no encrypted field: ours / plaintext",
        lambda r: _ratio(r, "read_none"),
        1.05,
        "max",
    ),
    ("bulk_create: ours / plaintext", lambda r: _ratio(r, "bulk_create"), 1.15, "max"),
    ("exact lookup: token / indexed plaintext", lambda r: _ratio(r, "lookup"), 1.1, "max"),
    ("peak memory of the full read: ours / plaintext", lambda r: _ratio(r, "memory"), 1.15, "max"),
    (
        "decrypt_field / raw AESGCM.decrypt",
        lambda r: r["crypto_us"]["decrypt_field"] / r["crypto_us"]["raw_decrypt"],
        3.0,
        "max",
    ),
    (
        "batch_decrypt per value / raw AESGCM.decrypt",
        lambda r: r["crypto_us"]["batch_decrypt"] / r["crypto_us"]["raw_decrypt"],
        2.0,
        "max",
    ),
    ("full read: peer / ours", lambda r: _ratio(r, "read_all", "peer", "ours"), 5.0, "min"),
    ("bulk_create: peer / ours", lambda r: _ratio(r, "bulk_create", "peer", "ours"), 2.5, "min"),
)


def _ratio(results: dict[str, Any], op: str, num: str = "ours", den: str = "plaintext") -> float:
    figures = results["orm"][op]
    return figures[num] / figures[den]


def scaled(op: str, seconds_or_mib: float) -> float:
    """Seconds to the unit shown (ms, or us for per-lookup figures); MiB stays."""
    unit = {op: unit for op, _, unit in ORM_OPERATIONS}[op]
    return seconds_or_mib * {"ms": 1e3, "us": 1e6, "MiB": 1.0}[unit]


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    evaluated = []
    for name, measure, limit, kind in TARGETS:
        try:
            value = measure(results)
        except (KeyError, ZeroDivisionError):
            value = None
        met = None if value is None else (value <= limit if kind == "max" else value >= limit)
        evaluated.append(
            {"target": name, "limit": limit, "kind": kind, "measured": value, "met": met}
        )
    return evaluated


# -- report ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(results: dict[str, Any]) -> str:
    lines = _report_header(results)
    lines += _report_orm(results)
    lines += _report_crypto(results["crypto_us"])
    lines += _report_fresh(results.get("fresh_process") or {})
    pool = results.get("pool_ms_per_request") or {}
    if pool:
        lines += [
            "",
            "short request (one token lookup), ms per request: "
            + ", ".join(f"{name.replace('_', ' ')} {v:.2f}" for name, v in pool.items())
            + f"; pool saves {pool['new_connection'] / pool['pool']:.1f}x",
        ]
    lines += ["", "targets (issue 8):"]
    for t in results["targets"]:
        sign = "<=" if t["kind"] == "max" else ">="
        status = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        lines.append(
            f"  {t['target']:<52}{sign} {t['limit']:<5} measured {_fmt(t['measured'], 2):>7}"
            f"  {status}"
        )
    lines += _report_profile(results.get("profile_full_read_ours"))
    return "\n".join(lines)


def _report_header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    p = results["parameters"]
    return [
        f"ORM benchmark on {m['database']}: {p['rows']:,} rows, median of {p['repeat']} "
        f"interleaved repetitions ({results['date']})",
        f"revision {m.get('revision', 'unknown')}; "
        f"{m['nproc']} CPU(s) {m['cpu']}; Python {m['python']}, Django {m['django']}, "
        f"cryptography {m['cryptography']}, django-fernet-encrypted-fields "
        f"{m['django-fernet-encrypted-fields']}; load average {m['loadavg_start'][0]:.2f} "
        f"at start, {m['loadavg_end'][0]:.2f} at end",
        "",
        f"{'measurement':<46}{'unit':>5}{'plaintext':>11}{'ours':>10}{'peer':>10}"
        f"{'ours/pt':>9}{'peer/pt':>9}{'peer/ours':>10}",
    ]


def _times(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def _orm_figures(
    results: dict[str, Any],
) -> Iterator[tuple[str, str, int, tuple[float | None, float | None, float | None]]]:
    """Per ORM measurement: label, unit, digits shown, and (plaintext, ours, peer)."""
    for op, label, unit in ORM_OPERATIONS:
        f = results["orm"].get(op, {})
        yield (
            label,
            unit,
            0 if unit == "us" else 1,
            (f.get("plaintext"), f.get("ours"), f.get("peer")),
        )


def _report_orm(results: dict[str, Any]) -> list[str]:
    lines = []
    for label, unit, digits, (plain, ours, peer) in _orm_figures(results):
        lines.append(
            f"{label:<46}{unit:>5}{_fmt(plain, digits):>11}{_fmt(ours, digits):>10}"
            f"{_fmt(peer, digits):>10}{_times(ours, plain):>9}{_times(peer, plain):>9}"
            f"{_times(peer, ours):>10}"
        )
    found = results.get("lookup_rows_found", {})
    if found:
        lines.append(
            f"  rows found by {results['parameters']['lookups']} lookups: "
            + ", ".join(f"{lb} {n}" for lb, n in found.items())
            + " (the peer's lookups silently match nothing)"
        )
    return lines


def _report_crypto(c: dict[str, float]) -> list[str]:
    raw = {"encrypt": c["raw_encrypt"], "decrypt": c["raw_decrypt"]}
    lines = ["", f"{'per value, 32-byte string':<46}{'us':>9}{'vs raw':>9}"]
    for key, label in CRYPTO_OPERATIONS:
        if key not in c:
            continue
        if key == "pbkdf2":
            lines.append(f"{label:<46}{c[key] / 1e3:>9.2f} ms")
            continue
        base = raw["encrypt"] if "encrypt" in key or "prep" in key else raw["decrypt"]
        lines.append(f"{label:<46}{c[key]:>9.2f}{c[key] / base:>8.1f}x")
    return lines


def _report_fresh(fresh: dict[str, float]) -> list[str]:
    if not fresh:
        return []
    lines = ["", "first encryption in a fresh process (key load and PBKDF2 included):"]
    names = {
        "key_load": "key load alone (settings, audit entry)",
        "encrypt_field": "encrypt_field(), first call",
        "ours_row": "one row of ours, 5 fields",
        "peer_row": "one row of the peer, 5 fields",
    }
    for kind, label in names.items():
        if f"{kind}_first_ms" not in fresh:
            continue
        lines.append(
            f"  {label:<44}{fresh[f'{kind}_first_ms']:>8.1f} ms first, "
            f"{fresh[f'{kind}_again_ms']:.3f} ms again; process "
            f"{fresh[f'{kind}_process_ms']:.0f} ms"
        )
    return lines


def _report_profile(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    total = profile["total_ms"]
    decryption = profile.get("decryption_cumulative_ms", 0.0)
    lines = [
        "",
        f"cProfile of one full read of ours: {total:.0f} ms under the profiler; "
        f"decryption (the field's open_many/from_db_value) {decryption:.0f} ms "
        f"({decryption / total:.0%}) cumulative",
        "  own time by area: "
        + ", ".join(f"{a} {ms:.0f} ms" for a, ms in profile["areas_ms"].items()),
        "  top functions by own time:",
    ]
    for e in profile["top"]:
        lines.append(
            f"  {e['tottime_ms']:>8.1f} ms {e['share']:>5.0%} {e['ncalls']:>8} {e['function']}"
        )
    return lines


def markdown(all_results: list[dict[str, Any]]) -> str:
    """The tables of docs/performance.md: ORM figures per database, targets side by side."""
    out: list[str] = []
    for results in all_results:
        out += _markdown_orm(results)
    out += _markdown_targets(all_results)
    dbs = " | ".join(r["machine"]["database"].split(" (")[0] for r in all_results)
    out += _markdown_crypto(all_results, dbs)
    out += _markdown_fresh(all_results, dbs)
    for results in all_results:
        pool = results.get("pool_ms_per_request")
        if pool:
            out += [
                "",
                f"Short requests on {results['machine']['database'].split(' (')[0]} (one token "
                "lookup each), ms per request: a new connection per request "
                f"**{pool['new_connection']:.2f}**, psycopg pool **{pool['pool']:.2f}**, "
                f"one persistent connection {pool['persistent']:.2f}.",
            ]
    return "\n".join(out)


def _md_times(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def _markdown_orm(results: dict[str, Any]) -> list[str]:
    m, p = results["machine"], results["parameters"]
    out = [
        f"**{m['database']}**, {p['rows']:,} rows, median of {p['repeat']} "
        f"(revision {m.get('revision', 'unknown')}, {results['date']}):",
        "",
        "| measurement | unit | plaintext | ours | peer | ours / plaintext "
        "| peer / plaintext | peer / ours |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for label, unit, digits, (plain, ours, peer) in _orm_figures(results):
        out.append(
            f"| {label} | {unit.replace('us', 'µs')} | {_fmt(plain, digits)} "
            f"| {_fmt(ours, digits)} | {_fmt(peer, digits) if peer is not None else 'n/a'} "
            f"| **{_md_times(ours, plain)}** | {_md_times(peer, plain)} "
            f"| {_md_times(peer, ours)} |"
        )
    out.append("")
    return out


def _markdown_targets(all_results: list[dict[str, Any]]) -> list[str]:
    out = [
        "| target (issue 8) | limit | "
        + " | ".join(r["machine"]["database"].split(" (")[0] for r in all_results)
        + " |",
        "|---|--:|" + "--:|" * len(all_results),
    ]
    for index, (name, _, limit, kind) in enumerate(TARGETS):
        cells = []
        for results in all_results:
            t = results["targets"][index]
            if t["measured"] is None:
                cells.append("not measured")
                continue
            if t["met"]:
                cells.append(f"{t['measured']:.2f}x met")
                continue
            off = t["measured"] / limit if kind == "max" else limit / t["measured"]
            cells.append(f"{t['measured']:.2f}x **not met** ({off:.1f}x off)")
        sign = "≤" if kind == "max" else "≥"
        out.append(f"| {name} | {sign} {limit}x | " + " | ".join(cells) + " |")
    return out


def _md_head(title: str, dbs: str, columns: int) -> list[str]:
    """A blank line and the head of a table with one column per database."""
    return ["", f"| {title} | {dbs} |", "|---|" + "--:|" * columns]


def _markdown_crypto(all_results: list[dict[str, Any]], dbs: str) -> list[str]:
    out = _md_head("per value, 32-byte string (µs; x raw)", dbs, len(all_results))
    for key, label in CRYPTO_OPERATIONS:
        cells = []
        for results in all_results:
            c = results["crypto_us"]
            if key not in c:
                cells.append("-")
            elif key == "pbkdf2":
                cells.append(f"{c[key] / 1e3:.1f} ms")
            else:
                base = c["raw_encrypt" if "encrypt" in key or "prep" in key else "raw_decrypt"]
                cells.append(f"{c[key]:.2f} ({c[key] / base:.1f}x)")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def _markdown_fresh(all_results: list[dict[str, Any]], dbs: str) -> list[str]:
    out = _md_head("fresh process: first call, ms (again, ms)", dbs, len(all_results))
    for kind, label in (
        ("key_load", "key load alone (settings read, audit entry written)"),
        ("encrypt_field", "first encrypt_field() (key load, PBKDF2, HKDF)"),
        ("ours_row", "first row of ours, 5 fields"),
        ("peer_row", "first row of the peer, 5 fields"),
    ):
        cells = []
        for results in all_results:
            f = results.get("fresh_process") or {}
            first, again = f.get(f"{kind}_first_ms"), f.get(f"{kind}_again_ms")
            cells.append("-" if first is None else f"{first:.1f} ({again:.2f})")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out
