"""Seed the back office with realistic demo data (the service behind ``seed_demo``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

import factory.random
from django.db import connection, models, transaction

from . import factories
from .models import (
    LegacyClient,
    PnLSnapshot,
    Position,
    RiskMetric,
    Trade,
    TradingAccount,
    UserProfile,
)

M = TypeVar("M", bound=models.Model)
Progress = Callable[[int, int, dict[str, int]], None]

CHUNK = 10
PNL_DAYS = 20
SEEDED_MODELS: tuple[type[models.Model], ...] = (
    UserProfile,
    TradingAccount,
    Position,
    Trade,
    PnLSnapshot,
    RiskMetric,
    LegacyClient,
)


def _bulk(model: type[M], objects: Sequence[M]) -> list[M]:
    # Rows need primary keys for their children; backends that cannot return them from a
    # bulk insert get one INSERT per row instead.
    if connection.features.can_return_rows_from_bulk_insert:
        return model.objects.bulk_create(objects, batch_size=500)
    for obj in objects:
        obj.save(force_insert=True)
    return list(objects)


def legacy_plaintext_columns() -> bool:
    """Whether the legacy table still has its plaintext columns (``encrypt_migrate
    --drop-unencrypted`` removes them from the database; the model still declares them
    until its code is edited)."""
    table = connection.ops.quote_name(LegacyClient._meta.db_table)
    with connection.cursor() as cursor:
        # Not introspection.get_table_description(): on SQLite it cannot parse the
        # generated search-token column.
        cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")  # noqa: S608
        columns = {column[0] for column in cursor.description}
    return LegacyClient._meta.get_field("email").column in columns


def _as_before_encryption(clients: Sequence[LegacyClient]) -> None:
    # Dual write filled the encrypted twins on insert; legacy rows are meant to be rows
    # written before the twins existed, which encrypt_migrate --migrate-data encrypts.
    twins = {
        field.name: None
        for field in LegacyClient._meta.concrete_fields
        if getattr(field, "migrate_from", None)
    }
    LegacyClient.objects.filter(pk__in=[client.pk for client in clients]).update(**twins)


def flush() -> None:
    """Delete every seeded row (children first)."""
    for model in reversed(SEEDED_MODELS):
        model.objects.all().delete()


def seed(
    accounts: int, *, seed: int | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Create ``accounts`` trading accounts with owners, positions, trades, P&L history and
    risk metrics, plus as many legacy clients holding plaintext only (none once the legacy
    table's plaintext columns are dropped). Returns rows created per model."""
    if seed is not None:
        random.seed(seed)
        factory.random.reseed_random(seed)
        factories.fake.seed_instance(seed)
    counts = {model.__name__: 0 for model in SEEDED_MODELS}
    with_legacy = legacy_plaintext_columns()
    done = 0
    while done < accounts:
        size = min(CHUNK, accounts - done)
        with transaction.atomic():
            _seed_chunk(size, counts, with_legacy)
        done += size
        if progress is not None:
            progress(done, accounts, counts)
    return counts


def _seed_chunk(size: int, counts: dict[str, int], with_legacy: bool) -> None:
    # Roughly one client in five holds a second account.
    owners = _bulk(UserProfile, factories.UserProfileFactory.build_batch(max(1, size * 4 // 5)))
    accounts = _bulk(
        TradingAccount,
        [factories.TradingAccountFactory.build(owner=owners[i % len(owners)]) for i in range(size)],
    )
    positions: list[Position] = []
    trades: list[Trade] = []
    snapshots: list[PnLSnapshot] = []
    risk: list[RiskMetric] = []
    for account in accounts:
        symbols = random.sample(list(factories.SYMBOLS), random.randint(2, 6))
        positions += [factories.PositionFactory.build(account=account, symbol=s) for s in symbols]
        trades += factories.TradeFactory.build_batch(random.randint(8, 20), account=account)
        factories.PnLSnapshotFactory.reset_sequence()
        snapshots += factories.PnLSnapshotFactory.build_batch(PNL_DAYS, account=account)
        risk += factories.RiskMetricFactory.build_batch(random.randint(1, 3), account=account)
    legacy: list[LegacyClient] = []
    if with_legacy:
        legacy = _bulk(LegacyClient, factories.LegacyClientFactory.build_batch(size))
        _as_before_encryption(legacy)
    for model, objects in (
        (UserProfile, owners),
        (TradingAccount, accounts),
        (Position, _bulk(Position, positions)),
        (Trade, _bulk(Trade, trades)),
        (PnLSnapshot, _bulk(PnLSnapshot, snapshots)),
        (RiskMetric, _bulk(RiskMetric, risk)),
        (LegacyClient, legacy),
    ):
        counts[model.__name__] += len(objects)
