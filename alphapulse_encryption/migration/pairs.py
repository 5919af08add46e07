"""Which columns are being migrated: (model, encrypted field, plaintext field) from the
models' ``migrate_from`` options, which of their columns the database really has, and
which of their rows are still pending."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q

from ..fields.base import EncryptedFieldMixin
from ..fields.queryset import migrating_fields
from ..fields.searchable import SearchTokenIndex


class MigrationStepError(ValueError):
    """A step of ``encrypt_migrate`` cannot run as asked."""


class NoMigratingFields(MigrationStepError):
    def __init__(self) -> None:
        super().__init__("no installed model has an encrypted field with migrate_from")


class UnknownTable(MigrationStepError):
    def __init__(self, table: str, known: list[str]) -> None:
        self.table = table
        self.known = known
        super().__init__(f"no migrated model uses the table {table!r}")


class ColumnsMissing(MigrationStepError):
    """Encrypted columns that the models declare are not in the database yet."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        super().__init__(f"encrypted column(s) missing in the database: {', '.join(columns)}")


@dataclass(frozen=True)
class MigrationPair:
    """One plaintext column and the encrypted column that replaces it."""

    model: type[models.Model]
    field: EncryptedFieldMixin
    source: models.Field[Any, Any]

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def column(self) -> str:
        return str(self.field.column)

    @property
    def source_column(self) -> str:
        return str(self.source.column)

    @property
    def model_name(self) -> str:
        return str(self.model._meta.model_name)

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def using(self) -> str:
        return router.db_for_write(self.model)

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.using]

    def token_columns(self) -> list[str]:
        """Columns generated from the encrypted one (a SearchTokenIndex)."""
        return [
            str(f.column)
            for f in self.model._meta.concrete_fields
            if isinstance(f, SearchTokenIndex) and f.source == self.field.name
        ]


def all_pairs() -> list[MigrationPair]:
    # Unmanaged models are left out: migrations neither create nor drop their columns.
    return [
        MigrationPair(model, field, field.migrate_from_field())
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy and not model._meta.swapped
        for field in migrating_fields(model)
    ]


def select_pairs(table: str | None = None) -> list[MigrationPair]:
    """Every pair, or those of one table; raises if there is nothing to migrate."""
    pairs = all_pairs()
    if not pairs:
        raise NoMigratingFields()
    if table is None:
        return pairs
    chosen = [pair for pair in pairs if pair.table == table]
    if not chosen:
        raise UnknownTable(table, sorted({pair.table for pair in pairs}))
    return chosen


def by_table(pairs: Iterable[MigrationPair]) -> dict[str, list[MigrationPair]]:
    tables: dict[str, list[MigrationPair]] = {}
    for pair in pairs:
        tables.setdefault(pair.table, []).append(pair)
    return tables


def table_columns(connection: BaseDatabaseWrapper, table: str) -> list[str] | None:
    """The table's columns in the database, in their order; ``None`` if there is no table."""
    with connection.cursor() as cursor:
        if table not in connection.introspection.table_names(cursor):
            return None
        # Not introspection.get_table_description(): on SQLite it cannot parse every
        # CREATE TABLE statement (a generated column's SUBSTR(x, 1, n) breaks it).
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} WHERE 1 = 0")  # noqa: S608
        return [column[0] for column in cursor.description]


def missing_columns(pairs: Iterable[MigrationPair]) -> list[str]:
    """``table.column`` of every encrypted (or search token) column not in the database."""
    missing: list[str] = []
    for table, group in by_table(pairs).items():
        present = set(table_columns(group[0].connection, table) or ())
        for pair in group:
            for column in [pair.column, *pair.token_columns()]:
                if column not in present:
                    missing.append(f"{table}.{column}")
    return missing


def require_columns(pairs: Iterable[MigrationPair]) -> None:
    missing = missing_columns(pairs)
    if missing:
        raise ColumnsMissing(missing)


def has_plaintext_column(pair: MigrationPair) -> bool:
    return pair.source_column in (table_columns(pair.connection, pair.table) or ())


def pending_condition(pair: MigrationPair) -> Q:
    """Plaintext set, encrypted column still NULL."""
    return Q(**{f"{pair.source.name}__isnull": False, f"{pair.field.name}__isnull": True})


def pending_rows(pair: MigrationPair) -> models.QuerySet[Any]:
    """Rows whose plaintext is set and whose encrypted column is still NULL."""
    return pair.model._base_manager.using(pair.using).filter(pending_condition(pair))
