"""``manage.py encrypt_migrate``: move plaintext columns to their encrypted twins in five
steps (see docs/migration.md); the work is done by ``alphapulse_encryption.migration``."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from ...crypto import EncryptionError
from ...migration import data, pairs, schema, verify, views
from ...signals import migration_run

STEPS = ("add_columns", "migrate_data", "verify", "create_views", "drop_unencrypted")


class Command(BaseCommand):
    help = (
        "Migrate plaintext columns to the encrypted fields declared with migrate_from=, one "
        "step at a time: --add-columns, --migrate-data, --verify, --create-views, "
        "--drop-unencrypted --confirm."
    )

    # -- misuse -------------------------------------------------------------------------
    ONE_STEP = (
        "Give exactly one step: --add-columns, --migrate-data, --verify, --create-views or "
        "--drop-unencrypted. Hint: run them in that order; see docs/migration.md."
    )
    BATCH_SIZE = "--batch-size must be at least 1 (got {size}). Hint: the default is {default}."
    RETRY_ONLY_WITH_MIGRATE = "--retry-failed goes with --migrate-data."
    WORKERS = (
        "--workers must be at least 1 and goes with --migrate-data (got {workers}). "
        "Hint: one worker per core of this machine; --retry-failed runs in one worker."
    )
    WORKERS_NEED_SETTINGS = (
        "--workers starts processes that load the settings module named by "
        "DJANGO_SETTINGS_MODULE; these settings were configured in code. Hint: run one "
        "command per worker instead."
    )
    WORKER_FAILED = (
        "Worker process {index} stopped with exit status {status}. Batches committed before "
        "are kept. Hint: run the same command again to resume: rows already encrypted are "
        "skipped."
    )
    NO_MIGRATING_FIELDS = (
        "No model has an encrypted field with migrate_from=, so there is nothing to migrate. "
        "Hint: declare the encrypted field beside the plaintext one, e.g. "
        'email_encrypted = EncryptedSearchableString(null=True, migrate_from="email").'
    )
    UNKNOWN_TABLE = (
        "No model with a migrate_from= field uses the table {table!r}. "
        "Hint: --table takes a database table name; tables being migrated: {known}."
    )
    COLUMNS_MISSING = (
        "The encrypted column(s) {columns} do not exist in the database yet. "
        "Hint: run `manage.py encrypt_migrate --add-columns` first."
    )
    NOT_MIGRATED = (
        "Rows are not migrated yet: {counts}; the view would show them as NULL. "
        "Hint: run --migrate-data (and fix the failures it records), then --verify."
    )
    DROP_NEEDS_CONFIRM = (
        "--drop-unencrypted deletes the plaintext columns for good. "
        "Hint: take a backup, run --verify, then add --confirm."
    )
    DROP_NOT_VERIFIED = (
        "Refusing to drop the plaintext columns: verification is not complete for {labels}. "
        "Hint: run --migrate-data until nothing is pending, fix the recorded failures "
        "(--migrate-data --retry-failed), and --verify again."
    )
    HISTORY = "{error}. Hint: `manage.py showmigrations` shows the state of each app."
    ENCRYPTION = "{error}. Hint: check the key configuration with `manage.py check`."
    DATABASE_FAILED = (
        "The database failed during the run ({error}). Batches committed before the failure "
        "are kept; the batch in progress was rolled back. Hint: run the same command again "
        "to resume: rows already encrypted are skipped."
    )

    # -- reports ------------------------------------------------------------------------
    COLUMNS_EXIST = "The encrypted columns already exist in the database: {columns}."
    COLUMNS_ADDED = "Added the encrypted columns {columns} (apps migrated: {apps})."
    PROGRESS = (
        "{label}: {done}/{pending} rows ({percent:.0f}%), {rate:.0f} rows/s, "
        "ETA {eta}, {failed} failed"
    )
    MIGRATED = (
        "{label}: {migrated} row(s) encrypted, {failed} failed, in {elapsed:.1f}s "
        "({rate:.0f} rows/s)."
    )
    SKIPPED = "{label}: {skipped} row(s) were encrypted meanwhile by another writer."
    WORKERS_STARTED = "Started {count} more worker process(es); this one works too."
    WORKERS_DONE = (
        "{label}: {done} row(s) done by {workers} workers in {elapsed:.1f}s ({rate:.0f} rows/s); "
        "{pending} pending (failed rows included)."
    )
    FAILURES_RECORDED = (
        "{label}: {failed} row(s) could not be encrypted; they are recorded in the "
        "encryption_migrations table (e.g. pk {pk}: {error}). Fix the values, then run "
        "--migrate-data --retry-failed."
    )
    NOTHING_TO_MIGRATE = "Nothing to migrate: the plaintext columns are already dropped."
    VERIFY_HEADER = (
        "{label:<{width}}  {total:>9}  {migrated:>9}  {pending:>9}  {failed:>9}  {mismatched:>10}"
    )
    MISMATCH = "  {label} pk={pk}: {reason}"
    PLAINTEXT_DROPPED = (
        "  {label}: the plaintext column is dropped, so each value was checked to decrypt, "
        "with no plaintext to compare it with."
    )
    VERIFY_COMPLETE = "Verification complete: every row is encrypted and decrypts to its plaintext."
    VERIFY_COMPLETE_DROPPED = (
        "Verification complete: every encrypted value decrypts. The plaintext columns are "
        "dropped, so the values could not be compared with their plaintext."
    )
    VERIFY_COMPLETE_PARTLY_DROPPED = (
        "Verification complete: every row is encrypted. {compared} decrypt to their "
        "plaintext; {dropped} decrypt, with no plaintext left to compare them with (the "
        "plaintext columns are dropped)."
    )
    VERIFY_INCOMPLETE = (
        "Verification incomplete for {labels}. Hint: run --migrate-data for pending rows; "
        "failed rows are listed in the encryption_migrations table."
    )
    VIEW_CREATED = "Created view {view} over {table}: {columns}."
    ALREADY_DROPPED = "The plaintext column(s) {labels} are already dropped."
    DROPPED = "Dropped the plaintext column(s) {labels} with the migration {path}."
    EDIT_MODELS = (
        "Now change the model code to match (until then the models still name the dropped columns):"
    )
    EDIT_MODEL = "  {label} in {file}:"
    EDIT_REMOVE_FIELD = "    - delete the field `{field}`"
    EDIT_REMOVE_OPTION = '    - remove migrate_from="{source}" from `{field}`'
    EDIT_DONE = "Then `manage.py makemigrations --check` reports no changes."

    def add_arguments(self, parser: CommandParser) -> None:
        steps = parser.add_argument_group("steps (one per run, in this order)")
        steps.add_argument(
            "--add-columns",
            action="store_true",
            help="1. Create the missing encrypted columns (makemigrations, then migrate).",
        )
        steps.add_argument(
            "--migrate-data",
            action="store_true",
            help="2. Encrypt pending rows in batches; resumable; several workers may run.",
        )
        steps.add_argument(
            "--verify",
            action="store_true",
            help="3. Count the rows and decrypt every value, comparing it with its plaintext "
            "while that column exists; exit status 1 unless complete.",
        )
        steps.add_argument(
            "--create-views",
            action="store_true",
            help="4. Create <table>_encrypted views showing encrypted columns only.",
        )
        steps.add_argument(
            "--drop-unencrypted",
            action="store_true",
            help="5. Drop the plaintext columns (irreversible; needs --confirm).",
        )
        parser.add_argument(
            "--table",
            metavar="TABLE",
            help="Only this database table (default: every table with a migrate_from= field).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=data.DEFAULT_BATCH_SIZE,
            help="Rows per batch (default: %(default)s): one transaction each when migrating "
            "data, rows read at once when verifying.",
        )
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="With --migrate-data: try the rows recorded as failed once more.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="With --migrate-data: worker processes sharing the rows (default: %(default)s).",
        )
        parser.add_argument(
            "--confirm",
            action="store_true",
            help="Confirm --drop-unencrypted (after a backup and a complete --verify).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = [step for step in STEPS if options[step]]
        if len(chosen) != 1:
            raise CommandError(self.ONE_STEP)
        if options["batch_size"] < 1:
            raise CommandError(
                self.BATCH_SIZE.format(size=options["batch_size"], default=data.DEFAULT_BATCH_SIZE)
            )
        if options["retry_failed"] and chosen != ["migrate_data"]:
            raise CommandError(self.RETRY_ONLY_WITH_MIGRATE)
        workers = options["workers"]
        if workers < 1 or (workers > 1 and (chosen != ["migrate_data"] or options["retry_failed"])):
            raise CommandError(self.WORKERS.format(workers=workers))
        self.verbosity = options["verbosity"]
        outcome = "error"
        try:
            self._run_step(chosen[0], options)
            outcome = "ok"
        finally:
            # Every run is audited, successful or not (the audit log listens).
            migration_run.send_robust(
                sender=type(self), step=chosen[0], table=options["table"], outcome=outcome
            )

    def _run_step(self, step: str, options: dict[str, Any]) -> None:
        try:
            getattr(self, f"_{step}")(**options)
        except pairs.NoMigratingFields as exc:
            raise CommandError(self.NO_MIGRATING_FIELDS) from exc
        except pairs.UnknownTable as exc:
            raise CommandError(
                self.UNKNOWN_TABLE.format(table=exc.table, known=", ".join(exc.known))
            ) from exc
        except pairs.ColumnsMissing as exc:
            raise CommandError(self.COLUMNS_MISSING.format(columns=", ".join(exc.columns))) from exc
        except views.NotMigrated as exc:
            counts = ", ".join(f"{label} {count} row(s)" for label, count in exc.counts.items())
            raise CommandError(self.NOT_MIGRATED.format(counts=counts)) from exc
        except schema.NotVerified as exc:
            self._write_report(exc.report)
            labels = ", ".join(column.label for column in exc.report.incomplete())
            raise CommandError(self.DROP_NOT_VERIFIED.format(labels=labels)) from exc
        except schema.MigrationHistoryError as exc:
            raise CommandError(self.HISTORY.format(error=exc)) from exc
        except EncryptionError as exc:
            raise CommandError(self.ENCRYPTION.format(error=exc)) from exc
        except DatabaseError as exc:
            if step != "migrate_data":
                raise
            raise CommandError(self.DATABASE_FAILED.format(error=database_error(exc))) from exc

    def _say(self, message: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)

    # -- 1 ------------------------------------------------------------------------------

    def _add_columns(self, *, table: str | None, **_: Any) -> None:
        result = schema.add_columns(
            table, stdout=self.stdout, stderr=self.stderr, verbosity=self.verbosity
        )
        if result.missing:
            message = self.COLUMNS_ADDED.format(
                columns=", ".join(result.missing), apps=", ".join(result.apps)
            )
            self._say(self.style.SUCCESS(message))
        else:
            labels = [
                f"{pair.table}.{column}"
                for pair in pairs.select_pairs(table)
                for column in (pair.column, *pair.token_columns())
            ]
            self._say(self.COLUMNS_EXIST.format(columns=", ".join(labels)))

    # -- 2 ------------------------------------------------------------------------------

    def _migrate_data(
        self, *, table: str | None, batch_size: int, retry_failed: bool, workers: int, **_: Any
    ) -> None:
        if workers > 1:
            self._migrate_data_in_workers(table, batch_size, workers)
            return
        started = time.monotonic()
        last_shown: dict[str, float] = {}

        def show(progress: data.MigrateProgress) -> None:
            # The columns of a table advance together, batch by batch: each has its line.
            now = time.monotonic()
            due = now - last_shown.get(progress.label, started) >= 2
            if self.verbosity >= 2 or (self.verbosity >= 1 and due):
                last_shown[progress.label] = now
                self.stdout.write(self._progress_line(progress))

        results = data.migrate_data(
            table, batch_size=batch_size, retry_failed=retry_failed, on_batch=show
        )
        if not results:
            self._say(self.NOTHING_TO_MIGRATE)
        for progress in results:
            style = self.style.WARNING if progress.failed else self.style.SUCCESS
            self._say(
                style(
                    self.MIGRATED.format(
                        label=progress.label,
                        migrated=progress.migrated,
                        failed=progress.failed,
                        elapsed=progress.elapsed,
                        rate=progress.rate,
                    )
                )
            )
            if progress.skipped:
                self._say(self.SKIPPED.format(label=progress.label, skipped=progress.skipped), 2)
            if progress.failed:
                pk, error = progress.failures[0]
                self.stderr.write(
                    self.FAILURES_RECORDED.format(
                        label=progress.label, failed=progress.failed, pk=pk, error=error
                    )
                )

    def _migrate_data_in_workers(self, table: str | None, batch_size: int, workers: int) -> None:
        """Start ``workers - 1`` more processes running this command with one worker each,
        work in this one too, and wait for them. The rows are shared as between any
        concurrent runs (each batch locks its rows; see docs/migration.md)."""
        if not settings.SETTINGS_MODULE:
            raise CommandError(self.WORKERS_NEED_SETTINGS)
        selected = pairs.select_pairs(table)
        pairs.require_columns(selected)
        before = {pair.label: data.pending_rows(pair).count() for pair in selected}
        started = time.monotonic()
        command = [sys.executable, "-m", "django", "encrypt_migrate", "--migrate-data"]
        command += ["--batch-size", str(batch_size), "--verbosity", "0"]
        if table is not None:
            command += ["--table", table]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
            "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
        }
        children = [subprocess.Popen(command, env=env) for _ in range(workers - 1)]  # noqa: S603
        self._say(self.WORKERS_STARTED.format(count=len(children)), 2)
        try:
            self._migrate_data(table=table, batch_size=batch_size, retry_failed=False, workers=1)
            statuses = [child.wait() for child in children]
        finally:
            for child in children:
                if child.poll() is None:  # this process failed or was interrupted
                    child.terminate()
                    child.wait()
        for index, status in enumerate(statuses, start=2):
            if status != 0:
                raise CommandError(self.WORKER_FAILED.format(index=index, status=status))
        elapsed = time.monotonic() - started
        for pair in selected:
            pending = data.pending_rows(pair).count()
            done = before[pair.label] - pending
            self._say(
                self.WORKERS_DONE.format(
                    label=pair.label,
                    done=done,
                    workers=workers,
                    elapsed=elapsed,
                    rate=done / elapsed if elapsed > 0 else 0,
                    pending=pending,
                )
            )

    def _progress_line(self, progress: data.MigrateProgress) -> str:
        eta = progress.eta
        percent = 100 * progress.done / progress.pending if progress.pending else 100
        return self.PROGRESS.format(
            label=progress.label,
            done=progress.done,
            pending=progress.pending,
            percent=min(percent, 100),
            rate=progress.rate,
            eta="?" if eta is None else datetime.timedelta(seconds=round(eta)),
            failed=progress.failed,
        )

    # -- 3 ------------------------------------------------------------------------------

    def _verify(self, *, table: str | None, batch_size: int, **_: Any) -> None:
        report = verify.verify(table, batch_size=batch_size)
        self._write_report(report)
        if not report.complete:
            labels = ", ".join(column.label for column in report.incomplete())
            raise CommandError(self.VERIFY_INCOMPLETE.format(labels=labels))
        self._say(self.style.SUCCESS(self._verify_complete(report)))

    def _verify_complete(self, report: verify.VerifyReport) -> str:
        """What a complete verification proved: a value whose plaintext column is gone was
        only decrypted, not compared."""
        dropped = [column.label for column in report.columns if column.plaintext_dropped]
        compared = [column.label for column in report.columns if not column.plaintext_dropped]
        if not dropped:
            return self.VERIFY_COMPLETE
        if not compared:
            return self.VERIFY_COMPLETE_DROPPED
        return self.VERIFY_COMPLETE_PARTLY_DROPPED.format(
            compared=", ".join(compared), dropped=", ".join(dropped)
        )

    def _write_report(self, report: verify.VerifyReport) -> None:
        width = max([len("table.column"), *(len(c.label) for c in report.columns)])
        self._say(
            self.VERIFY_HEADER.format(
                label="table.column",
                width=width,
                total="total",
                migrated="migrated",
                pending="pending",
                failed="failed",
                mismatched="mismatched",
            )
        )
        for column in report.columns:
            line = self.VERIFY_HEADER.format(width=width, **vars(column))
            self._say(line if column.complete else self.style.ERROR(line))
        for column in report.columns:
            if column.plaintext_dropped:
                self._say(self.PLAINTEXT_DROPPED.format(label=column.label))
            for pk, reason in column.mismatches:
                self._say(self.MISMATCH.format(label=column.label, pk=pk, reason=reason))

    # -- 4 ------------------------------------------------------------------------------

    def _create_views(self, *, table: str | None, **_: Any) -> None:
        for created in views.create_views(table):
            self._say(
                self.style.SUCCESS(
                    self.VIEW_CREATED.format(
                        view=created.view, table=created.table, columns=", ".join(created.columns)
                    )
                )
            )

    # -- 5 ------------------------------------------------------------------------------

    def _drop_unencrypted(
        self, *, table: str | None, confirm: bool, batch_size: int, **_: Any
    ) -> None:
        if not confirm:
            raise CommandError(self.DROP_NEEDS_CONFIRM)
        result = schema.drop_unencrypted(
            table,
            stdout=self.stdout,
            stderr=self.stderr,
            verbosity=self.verbosity,
            batch_size=batch_size,
        )
        if result.already_dropped:
            self._say(self.ALREADY_DROPPED.format(labels=", ".join(result.already_dropped)))
        if not result.migrations:
            return
        for app_label, path in result.migrations.items():
            dropped = ", ".join(
                f"{change.label}.{name}"
                for change in result.changes
                if change.label.split(".")[0] == app_label
                for name in change.plaintext_fields
            )
            self._say(self.style.SUCCESS(self.DROPPED.format(labels=dropped, path=path)))
        self._say(self.EDIT_MODELS)
        for change in result.changes:
            self._say(self.EDIT_MODEL.format(label=change.label, file=change.source_file))
            for name in change.plaintext_fields:
                self._say(self.EDIT_REMOVE_FIELD.format(field=name))
            for name, source in change.encrypted_fields:
                self._say(self.EDIT_REMOVE_OPTION.format(field=name, source=source))
        self._say(self.EDIT_DONE)


def database_error(exc: DatabaseError) -> str:
    """The error's type and first line: enough to act on, short of the full statement."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
