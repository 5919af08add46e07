"""``manage.py demo``: set up, show the library at work with figures, then serve the admin."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alphapulse_encryption import decrypt_field, encrypt_field, get_optimized_cipher

from ... import seeding
from ...models import LegacyClient, TradingAccount, UserProfile

SAMPLE = {
    "email": "jane.trader@alphapulse.example",
    "account_number": "DE89370400440532013000",
    "balance": 1_250_000.75,
    "position": {"symbol": "AAPL", "qty": 1200, "avg_price": "187.42"},
}
DEMO_USERNAME = "demo"
DEMO_EMAIL = "Jane.Trader@AlphaPulse.example"


class Command(BaseCommand):
    help = "Run the alphapulse-encryption demo, then serve the admin on localhost."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Do everything but serve.")
        parser.add_argument("--port", default="8000")
        parser.add_argument(
            "--accounts", type=int, default=20, help="Trading accounts to seed (20)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.step("0. A fresh database, migrated and seeded")
        self.fresh_database()
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        self.say(f"migrated {connection.vendor} database in {time.perf_counter() - started:.1f} s")
        self.seed(options["accounts"])

        self.step("1. Encrypt and decrypt single values")
        self.single_values()
        self.step("2. Exact-match search tokens")
        self.search_tokens()
        self.step("3. Exact-match search through the ORM")
        self.orm_search()
        self.step("4. What the database stores")
        self.raw_rows()
        self.step("5. Batch encryption")
        self.batch()
        self.step("6. The admin")
        password = self.demo_superuser()

        if options["no_serve"]:
            self.stdout.write(self.style.SUCCESS("Demo finished (--no-serve)."))
            return
        url = f"http://127.0.0.1:{options['port']}/admin/"
        self.stdout.write(self.style.SUCCESS(f"Serving the admin on {url}"))
        self.stdout.write(f"Log in as {DEMO_USERNAME!r} with password {password!r}; Ctrl-C stops.")
        call_command("runserver", f"127.0.0.1:{options['port']}", use_reloader=False)

    # -- output helpers -------------------------------------------------------------

    def step(self, title: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(title))

    def say(self, text: str) -> None:
        self.stdout.write(f"  {text}")

    # -- steps ----------------------------------------------------------------------

    def fresh_database(self) -> None:
        name = connection.settings_dict["NAME"]
        if connection.vendor == "sqlite" and name and str(name) != ":memory:":
            connection.close()
            Path(name).unlink(missing_ok=True)
            self.say(f"new SQLite database {name}")

    def seed(self, accounts: int) -> None:
        started = time.perf_counter()
        seeding.flush()  # a database other than the demo's SQLite file may hold earlier data
        counts = seeding.seed(accounts)
        UserProfile.objects.create(
            email=DEMO_EMAIL,
            first_name="Jane",
            last_name="Trader",
            phone="+1 212 555 0100",
            api_key="ak_live_demo_0000000000000000",
            notification_settings={"email": True, "sms": False, "margin_call_threshold": 0.3},
        )
        counts["UserProfile"] += 1
        elapsed = time.perf_counter() - started
        self.say(f"seeded {sum(counts.values()):,} rows in {elapsed:.1f} s:")
        for name, count in counts.items():
            self.say(f"  {name:<15} {count:>6,}")

    def single_values(self) -> None:
        for name, value in SAMPLE.items():
            token = encrypt_field(value, context=f"demo.{name}")
            back = decrypt_field(token, context=f"demo.{name}")
            self.say(f"{name:<15} {value!r}\n    -> {token[:60]}... ({len(token)} chars)")
            self.say(f"  <- {back!r} (type kept: {type(back) is type(value)})")

    def search_tokens(self) -> None:
        a = encrypt_field(SAMPLE["email"], searchable=True, context="demo.email")
        b = encrypt_field(SAMPLE["email"], searchable=True, context="demo.email")
        self.say(f"two encryptions differ: {a != b}; their search tokens match: {a[:76] == b[:76]}")

    def orm_search(self) -> None:
        query = "  jane.trader@alphapulse.EXAMPLE "
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            profile = UserProfile.objects.get(email=query)
            elapsed_ms = (time.perf_counter() - started) * 1000
        self.say(f"UserProfile.objects.get(email={query!r})")
        self.say(
            f"  found #{profile.pk} {profile.first_name} {profile.last_name} <{profile.email}>"
        )
        self.say(f"  in {elapsed_ms:.1f} ms among {UserProfile.objects.count():,} profiles")
        # The column list is long and says nothing; the WHERE clause is the point.
        sql = re.sub(r"^SELECT .*? FROM ", "SELECT ... FROM ", captured.captured_queries[-1]["sql"])
        self.say("  SQL it ran (the token column, no plaintext):")
        self.say(f"    {sql}")
        self.say(f"  plaintext e-mail in the SQL: {'jane.trader' in sql.lower()}")

        numbers = list(
            TradingAccount.objects.order_by("id").values_list("account_number", flat=True)[:3]
        )
        found = TradingAccount.objects.filter(account_number__in=numbers).count()
        self.say(f"TradingAccount.objects.filter(account_number__in=<3 numbers>) -> {found} rows")
        try:
            UserProfile.objects.filter(email__contains="jane").exists()
        except FieldError as exc:
            self.say("a lookup the database cannot answer fails loudly:")
            self.say(f"  FieldError: {exc}")

    def raw_rows(self) -> None:
        table = UserProfile._meta.db_table
        columns = ["email", "email_search", "first_name", "date_of_birth", "is_verified"]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE email_search IS NOT NULL "  # noqa: S608
                "ORDER BY id LIMIT 1"
            )
            row = cursor.fetchone()
        self.say(f"one row of {table}, as the database (and its backups) hold it:")
        for column, value in zip(columns, row, strict=True):
            shown = value if value is None or len(str(value)) <= 96 else f"{value[:96]}..."
            self.say(f"  {column:<14} {shown}")
        legacy = LegacyClient._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT full_name, tax_id FROM {legacy} ORDER BY id LIMIT 1")  # noqa: S608
            name, tax_id = cursor.fetchone()
        self.say(f"for contrast, {legacy} still holds plaintext: {name!r}, {tax_id!r}")

    def batch(self) -> None:
        cipher = get_optimized_cipher()
        items = [f"ACC-{i:08d}" for i in range(20_000)]
        started = time.perf_counter()
        sealed = cipher.batch_encrypt(items, context="demo.account_number")
        encrypted_at = time.perf_counter()
        assert cipher.batch_decrypt(sealed, context="demo.account_number") == items
        done = time.perf_counter()
        self.say(
            f"{len(items):,} values: encrypt {(encrypted_at - started) / len(items) * 1e6:.1f} µs"
            f"/value, decrypt {(done - encrypted_at) / len(items) * 1e6:.1f} µs/value"
        )

    def demo_superuser(self) -> str:
        password = secrets.token_urlsafe(12)
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            user = user_model.objects.create_superuser(
                DEMO_USERNAME, "demo@alphapulse.example", password
            )
        else:
            user.set_password(password)
            user.save()
        self.say(f"superuser {DEMO_USERNAME!r}, password {password!r}")
        return password
