"""Schema steps through real Django migrations: ``--add-columns`` (makemigrations and
migrate) and ``--drop-unencrypted`` (a written RemoveField migration, then migrate)."""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass, field
from typing import Any

from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.db import connections
from django.db.migrations import AlterField, Migration, RemoveField
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.writer import MigrationWriter

from .pairs import (
    ColumnsMissing,
    MigrationPair,
    MigrationStepError,
    missing_columns,
    require_columns,
    select_pairs,
    table_columns,
)
from .verify import VerifyReport, verify_pair
from .views import create_views, drop_views


class NotVerified(MigrationStepError):
    """The plaintext columns may only go once every row is verified."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        labels = ", ".join(column.label for column in report.incomplete())
        super().__init__(f"verification is not complete for {labels}")


class MigrationHistoryError(MigrationStepError):
    """The app's migrations are not in a state a new migration can follow."""


@dataclass
class AddColumnsResult:
    missing: list[str]  # table.column missing before the step ran
    apps: list[str] = field(default_factory=list)  # apps migrated


def add_columns(
    table: str | None = None, *, stdout: Any = None, stderr: Any = None, verbosity: int = 1
) -> AddColumnsResult:
    """Create the missing encrypted columns: makemigrations, then migrate, for the apps
    that own them. Does nothing when every column exists."""
    pairs = select_pairs(table)
    missing = missing_columns(pairs)
    result = AddColumnsResult(missing)
    if not missing:
        return result
    result.apps = sorted({pair.model._meta.app_label for pair in pairs})
    options = _nested_options(stdout, stderr, verbosity)
    try:
        call_command("makemigrations", *result.apps, **options)
    except SystemExit as exc:  # makemigrations exits when it would need to ask a question
        raise MigrationHistoryError(
            f"makemigrations could not run without questions (exit status {exc.code})"
        ) from None
    for app_label in result.apps:
        call_command("migrate", app_label, **options)
    still = missing_columns(pairs)
    if still:
        raise ColumnsMissing(still)
    return result


def _nested_options(stdout: Any, stderr: Any, verbosity: int) -> dict[str, Any]:
    """Options for a nested makemigrations/migrate call that writes to the caller's
    streams. A command's ``OutputWrapper`` is unwrapped: the nested command wraps the
    stream in its own, and through two wrappers each ``write(..., ending="")`` gains a
    newline, which splits migrate's "Applying ... OK" lines in two."""
    options: dict[str, Any] = {"verbosity": verbosity, "interactive": False}
    for name, stream in (("stdout", stdout), ("stderr", stderr)):
        if stream is not None:
            options[name] = stream._out if isinstance(stream, OutputWrapper) else stream
    return options


@dataclass
class ModelChange:
    """What to edit in one model class once its plaintext columns are gone."""

    label: str  # app_label.Model
    source_file: str | None
    plaintext_fields: list[str]
    encrypted_fields: list[tuple[str, str]]  # (field name, its migrate_from)


@dataclass
class DropResult:
    report: VerifyReport
    migrations: dict[str, str] = field(default_factory=dict)  # app label: path written
    changes: list[ModelChange] = field(default_factory=list)
    already_dropped: list[str] = field(default_factory=list)  # table.column


def drop_unencrypted(
    table: str | None = None,
    *,
    stdout: Any = None,
    stderr: Any = None,
    verbosity: int = 1,
    batch_size: int = 1000,
) -> DropResult:
    """Verify, then remove the plaintext fields through a migration written into each
    app's migrations package and applied. Refused unless verification is complete."""
    pairs = select_pairs(table)
    require_columns(pairs)
    live = [p for p in pairs if p.source_column in (table_columns(p.connection, p.table) or ())]
    report = VerifyReport([verify_pair(pair, batch_size) for pair in live])
    result = DropResult(report, already_dropped=[p.label for p in pairs if p not in live])
    if not live:
        return result
    if not report.complete:
        raise NotVerified(report)

    by_app: dict[str, list[MigrationPair]] = {}
    for pair in live:
        by_app.setdefault(pair.model._meta.app_label, []).append(pair)
    options = _nested_options(stdout, stderr, verbosity)
    loader = MigrationLoader(connections[live[0].using], ignore_no_migrations=True)
    migrations = {app: _drop_migration(loader, app, group) for app, group in by_app.items()}
    # SQLite rebuilds a table to alter it, and a view over the table gets in the way.
    # Elsewhere the views stay (they never name a plaintext column), and so do their grants.
    views = drop_views(live) if live[0].connection.vendor == "sqlite" else []
    try:
        for app_label, migration in migrations.items():
            writer = MigrationWriter(migration)
            os.makedirs(os.path.dirname(writer.path), exist_ok=True)
            with open(writer.path, "w", encoding="utf-8") as handle:
                handle.write(writer.as_string())
            result.migrations[app_label] = writer.path
            importlib.invalidate_caches()  # the new module must be importable right away
            call_command("migrate", app_label, migration.name, **options)
    finally:
        for view_table in views:
            create_views(view_table)
    result.changes = _model_changes(live)
    return result


def _drop_migration(
    loader: MigrationLoader, app_label: str, group: list[MigrationPair]
) -> Migration:
    conflicts = loader.detect_conflicts()
    if app_label in conflicts:
        raise MigrationHistoryError(
            f"{app_label} has conflicting migrations {conflicts[app_label]}; merge them first"
        )
    leaves = loader.graph.leaf_nodes(app_label)
    if not leaves:
        raise MigrationHistoryError(f"{app_label} has no migrations")
    leaf = leaves[0]
    unapplied = [
        key for key in loader.graph.forwards_plan(leaf) if key not in loader.applied_migrations
    ]
    if unapplied:
        names = ", ".join(f"{a}.{n}" for a, n in unapplied)
        raise MigrationHistoryError(f"migrations not applied yet: {names}; run migrate first")
    state = loader.project_state()
    operations: list[Any] = []
    alterations: list[Any] = []
    for pair in group:
        model_name = pair.model_name
        model_state = state.models.get((app_label, model_name))
        if model_state is None or pair.source.name not in model_state.fields:
            raise MigrationHistoryError(
                f"the migrations of {app_label} do not have the field {pair.model.__name__}."
                f"{pair.source.name}; the database and the migration history disagree"
            )
        operations.append(RemoveField(model_name=model_name, name=pair.source.name))
        recorded = model_state.fields.get(pair.field.name)
        if recorded is not None and getattr(recorded, "migrate_from", None) is not None:
            _, _, args, kwargs = recorded.deconstruct()
            kwargs.pop("migrate_from")
            alterations.append(
                AlterField(
                    model_name=model_name,
                    name=pair.field.name,
                    field=type(recorded)(*args, **kwargs),
                )
            )
    number = (MigrationAutodetector.parse_number(leaf[1]) or 0) + 1
    models_ = "_".join(sorted({pair.model_name for pair in group}))
    name = f"{number:04d}_remove_plaintext_{models_}"[:100]
    attributes = {"dependencies": [leaf], "operations": operations + alterations}
    return type("Migration", (Migration,), attributes)(name, app_label)


def _model_changes(pairs: list[MigrationPair]) -> list[ModelChange]:
    changes: dict[type, ModelChange] = {}
    for pair in pairs:
        change = changes.get(pair.model)
        if change is None:
            try:
                source_file = inspect.getsourcefile(pair.model)
            except TypeError:
                source_file = None
            change = changes[pair.model] = ModelChange(pair.model._meta.label, source_file, [], [])
        change.plaintext_fields.append(pair.source.name)
        change.encrypted_fields.append((pair.field.name, pair.source.name))
    return list(changes.values())
