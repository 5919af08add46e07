"""``manage.py demo``: set up, show the library at work with figures, then serve the admin."""

from __future__ import annotations

import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from alphapulse_encryption import decrypt_field, encrypt_field, get_optimized_cipher

SAMPLE = {
    "email": "jane.trader@alphapulse.example",
    "account_number": "DE89370400440532013000",
    "balance": 1_250_000.75,
    "position": {"symbol": "AAPL", "qty": 1200, "avg_price": "187.42"},
}


class Command(BaseCommand):
    help = "Run the alphapulse-encryption demo, then serve the admin on localhost."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Do everything but serve.")
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, **options: Any) -> None:
        out = self.stdout
        call_command("migrate", verbosity=0)
        out.write(self.style.MIGRATE_HEADING("1. Encrypt and decrypt single values"))
        for name, value in SAMPLE.items():
            token = encrypt_field(value, context=f"demo.{name}")
            back = decrypt_field(token, context=f"demo.{name}")
            out.write(f"  {name:<15} {value!r}\n    -> {token[:60]}... ({len(token)} chars)")
            out.write(f"    <- {back!r} (type kept: {type(back) is type(value)})")

        out.write(self.style.MIGRATE_HEADING("2. Exact-match search tokens"))
        a = encrypt_field(SAMPLE["email"], searchable=True, context="demo.email")
        b = encrypt_field(SAMPLE["email"], searchable=True, context="demo.email")
        out.write(
            f"  two encryptions differ: {a != b}; their search tokens match: {a[:76] == b[:76]}"
        )

        out.write(self.style.MIGRATE_HEADING("3. Batch encryption"))
        cipher = get_optimized_cipher()
        items = [f"ACC-{i:08d}" for i in range(20_000)]
        started = time.perf_counter()
        sealed = cipher.batch_encrypt(items, context="demo.account_number")
        encrypted_at = time.perf_counter()
        assert cipher.batch_decrypt(sealed, context="demo.account_number") == items
        done = time.perf_counter()
        out.write(
            f"  {len(items):,} values: encrypt {(encrypted_at - started) / len(items) * 1e6:.1f} µs"
            f"/value, decrypt {(done - encrypted_at) / len(items) * 1e6:.1f} µs/value"
        )
        if options["no_serve"]:
            out.write(self.style.SUCCESS("Demo finished (--no-serve)."))
            return
        out.write(
            self.style.SUCCESS(f"Serving the admin on http://127.0.0.1:{options['port']}/admin/")
        )
        call_command("runserver", f"127.0.0.1:{options['port']}", use_reloader=False)
