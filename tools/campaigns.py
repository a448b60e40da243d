"""Campaign evaluation: a closed plan against what actually sold, and A/B comparisons of two campaigns.

**Plan against actual** (:func:`plan_vs_actual`): per plan item, the forecast units against the units of
its SKU sold on the sale date (cancellations excluded), with

- WAPE = sum(|actual - forecast|) / sum(actual) over the plan's items;
- bias = sum(forecast - actual) / sum(actual): positive when the plan over-forecast;
- a driver for every item that missed (|actual - forecast| above ``max(2 units, 20 % of forecast)``):
  ``stock-out`` (sold units reached the allocation, so demand above it was never observed), ``price`` (the
  realised average price differs from the planned sale price by more than 1 %), ``signals`` (market signals
  touched the SKU: ids listed in the plan's ``constraints``/``solver_stats`` ``signal_ids`` or active
  ``market_signal`` rows for its SKU, category or brand on the sale date), else ``noise`` (demand
  variation).

**Comparisons** (:func:`compare_campaigns`, :func:`compare_days`, :func:`compare_samples`): a metric (GMV,
gross profit or units) is measured per observation unit on each side: per day (each plan's sale date, or
each listed day) or per customer (every customer of the shop; with an A/B split on one sale date each
customer belongs to the arm given by a stable hash of its id). The difference of means gets a seeded
bootstrap 95 % confidence interval (absolute and relative to side A; Welch's t interval when a side has
fewer than 10 observations) and Welch's t-test; the verdict calls the difference significant when the
interval excludes zero and Welch's p-value agrees.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any, Literal, cast, get_args

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from scipy import stats
from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import Session

from db.models import (
    Customer,
    FlashSalePlan,
    MarketSignal,
    Order,
    OrderLine,
    PlanItem,
    PlanStatus,
    Product,
    SignalScope,
)
from tools.formatting import format_cents
from tools.kpi import KpiInputError, UnknownPlan, kpi_report, period_bounds

Metric = Literal["gross_profit", "gmv", "units"]
Unit = Literal["auto", "day", "customer"]
METRIC_LABELS = {"gross_profit": "profit", "gmv": "GMV", "units": "units"}

_ol = OrderLine.__table__
_o = Order.__table__
_p = Product.__table__
_pi = PlanItem.__table__

MIN_BOOTSTRAP_N = 10
DENSE_BOOTSTRAP_CELLS = 2_000_000
MISS_UNITS = 2.0
MISS_SHARE = 0.2
PRICE_TOLERANCE = 0.01


def parse_metric(text: str) -> Metric:
    """Validate a metric name: gross_profit, gmv or units."""
    for metric in get_args(Metric):
        if text == metric:
            return cast(Metric, metric)
    raise KpiInputError(f"Unknown metric {text!r}: use gross_profit, gmv or units.")


def parse_unit(text: str) -> Unit:
    """Validate an observation unit: auto, day or customer."""
    for unit in get_args(Unit):
        if text == unit:
            return cast(Unit, unit)
    raise KpiInputError(f"Unknown unit {text!r}: use auto, day or customer.")


class PlanNotClosed(KpiInputError):
    """Plan against actual needs a plan whose sale day is over."""


# ---- plan against actual --------------------------------------------------------------------------------


class ItemVsActual(BaseModel):
    """One plan item: what was forecast and what sold, and why they differ."""

    sku: str
    category: str
    brand: str
    planned_price_cents: int
    realised_avg_price_cents: int | None
    allocated_units: int
    forecast_units: float
    sold_units: int
    error_units: float = Field(description="sold - forecast")
    expected_revenue_cents: int
    revenue_cents: int
    expected_profit_cents: int
    profit_cents: int
    stocked_out: bool
    sold_out_at: dt.datetime | None
    signal_ids: list[int]
    driver: Literal["on target", "stock-out", "price", "signals", "noise"]
    explanation: str


class PlanVsActual(BaseModel):
    plan_id: int
    sale_date: dt.date
    status: str
    items: list[ItemVsActual]
    forecast_units: float
    sold_units: int
    wape: float | None = Field(description="sum |actual - forecast| / sum actual")
    bias: float | None = Field(description="sum (forecast - actual) / sum actual; > 0 means over-forecast")
    expected_revenue_cents: int
    revenue_cents: int
    expected_profit_cents: int
    profit_cents: int
    drivers: dict[str, int] = Field(description="number of items per miss driver")


def _plan_signal_ids(plan: FlashSalePlan) -> dict[str, list[int]]:
    for source in (plan.constraints or {}, plan.solver_stats or {}):
        found = source.get("signal_ids")
        if isinstance(found, dict):
            return {str(k): [int(v) for v in vs] for k, vs in found.items() if isinstance(vs, list)}
    return {}


def _active_signal_ids(
    session: Session, day: dt.date, products: dict[str, tuple[str, str]]
) -> dict[str, list[int]]:
    """SKU -> ids of market signals valid on ``day`` whose scope is the SKU, its category or its brand."""
    categories = {c for c, _ in products.values()}
    brands = {b for _, b in products.values()}
    ms = MarketSignal.__table__
    rows = session.execute(
        select(ms.c.id, ms.c.scope, ms.c.scope_value).where(
            ms.c.valid_from <= day,
            ms.c.valid_to >= day,
            or_(
                and_(ms.c.scope == SignalScope.SKU.value, ms.c.scope_value.in_(list(products))),
                and_(ms.c.scope == SignalScope.CATEGORY.value, ms.c.scope_value.in_(list(categories))),
                and_(ms.c.scope == SignalScope.BRAND.value, ms.c.scope_value.in_(list(brands))),
            ),
        )
    ).all()
    out: dict[str, list[int]] = {sku: [] for sku in products}
    for sku, (category, brand) in products.items():
        for r in rows:
            scope = SignalScope(r.scope)
            if (
                (scope is SignalScope.SKU and r.scope_value == sku)
                or (scope is SignalScope.CATEGORY and r.scope_value == category)
                or (scope is SignalScope.BRAND and r.scope_value == brand)
            ):
                out[sku].append(int(r.id))
    return out


def plan_vs_actual(session: Session, plan_id: int, *, today: dt.date) -> PlanVsActual:
    """Forecast against realised sales, per SKU, for a plan whose sale day is over.

    A plan qualifies when it is closed, or approved/live with a sale date before ``today`` (the shop's
    date). Raises :class:`UnknownPlan` or :class:`PlanNotClosed` otherwise.
    """
    plan = session.get(FlashSalePlan, plan_id)
    if plan is None:
        raise UnknownPlan(f"No flash-sale plan with id {plan_id}; list plans with `python cli.py plan list`.")
    over = plan.status is PlanStatus.CLOSED or (
        plan.status in (PlanStatus.APPROVED, PlanStatus.LIVE) and plan.sale_date < today
    )
    if not over:
        raise PlanNotClosed(
            f"Plan {plan_id} is {plan.status.value} for {plan.sale_date}; plan against actual needs a closed "
            "plan (or an approved one whose sale day is over)."
        )
    report = kpi_report(
        session, plan.sale_date, plan.sale_date, by="sku", plan_id=plan_id, counterfactual=False
    )
    outcomes = {o.sku: o for o in report.plan_items}
    rows = session.execute(
        select(_pi, _p.c.category, _p.c.brand, _p.c.cost_cents)
        .join(_p, _p.c.sku == _pi.c.sku)
        .where(_pi.c.plan_id == plan_id)
        .order_by(_pi.c.sku)
    ).all()
    products = {r.sku: (str(r.category), str(r.brand)) for r in rows}
    signal_ids = _plan_signal_ids(plan)
    active = _active_signal_ids(session, plan.sale_date, products) if products else {}

    items: list[ItemVsActual] = []
    for r in rows:
        outcome = outcomes[r.sku]
        sold = outcome.sold_units
        forecast = float(r.forecast_units)
        error = sold - forecast
        avg_price = round(outcome.revenue_cents / sold) if sold else None
        profit = outcome.revenue_cents - sold * int(r.cost_cents)
        sigs = sorted(set(signal_ids.get(r.sku, [])) | set(active.get(r.sku, [])))
        driver, why = _driver(
            forecast,
            allocated=outcome.allocated_units,
            sold=sold,
            planned_price=int(r.sale_price_cents),
            avg_price=avg_price,
            signal_ids=sigs,
            sold_out_at=outcome.sold_out_at,
        )
        items.append(
            ItemVsActual(
                sku=r.sku,
                category=str(r.category),
                brand=str(r.brand),
                planned_price_cents=int(r.sale_price_cents),
                realised_avg_price_cents=avg_price,
                allocated_units=int(r.allocated_units),
                forecast_units=forecast,
                sold_units=sold,
                error_units=error,
                expected_revenue_cents=int(r.expected_revenue_cents),
                revenue_cents=outcome.revenue_cents,
                expected_profit_cents=int(r.expected_profit_cents),
                profit_cents=profit,
                stocked_out=outcome.stocked_out,
                sold_out_at=outcome.sold_out_at,
                signal_ids=sigs,
                driver=driver,
                explanation=why,
            )
        )
    sold_total = sum(i.sold_units for i in items)
    forecast_total = sum(i.forecast_units for i in items)
    abs_err = sum(abs(i.error_units) for i in items)
    drivers: dict[str, int] = {}
    for item in items:
        drivers[item.driver] = drivers.get(item.driver, 0) + 1
    return PlanVsActual(
        plan_id=plan_id,
        sale_date=plan.sale_date,
        status=plan.status.value,
        items=items,
        forecast_units=forecast_total,
        sold_units=sold_total,
        wape=abs_err / sold_total if sold_total else None,
        bias=(forecast_total - sold_total) / sold_total if sold_total else None,
        expected_revenue_cents=sum(i.expected_revenue_cents for i in items),
        revenue_cents=sum(i.revenue_cents for i in items),
        expected_profit_cents=sum(i.expected_profit_cents for i in items),
        profit_cents=sum(i.profit_cents for i in items),
        drivers=drivers,
    )


def sale_review(session: Session, plan_id: int, *, today: dt.date) -> tuple[PlanVsActual | None, str | None]:
    """Plan against actual of ``plan_id``, or None with the reason it cannot be computed yet."""
    try:
        return plan_vs_actual(session, plan_id, today=today), None
    except PlanNotClosed as exc:
        return None, f"No plan against actual: {exc}"


def _driver(
    forecast: float,
    *,
    allocated: int,
    sold: int,
    planned_price: int,
    avg_price: int | None,
    signal_ids: list[int],
    sold_out_at: dt.datetime | None,
) -> tuple[Literal["on target", "stock-out", "price", "signals", "noise"], str]:
    error = sold - forecast
    if abs(error) <= max(MISS_UNITS, MISS_SHARE * forecast):
        return "on target", f"sold {sold} against {forecast:.1f} forecast"
    if allocated > 0 and sold >= allocated:
        when = f" at {sold_out_at:%H:%M}" if sold_out_at else ""
        return (
            "stock-out",
            f"sold out{when}: all {allocated} allocated units went, so demand above them was not observed",
        )
    if (
        avg_price is not None
        and planned_price > 0
        and abs(avg_price - planned_price) > PRICE_TOLERANCE * planned_price
    ):
        return (
            "price",
            f"sold at {avg_price / 100:.2f} on average instead of the planned {planned_price / 100:.2f}",
        )
    if signal_ids:
        ids = ", ".join(str(i) for i in signal_ids)
        direction = "above" if error > 0 else "below"
        return "signals", f"sold {direction} forecast while market signals {ids} applied to it"
    p_value = poisson_two_sided(sold, forecast)
    return (
        "noise",
        f"sold {sold} against {forecast:.1f} forecast, no stock-out, price or signal to explain it "
        f"(Poisson two-sided p = {p_value:.2f})",
    )


def poisson_two_sided(observed: int, mean: float) -> float:
    """Two-sided p-value of ``observed`` units against a Poisson ``mean``."""
    if mean <= 0:
        return 0.0 if observed > 0 else 1.0
    lower = float(stats.poisson.cdf(observed, mean))
    upper = float(stats.poisson.sf(observed - 1, mean))
    return min(1.0, 2.0 * min(lower, upper))


# ---- comparisons ----------------------------------------------------------------------------------------


class Comparison(BaseModel):
    """The difference of a metric's mean between side B and side A, with its uncertainty."""

    label_a: str
    label_b: str
    metric: Metric
    unit: Literal["day", "customer"]
    n_a: int
    n_b: int
    mean_a: float = Field(description="Mean metric per unit on side A (cents for money metrics).")
    mean_b: float
    difference: float = Field(description="mean_b - mean_a")
    ci_low: float
    ci_high: float
    relative_difference: float | None = Field(description="(mean_b - mean_a) / mean_a")
    relative_ci_low: float | None
    relative_ci_high: float | None
    welch_t: float | None
    welch_p: float | None
    confidence: float
    ci_method: Literal["bootstrap", "welch"] = Field(
        description="bootstrap percentile interval, or Welch's t interval when a side has < 10 observations"
    )
    n_boot: int
    seed: int
    significant: bool
    verdict: str


def compare_samples(
    a: Sequence[float] | NDArray[np.float64],
    b: Sequence[float] | NDArray[np.float64],
    *,
    metric: Metric = "gross_profit",
    unit: Literal["day", "customer"] = "day",
    label_a: str = "A",
    label_b: str = "B",
    confidence: float = 0.95,
    n_boot: int = 4000,
    seed: int = 0,
) -> Comparison:
    """Compare the means of two samples: bootstrap CI (seeded, percentile) and Welch's t-test.

    With fewer than 10 observations on a side the interval is Welch's t interval instead (a percentile
    bootstrap of 3 days is far too narrow). The difference is called significant when the interval (relative
    to A when A's mean is not zero) excludes zero and Welch's p-value is below 1 - confidence.

    Samples with many zeros (customers who bought nothing) are resampled exactly and cheaply: the number of
    non-zero draws of a resample is binomial, and only those are drawn.
    """
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if xa.size < 2 or xb.size < 2:
        raise KpiInputError(
            f"A comparison needs at least two observations per side (got {xa.size} and {xb.size}); "
            "compare more days, or use --unit customer."
        )
    if not 0.5 < confidence < 1.0:
        raise KpiInputError(f"Confidence must be between 0.5 and 1, got {confidence}.")
    rng = np.random.default_rng(seed)
    boot_a = _bootstrap_means(xa, n_boot, rng)
    boot_b = _bootstrap_means(xb, n_boot, rng)
    alpha = (1.0 - confidence) / 2.0
    diff = boot_b - boot_a
    mean_a, mean_b = float(xa.mean()), float(xb.mean())
    welch = stats.ttest_ind(xb, xa, equal_var=False)
    t_stat = float(welch.statistic) if np.isfinite(welch.statistic) else None
    p_value = float(welch.pvalue) if np.isfinite(welch.pvalue) else None
    rel = rel_lo = rel_hi = None
    if min(xa.size, xb.size) >= MIN_BOOTSTRAP_N:
        method: Literal["bootstrap", "welch"] = "bootstrap"
        lo, hi = (float(v) for v in np.quantile(diff, [alpha, 1.0 - alpha]))
        if mean_a != 0:
            valid = boot_a != 0
            rel_boot = diff[valid] / np.abs(boot_a[valid])
            rel_lo, rel_hi = (float(v) for v in np.quantile(rel_boot, [alpha, 1.0 - alpha]))
    else:
        # A handful of days: the percentile bootstrap is too narrow there; use Welch's t interval.
        method = "welch"
        interval = welch.confidence_interval(confidence)
        lo, hi = float(interval.low), float(interval.high)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo = hi = mean_b - mean_a
        if mean_a != 0:
            rel_lo, rel_hi = lo / abs(mean_a), hi / abs(mean_a)
    if mean_a != 0:
        rel = (mean_b - mean_a) / abs(mean_a)
    excludes_zero = lo > 0 or hi < 0
    if rel_lo is not None and rel_hi is not None:
        excludes_zero = rel_lo > 0 or rel_hi < 0
    # Significant only when the interval excludes zero and Welch's test agrees at the same level.
    significant = excludes_zero and p_value is not None and p_value < 1.0 - confidence
    comparison = Comparison(
        label_a=label_a,
        label_b=label_b,
        metric=metric,
        unit=unit,
        n_a=int(xa.size),
        n_b=int(xb.size),
        mean_a=mean_a,
        mean_b=mean_b,
        difference=mean_b - mean_a,
        ci_low=lo,
        ci_high=hi,
        relative_difference=rel,
        relative_ci_low=rel_lo,
        relative_ci_high=rel_hi,
        welch_t=t_stat,
        welch_p=p_value,
        confidence=confidence,
        ci_method=method,
        n_boot=n_boot,
        seed=seed,
        significant=bool(significant),
        verdict="",
    )
    comparison.verdict = verdict_text(comparison)
    return comparison


def _bootstrap_means(x: NDArray[np.float64], n_boot: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Means of ``n_boot`` resamples of ``x`` (with replacement)."""
    n = x.size
    nonzero = x[x != 0]
    if nonzero.size < n and n > 5_000:
        # Exact and cheap for mostly-zero samples: draw how many non-zeros each resample holds, then them.
        counts = rng.binomial(n, nonzero.size / n, size=n_boot)
        means = np.zeros(n_boot, dtype=np.float64)
        for i, k in enumerate(counts):
            if k:
                means[i] = nonzero[rng.integers(0, nonzero.size, size=int(k))].sum() / n
        return means
    chunk = max(1, DENSE_BOOTSTRAP_CELLS // n)
    parts = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        parts.append(x[idx].mean(axis=1))
    return np.asarray(np.concatenate(parts), dtype=np.float64)


def verdict_text(c: Comparison) -> str:
    """One plain-language sentence about the comparison, e.g. "Plan B earned 12.3 % more profit per day
    (95 % CI 4.1 % to 20.5 %): the difference is significant"."""
    what = METRIC_LABELS[c.metric]
    verb = "sold" if c.metric == "units" else "earned"
    per = "per day" if c.unit == "day" else "per customer"
    level = f"{c.confidence * 100:.0f} % CI"
    tail = (
        "the difference is significant"
        if c.significant
        else "the difference is not distinguishable from noise"
    )
    if c.relative_difference is not None and c.relative_ci_low is not None and c.relative_ci_high is not None:
        more = "more" if c.relative_difference >= 0 else "less"
        interval = f"{level} {c.relative_ci_low * 100:.1f} % to {c.relative_ci_high * 100:.1f} %"
        return (
            f"{c.label_b} {verb} {abs(c.relative_difference) * 100:.1f} % {more} {what} {per} than "
            f"{c.label_a} ({interval}): {tail}"
        )
    if c.metric == "units":
        amount, interval = f"{c.difference:,.2f} units", f"{c.ci_low:,.2f} to {c.ci_high:,.2f}"
    else:
        amount, interval = (
            f"{format_cents(c.difference)} {what}",
            f"{format_cents(c.ci_low)} to {format_cents(c.ci_high)}",
        )
    return f"{c.label_b} {verb} {amount} {per} more than {c.label_a} ({level} {interval}): {tail}"


def _metric_expr(metric: Metric) -> Any:
    if metric == "gmv":
        return func.sum(_ol.c.qty * _ol.c.unit_price_cents)
    if metric == "units":
        return func.sum(_ol.c.qty)
    if metric == "gross_profit":
        return func.sum(_ol.c.qty * _ol.c.unit_price_cents) - func.sum(_ol.c.qty * _p.c.cost_cents)
    raise KpiInputError(f"Unknown metric {metric!r}: use gross_profit, gmv or units.")


def _not_cancelled(t0: dt.datetime, t1: dt.datetime) -> Any:
    cancelled = select(_o.c.id).where(_o.c.is_cancellation == true(), _o.c.ts >= t0, _o.c.ts < t1)
    return _ol.c.order_id.not_in(cancelled)


def _day_values(
    session: Session, days: Sequence[dt.date], metric: Metric, skus: Sequence[str] | None
) -> dict[dt.date, float]:
    """Metric per day over the given days (days without sales count as 0), one GROUP BY query."""
    if not days:
        return {}
    t0, t1 = period_bounds(min(days), max(days))
    day = func.date(_ol.c.ts)
    query = (
        select(day.label("day"), _metric_expr(metric).label("value"))
        .select_from(_ol.join(_p, _p.c.sku == _ol.c.sku))
        .where(_ol.c.ts >= t0, _ol.c.ts < t1, _not_cancelled(t0, t1))
        .group_by(day)
    )
    if skus is not None:
        query = query.where(_ol.c.sku.in_(list(skus)))
    found = {dt.date.fromisoformat(str(r.day)[:10]): float(r.value or 0) for r in session.execute(query)}
    return {d: found.get(d, 0.0) for d in days}


def customer_arm(customer_id: str) -> int:
    """A/B arm (0 = A, 1 = B) of a customer: the parity of a stable SHA-256 hash of its id."""
    return hashlib.sha256(customer_id.encode()).digest()[0] % 2


def _customer_values(session: Session, day: dt.date, metric: Metric, skus: Sequence[str]) -> dict[str, float]:
    t0, t1 = period_bounds(day, day)
    query = (
        select(_ol.c.customer_id, _metric_expr(metric).label("value"))
        .select_from(_ol.join(_p, _p.c.sku == _ol.c.sku))
        .where(
            _ol.c.ts >= t0,
            _ol.c.ts < t1,
            _not_cancelled(t0, t1),
            _ol.c.sku.in_(list(skus)),
            _ol.c.customer_id.is_not(None),
        )
        .group_by(_ol.c.customer_id)
    )
    return {str(r.customer_id): float(r.value or 0) for r in session.execute(query)}


def _load_plans(session: Session, ids: Sequence[int]) -> list[FlashSalePlan]:
    plans = []
    for plan_id in ids:
        plan = session.get(FlashSalePlan, plan_id)
        if plan is None:
            raise UnknownPlan(f"No flash-sale plan with id {plan_id}.")
        plans.append(plan)
    return plans


def _plan_skus(session: Session, plan_ids: Sequence[int]) -> list[str]:
    return sorted(set(session.scalars(select(_pi.c.sku).where(_pi.c.plan_id.in_(list(plan_ids))))))


def compare_days(
    session: Session,
    days_a: Sequence[dt.date],
    days_b: Sequence[dt.date],
    *,
    metric: Metric = "gross_profit",
    skus_a: Sequence[str] | None = None,
    skus_b: Sequence[str] | None = None,
    label_a: str = "Days A",
    label_b: str = "Days B",
    n_boot: int = 4000,
    seed: int = 0,
) -> Comparison:
    """Compare a metric per day between two lists of days (optionally only some SKUs on each side)."""
    values_a = _day_values(session, sorted(set(days_a)), metric, skus_a)
    values_b = _day_values(session, sorted(set(days_b)), metric, skus_b)
    return compare_samples(
        list(values_a.values()),
        list(values_b.values()),
        metric=metric,
        unit="day",
        label_a=label_a,
        label_b=label_b,
        n_boot=n_boot,
        seed=seed,
    )


def compare_campaigns(
    session: Session,
    plan_a: int | Sequence[int],
    plan_b: int | Sequence[int],
    *,
    metric: Metric = "gross_profit",
    unit: Unit = "auto",
    n_boot: int = 4000,
    seed: int = 0,
) -> Comparison:
    """Compare two campaigns: each side is one plan id or a list of plan ids (one sale day each).

    ``unit="day"`` compares the metric of each side's plan SKUs per sale day (needs two days a side).
    ``unit="customer"`` compares the metric per customer: when both sides are single plans on the same sale
    date (an A/B split) each customer counts on the side of :func:`customer_arm`; otherwise every customer
    counts on both sides. Customers without purchases count as 0. ``"auto"`` picks "day" when both sides
    have at least two days, else "customer".
    """
    ids_a = [plan_a] if isinstance(plan_a, int) else list(plan_a)
    ids_b = [plan_b] if isinstance(plan_b, int) else list(plan_b)
    if not ids_a or not ids_b:
        raise KpiInputError("Each side of a comparison needs at least one plan id.")
    plans_a, plans_b = _load_plans(session, ids_a), _load_plans(session, ids_b)
    label_a = "Plan " + ", ".join(str(i) for i in ids_a)
    label_b = "Plan " + ", ".join(str(i) for i in ids_b)
    if unit == "auto":
        unit = "day" if len(plans_a) >= 2 and len(plans_b) >= 2 else "customer"
    if unit == "day":
        skus_a, skus_b = _plan_skus(session, ids_a), _plan_skus(session, ids_b)
        return compare_days(
            session,
            [p.sale_date for p in plans_a],
            [p.sale_date for p in plans_b],
            metric=metric,
            skus_a=skus_a,
            skus_b=skus_b,
            label_a=label_a,
            label_b=label_b,
            n_boot=n_boot,
            seed=seed,
        )
    customers = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    if not customers:
        raise KpiInputError("The shop has no customers: compare per day instead (--unit day).")
    split = len(plans_a) == 1 and len(plans_b) == 1 and plans_a[0].sale_date == plans_b[0].sale_date
    pop_a = [c for c in customers if customer_arm(c) == 0] if split else customers
    pop_b = [c for c in customers if customer_arm(c) == 1] if split else customers
    sides: list[NDArray[np.float64]] = []
    for plans, ids, pop in ((plans_a, ids_a, pop_a), (plans_b, ids_b, pop_b)):
        skus = _plan_skus(session, ids)
        totals: dict[str, float] = {}
        for plan in plans:
            for customer, value in _customer_values(session, plan.sale_date, metric, skus).items():
                totals[customer] = totals.get(customer, 0.0) + value
        sides.append(np.array([totals.get(c, 0.0) / len(plans) for c in pop], dtype=np.float64))
    return compare_samples(
        sides[0],
        sides[1],
        metric=metric,
        unit="customer",
        label_a=label_a,
        label_b=label_b,
        n_boot=n_boot,
        seed=seed,
    )
