"""The sales history as the demand model reads it: units, prices and promotion status per product and period.

Two sources, whichever the shop has in the window: order lines (a daily panel) or aggregated sales periods
(a daily or weekly panel, optionally per location). What each holds:

* **Price.** The shelf price from ``price_history`` when there is one. Otherwise the price of *ordinary*
  lines: the units-weighted mean unit price of the day's lines no larger than the SKU's usual line
  (the 75th percentile of its line quantities), so that bulk and quantity-tier prices are not read as price
  cuts; carried over days without ordinary lines. Sales periods give their units-weighted mean price.
* **Promotions** (``featured``, an intensity in [0, 1]). Labelled sources first: closed flash-sale plans,
  the promotion calendar (``promotion``: a SKU or its category, at every location or some), and the
  featured/display markers of sales periods. Over several locations the intensity is the share of the SKU's
  locations promoting it. Only when the shop has no label at all are promotions inferred from price cuts, by a
  stated rule (:data:`INFERENCE_RULE`), and the panel says how many it inferred.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from db.errors import FlashSaleError
from db.models import (
    FlashSalePlan,
    MarketSignal,
    OrderLine,
    PlanItem,
    PlanStatus,
    PriceHistory,
    Product,
    Promotion,
    SalesPeriod,
)
from db.sqlvalues import as_date
from tools.signals import SignalEffect, signal_multipliers

FloatArray = NDArray[np.float64]

#: A price this far below the SKU's rolling 4-week median of ordinary prices, for at most
#: ``INFERENCE_MAX_DAYS`` days in a row, on a day with ordinary-sized lines, is an inferred promotion.
PROMO_DEPTH = 0.15
INFERENCE_MAX_DAYS = 14
INFERENCE_RULE = (
    f"the price of ordinary-sized lines at least {PROMO_DEPTH:.0%} below the SKU's rolling 4-week median, "
    f"for at most {INFERENCE_MAX_DAYS} days in a row"
)
#: Lines above this quantile of a SKU's line quantities are bulk lines: their prices do not set the day's.
ORDINARY_LINE_QUANTILE = 0.75


class PanelError(FlashSaleError):
    """The sales history cannot be read as asked."""


@dataclass
class SalesPanel:
    """Units, prices and promotion status of every product (or product and location) over ``[start, end]``.

    Arrays are (n series, T periods) of ``period_days`` days each (1: daily, 7: weekly); ``start`` is the
    first period's first day. ``active`` marks the periods on which a series was on offer (from its first
    price or sale in the window on); ``cap`` is the sale allocation on flash-sale days and ``inf`` otherwise.
    ``featured`` is the promotion intensity in [0, 1] (1: promoted everywhere for the whole period).
    """

    skus: list[str]
    categories: list[str]
    brands: list[str]
    list_price_cents: FloatArray
    start: dt.date
    end: dt.date
    units: FloatArray
    price: FloatArray
    featured: FloatArray
    cap: FloatArray
    active: NDArray[np.bool_]
    has_price_history: NDArray[np.bool_]
    period_days: int = 1
    source: str = "order lines"  # or "sales periods"
    locations: list[str] | None = None  # per series, when the panel is per (SKU, location)
    pool_labels: dict[str, list[str]] = field(default_factory=dict)  # hierarchy levels for pooling
    promotion_source: str = "none"  # where ``featured`` came from
    inferred_promotions: int = 0  # promotion periods inferred from price cuts (no labels in the shop)
    signal_log: FloatArray | None = None  # (n, T) log multiplier of the stored market signals, None = none
    signal_ids: list[int] = field(default_factory=list)  # the market signals that touched the window

    @property
    def n_days(self) -> int:
        """Number of periods (days of a daily panel)."""
        return int(self.units.shape[1])

    @property
    def dates(self) -> list[dt.date]:
        """First day of each period."""
        return [self.start + dt.timedelta(days=self.period_days * d) for d in range(self.n_days)]

    @property
    def weekday(self) -> NDArray[np.int64]:
        """Weekday (Monday = 0) of each day of a daily panel; 0 for every period of a weekly one."""
        if self.period_days != 1:
            return np.zeros(self.n_days, dtype=np.int64)
        return (np.arange(self.n_days) + self.start.weekday()) % 7

    @property
    def censored(self) -> NDArray[np.bool_]:
        """Sale days on which the allocation sold out, so demand is only known to be at least the cap."""
        return (self.featured > 0) & np.isfinite(self.cap) & (self.units >= self.cap) & self.active


def last_sales_date(session: Session) -> dt.date | None:
    """The last day of the shop's sales history (order lines, else sales periods), or ``None``."""
    value = session.scalar(select(func.max(OrderLine.ts)))
    if value is not None:
        return as_date(value)
    row = session.execute(
        select(SalesPeriod.period_start, SalesPeriod.period_days)
        .order_by(SalesPeriod.period_start.desc())
        .limit(1)
    ).first()
    return None if row is None else as_date(row[0]) + dt.timedelta(days=int(row[1]) - 1)


def history_period_days(session: Session) -> int:
    """1 for a shop whose history is order lines or daily sales, 7 for weekly sales periods."""
    if session.scalar(select(OrderLine.id).limit(1)) is not None:
        return 1
    return int(session.scalar(select(func.max(SalesPeriod.period_days))) or 1)


def load_sales_panel(
    session: Session, start: dt.date, end: dt.date, *, by_location: bool = False
) -> SalesPanel:
    """Read products, sales, prices and promotions for ``[start, end]`` (see the module docstring).

    ``by_location`` makes one series per (SKU, location) of the sales periods (for backtests at store
    level); plans use the SKU panel.
    """
    if end < start:
        raise PanelError(f"window end {end} is before its start {start}")
    products = session.execute(
        select(Product.sku, Product.category, Product.brand, Product.list_price_cents, Product.attributes)
        .where(Product.is_product.is_(True))
        .order_by(Product.sku)
    ).all()
    days = history_period_days(session)
    if days == 1 and session.scalar(select(OrderLine.id).limit(1)) is not None:
        data = _from_order_lines(session, list(products), start, end)
    else:
        data = _from_sales_periods(session, list(products), start, end, days=days, by_location=by_location)
    skus, series_products = data["skus"], data["products"]
    panel = SalesPanel(
        skus=skus,
        categories=[p.category for p in series_products],
        brands=[p.brand for p in series_products],
        list_price_cents=np.array([float(p.list_price_cents or 0) for p in series_products]),
        start=data["start"],
        end=data["end"],
        units=data["units"],
        price=data["price"],
        featured=data["featured"],
        cap=data["cap"],
        active=data["active"],
        has_price_history=data["has_history"],
        period_days=data["period_days"],
        source=data["source"],
        locations=data.get("locations"),
        pool_labels=_pool_labels(series_products),
        promotion_source=data["promotion_source"],
        inferred_promotions=data["inferred"],
    )
    sku_of = [p.sku for p in series_products]
    signals = _signal_offsets(
        session, sku_of, panel.categories, panel.brands, dates=panel.dates, period_days=panel.period_days
    )
    panel.signal_log, panel.signal_ids = signals
    return panel


def _pool_labels(products: list[Any]) -> dict[str, list[str]]:
    """The hierarchy levels a thin category can be pooled by: department, sub-category, brand."""
    levels: dict[str, list[str]] = {}
    for name in ("department", "sub_category"):
        values = [str((p.attributes or {}).get(name) or "") for p in products]
        if any(values):
            levels[name] = values
    levels["brand"] = [str(p.brand) for p in products]
    return levels


# ---- order lines: a daily panel --------------------------------------------------------------------------


def _from_order_lines(session: Session, products: list[Any], start: dt.date, end: dt.date) -> dict[str, Any]:
    skus = [p.sku for p in products]
    index = {sku: i for i, sku in enumerate(skus)}
    n, n_days = len(skus), (end - start).days + 1
    start_ts = dt.datetime.combine(start, dt.time())
    end_ts = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    day = func.date(OrderLine.ts)
    lines = session.execute(
        select(OrderLine.sku, day, OrderLine.qty, OrderLine.unit_price_cents).where(
            OrderLine.qty > 0, OrderLine.ts >= start_ts, OrderLine.ts < end_ts
        )
    ).all()
    units = np.zeros((n, n_days))
    ordinary_price = np.full((n, n_days), np.nan)
    if lines:
        frame = pd.DataFrame(lines, columns=["sku", "day", "qty", "price"])
        frame["row"] = frame["sku"].map(index)
        frame = frame.dropna(subset=["row"])
        frame["row"] = frame["row"].astype(np.int64)
        frame["col"] = (pd.to_datetime(frame["day"]) - pd.Timestamp(start)).dt.days.astype(np.int64)
        daily = frame.groupby(["row", "col"])["qty"].sum()
        units[daily.index.get_level_values(0), daily.index.get_level_values(1)] = daily.to_numpy(float)
        usual = frame.groupby("row")["qty"].transform(
            lambda q: max(1.0, float(q.quantile(ORDINARY_LINE_QUANTILE)))
        )
        ordinary = frame[frame["qty"] <= usual]
        weighted = (ordinary["qty"] * ordinary["price"]).groupby([ordinary["row"], ordinary["col"]]).sum()
        volume = ordinary.groupby(["row", "col"])["qty"].sum()
        mean_price = weighted / volume
        ordinary_price[mean_price.index.get_level_values(0), mean_price.index.get_level_values(1)] = (
            mean_price.to_numpy(float)
        )

    price, has_history, first_price_col = _shelf_prices(session, index, start, end, n=n, n_days=n_days)
    fill = ~has_history
    if fill.any():
        price[fill] = np.array(pd.DataFrame(ordinary_price[fill].T).ffill().bfill().to_numpy().T)
    price = np.array(pd.DataFrame(price.T).bfill().to_numpy().T, dtype=np.float64)
    list_price = np.array([float(p.list_price_cents or 0) for p in products])
    price = np.where(np.isnan(price) | (price <= 0), np.maximum(list_price[:, None], 1.0), price)

    featured = np.zeros((n, n_days))
    cap = np.full((n, n_days), np.inf)
    plans = session.execute(
        select(FlashSalePlan.sale_date, PlanItem.sku, PlanItem.sale_price_cents, PlanItem.allocated_units)
        .join(PlanItem, PlanItem.plan_id == FlashSalePlan.id)
        .where(FlashSalePlan.status == PlanStatus.CLOSED, FlashSalePlan.sale_date.between(start, end))
    ).all()
    for sale_date, sku, sale_price, allocated in plans:
        i = index.get(sku)
        if i is None:
            continue
        col = (as_date(sale_date) - start).days
        featured[i, col] = 1.0
        cap[i, col] = float(allocated) if allocated is not None else np.inf
        price[i, col] = float(sale_price)  # the plan's price is the day's, whatever the lines say
    dates = [start + dt.timedelta(days=d) for d in range(n_days)]
    calendar = _calendar_intensity(session, products, dates, 1, locations=None)
    sources = [
        name for name, found in (("closed sales", bool(plans)), ("calendar", calendar is not None)) if found
    ]
    if calendar is not None:
        featured = np.maximum(featured, calendar)
    inferred = 0
    if not sources:
        promo = (
            infer_promotions(np.where(np.isnan(ordinary_price), np.nan, price), units) & ~has_history[:, None]
        )
        featured = np.where(promo, 1.0, featured)
        inferred = int(promo.sum())
        if inferred:
            sources = ["inferred"]
    first_sale_col = np.where(units.any(axis=1), np.argmax(units > 0, axis=1), n_days)
    active = np.arange(n_days)[None, :] >= np.minimum(first_sale_col, first_price_col)[:, None]
    return {
        "skus": skus,
        "products": list(products),
        "start": start,
        "end": end,
        "units": units,
        "price": price,
        "featured": featured,
        "cap": cap,
        "active": active,
        "has_history": has_history,
        "period_days": 1,
        "source": "order lines",
        "promotion_source": "+".join(sources) or "none",
        "inferred": inferred,
    }


def _shelf_prices(
    session: Session, index: dict[str, int], start: dt.date, end: dt.date, *, n: int, n_days: int
) -> tuple[FloatArray, NDArray[np.bool_], NDArray[np.int64]]:
    """A step function per SKU from ``price_history`` (NaN before its first price, and without one)."""
    price = np.full((n, n_days), np.nan)
    first_col = np.full(n, n_days, dtype=np.int64)
    has = np.zeros(n, dtype=bool)
    end_ts = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    history = session.execute(
        select(PriceHistory.sku, PriceHistory.valid_from, PriceHistory.price_cents)
        .where(PriceHistory.valid_from < end_ts)
        .order_by(PriceHistory.sku, PriceHistory.valid_from)
    ).all()
    if not history:
        return price, has, first_col
    hist = pd.DataFrame(history, columns=["sku", "valid_from", "price"])
    hist["row"] = hist["sku"].map(index)
    hist = hist.dropna(subset=["row"])
    hist["col"] = (pd.to_datetime(hist["valid_from"]).dt.normalize() - pd.Timestamp(start)).dt.days
    for row, group in hist.groupby("row", sort=False):
        r = int(row)  # type: ignore[arg-type]
        change_cols = group["col"].to_numpy(dtype=np.int64)
        values = group["price"].to_numpy(dtype=np.float64)
        pos = np.searchsorted(change_cols, np.arange(n_days), side="right") - 1
        price[r] = np.where(pos >= 0, values[np.clip(pos, 0, None)], np.nan)
        has[r] = True
        first_col[r] = max(int(change_cols[0]), 0)
    return price, has, first_col


def infer_promotions(price: FloatArray, units: FloatArray) -> NDArray[np.bool_]:
    """Periods that pass :data:`INFERENCE_RULE`; ``price`` is NaN where the period had no ordinary line."""
    observed = np.where(units > 0, price, np.nan)
    rolling = (
        pd.DataFrame(observed.T)
        .rolling(window=29, center=True, min_periods=5)
        .median()
        .ffill()
        .bfill()
        .to_numpy()
        .T
    )
    with np.errstate(invalid="ignore"):
        cut = (units > 0) & np.isfinite(observed) & (observed < (1.0 - PROMO_DEPTH) * rolling)
    # A cut that lasts longer than a promotion does is a price change, not a promotion: keep only runs of
    # consecutive cut periods no longer than INFERENCE_MAX_DAYS.
    keep = np.zeros_like(cut)
    padded = np.pad(cut.astype(np.int8), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    for i in np.flatnonzero(cut.any(axis=1)):
        starts, ends = np.flatnonzero(edges[i] == 1), np.flatnonzero(edges[i] == -1)
        for a, b in zip(starts, ends, strict=True):
            if b - a <= INFERENCE_MAX_DAYS:
                keep[i, a:b] = True
    return np.asarray(keep, dtype=bool)


# ---- sales periods: a daily or weekly panel ----------------------------------------------------------------


def _from_sales_periods(
    session: Session, products: list[Any], start: dt.date, end: dt.date, *, days: int, by_location: bool
) -> dict[str, Any]:
    rows = session.execute(
        select(
            SalesPeriod.sku,
            SalesPeriod.location,
            SalesPeriod.period_start,
            SalesPeriod.units,
            SalesPeriod.revenue_cents,
            SalesPeriod.base_price_cents,
            or_(SalesPeriod.featured.is_(True), SalesPeriod.display.is_(True)).label("promoted"),
        ).where(SalesPeriod.period_start >= start, SalesPeriod.period_start <= end)
    ).all()
    by_sku = {p.sku: p for p in products}
    frame = pd.DataFrame(rows, columns=["sku", "location", "period", "units", "revenue", "base", "promoted"])
    frame = frame[frame["sku"].isin(by_sku.keys())]
    periods = [start] if frame.empty else sorted({as_date(p) for p in frame["period"]})
    first = periods[0]
    n_periods = (periods[-1] - first).days // days + 1
    frame["col"] = [(as_date(p) - first).days // days for p in frame["period"]]
    keys = ["sku", "location"] if by_location else ["sku"]
    series: list[tuple[str, ...]]
    if by_location:  # every (SKU, location) of the shop's history, so that windows line up
        pairs = session.execute(select(SalesPeriod.sku, SalesPeriod.location).distinct()).all()
        series = sorted((str(sku), str(loc)) for sku, loc in pairs if sku in by_sku)
    else:
        series = [(sku,) for sku in sorted(by_sku)]
    index = {key: i for i, key in enumerate(series)}
    n = len(series)
    units = np.zeros((n, n_periods))
    revenue = np.zeros((n, n_periods))
    promoted = np.zeros((n, n_periods))
    carried = np.zeros((n, n_periods))  # locations carrying the SKU in the period (its rows)
    if not frame.empty:
        frame["row"] = [index[tuple(k)] for k in frame[keys].itertuples(index=False)]
        grouped = frame.groupby(["row", "col"]).agg(
            units=("units", "sum"),
            revenue=("revenue", "sum"),
            promoted=("promoted", "sum"),
            rows=("sku", "size"),
        )
        r = grouped.index.get_level_values(0).to_numpy()
        c = grouped.index.get_level_values(1).to_numpy()
        units[r, c] = grouped["units"].to_numpy(float)
        revenue[r, c] = grouped["revenue"].to_numpy(float)
        promoted[r, c] = grouped["promoted"].to_numpy(float)
        carried[r, c] = grouped["rows"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(units > 0, revenue / units, np.nan)
        featured = np.where(carried > 0, promoted / np.maximum(carried, 1), 0.0)
    series_products = [by_sku[key[0]] for key in series]
    list_price = np.array([float(p.list_price_cents or 0) for p in series_products])
    price = np.array(pd.DataFrame(observed.T).ffill().bfill().to_numpy().T, dtype=np.float64).reshape(
        n, n_periods
    )
    price = np.where(np.isnan(price) | (price <= 0), np.maximum(list_price[:, None], 1.0), price)
    dates = [first + dt.timedelta(days=days * t) for t in range(n_periods)]
    locations = [key[1] for key in series] if by_location else None
    calendar = _calendar_intensity(session, series_products, dates, days, locations=locations)
    sources = ["markers"] if promoted.any() else []
    if calendar is not None:
        featured = np.maximum(featured, calendar)
        sources.append("calendar")
    first_col = np.where(carried.any(axis=1), np.argmax(carried > 0, axis=1), n_periods)
    active = np.arange(n_periods)[None, :] >= first_col[:, None]
    return {
        "skus": ["@".join(key) if by_location else key[0] for key in series],
        "products": series_products,
        "locations": locations,
        "start": first,
        "end": dates[-1] + dt.timedelta(days=days - 1),
        "units": units,
        "price": price,
        "featured": featured,
        "cap": np.full((n, n_periods), np.inf),
        "active": active,
        "has_history": np.zeros(n, dtype=bool),
        "period_days": days,
        "source": "sales periods",
        "promotion_source": "+".join(sources) or "none",
        "inferred": 0,
    }


# ---- the promotion calendar -----------------------------------------------------------------------------


def _calendar_intensity(
    session: Session, products: list[Any], dates: list[dt.date], days: int, *, locations: list[str] | None
) -> FloatArray | None:
    """(n, T) promotion intensity from the ``promotion`` table, or None when it has nothing in the window.

    A period counts the share of its days a promotion covers. A promotion at named locations counts, on a
    series of one location, only there; on a series of the whole shop, the share of the calendar's
    locations of that period that promote the SKU."""
    if not dates:
        return None
    first, last = dates[0], dates[-1] + dt.timedelta(days=days - 1)
    rows = session.execute(
        select(Promotion.sku, Promotion.category, Promotion.location, Promotion.start, Promotion.end).where(
            Promotion.start <= last, Promotion.end >= first
        )
    ).all()
    if not rows:
        return None
    n, n_periods = len(products), len(dates)
    by_sku: dict[str, list[int]] = {}
    by_category: dict[str, list[int]] = {}
    for i, p in enumerate(products):
        by_sku.setdefault(p.sku, []).append(i)
        by_category.setdefault(str(p.category).lower(), []).append(i)
    cover: dict[tuple[int, int, str], float] = {}
    places: dict[int, set[str]] = {}
    for sku, category, location, p_start, p_end in rows:
        targets = by_sku.get(sku, []) if sku else by_category.get(str(category or "").lower(), [])
        if not targets:
            continue
        lo = max((as_date(p_start) - first).days // days, 0)
        hi = min((as_date(p_end) - first).days // days, n_periods - 1)
        for t in range(lo, hi + 1):
            period_start = dates[t]
            period_end = period_start + dt.timedelta(days=days - 1)
            overlap = (min(as_date(p_end), period_end) - max(as_date(p_start), period_start)).days + 1
            share = max(0.0, min(1.0, overlap / days))
            places.setdefault(t, set()).add(location or "")
            for i in targets:
                if locations is not None and location and locations[i] != location:
                    continue
                key = (i, t, location or "")
                cover[key] = max(cover.get(key, 0.0), share)
    out = np.zeros((n, n_periods))
    if locations is not None:
        for (i, t, _), share in cover.items():
            out[i, t] = max(out[i, t], share)
        return out
    for (i, t, location), share in cover.items():
        named = places.get(t, {""}) - {""}
        weight = 1.0 if not location or not named else 1.0 / len(named)
        out[i, t] = min(1.0, out[i, t] + share * weight)
    return out


# ---- market signals -------------------------------------------------------------------------------------


def _signal_offsets(
    session: Session,
    skus: list[str],
    categories: list[str],
    brands: list[str],
    *,
    dates: list[dt.date],
    period_days: int,
) -> tuple[FloatArray | None, list[int]]:
    """Log multipliers (n, T) of the stored market signals valid in the window (the same bounded multipliers
    forecasts apply, taken at each period's first day), so that the fit explains shocked periods by their
    signal, not by base demand."""
    if not dates:
        return None, []
    start, end = dates[0], dates[-1] + dt.timedelta(days=period_days - 1)
    rows = session.scalars(
        select(MarketSignal)
        .where(MarketSignal.valid_from <= end, MarketSignal.valid_to >= start)
        .order_by(MarketSignal.id)
    ).all()
    effects = []
    for row in rows:
        try:
            effects.append(SignalEffect.from_row(row))
        except ValueError:
            continue
    if not effects:
        return None, []
    out = np.zeros((len(skus), len(dates)))
    for t, day in enumerate(dates):
        mult, _ = signal_multipliers(effects, skus, categories, brands, day)
        out[:, t] = np.log(mult)
    return out, [e.id for e in effects]
