"""``manage.py seed_demo [--accounts N]``: fill the back office with realistic demo data."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import seeding


class Command(BaseCommand):
    help = "Create demo users, trading accounts, positions, trades, P&L, risk and legacy clients."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, default=50, help="Accounts to create (50).")
        parser.add_argument(
            "--seed", type=int, default=None, help="Random seed, for repeatable data."
        )
        parser.add_argument("--flush", action="store_true", help="Delete existing demo data first.")

    def handle(self, *args: Any, accounts: int, seed: int | None, **options: Any) -> None:
        if accounts < 1:
            raise CommandError("--accounts must be at least 1")
        verbosity = options["verbosity"]
        if options["flush"]:
            seeding.flush()
        started = time.perf_counter()

        def progress(done: int, total: int, counts: dict[str, int]) -> None:
            if verbosity < 1:
                return
            width = 30
            filled = width * done // total
            line = f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} accounts"
            if verbosity >= 2:
                line += "  " + ", ".join(f"{name} {n}" for name, n in counts.items())
            self.stdout.write(line)

        counts = seeding.seed(accounts, seed=seed, progress=progress)
        if verbosity >= 1:
            elapsed = time.perf_counter() - started
            total = sum(counts.values())
            self.stdout.write(
                self.style.SUCCESS(f"Seeded {total:,} rows in {elapsed:.1f} s: ")
                + ", ".join(f"{n:,} {name}" for name, n in counts.items())
            )
