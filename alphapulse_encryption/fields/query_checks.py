"""Checks over a whole query for what no single column sees while it compiles: GROUP BY,
``distinct()`` and ORDER BY a selected alias of an encrypted column (Django orders by
position or alias then, so the column is never compiled inside the ``OrderBy``).

Run once per compiled query, from the first encrypted column the compiler compiles: every
query that could group, deduplicate or order by such a column compiles one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import FieldError
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import Col, F, OrderBy, Ref
from django.db.models.sql.datastructures import Join

from ..introspection import is_encrypted

_CHECKED = "_alphapulse_encryption_checked"


def check_query(compiler: Any) -> None:
    state = compiler.__dict__
    if _CHECKED in state:
        return
    state[_CHECKED] = True
    query = compiler.query
    ordering = _ordering(query)
    if not query.distinct and query.group_by is None and not ordering:
        return  # the common query: nothing to check
    selected = _selected(query)
    expressions = [expression for _, expression in selected]
    if query.distinct_fields:
        _check_distinct_on(query)
    elif query.distinct:
        _check_keys(query, expressions, lambda field: field.distinct_error())
    if query.group_by is not None:
        grouped = [] if query.group_by is True else list(query.group_by)
        _check_keys(query, [*grouped, *expressions], lambda field: field.grouping_error())
    if ordering:
        _check_ordering_by_alias(ordering, selected)


def _ordering(query: Any) -> Iterable[Any]:
    """The ordering the compiler will apply (as ``SQLCompiler._order_by_pairs`` picks it)."""
    if query.extra_order_by:
        return query.extra_order_by
    if query.order_by or not query.default_ordering:
        return query.order_by
    meta = query.get_meta()
    return meta.ordering if meta is not None else ()


def _selected(query: Any) -> list[tuple[str | None, Any]]:
    """(alias, expression) of each column the query selects, as ``get_select`` builds them,
    leaving out the model's own columns and those of ``select_related`` (``default_cols``)."""
    if query.selected is None:
        columns = [] if query.default_cols else list(query.select)
        return [*((None, column) for column in columns), *query.annotation_select.items()]
    result = []
    for alias, expression in query.selected.items():
        if isinstance(expression, str):
            expression = query.annotations[expression]
        elif isinstance(expression, int):
            expression = query.select[expression]
        result.append((alias, expression))
    return result


def _columns(expression: Any) -> Iterator[Col]:
    """The columns whose values an expression passes through to its result (not those an
    aggregate consumes: ``Count("enc")`` is one number per group, not the ciphertext)."""
    if isinstance(expression, Ref):
        yield from _columns(expression.source)  # type: ignore[attr-defined]
    elif isinstance(expression, Col):
        yield expression
    elif getattr(expression, "contains_aggregate", False):
        for column in expression.get_group_by_cols():
            if column is not expression:
                yield from _columns(column)
    elif hasattr(expression, "get_source_expressions"):
        for source in expression.get_source_expressions():
            if source is not None:
                yield from _columns(source)


def _check_keys(query: Any, keys: list[Any], error: Any) -> None:
    """Refuse rows told apart (DISTINCT) or grouped by an encrypted column, unless its row's
    primary key is among the keys too: then rows are told apart by identity and the
    ciphertext, fixed per row, changes nothing."""
    columns = [column for key in keys for column in _columns(key)]
    encrypted = [column for column in columns if is_encrypted(column.target)]
    if not encrypted:
        return
    identified = _identified_aliases(query, columns)
    for column in encrypted:
        if column.alias not in identified:
            raise FieldError(error(column.target))


def _identified_aliases(query: Any, columns: list[Col]) -> set[str]:
    """Table aliases whose row is fixed by the keys: the primary key is a key (or the
    model's own columns are selected), or a single-valued join (forward foreign key, one to
    one) leads there from such a table."""
    aliases = {column.alias for column in columns if column.target.primary_key}
    if query.default_cols and query.base_table is not None:
        aliases.add(query.base_table)
    # Joins come after the alias they start from.
    for alias, join in query.alias_map.items():
        if (
            isinstance(join, Join)
            and join.parent_alias in aliases
            and (
                getattr(join.join_field, "many_to_one", False)
                or getattr(join.join_field, "one_to_one", False)
            )
        ):
            aliases.add(alias)
    return aliases


def _check_distinct_on(query: Any) -> None:
    """``distinct("enc")`` (PostgreSQL's DISTINCT ON): one row per ciphertext is every row."""
    for name in query.distinct_fields:
        if name in query.annotations:
            fields = [c.target for c in _columns(query.annotations[name]) if is_encrypted(c.target)]
        else:
            try:
                _, final, _, _ = query.names_to_path(name.split(LOOKUP_SEP), query.get_meta())
            except FieldError:
                continue  # Django reports the unknown name itself
            fields = [final] if is_encrypted(final) else []
        for field in fields:
            raise FieldError(field.distinct_error(f"distinct('{name}')"))  # type: ignore[attr-defined]


def _check_ordering_by_alias(
    ordering: Iterable[Any], selected: list[tuple[str | None, Any]]
) -> None:
    aliases = {alias: expression for alias, expression in selected if alias}
    if not aliases:
        return
    for item in ordering:
        if isinstance(item, str):
            name: str | None = item.removeprefix("-")
        elif isinstance(item, F):
            name = item.name  # type: ignore[attr-defined]
        elif isinstance(item, OrderBy) and isinstance(item.expression, F):
            name = item.expression.name  # type: ignore[attr-defined]
        else:
            name = None
        expression = aliases.get(name) if name else None
        if expression is None:
            continue
        for column in _columns(expression):
            if is_encrypted(column.target):
                raise FieldError(column.target.ordering_error())  # type: ignore[attr-defined]
