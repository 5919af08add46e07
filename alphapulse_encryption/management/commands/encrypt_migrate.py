"""``manage.py encrypt_migrate``: move plaintext columns to their encrypted twins in five
steps (see docs/migration.md). This module parses the options and runs one step of
``alphapulse_encryption.migration``; ``management.migrate_reports`` writes the results."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from ...crypto import EncryptionError
from ...migration import data, pairs, schema, verify, views
from ...migration import workers as _workers
from ...signals import migration_run
from ..errors import database_error
from ..migrate_reports import MigrateReports

STEPS = ("add_columns", "migrate_data", "verify", "create_views", "drop_unencrypted")


class Command(MigrateReports):
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

    STEP_HELP = {
        "--add-columns": "1. Create the missing encrypted columns (makemigrations, then migrate).",
        "--migrate-data": "2. Encrypt pending rows in batches; resumable; several workers may run.",
        "--verify": "3. Count the rows and decrypt every value, comparing it with its plaintext "
        "while that column exists; exit status 1 unless complete.",
        "--create-views": "4. Create <table>_encrypted views showing encrypted columns only.",
        "--drop-unencrypted": "5. Drop the plaintext columns (irreversible; needs --confirm).",
    }

    OPTION_HELP = {
        "--table": "Only this database table (default: every table with a migrate_from= field).",
        "--batch-size": "Rows per batch (default: %(default)s): one transaction each when "
        "migrating data, rows read at once when verifying.",
        "--retry-failed": "With --migrate-data: try the rows recorded as failed once more.",
        "--workers": "With --migrate-data: worker processes sharing the rows "
        "(default: %(default)s).",
        "--confirm": "Confirm --drop-unencrypted (after a backup and a complete --verify).",
    }

    def add_arguments(self, parser: CommandParser) -> None:
        steps = parser.add_argument_group("steps (one per run, in this order)")
        for flag, text in self.STEP_HELP.items():
            steps.add_argument(flag, action="store_true", help=text)
        about = self.OPTION_HELP
        parser.add_argument("--table", metavar="TABLE", help=about["--table"])
        parser.add_argument(
            "--batch-size", type=int, default=data.DEFAULT_BATCH_SIZE, help=about["--batch-size"]
        )
        parser.add_argument("--retry-failed", action="store_true", help=about["--retry-failed"])
        parser.add_argument("--workers", type=int, default=1, help=about["--workers"])
        parser.add_argument("--confirm", action="store_true", help=about["--confirm"])

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
        if workers == 1:
            self._migrate_data_here(table, batch_size, retry_failed)
            return
        try:
            results = _workers.migrate_data_in_workers(
                table,
                batch_size=batch_size,
                workers=workers,
                work_here=lambda: self._migrate_data_here(table, batch_size, False),
                on_started=self._report_workers_started,
            )
        except _workers.WorkersNeedSettings as exc:
            raise CommandError(self.WORKERS_NEED_SETTINGS) from exc
        except _workers.WorkerFailed as exc:
            raise CommandError(
                self.WORKER_FAILED.format(index=exc.index, status=exc.status)
            ) from exc
        self._report_workers_done(results, workers)

    def _migrate_data_here(self, table: str | None, batch_size: int, retry_failed: bool) -> None:
        results = data.migrate_data(
            table,
            batch_size=batch_size,
            retry_failed=retry_failed,
            on_batch=self._progress_reporter(),
        )
        self._report_migrated(results)

    # -- 3 ------------------------------------------------------------------------------

    def _verify(self, *, table: str | None, batch_size: int, **_: Any) -> None:
        report = verify.verify(table, batch_size=batch_size)
        self._write_report(report)
        if not report.complete:
            labels = ", ".join(column.label for column in report.incomplete())
            raise CommandError(self.VERIFY_INCOMPLETE.format(labels=labels))
        self._say(self.style.SUCCESS(self._verify_complete(report)))

    # -- 4 ------------------------------------------------------------------------------

    def _create_views(self, *, table: str | None, **_: Any) -> None:
        self._report_views(views.create_views(table))

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
        self._report_dropped(result)
