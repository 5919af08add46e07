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


def flush() -> None:
    """Delete every seeded row (children first)."""
    for model in reversed(SEEDED_MODELS):
        model.objects.all().delete()


def seed(
    accounts: int, *, seed: int | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Create ``accounts`` trading accounts with owners, positions, trades, P&L history and
    risk metrics, plus as many plaintext legacy clients. Returns rows created per model."""
    if seed is not None:
        random.seed(seed)
        factory.random.reseed_random(seed)
        factories.fake.seed_instance(seed)
    counts = {model.__name__: 0 for model in SEEDED_MODELS}
    done = 0
    while done < accounts:
        size = min(CHUNK, accounts - done)
        with transaction.atomic():
            _seed_chunk(size, counts)
        done += size
        if progress is not None:
            progress(done, accounts, counts)
    return counts


def _seed_chunk(size: int, counts: dict[str, int]) -> None:
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
    legacy = factories.LegacyClientFactory.build_batch(size)
    for model, objects in (
        (UserProfile, owners),
        (TradingAccount, accounts),
        (Position, _bulk(Position, positions)),
        (Trade, _bulk(Trade, trades)),
        (PnLSnapshot, _bulk(PnLSnapshot, snapshots)),
        (RiskMetric, _bulk(RiskMetric, risk)),
        (LegacyClient, _bulk(LegacyClient, legacy)),
    ):
        counts[model.__name__] += len(objects)
