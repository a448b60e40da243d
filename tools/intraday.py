"""How a sale day's demand spreads over its hours, and what the sales so far say about the rest of the day.

A flash sale runs over its whole sale date (00:00-24:00 UTC, the schema's time). The shop's **intraday
profile** (the share of a day's units sold in each hour) is measured from its own order lines
(:func:`shop_profile`), so the forecast's path through the day is the shop's, not an assumption.

The **posterior** of a SKU's rate is the negative-binomial forecast read as what it is, a Poisson rate with
a gamma prior: demand ~ Poisson(lambda), lambda ~ Gamma(size r, mean mu). Units ``n`` sold while a share
``e`` of the day's demand was expected give lambda | n ~ Gamma(r + n, rate r / mu + e): its mean is the
forecast moved toward ``n / e`` by as much as the sales so far outweigh the forecast's own certainty.
A SKU that sold out stopped telling at the hour it sold out: its exposure ends there.

Units come in clumps (a line of 3, a basket of 12), and part of the forecast's overdispersion is that
clumping, not a rate that differs from day to day: on the Kroger Complete Journey log the hours of a day
hardly tell about its other hours. With the shop's **clumping** ``c = sum(q^2) / sum(q)`` over its order
lines, ``n`` units are read as ``n / c`` independent arrivals in ``e / c`` of the day, and only the spread
the clumping leaves unexplained, ``1 / r_day = 1 / r - (c - 1) / mu``, is the prior's (none when that is
not positive: then the sales so far leave the forecast where it is).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from db.models import OrderLine, Product

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
    """Share of a day's units sold in each hour 0..23 (sums to 1), and how clumped the units come
    (:func:`clumping` of the shop's order-line quantities; 1: one unit at a time)."""

    shares: FloatArray
    source: str = "default"
    clumping: float = 1.0

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
    hour of the line's time; merchandise only, returns left out: a fuel line of 30,000 gallons would
    outweigh a day of baskets); :data:`DEFAULT_SHARES` when fewer than :data:`MIN_LINES` lines."""
    start = dt.datetime.combine(before - dt.timedelta(days=days), dt.time.min)
    end = dt.datetime.combine(before, dt.time.min)
    hour = extract("hour", OrderLine.ts)
    rows = session.execute(
        select(hour, func.count(), func.sum(OrderLine.qty), func.sum(OrderLine.qty * OrderLine.qty))
        .join(Product, Product.sku == OrderLine.sku)
        .where(OrderLine.ts >= start, OrderLine.ts < end, OrderLine.qty > 0, Product.is_product.is_(True))
        .group_by(hour)
    ).all()
    units = np.zeros(HOURS)
    lines, squares = 0, 0.0
    for h, n, qty, qty2 in rows:
        if h is not None and 0 <= int(h) < HOURS:
            units[int(h)] += float(qty or 0)
            squares += float(qty2 or 0)
            lines += int(n)
    if lines < MIN_LINES:
        return IntradayProfile(DEFAULT_SHARES, "default (too few order lines to measure the shop's day)")
    source = f"the shop's order lines of the {days} days before {before}"
    return IntradayProfile(units + 1.0, source, max(squares / units.sum(), 1.0))


def clumping(units: FloatArray) -> float:
    """``sum(q^2) / sum(q)`` of arrival sizes ``units`` (lines or baskets): the variance of a count of
    units over its mean when the arrivals are Poisson; 1 when every arrival is one unit."""
    q = np.asarray(units, dtype=np.float64)
    q = q[q > 0]
    return max(float((q**2).sum() / q.sum()), 1.0) if q.size else 1.0


def posterior_rate(
    prior_mean: FloatArray,
    size: FloatArray,
    sold: FloatArray,
    exposure: FloatArray,
    *,
    clumping: float = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and shape of each SKU's daily demand rate after ``sold`` units in ``exposure`` (the
    share of the day's demand expected while it was on sale), the units arriving with ``clumping`` (see the
    module). ``size`` inf (Poisson), or a spread the clumping explains, keeps the prior."""
    mu = np.maximum(np.asarray(prior_mean, dtype=np.float64), 1e-9)
    c = max(float(clumping), 1.0)
    inverse = 1.0 / np.asarray(size, dtype=np.float64) - (c - 1.0) / mu  # 1 / r_day
    finite = inverse > 1e-12
    r = np.where(finite, 1.0 / np.where(finite, inverse, 1.0), 1.0)
    n = np.asarray(sold, dtype=np.float64) / c
    e = np.asarray(exposure, dtype=np.float64) / c
    post = np.where(finite, (r + n) / (r / mu + e), mu)
    return post, np.where(finite, r + n, np.inf)
