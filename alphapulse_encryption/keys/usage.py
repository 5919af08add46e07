"""Encryptions per key: counted in memory on every seal, added to the
``alphapulse_encryption_keyusage`` table now and then, compared with the AES-GCM bound.

Each (key version, context) pair is its own AES-GCM key (HKDF from the version's root
key), and with random 96-bit nonces a key may encrypt at most 2**32 values (NIST SP
800-38D, 8.3). See docs/security.md for the reasoning.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone

from ..conf import encryption_settings
from .sqlite_locks import waiting_for_sqlite_locks

logger = logging.getLogger("alphapulse_encryption.keys")

# Random 96-bit nonces: at most this many encryptions per key.
NONCE_BOUND = 2**32
# A process adds its counts to the table after this many values even before
# KEY_USAGE_FLUSH_SECONDS have passed, so a short, busy job is counted too.
FLUSH_EVERY_VALUES = 10_000
_CONTEXT_COLUMN = 255

Key = tuple[int, str]


def context_label(context: str) -> str:
    """The context as the table stores it: itself, or a prefix and a hash if too long."""
    if len(context) <= _CONTEXT_COLUMN:
        return context
    digest = hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]
    return f"{context[: _CONTEXT_COLUMN - 17]}~{digest}"


class UsageCounter:
    """The process-wide count of values sealed per (key version, context) not yet in the
    table. Counting costs a lock and an addition; the table is written from the
    encrypting thread when a flush is due and its connection is outside a transaction
    (inside one, the write would hold a lock on the shared counter row until the caller
    commits, and vanish if the caller rolled back)."""

    NOT_WRITTEN = "encryption counts not written (kept for the next try): %s"
    TABLE_MISSING = (
        "encryption counts not written: the table %s does not exist. Run `manage.py "
        "migrate` to create the alphapulse_encryption tables; until then the counts are "
        "kept in memory, and this is not said again."
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending: dict[Key, int] = {}
        self._pending_total = 0
        self._flush_at: float | None = None
        # A due flush found the connection inside a transaction: wait before looking again,
        # rather than on every value sealed inside that transaction (bulk_create).
        self._not_before = 0.0
        # Said once while the table is missing, again only if it goes missing after a
        # flush that worked: a process without the migrations applied would otherwise say
        # it on every flush.
        self._said_table_missing = False

    def add(self, version: int, context: str, count: int) -> None:
        with self._lock:
            key = (version, context)
            self._pending[key] = self._pending.get(key, 0) + count
            self._pending_total += count
            if self._flush_at is None:
                self._flush_at = _next_flush_time()
        if self.due():
            self.flush_if_due()

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._not_before:
            return False
        flush_at = self._flush_at
        return self._pending_total >= FLUSH_EVERY_VALUES or (
            flush_at is not None and now >= flush_at
        )

    def pending(self) -> dict[Key, int]:
        with self._lock:
            return dict(self._pending)

    def flush_if_due(self) -> None:
        """Flush if due and the connection is outside a transaction; never raises."""
        if not self.due():
            return
        from .models import KeyUsage

        if connections[router.db_for_write(KeyUsage)].in_atomic_block:
            self._not_before = time.monotonic() + _RETRY_IN_TRANSACTION_SECONDS
            return
        try:
            written = self.flush()
        except Exception as exc:  # counting must never break an encryption
            # The counts stay pending, and past FLUSH_EVERY_VALUES they keep a flush due:
            # without a pause every value sealed would try (and fail) again.
            self._not_before = time.monotonic() + max(
                _flush_seconds(), _RETRY_AFTER_FAILURE_SECONDS
            )
            table = missing_table()
            if table is None:
                logger.warning(self.NOT_WRITTEN, type(exc).__name__)
            elif not self._said_table_missing:
                self._said_table_missing = True
                logger.warning(self.TABLE_MISSING, table)
            return
        if written:
            self._said_table_missing = False

    def flush(self) -> int:
        """Add the pending counts to the table now; returns how many values were added.
        On a database error the counts stay pending and the error propagates."""
        if not self._flushing.acquire(blocking=False):
            return 0  # another thread is writing them
        try:
            with self._lock:
                taken, self._pending = self._pending, {}
                self._pending_total = 0
                self._flush_at = None
            if not taken:
                return 0
            try:
                _add_to_table(taken)
            except BaseException:
                with self._lock:
                    for key, count in taken.items():
                        self._pending[key] = self._pending.get(key, 0) + count
                    self._pending_total += sum(taken.values())
                    self._flush_at = _next_flush_time()
                raise
            return sum(taken.values())
        finally:
            self._flushing.release()

    def discard(self) -> None:
        """Forget the pending counts (tests)."""
        with self._lock:
            self._pending.clear()
            self._pending_total = 0
            self._flush_at = None
            self._not_before = 0.0
            self._said_table_missing = False


_RETRY_IN_TRANSACTION_SECONDS = 1.0
_RETRY_AFTER_FAILURE_SECONDS = 1.0


def _flush_seconds() -> float:
    seconds = encryption_settings.KEY_USAGE_FLUSH_SECONDS
    if not isinstance(seconds, int | float) or seconds < 0:
        return 60
    return seconds


def _next_flush_time() -> float:
    return time.monotonic() + _flush_seconds()


def missing_table() -> str | None:
    """The key usage table's name if its database lacks it (``migrate`` not run), else
    None; None too when the database cannot even be asked."""
    from .models import KeyUsage

    table = KeyUsage._meta.db_table
    try:
        connection = connections[router.db_for_write(KeyUsage)]
        with connection.cursor() as cursor:
            present = connection.introspection.table_names(cursor)
    except Exception:
        return None
    return None if table in present else table


def _add_to_table(counts: dict[Key, int]) -> None:
    from .models import KeyUsage

    using = router.db_for_write(KeyUsage)
    rows = KeyUsage.objects.using(using)
    labelled = sorted(
        ((version, context_label(context)), n) for (version, context), n in counts.items()
    )

    def create_missing() -> None:
        # Each missing row in its own short transaction, before the additions: inserting
        # inside them would take gap locks that deadlock two first flushes on MariaDB.
        wanted = {key for key, _ in labelled}
        existing = set(
            rows.filter(
                version__in={v for v, _ in wanted}, context__in={c for _, c in wanted}
            ).values_list("version", "context")
        )
        for version, context in sorted(wanted - existing):
            try:
                with transaction.atomic(using=using):
                    rows.create(version=version, context=context, encryptions=0)
            except IntegrityError:
                pass  # another process created it first

    def add() -> None:
        now = timezone.now()
        # Rows exist, and are updated in a fixed order: two flushes cannot deadlock.
        with transaction.atomic(using=using):
            for (version, context), count in labelled:
                rows.filter(version=version, context=context).update(
                    encryptions=F("encryptions") + count, updated_at=now
                )

    waiting_for_sqlite_locks(using, create_missing)
    waiting_for_sqlite_locks(using, add)


counter = UsageCounter()


@dataclass(frozen=True)
class VersionUsage:
    """What one key version has encrypted: in total, and under its busiest context (the
    figure that the per-key bound applies to)."""

    version: int
    total: int
    contexts: int
    busiest_context: str
    busiest: int


def usage_counts() -> dict[Key, int]:
    """Encryptions per (version, context label): the table plus this process's pending
    counts."""
    from .models import KeyUsage

    using = router.db_for_read(KeyUsage)
    counts: dict[Key, int] = {
        (version, context): encryptions
        for version, context, encryptions in KeyUsage.objects.using(using).values_list(
            "version", "context", "encryptions"
        )
    }
    for (version, context), count in counter.pending().items():
        key = (version, context_label(context))
        counts[key] = counts.get(key, 0) + count
    return counts


def usage_by_version(counts: dict[Key, int] | None = None) -> list[VersionUsage]:
    counts = usage_counts() if counts is None else counts
    by_version: dict[int, list[tuple[str, int]]] = {}
    for (version, context), count in counts.items():
        by_version.setdefault(version, []).append((context, count))
    result = []
    for version, entries in sorted(by_version.items()):
        context, busiest = max(entries, key=lambda entry: (entry[1], entry[0]))
        result.append(
            VersionUsage(version, sum(n for _, n in entries), len(entries), context, busiest)
        )
    return result


def warn_at() -> int:
    value = encryption_settings.KEY_USAGE_WARN_AT
    if type(value) is not int or not 1 <= value <= NONCE_BOUND:
        from ..crypto import ConfigurationError

        raise ConfigurationError(
            f"KEY_USAGE_WARN_AT must be an integer from 1 to 2**32 ({NONCE_BOUND:,})"
        )
    return value


def over_threshold(
    versions: list[int], counts: dict[Key, int] | None = None
) -> list[tuple[int, str, int]]:
    """(version, context, encryptions) of every key of ``versions`` at or past
    KEY_USAGE_WARN_AT."""
    threshold = warn_at()
    counts = usage_counts() if counts is None else counts
    return sorted(
        (version, context, count)
        for (version, context), count in counts.items()
        if version in versions and count >= threshold
    )
