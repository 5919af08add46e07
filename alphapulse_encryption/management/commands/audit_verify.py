"""``manage.py audit_verify``: recompute the audit log's hash chain and report entries
that were edited or deleted."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from ...audit.log import Problem, verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain: report edited and deleted entries."

    INTACT = "{checked} audit entries checked: the chain is intact."
    EDITED = "Entry #{entry_id} was edited: its hash does not match its content."
    BROKEN = (
        "The chain breaks before entry #{entry_id}: entries after #{previous_id} were "
        "deleted, or #{previous_id} was rewritten."
    )
    BROKEN_AT_START = (
        "The chain breaks before entry #{entry_id}: the entries before it were deleted."
    )
    TRUNCATED = (
        "Entries were deleted from the end: the chain head expects {expected} entries and a "
        "different last hash than entry #{entry_id} has ({found} entries found)."
    )
    TRUNCATED_ALL = "All {expected} entries were deleted: the table is empty."
    COUNT = "The chain head counts {expected} entries; the table holds {found}."
    NO_HEAD = "The chain head row is missing."
    FAILED = "Audit log verification failed: {count} problem(s) found."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            metavar="ALIAS",
            help="The database alias holding the audit log (default: %(default)s).",
        )

    def handle(self, *args: Any, database: str, **options: Any) -> None:
        result = verify(using=database)
        for problem in result.problems:
            self.stderr.write(self.describe(problem))
        if not result.ok:
            raise CommandError(self.FAILED.format(count=len(result.problems)))
        if options["verbosity"] >= 1:
            self.stdout.write(self.INTACT.format(checked=result.checked))

    def describe(self, problem: Problem) -> str:
        values = vars(problem)
        if problem.kind == "edited":
            return self.EDITED.format(**values)
        if problem.kind == "broken":
            template = self.BROKEN if problem.previous_id is not None else self.BROKEN_AT_START
            return template.format(**values)
        if problem.kind == "truncated":
            template = self.TRUNCATED if problem.entry_id is not None else self.TRUNCATED_ALL
            return template.format(**values)
        if problem.kind == "count":
            return self.COUNT.format(**values)
        return self.NO_HEAD
