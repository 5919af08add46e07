"""The column of an encrypted field in a query: loaded lazily into model instances, and
refused inside what the database would compute on ciphertext (ordering, functions,
``Count(distinct=True)``). :data:`ALLOWED_WRAPPERS` is the one list of what may wrap it."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any, ClassVar

from django.core.exceptions import FieldError
from django.db.models import Count, F, Func
from django.db.models.expressions import Col, CombinedExpression, OrderBy
from django.db.models.functions import Substr

from ..crypto import TOKEN_LENGTH
from .query_checks import check_query
from .stored import sealer


class TokenPrefix(Substr):
    """The search-token prefix of a stored searchable value (the SQL of the generated
    ``SearchTokenIndex`` column)."""

    def __init__(self, source: str) -> None:
        super().__init__(F(source), 1, TOKEN_LENGTH)


# Expressions that may wrap an encrypted column: Count (one number, not the ciphertext)
# and the generated search-token column (a prefix that is not ciphertext).
ALLOWED_WRAPPERS: tuple[type, ...] = (Count, TokenPrefix)

# How many calls up from EncryptedCol.as_sql the expression that compiles it can be:
# compiler.compile(), then the wrapper's as_sql (an aggregate's through Func.as_sql).
_FRAMES_UP = 3


class EncryptedCol(Col):
    """A column of an encrypted field: selectable and countable, never ordered, aggregated
    or computed on (the database would work on ciphertext and answer wrongly)."""

    allowed_wrappers: ClassVar[tuple[type, ...]] = ALLOWED_WRAPPERS
    # Set while the query is compiled: True when the column is loaded into model instances
    # (not values()/values_list(), not an annotation), so decryption can wait for a read.
    lazy = False

    def select_format(self, compiler: Any, sql: Any, params: Any) -> Any:
        query = compiler.query
        self.lazy = bool(
            query.default_cols
            and not query.values_select
            and all(self is not a for a in query.annotation_select.values())
        )
        return super().select_format(compiler, sql, params)

    def get_db_converters(self, connection: Any) -> list[Any]:
        if self.lazy and self.target is self.output_field:
            return [sealer()]
        return super().get_db_converters(connection)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        check_query(compiler)
        self._refuse_wrapper(sys._getframe(1))
        return super().as_sql(compiler, connection)

    def _refuse_wrapper(self, frame: FrameType | None) -> None:
        """Raise if the expression compiling this column is one the database would compute
        on ciphertext. ``frame`` is the caller of :meth:`as_sql`.

        OrderBy, aggregates and functions compile their expressions through
        ``compiler.compile()``; Django offers no hook that tells a column what it is
        compiled for, so look a few frames up. Not a walk of the query's expressions
        instead: that would miss expressions compiled outside a query's tree (a functional
        ``Index(Lower("enc"))`` in the schema editor, refused here), and would refuse what
        this lets through today, a function reaching the column through an
        ``ExpressionWrapper`` or ``Case``/``When`` (more than three frames up).
        """
        field: Any = self.target
        for _ in range(_FRAMES_UP):
            if frame is None:
                break
            caller = frame.f_locals.get("self")
            if isinstance(caller, OrderBy):
                raise FieldError(field.ordering_error())
            if isinstance(caller, Count) and caller.distinct:  # type: ignore[attr-defined]
                raise FieldError(field.distinct_error("Count(distinct=True)"))
            if isinstance(caller, Func | CombinedExpression) and not isinstance(
                caller, self.allowed_wrappers
            ):
                raise FieldError(field.expression_error(type(caller).__name__))
            frame = frame.f_back
