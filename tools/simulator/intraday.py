"""A simulated sale day hour by hour: the true intraday profile, shocks that arrive during the day, and the
fixed random draws that every policy (static plan, re-plans, oracle) meets.

The true profile is the one the history was drawn with (order times ~ Beta(2.2, 1.6) over the day). A day's
demand of SKU s in hour h at price p is Poisson(mean(s, p) * g_s * share_h * shock_s(h)), where g_s ~
Gamma(r, 1/r) is the day's latent level (so the day's total is the world's negative binomial) and the
Poisson draws use fixed uniforms: the same customers arrive whichever prices a policy shows them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from tools.simulator.world import STREAM_PLAY, SimulationError, World

HOURS = 24
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
ShockKind = Literal["competitor_cut", "viral_sku", "supply_problem"]

TRUE_SHARES: FloatArray = np.diff(stats.beta(2.2, 1.6).cdf(np.linspace(0.0, 1.0, HOURS + 1)))
STREAM_INTRADAY = STREAM_PLAY + 100


@dataclass(frozen=True)
class IntradayShock:
    """Something that happens at ``hour`` of the sale day to ``skus``: demand times ``multiplier`` from then
    on (a competitor's cut: < 1; a viral SKU: > 1), or, for a supply problem, only ``stock_left`` of each
    SKU's remaining stock can still be sold."""

    kind: ShockKind
    hour: int
    skus: tuple[str, ...]
    multiplier: float = 1.0
    stock_left: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.hour < HOURS:
            raise SimulationError(f"a shock's hour must be 0-23, got {self.hour}")
        if not self.skus:
            raise SimulationError("a shock needs at least one SKU")
        if self.multiplier <= 0 or not 0 <= self.stock_left <= 1:
            raise SimulationError("a shock's multiplier must be > 0 and its stock_left within 0-1")

    def describe(self) -> str:
        what = (
            f"x{self.multiplier:g} demand"
            if self.kind != "supply_problem"
            else f"{self.stock_left:.0%} of stock left"
        )
        return f"{self.kind} at {self.hour:02d}:00 on {len(self.skus)} SKUs ({what})"


@dataclass
class SaleDay:
    """The random draws of one simulated sale day for ``skus``."""

    world: World
    date: dt.date
    skus: list[str]
    seed: int = 0
    shocks: Sequence[IntradayShock] = ()
    _idx: IntArray = field(init=False, repr=False)
    _level: FloatArray = field(init=False, repr=False)
    _uniform: FloatArray = field(init=False, repr=False)
    _mult: FloatArray = field(init=False, repr=False)  # (n, 24) demand multiplier by hour
    _stock: FloatArray = field(init=False, repr=False)  # (n, 24) share of stock kept at the start of the hour

    def __post_init__(self) -> None:
        self._idx = self.world.sku_index(self.skus)
        n = len(self.skus)
        rng = np.random.default_rng(
            np.random.SeedSequence(
                [self.world.config.seed, STREAM_INTRADAY, int(self.seed), self.date.toordinal()]
            )
        )
        r = self.world.nb_size
        self._level = rng.gamma(r, 1.0 / r, n) if np.isfinite(r) else np.ones(n)
        self._uniform = rng.random((n, HOURS))
        self._mult = np.ones((n, HOURS))
        self._stock = np.ones((n, HOURS))
        pos = {s: i for i, s in enumerate(self.skus)}
        for shock in self.shocks:
            rows = [pos[s] for s in shock.skus if s in pos]
            if shock.kind == "supply_problem":
                self._stock[rows, shock.hour] *= shock.stock_left
            else:
                self._mult[np.ix_(rows, range(shock.hour, HOURS))] *= shock.multiplier

    def mean(self, hour: int, price_cents: IntArray) -> FloatArray:
        """Expected demand in ``hour`` at ``price_cents`` (featured in the sale), given the day's level."""
        day = self.world.expected_units(self.date, self._idx, np.asarray(price_cents), True)
        return np.asarray(day * self._level * TRUE_SHARES[hour] * self._mult[:, hour], dtype=np.float64)

    def demand(self, hour: int, price_cents: IntArray) -> IntArray:
        mean = self.mean(hour, price_cents)
        return np.asarray(stats.poisson.ppf(self._uniform[:, hour], mean), dtype=np.int64)

    def stock_kept(self, hour: int) -> FloatArray:
        """Share of each SKU's remaining stock still sellable from ``hour`` on (supply problems)."""
        return self._stock[:, hour]

    def known_day_multiplier(self, from_hour: int = 0) -> FloatArray:
        """What the shocks do to each SKU's expected demand from ``from_hour`` to the end of the day, as one
        multiplier (what an oracle that knows them plans with)."""
        shares = TRUE_SHARES[from_hour:]
        return np.asarray((self._mult[:, from_hour:] * shares).sum(axis=1) / shares.sum(), dtype=np.float64)

    def known_stock_share(self) -> FloatArray:
        return np.asarray(self._stock.prod(axis=1), dtype=np.float64)


def play_hours(
    day: SaleDay, price_cents: IntArray, stock_left: IntArray, start: int, end: int
) -> tuple[IntArray, IntArray]:
    """Sales in hours ``start``..``end - 1`` at fixed prices with ``stock_left`` units per SKU: (units by
    hour (n, end - start), stock left after)."""
    left = np.asarray(stock_left, dtype=np.int64).copy()
    out = np.zeros((len(day.skus), max(end - start, 0)), dtype=np.int64)
    for k, hour in enumerate(range(start, end)):
        left = np.floor(left * day.stock_kept(hour)).astype(np.int64)
        sold = np.minimum(day.demand(hour, price_cents), left)
        out[:, k] = sold
        left -= sold
    return out, left
