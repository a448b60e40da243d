"""Market signals: bounded multipliers that touch only their scope and window, with provenance."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from db.models import MarketSignal, SignalDirection, SignalScope
from evals.bench_forecast import random_model
from tools.signals import COMBINED_BOUNDS, EFFECT_BOUNDS, SignalEffect, active_signals, signal_multipliers

DAY = dt.date(2026, 7, 10)
SKUS = ["A-1", "A-2", "B-1", "B-2"]
CATS = ["audio", "audio", "fans", "fans"]
BRANDS = ["Sonora", "Zed", "Sonora", "Breeze"]


def _signal(
    id: int,
    scope: SignalScope,
    value: str,
    multiplier: float,
    *,
    direction: SignalDirection = SignalDirection.UP,
    confidence: float = 1.0,
    start: dt.date = DAY,
    end: dt.date = DAY,
) -> SignalEffect:
    return SignalEffect(
        id=id,
        scope=scope,
        scope_value=value,
        direction=direction,
        multiplier=multiplier,
        confidence=confidence,
        valid_from=start,
        valid_to=end,
    )


def test_signals_touch_only_their_scope() -> None:
    signals = [
        _signal(1, SignalScope.CATEGORY, "Audio", 1.5),  # scope values match case-insensitively
        _signal(2, SignalScope.BRAND, "Sonora", 0.8, direction=SignalDirection.DOWN),
        _signal(3, SignalScope.SKU, "B-2", 1.2),
    ]
    mult, touched = signal_multipliers(signals, SKUS, CATS, BRANDS, DAY)
    np.testing.assert_allclose(mult, [1.5 * 0.8, 1.5, 0.8, 1.2])
    assert touched == [[1, 2], [1], [2], [3]]


def test_signals_apply_only_inside_their_window() -> None:
    signal = _signal(7, SignalScope.CATEGORY, "fans", 1.4, start=DAY, end=DAY + dt.timedelta(days=2))
    for day, expected in [(DAY - dt.timedelta(days=1), 1.0), (DAY, 1.4), (DAY + dt.timedelta(days=2), 1.4)]:
        mult, touched = signal_multipliers([signal], SKUS, CATS, BRANDS, day)
        assert mult[2] == pytest.approx(expected)
        assert touched[2] == ([] if expected == 1.0 else [7])
    mult, _ = signal_multipliers([signal], SKUS, CATS, BRANDS, DAY + dt.timedelta(days=3))
    np.testing.assert_array_equal(mult, 1.0)


def test_multipliers_are_bounded_and_follow_direction_and_confidence() -> None:
    huge = _signal(1, SignalScope.SKU, "A-1", 50.0)
    assert huge.effective_multiplier() == EFFECT_BOUNDS[1]
    tiny = _signal(2, SignalScope.SKU, "A-1", 0.01, direction=SignalDirection.DOWN)
    assert tiny.effective_multiplier() == EFFECT_BOUNDS[0]
    # The direction decides the side of 1: an "up" signal never lowers demand.
    up = _signal(3, SignalScope.SKU, "A-1", 0.8, direction=SignalDirection.UP)
    assert up.effective_multiplier() == pytest.approx(1.25)
    assert (
        _signal(4, SignalScope.SKU, "A-1", 1.5, direction=SignalDirection.NEUTRAL).effective_multiplier()
        == 1.0
    )
    # Confidence shrinks toward 1 in log space.
    half = _signal(5, SignalScope.SKU, "A-1", 1.44, confidence=0.5)
    assert half.effective_multiplier() == pytest.approx(1.2)
    assert _signal(6, SignalScope.SKU, "A-1", 1.44, confidence=0.0).effective_multiplier() == 1.0
    # Many stacked signals are clipped as a whole.
    stacked = [_signal(10 + k, SignalScope.CATEGORY, "audio", 2.0) for k in range(5)]
    mult, touched = signal_multipliers(stacked, SKUS, CATS, BRANDS, DAY)
    assert mult[0] == COMBINED_BOUNDS[1]
    assert touched[0] == [10, 11, 12, 13, 14]
    down = [
        _signal(20 + k, SignalScope.CATEGORY, "audio", 0.5, direction=SignalDirection.DOWN) for k in range(5)
    ]
    assert signal_multipliers(down, SKUS, CATS, BRANDS, DAY)[0][0] == COMBINED_BOUNDS[0]


def test_invalid_signals_are_rejected() -> None:
    with pytest.raises(ValidationError):
        _signal(1, SignalScope.SKU, "A-1", -1.0)
    with pytest.raises(ValidationError):
        _signal(1, SignalScope.SKU, "A-1", 1.2, confidence=1.5)
    with pytest.raises(ValidationError, match="before valid_from"):
        _signal(1, SignalScope.SKU, "A-1", 1.2, start=DAY, end=DAY - dt.timedelta(days=1))
    with pytest.raises(ValueError, match="aligned"):
        signal_multipliers([], SKUS, CATS[:2], BRANDS, DAY)


def test_active_signals_reads_the_window_from_the_database(session_factory: sessionmaker[Session]) -> None:
    def row(scope: SignalScope, value: str, start: dt.date, end: dt.date, mult: float = 1.3) -> MarketSignal:
        return MarketSignal(
            scope=scope,
            scope_value=value,
            direction=SignalDirection.UP,
            multiplier=mult,
            confidence=0.9,
            valid_from=start,
            valid_to=end,
            evidence="news 4",
            source_ids=[4],
            extracted_by="test",
        )

    with session_factory.begin() as session:
        session.add_all(
            [
                row(SignalScope.CATEGORY, "fans", DAY - dt.timedelta(days=5), DAY),
                row(SignalScope.BRAND, "Zed", DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=4)),
                row(SignalScope.SKU, "A-1", DAY - dt.timedelta(days=9), DAY - dt.timedelta(days=1)),
                row(SignalScope.SKU, "A-2", DAY, DAY, mult=-2.0),  # unusable row: skipped, not fatal
            ]
        )
    with session_factory() as session:
        today = active_signals(session, DAY)
        tomorrow = active_signals(session, DAY + dt.timedelta(days=1))
    assert [(s.scope, s.scope_value) for s in today] == [(SignalScope.CATEGORY, "fans")]
    assert today[0].source_ids == [4] and today[0].extracted_by == "test"
    assert [s.scope_value for s in tomorrow] == ["Zed"]


def test_forecast_grid_applies_signals_and_reports_them() -> None:
    model = random_model(30)
    date = model.window_end + dt.timedelta(days=2)
    skus = model.skus[:30]
    prices = np.rint(model.ref_price_cents[:, None] * [0.7, 0.9]).astype(np.int64)
    category = model.categories[0]
    signal = _signal(42, SignalScope.CATEGORY, category, 1.5, start=date, end=date)
    plain = model.forecast_grid(date, skus, prices)
    boosted = model.forecast_grid(date, skus, prices, signals=[signal])
    in_scope = np.array([c == category for c in model.categories])
    np.testing.assert_allclose(boosted.mean[in_scope], plain.mean[in_scope] * 1.5)
    np.testing.assert_allclose(boosted.mean[~in_scope], plain.mean[~in_scope])
    assert [ids for ids, hit in zip(boosted.signal_ids, in_scope, strict=True) if hit] == [
        [42]
    ] * in_scope.sum()
    assert all(ids == [] for ids, hit in zip(boosted.signal_ids, in_scope, strict=True) if not hit)
    later = model.forecast_grid(date + dt.timedelta(days=1), skus, prices, signals=[signal])
    assert all(ids == [] for ids in later.signal_ids)
