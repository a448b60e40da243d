"""How a sale day's demand spreads over its hours, and what the sales so far say about the rest of the day.

A flash sale runs over its whole sale date (00:00-24:00 UTC, the schema's time). The shop's **intraday
profile** (the share of a day's units sold in each hour) is measured from its own order lines
(:func:`shop_profile`), so the forecast's path through the day is the shop's, not an assumption.

The **posterior** of a SKU's rate is the negative-binomial forecast read as what it is, a Poisson rate with
a gamma prior: demand ~ Poisson(lambda), lambda ~ Gamma(size r, mean mu). Units ``n`` sold while a share
``e`` of the day's demand was expected give lambda | n ~ Gamma(r + n, rate r / mu + e): its mean is the
forecast moved toward ``n / e`` by as much as the sales so far outweigh the forecast's own certainty.
A SKU that sold out stopped telling at the hour it sold out: its exposure ends there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from db.models import OrderLine

HOURS = 24
FloatArray = NDArray[np.float64]

#: Used when the shop has too few order lines to measure its own day: a daytime-heavy curve.
DEFAULT_SHARES = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3.5, 4.5, 5, 5.5, 6, 6, 5.8, 5.6, 5.6, 6, 6.5, 7, 7, 6.5, 5, 3],
    dtype=np.float64,
)
MIN_LINES = 500


@dataclass(frozen=True)
class IntradayProfile:
    """Share of a day's units sold in each hour 0..23 (sums to 1)."""

    shares: FloatArray
    source: str = "default"

    def __post_init__(self) -> None:
        s = np.asarray(self.shares, dtype=np.float64)
        if s.shape != (HOURS,) or np.any(s < 0) or s.sum() <= 0:
            raise ValueError("an intraday profile needs 24 non-negative hourly shares")
        object.__setattr__(self, "shares", s / s.sum())

    def by(self, hour: float) -> float:
        """Share of the day's demand expected before ``hour`` (0-24; linear within an hour)."""
        h = float(np.clip(hour, 0.0, HOURS))
        whole = int(h)
        done = float(self.shares[:whole].sum())
        return done + (float(self.shares[whole]) * (h - whole) if whole < HOURS else 0.0)

    def between(self, start: float, end: float) -> float:
        return max(self.by(end) - self.by(start), 0.0)


def hour_of(moment: dt.datetime, sale_date: dt.date) -> float:
    """Hours into ``sale_date`` at ``moment`` (clipped to 0-24)."""
    start = dt.datetime.combine(sale_date, dt.time.min)
    return float(np.clip((moment - start).total_seconds() / 3600.0, 0.0, HOURS))


def shop_profile(session: Session, before: dt.date, *, days: int = 56) -> IntradayProfile:
    """The shop's intraday profile from its order lines of the ``days`` days before ``before`` (units by
    hour of the line's time); :data:`DEFAULT_SHARES` when fewer than :data:`MIN_LINES` lines."""
    start = dt.datetime.combine(before - dt.timedelta(days=days), dt.time.min)
    end = dt.datetime.combine(before, dt.time.min)
    hour = extract("hour", OrderLine.ts)
    rows = session.execute(
        select(hour, func.count(), func.sum(OrderLine.qty))
        .where(OrderLine.ts >= start, OrderLine.ts < end)
        .group_by(hour)
    ).all()
    units = np.zeros(HOURS)
    lines = 0
    for h, n, qty in rows:
        if h is not None and 0 <= int(h) < HOURS:
            units[int(h)] += float(qty or 0)
            lines += int(n)
    if lines < MIN_LINES:
        return IntradayProfile(DEFAULT_SHARES, "default (too few order lines to measure the shop's day)")
    return IntradayProfile(units + 1.0, f"the shop's order lines of the {days} days before {before}")


def posterior_rate(
    prior_mean: FloatArray, size: FloatArray, sold: FloatArray, exposure: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and shape of each SKU's daily demand rate after ``sold`` units in ``exposure`` (the
    share of the day's demand expected while it was on sale). ``size`` inf (Poisson) keeps the prior."""
    mu = np.maximum(np.asarray(prior_mean, dtype=np.float64), 1e-9)
    r = np.asarray(size, dtype=np.float64)
    n = np.asarray(sold, dtype=np.float64)
    e = np.asarray(exposure, dtype=np.float64)
    finite = np.isfinite(r)
    rr = np.where(finite, r, 1.0)
    post = np.where(finite, (rr + n) / (rr / mu + e), mu)
    return post, np.where(finite, rr + n, np.inf)
