"""``manage.py demo``: set up, show the library at work with figures, then serve the admin.

A demo run changes no file of the repository. Its database is the git-ignored
``example_project/demo.sqlite3`` (or ``DATABASE_URL``), and the migration that
``encrypt_migrate --drop-unencrypted`` writes goes into a temporary copy of the backoffice
migrations package: this process points ``MIGRATION_MODULES`` at the copy.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from alphapulse_encryption import (
    EncryptionKeyManager,
    decrypt_field,
    encrypt_field,
    get_optimized_cipher,
)
from alphapulse_encryption.models import AuditLogEntry

from ... import seeding
from ...models import LegacyClient, TradingAccount, UserProfile

SAMPLE = {
    "email": "jane.trader@alphapulse.example",
    "account_number": "DE89370400440532013000",
    "balance": 1_250_000.75,
    "position": {"symbol": "AAPL", "qty": 1200, "avg_price": "187.42"},
}
DEMO_USERNAME = "demo"
SUPPORT_USERNAME = "support"
DEMO_EMAIL = "Jane.Trader@AlphaPulse.example"
LEGACY_TABLE = LegacyClient._meta.db_table
# `encryption_keys status` prints one "  app.Model.field: v1=3 v2=0" line per field.
_USAGE_LINE = re.compile(r"^  (\S+\.\S+\.\S+): (.*)$")
_TOKEN = re.compile(r"'(apt1[0-9a-f]{8})[0-9a-f]{64}'")


class Command(BaseCommand):
    help = (
        "Run the alphapulse-encryption demo on a fresh database (migrate, seed, the five "
        "encrypt_migrate steps, exact-match search, key rotation and re-encryption), then "
        "serve the admin on localhost."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Do everything but serve.")
        parser.add_argument("--port", default="8000")
        parser.add_argument(
            "--accounts", type=int, default=20, help="Trading accounts to seed (20)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["accounts"] < 1:
            raise CommandError("--accounts must be at least 1")
        self.figures: dict[str, Any] = {}
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="alphapulse-demo-") as scratch:
            self.step("0. A fresh database, migrated and seeded")
            self.use_scratch_migrations(Path(scratch))
            self.fresh_database()
            self.migrate()
            self.seed(options["accounts"])
            self.step("1. Encrypt and decrypt single values")
            self.single_values()
            self.step("2. What the database stores")
            self.raw_rows()
            self.step("3. Migrating the legacy plaintext table: manage.py encrypt_migrate")
            self.migrate_legacy_table()
            self.step("4. Exact-match search through the ORM")
            self.orm_search()
            self.step("5. Batch encryption")
            self.batch()
            self.step("6. Key rotation and re-encryption (database keyring)")
            self.rotate_and_reencrypt()
            self.step("7. The audit log")
            self.audit_log()
            self.figures["total"] = time.perf_counter() - started
            self.step("8. What the demo did")
            self.summary()
            self.step("9. The admin")
            credentials = self.demo_users()
            if options["no_serve"]:
                self.stdout.write(self.style.SUCCESS("Demo finished (--no-serve)."))
                return
            url = f"http://127.0.0.1:{options['port']}/admin/"
            self.stdout.write(self.style.SUCCESS(f"Serving the admin on {url}"))
            for username, password in credentials.items():
                self.stdout.write(f"Log in as {username!r} with password {password!r}")
            self.stdout.write("Ctrl-C stops the server.")
            call_command("runserver", f"127.0.0.1:{options['port']}", use_reloader=False)

    # -- output helpers -------------------------------------------------------------

    def step(self, title: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(title))

    def say(self, text: str = "") -> None:
        self.stdout.write(f"  {text}" if text else "")

    def run(self, *args: str, show: bool = True) -> tuple[str, float]:
        """Run a management command as ``manage.py`` would; echo and return its output."""
        out, err = StringIO(), StringIO()
        self.say(f"$ python manage.py {' '.join(args)}")
        started = time.perf_counter()
        try:
            call_command(*args, stdout=out, stderr=err)
        finally:
            elapsed = time.perf_counter() - started
            if show:
                for line in (out.getvalue() + err.getvalue()).splitlines():
                    self.say(f"  {line}")
        return out.getvalue(), elapsed

    # -- 0. set-up ------------------------------------------------------------------

    def use_scratch_migrations(self, scratch: Path) -> None:
        # Step 5 writes a migration into the app's migrations package: give it a copy, so
        # the repository's example_project/backoffice/migrations stays as committed.
        package = f"demo_backoffice_migrations_{secrets.token_hex(4)}"
        source = Path(apps.get_app_config("backoffice").path) / "migrations"
        shutil.copytree(source, scratch / package, ignore=shutil.ignore_patterns("__pycache__"))
        sys.path.insert(0, str(scratch))
        settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "backoffice": package}
        self.say(f"backoffice migrations: a scratch copy in {scratch / package}")

    def fresh_database(self) -> None:
        name = connection.settings_dict["NAME"]
        if connection.vendor == "sqlite":
            if name and str(name) != ":memory:" and not str(name).startswith("file:"):
                connection.close()
                Path(name).unlink(missing_ok=True)
                self.say(f"new SQLite database {name}")
            return
        dropped = self.drop_project_tables()
        self.say(f"dropped {dropped} tables of this project in the {connection.vendor} database")

    def drop_project_tables(self) -> int:
        """Drop what an earlier demo left in a PostgreSQL or MariaDB database: it may lack
        the legacy plaintext columns, and its keyring may be wrapped by another key."""
        qn = connection.ops.quote_name
        tables = list(connection.introspection.django_table_names(only_existing=True))
        with connection.cursor() as cursor:
            if "django_migrations" in connection.introspection.table_names(cursor):
                tables.append("django_migrations")
            cursor.execute(f"DROP VIEW IF EXISTS {qn(LEGACY_TABLE + '_encrypted')}")
            if not tables:
                return 0
            listed = ", ".join(qn(table) for table in tables)
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TABLE IF EXISTS {listed} CASCADE")
            elif connection.vendor == "mysql":
                cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
                try:
                    cursor.execute(f"DROP TABLE IF EXISTS {listed}")
                finally:
                    cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
            else:
                raise CommandError(f"the demo does not know how to reset {connection.vendor}")
        return len(tables)

    def migrate(self) -> None:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        self.say(f"migrated {connection.vendor} database in {time.perf_counter() - started:.1f} s")

    def seed(self, accounts: int) -> None:
        started = time.perf_counter()
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
        self.figures["seeded"] = (sum(counts.values()), elapsed)
        self.say(f"seeded {sum(counts.values()):,} rows in {elapsed:.1f} s:")
        for name, count in counts.items():
            self.say(f"  {name:<15} {count:>6,}")
        manager = EncryptionKeyManager()
        for info in manager.key_versions():
            self.say(
                f"key version {info.version} ({info.status}), fingerprint {info.fingerprint}: "
                f"created by {type(manager.provider).__name__} on first use, stored wrapped "
                "by the master key"
            )

    # -- 1. single values -----------------------------------------------------------

    def single_values(self) -> None:
        for name, value in SAMPLE.items():
            token = encrypt_field(value, context=f"demo.{name}")
            back = decrypt_field(token, context=f"demo.{name}")
            self.say(f"{name:<15} {value!r}\n    -> {token[:60]}... ({len(token)} chars)")
            self.say(f"  <- {back!r} (type kept: {type(back) is type(value)})")
        a = encrypt_field(SAMPLE["email"], searchable=True, context="demo.email")
        b = encrypt_field(SAMPLE["email"], searchable=True, context="demo.email")
        self.say(
            f"the same e-mail encrypted twice: ciphertexts differ: {a[76:] != b[76:]}; "
            f"search tokens (first 76 chars) match: {a[:76] == b[:76]}"
        )

    # -- 2. raw rows ----------------------------------------------------------------

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
            self.say(f"  {column:<14} {_shorten(value)}")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT full_name, email, tax_id, email_encrypted FROM {LEGACY_TABLE} "  # noqa: S608
                "ORDER BY id LIMIT 1"
            )
            name, email, tax_id, encrypted = cursor.fetchone()
        self.say(f"for contrast, {LEGACY_TABLE} was written before encryption:")
        self.say(f"  full_name {name!r}, email {email!r}, tax_id {tax_id!r} (plaintext)")
        self.say(f"  its encrypted twin email_encrypted is still {encrypted!r}")

    # -- 3. encrypt_migrate ---------------------------------------------------------

    def migrate_legacy_table(self) -> None:
        twins: list[Any] = [
            f for f in LegacyClient._meta.concrete_fields if getattr(f, "migrate_from", None)
        ]
        self.say(
            f"LegacyClient declares an encrypted twin with migrate_from= for each of its "
            f"{len(twins)} plaintext columns:"
        )
        for field in twins:
            declared = f"{type(field).__name__}(migrate_from={field.migrate_from!r})"
            self.say(f"  {field.name:<24} {declared}")
        self.say("(declared in models.py, their migration 0002 committed: the state after step 1)")
        self.say()

        self.say("Step 1, --add-columns: creates missing encrypted columns; here they exist.")
        self.run("encrypt_migrate", "--add-columns")
        self.say()

        # Dual write: from the moment the twins are declared, every write fills them too.
        newcomer = LegacyClient.objects.create(
            full_name="Ada Newcomer",
            email="Ada.Newcomer@Example.com",
            tax_id="900-00-0001",
            credit_score=790,
            preferences={"statements": "email", "language": "en"},
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT email_encrypted FROM {LEGACY_TABLE} WHERE id = %s",  # noqa: S608
                [newcomer.pk],
            )
            (stored,) = cursor.fetchone()
        pending = LegacyClient.objects.filter(email_encrypted__isnull=True).count()
        total = LegacyClient.objects.count()
        self.say(
            "dual write: LegacyClient.objects.create(...) of a new client filled its twins "
            f"at once: email_encrypted = {_shorten(stored, 40)}"
        )
        self.say(f"rows holding plaintext only, pending encryption: {pending} of {total}")
        self.legacy_email = (
            LegacyClient.objects.order_by("pk").values_list("email", flat=True).first() or ""
        )
        self.say()

        self.say("Step 2, --migrate-data: encrypts pending rows in batches, resumable.")
        _, elapsed = self.run("encrypt_migrate", "--migrate-data", "--batch-size", "500")
        self.figures["migrated"] = (len(twins), pending, elapsed)
        self.say()

        self.say("Step 3, --verify: decrypts every value and compares it with the plaintext.")
        self.run("encrypt_migrate", "--verify")
        self.say()

        self.say("Step 4, --create-views: a view for SQL readers, encrypted columns in place.")
        self.run("encrypt_migrate", "--create-views")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT email FROM {LEGACY_TABLE}_encrypted ORDER BY id LIMIT 1")  # noqa: S608
            (shown,) = cursor.fetchone()
        self.say(f"its e-mail column shows the ciphertext: {_shorten(shown, 60)}")
        self.say()

        self.say("Step 5, --drop-unencrypted: irreversible, so refused without --confirm ...")
        try:
            self.run("encrypt_migrate", "--drop-unencrypted")
        except CommandError as exc:
            self.say(f"  CommandError: {exc}")
        self.say("... and with it, verified again first, then a migration drops the columns:")
        self.run("encrypt_migrate", "--drop-unencrypted", "--confirm")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {LEGACY_TABLE} WHERE 1 = 0")  # noqa: S608
            columns = [column[0] for column in cursor.description]
        self.say(f"{LEGACY_TABLE} now has the columns: {', '.join(columns)}")
        self.say(
            "The demo leaves models.py as committed: the migration went to the scratch copy "
            "of the migrations package, deleted when the demo ends. So the model still "
            "declares the dropped plaintext fields; code that selects them would fail until "
            "the edits listed above are made. The LegacyClient admin reads only the "
            "encrypted twins, so it works in both states."
        )

    # -- 4. search ------------------------------------------------------------------

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
        self.figures["search_ms"] = elapsed_ms

        numbers = list(
            TradingAccount.objects.order_by("id").values_list("account_number", flat=True)[:3]
        )
        found = TradingAccount.objects.filter(account_number__in=numbers).count()
        self.say(f"TradingAccount.objects.filter(account_number__in=<3 numbers>) -> {found} rows")

        # .values_list(): the model still names the dropped plaintext columns (see step 3).
        wanted = f" {self.legacy_email.upper()} "
        rows = list(
            LegacyClient.objects.filter(email_encrypted=wanted).values_list("pk", "email_encrypted")
        )
        self.say(
            f"LegacyClient.objects.filter(email_encrypted={wanted!r}) on the migrated table "
            f"-> {rows}"
        )
        try:
            UserProfile.objects.filter(email__contains="jane").exists()
        except FieldError as exc:
            self.say("a lookup the database cannot answer fails loudly:")
            self.say(f"  FieldError: {exc}")

    # -- 5. batches -----------------------------------------------------------------

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

    # -- 6. rotation ----------------------------------------------------------------

    def key_status(self, title: str) -> Counter[str]:
        """Run ``encryption_keys status``; show its key versions and encryption counts, a
        few of its per-field lines, and the stored values per version in total."""
        self.say(title)
        out, _ = self.run("encryption_keys", "status", show=False)
        totals: Counter[str] = Counter()
        fields = 0
        for line in out.splitlines():
            match = _USAGE_LINE.match(line)
            if match is None:
                # The key versions, and how many values each has encrypted (AES-GCM's
                # random nonces allow 2**32 per key); not the per-field header.
                if not line.startswith("Stored values"):
                    self.say(f"  {line}")
                continue
            fields += 1
            for part in match.group(2).split():
                version, _, count = part.partition("=")
                if count.isdigit():
                    totals[version] += int(count)
            if match.group(1) in ("backoffice.UserProfile.email", "backoffice.Trade.execution"):
                self.say(f"  {line.strip()}")
        shown = " ".join(f"{version}={count:,}" for version, count in sorted(totals.items()))
        self.say(f"  ... stored values of all {fields} encrypted fields by key version: {shown}")
        return totals

    def rotate_and_reencrypt(self) -> None:
        manager = EncryptionKeyManager()
        self.say(f"KEY_PROVIDER: {type(manager.provider).__name__}")
        self.key_status("Before:")
        self.say()

        new_version = manager.rotate_keys()
        self.say(f"EncryptionKeyManager().rotate_keys() -> {new_version}")
        for info in manager.key_versions():
            self.say(f"  version {info.version}: {info.status}")
        jane = UserProfile.objects.get(email=DEMO_EMAIL)
        self.say(f"old data still decrypts: {jane.first_name} {jane.last_name} <{jane.email}>")
        jane.phone = "+1 212 555 0199"
        jane.save()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT email FROM {UserProfile._meta.db_table} WHERE id = %s",  # noqa: S608
                [jane.pk],
            )
            (stored,) = cursor.fetchone()
        self.say(f"a new write uses version {new_version}: email = {_shorten(stored, 40)}")
        other = (
            UserProfile.objects.exclude(pk=jane.pk).order_by("pk").values_list("email", flat=True)
        )[0]
        with CaptureQueriesContext(connection) as captured:
            found = UserProfile.objects.filter(email=other).count()
        tokens = _TOKEN.findall(captured.captured_queries[-1]["sql"])
        self.say(
            f"search still finds rows written under version 1: filter(email=...) -> {found} "
            f"row, sending one token per version: {', '.join(t + '...' for t in tokens)}"
        )
        self.say()

        self.say("Re-encrypt every row still under an old version, in batches (resumable):")
        out, elapsed = self.run("encryption_keys", "reencrypt")
        moved = scanned = 0
        for match in re.finditer(r"(\d+) of (\d+) rows moved", out):
            moved += int(match.group(1))
            scanned += int(match.group(2))
        self.figures["reencrypted"] = (moved, scanned, elapsed, new_version)
        self.say(
            f"{moved:,} of {scanned:,} rows moved to version {new_version} in {elapsed:.1f} s "
            f"({moved / elapsed if elapsed else 0:,.0f} rows/s)"
        )
        self.say()
        after = self.key_status("After:")
        self.say()
        old = f"v{new_version - 1}"
        if after.get(old, 0) == 0:
            self.say(f"No stored value uses version {new_version - 1} any more: retire it.")
            self.run("encryption_keys", "retire", str(new_version - 1))

    # -- 7. audit -------------------------------------------------------------------

    def audit_log(self) -> None:
        counts = (
            AuditLogEntry.objects.order_by("action")
            .values_list("action")
            .annotate(entries=Count("id"))
        )
        self.say("entries written during the demo, by action:")
        for action, entries in counts:
            self.say(f"  {action:<18} {entries:>4}")
        operations: Counter[str] = Counter(
            entry.get("operation", "?")
            for entry in AuditLogEntry.objects.filter(
                action=AuditLogEntry.Action.KEY_OPERATION
            ).values_list("detail", flat=True)
        )
        self.say(
            "  key operations: "
            + ", ".join(f"{name} {n}" for name, n in sorted(operations.items()))
        )
        out, _ = self.run("audit_verify")
        self.figures["audit"] = out.strip()

    # -- 8. summary -----------------------------------------------------------------

    def summary(self) -> None:
        rows, seconds = self.figures["seeded"]
        columns, pending, migrate_seconds = self.figures["migrated"]
        moved, scanned, reencrypt_seconds, version = self.figures["reencrypted"]
        self.say(f"seeded           {rows:,} rows in {seconds:.1f} s")
        self.say(
            f"encrypt_migrate  {columns} columns of {LEGACY_TABLE}: {pending} pending rows "
            f"encrypted in {migrate_seconds:.2f} s, verified, view created, plaintext dropped"
        )
        self.say(
            f"search           exact match through search tokens in "
            f"{self.figures['search_ms']:.1f} ms, no plaintext in the SQL"
        )
        self.say(
            f"key rotation     version {version} active; {moved:,} of {scanned:,} rows "
            f"re-encrypted in {reencrypt_seconds:.1f} s; version {version - 1} retired"
        )
        self.say(f"audit log        {self.figures['audit']}")
        self.say(f"total            {self.figures['total']:.1f} s")

    # -- 9. admin -------------------------------------------------------------------

    def demo_users(self) -> dict[str, str]:
        """A superuser, who may reveal values, and a support user, who sees masks only."""
        user_model = get_user_model()
        credentials: dict[str, str] = {}
        for username in (DEMO_USERNAME, SUPPORT_USERNAME):
            password = secrets.token_urlsafe(12)
            user, _ = user_model.objects.get_or_create(
                username=username,
                defaults={"email": f"{username}@alphapulse.example", "is_staff": True},
            )
            user.is_superuser = username == DEMO_USERNAME
            user.set_password(password)
            user.save()
            credentials[username] = password
        support = user_model.objects.get(username=SUPPORT_USERNAME)
        support.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="backoffice", codename__startswith="view_"
            )
        )
        self.say(
            f"superuser {DEMO_USERNAME!r}, password {credentials[DEMO_USERNAME]!r}: "
            "sees masks, may reveal a field (each reveal is audited)"
        )
        self.say(
            f"staff user {SUPPORT_USERNAME!r}, password {credentials[SUPPORT_USERNAME]!r}: "
            "may view the back office, sees masks only (no reveal permission)"
        )
        self.say(
            "Legacy clients shows the encrypted twins only, read-only: the plaintext "
            "columns are gone from the database, not from the model code (see step 3)."
        )
        return credentials


def _shorten(value: Any, width: int = 96) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return text if len(text) <= width else f"{text[:width]}..."
