"""ORM benchmark: plaintext fields vs alphapulse-encryption vs django-fernet-encrypted-fields.

    pip install -e '.[bench,postgres]'
    python tests/benchmarks/orm_benchmark.py [--rows 10000] [--repeat 5] [--json out.json]
                                             [--plot out.png] [--profile]
    python tests/benchmarks/orm_benchmark.py --from-json a.json [b.json ...] [--plot out.png]
                                             [--markdown tables.md]

``DATABASE_URL`` selects the database (default: SQLite in a temporary file), e.g.
``postgres://postgres@127.0.0.1:5432/ape_bench`` (created when missing). Three models with
the same ten fields, five of them sensitive, are measured in one process with interleaved
repetitions; the table shows medians and ratios. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script from a checkout: its modules beside this one are imported from it.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.benchmarks import orm_crypto, orm_plot, orm_report, orm_rounds, orm_setup  # noqa: E402
from tests.benchmarks.orm_setup import (  # noqa: E402
    CRYPTO_CONTEXT,
    CRYPTO_OPERATIONS,
    LABELS,
    ORM_OPERATIONS,
    PROBES,
    VALUE_32,
)


@dataclass
class _Samples:
    """Every repetition's figures, by measurement (and model), before the medians."""

    orm: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {op: {lb: [] for lb in LABELS} for op, _, _ in ORM_OPERATIONS}
    )
    found: dict[str, dict[str, int]] = field(default_factory=lambda: {"lookup": {}})
    crypto: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name, _ in CRYPTO_OPERATIONS}
    )
    fresh: dict[str, list[float]] = field(
        default_factory=lambda: {
            f"{kind}_{what}": []
            for kind in PROBES
            for what in ("first_ms", "again_ms", "process_ms")
        }
    )
    pool: dict[str, list[float]] = field(
        default_factory=lambda: {"new_connection": [], "pool": [], "persistent": []}
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("ORM_BENCHMARK_MASTER_KEY", _random_key())
    workdir = tempfile.mkdtemp(prefix="orm_benchmark_")
    env.setdefault("ORM_BENCHMARK_SQLITE", str(Path(workdir) / "bench.sqlite3"))
    os.environ.update(env)
    orm_setup.setup_django()
    orm_setup.ensure_postgres_database()
    models = orm_setup.define_models()
    from django.db import connection, connections

    from alphapulse_encryption.keys import current_cipher
    from tests.benchmarks.crypto_benchmark import bench_value

    orm_setup.create_tables(models)
    current_cipher().encrypt(VALUE_32, CRYPTO_CONTEXT)  # load keys outside every timing
    machine = orm_setup.machine()
    pooled = connection.vendor == "postgresql" and not args.no_pool
    samples = _Samples()
    try:
        _repeat(args, models, env, pooled, samples)
        profile = orm_rounds.profile_full_read(models["ours"]) if args.profile else None
        core = bench_value(VALUE_32, items=args.items, repeat=args.repeat, iterations=100_000)
    finally:
        orm_setup.drop_tables(models)
        if pooled:
            connections["pooled"].close_pool()
        connections.close_all()
        shutil.rmtree(workdir, ignore_errors=True)
    machine["loadavg_end"] = list(os.getloadavg())
    return _results(args, machine, samples, profile, core)


def _repeat(
    args: argparse.Namespace,
    models: dict[str, Any],
    env: dict[str, str],
    pooled: bool,
    samples: _Samples,
) -> None:
    rows = orm_setup.make_rows(args.rows, seed=args.seed)
    # Rows that bulk_update leaves alone, so the pooling requests still find theirs.
    pool_of_rows = (
        rows[args.update_rows :] if args.rows - args.update_rows >= args.lookups else rows
    )
    sample = random.Random(args.seed).sample(pool_of_rows, args.lookups)
    lookups = [row["account_number"] for row in sample]
    for rep in range(args.repeat):
        # Rotate the order too, so no model always runs first (cold caches) or last.
        order = list(LABELS[rep % 3 :] + LABELS[: rep % 3])
        print(f"repetition {rep + 1}/{args.repeat} ({', '.join(order)})", file=sys.stderr)
        orm_rounds.orm_round(
            models, order, rows, lookups, args.update_rows, samples.orm, samples.found
        )
        orm_crypto.crypto_round(models, args.items, samples.crypto)
        if pooled:
            orm_rounds.pool_round(models, lookups, samples.pool)
        if not args.no_fresh_process:
            orm_crypto.fresh_process_round(samples.fresh, env)


def _medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(s) for name, s in samples.items() if s}


def _results(
    args: argparse.Namespace,
    machine: dict[str, Any],
    samples: _Samples,
    profile: dict[str, Any] | None,
    core: dict[str, float],
) -> dict[str, Any]:
    scaled = orm_report.scaled
    results: dict[str, Any] = {
        "benchmark": "tests/benchmarks/orm_benchmark.py",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "parameters": {
            "rows": args.rows,
            "repeat": args.repeat,
            "lookups": args.lookups,
            "update_rows": args.update_rows,
            "crypto_items": args.items,
            "seed": args.seed,
        },
        "orm": {
            op: {lb: scaled(op, statistics.median(s)) for lb, s in by_label.items() if s}
            for op, by_label in samples.orm.items()
        },
        "orm_samples": {
            op: {lb: [scaled(op, v) for v in s] for lb, s in by_label.items()}
            for op, by_label in samples.orm.items()
        },
        "lookup_rows_found": samples.found["lookup"],
        "crypto_us": _medians(samples.crypto),
        "crypto_core": core,
        "fresh_process": _medians(samples.fresh),
        "pool_ms_per_request": _medians(samples.pool),
        "profile_full_read_ours": profile,
    }
    results["targets"] = orm_report.evaluate_targets(results)
    return results


def _random_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows per model (10000)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repetitions (5)")
    parser.add_argument("--lookups", type=int, default=500, help="exact lookups per sample (500)")
    parser.add_argument("--update-rows", type=int, default=1000, help="rows bulk_updated (1000)")
    parser.add_argument("--items", type=int, default=5000, help="values per crypto sample (5000)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="draw the ratios (needs matplotlib)")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    parser.add_argument("--profile", action="store_true", help="cProfile one full read of ours")
    parser.add_argument("--no-fresh-process", action="store_true", help="skip the probes")
    parser.add_argument("--no-pool", action="store_true", help="skip the pooling measurement")
    parser.add_argument(
        "--from-json", nargs="+", metavar="PATH", help="report and plot saved results instead"
    )
    parser.add_argument("--probe", choices=PROBES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(orm_crypto.probe(args.probe)))
        return 0
    if args.from_json:
        all_results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.from_json]
    else:
        if min(args.rows, args.repeat, args.lookups, args.update_rows, args.items) < 1:
            parser.error("counts must be positive")
        if args.lookups > args.rows or args.update_rows > args.rows:
            parser.error("--lookups and --update-rows cannot exceed --rows")
        all_results = [run(args)]
        if args.json:
            Path(args.json).write_text(
                json.dumps(all_results[0], indent=2) + "\n", encoding="utf-8"
            )
    for results in all_results:
        print(orm_report.report(results))
        print()
    if args.markdown:
        Path(args.markdown).write_text(orm_report.markdown(all_results) + "\n", encoding="utf-8")
    if args.plot:
        orm_plot.plot(all_results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
