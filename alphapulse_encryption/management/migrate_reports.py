"""What ``manage.py encrypt_migrate`` writes: progress and results of ``--migrate-data``,
the ``--verify`` table, and what to change in the models after ``--drop-unencrypted``."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

from django.core.management.base import BaseCommand

from ..migration import data, schema, verify, views, workers


class MigrateReports(BaseCommand):
    """The messages (class constants that tests assert on) and the methods writing them;
    ``encrypt_migrate``'s command class adds the options and the steps."""

    verbosity = 1

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

    def _say(self, message: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)

    # -- 2 ------------------------------------------------------------------------------

    def _progress_reporter(self) -> Callable[[data.MigrateProgress], None]:
        started = time.monotonic()
        last_shown: dict[str, float] = {}

        def show(progress: data.MigrateProgress) -> None:
            # The columns of a table advance together, batch by batch: each has its line.
            now = time.monotonic()
            due = now - last_shown.get(progress.label, started) >= 2
            if self.verbosity >= 2 or (self.verbosity >= 1 and due):
                last_shown[progress.label] = now
                self.stdout.write(self._progress_line(progress))

        return show

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

    def _report_migrated(self, results: list[data.MigrateProgress]) -> None:
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

    def _report_workers_started(self, count: int) -> None:
        self._say(self.WORKERS_STARTED.format(count=count), 2)

    def _report_workers_done(self, results: list[workers.WorkersDone], count: int) -> None:
        for column in results:
            self._say(
                self.WORKERS_DONE.format(
                    label=column.label,
                    done=column.done,
                    workers=count,
                    elapsed=column.elapsed,
                    rate=column.rate,
                    pending=column.pending,
                )
            )

    # -- 3 ------------------------------------------------------------------------------

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

    def _report_views(self, created_views: list[views.CreatedView]) -> None:
        for created in created_views:
            self._say(
                self.style.SUCCESS(
                    self.VIEW_CREATED.format(
                        view=created.view, table=created.table, columns=", ".join(created.columns)
                    )
                )
            )

    # -- 5 ------------------------------------------------------------------------------

    def _report_dropped(self, result: schema.DropResult) -> None:
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
