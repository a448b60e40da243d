"""Backtest of the demand model: hold out the last periods of history, forecast them, score the forecasts.

Daily history (order lines) holds out the last ``weeks`` weeks of days; weekly history (sales periods) the
last ``weeks`` weeks. Forecasters, each scored at the SKU-period level, per category and for the shop total:

* ``zero``: nothing sells (its WAPE is 100 % by definition: a forecast above that does worse than nothing);
* ``naive``: the same-weekday mean of the 4 weeks before the hold-out (weekly data: the last week);
* ``training mean``: the SKU's mean per period over its active training periods;
* ``model``: the demand model fitted on the history before the hold-out, at each period's actual price,
  promotion status and allocation, with the market signals of the day: its mean ``E[min(D, cap)]``;
* ``model median``: its median (the point forecast that minimises absolute error; for slow sellers it is
  0): labelled a median, never read as a forecast of totals, so it is scored at the SKU level only;
* ``truth`` and ``truth median``: the simulator's true expected demand (an oracle), when the shop is
  simulated.

Metrics: WAPE (sum |f - y| / sum y), bias (sum (f - y) / sum y), MAE, and RMSSE (the M5 competition's scaled
error: a series' hold-out RMSE over the RMSE of the one-step naive forecast on its training periods; averaged
over series weighted by their training units); for the model, the share of actuals within its 10 %-90 %
interval and the mean pinball loss of its 10/50/90 % quantiles. On held-out promoted periods: the sale lift
the model applied against the lift the periods showed (actual units over the model's forecast without lift).

It also scores elasticity recovery against the simulator's true elasticities: median absolute error and
Spearman rank correlation, for SKUs with at least 30 selling days and for all SKUs. This module reads the
simulator's hidden truth (``sim_*`` tables); the assistant never does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray
from scipy.stats import spearmanr
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.files import save_figure
from db.models import SimRun, SimSkuTruth
from tools.demand import (
    DEFAULT_WINDOW_DAYS,
    DemandModel,
    DemandModelError,
    NoSalesHistory,
    ProgressCallback,
    fit_panel,
)
from tools.forecast import ForecastGrid
from tools.sales_panel import SalesPanel, last_sales_date, load_sales_panel
from tools.signals import active_signals
from tools.simulator import load_world

FloatArray = NDArray[np.float64]
MIN_SELLING_DAYS = 30


@dataclass(frozen=True)
class ForecastScore:
    forecaster: str  # "zero", "naive", "training mean", "model", "model median", "truth", "truth median"
    level: str  # "sku-day" | "category-day" | "total-day" (or -week)
    wape: float
    bias: float
    mae: float = float("nan")
    rmsse: float = float("nan")
    coverage_80: float | None = None  # share of actuals within the 10 %-90 % interval (the model)
    pinball: float | None = None  # mean pinball loss of the 10/50/90 % quantiles (the model)


@dataclass(frozen=True)
class ElasticityScore:
    subset: str  # e.g. ">= 30 selling days"
    n_skus: int
    median_abs_error: float
    spearman: float


@dataclass
class BacktestResult:
    holdout_start: dt.date
    holdout_end: dt.date
    fit_window: tuple[dt.date, dt.date]
    fit_seconds: float
    n_skus: int
    scores: list[ForecastScore]
    elasticity: list[ElasticityScore]
    lift_median_abs_error: float | None
    daily: dict[str, list[float]] = field(default_factory=dict)  # daily totals per forecaster + "actual"
    dates: list[dt.date] = field(default_factory=list)
    elasticity_pairs: tuple[list[float], list[float]] = ([], [])  # (true, estimated), >= 30 selling days
    notes: list[str] = field(default_factory=list)
    period: str = "day"  # "day" or "week"
    series_level: str = "sku-day"  # the level of single series: "sku-day", "sku-week", "sku×location-week"
    promoted_lift: tuple[float, float] | None = None  # (model's lift, lift seen in the hold-out)
    promoted_scores: list[ForecastScore] = field(default_factory=list)  # SKU level, promoted periods only
    # The scored arrays (series x hold-out periods), for benchmarks that add forecasters of their own.
    series: list[str] = field(default_factory=list, repr=False)
    actual: FloatArray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    train: FloatArray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    promoted: NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), dtype=bool), repr=False)
    forecasts: dict[str, FloatArray] = field(default_factory=dict, repr=False)

    def score(self, forecaster: str, level: str) -> ForecastScore | None:
        for s in self.scores:
            if s.forecaster == forecaster and s.level == level:
                return s
        return None

    def ratio(self, baseline: str, level: str, metric: str = "wape") -> float | None:
        """The model mean's ``metric`` over the ``baseline``'s at ``level`` (below 1: the model is better)."""
        model, other = self.score("model", level), self.score(baseline, level)
        if model is None or other is None:
            return None
        a, b = getattr(model, metric), getattr(other, metric)
        return None if not (np.isfinite(a) and np.isfinite(b)) or b == 0 else float(a / b)


def _wape_bias(pred: FloatArray, actual: FloatArray) -> tuple[float, float]:
    total = float(actual.sum())
    if total <= 0:
        return float("nan"), float("nan")
    return float(np.abs(pred - actual).sum() / total), float((pred - actual).sum() / total)


def rmsse(pred: FloatArray, actual: FloatArray, train: FloatArray, weights: FloatArray) -> float:
    """Mean over series (rows) of the hold-out RMSE scaled by the in-sample one-step naive RMSE, weighted by
    ``weights`` (training units); series whose training periods never change are left out."""
    scale = (
        np.sqrt(np.mean(np.diff(train, axis=1) ** 2, axis=1)) if train.shape[1] > 1 else np.zeros(len(train))
    )
    err = np.sqrt(np.mean((pred - actual) ** 2, axis=1))
    ok = scale > 0
    if not ok.any() or weights[ok].sum() <= 0:
        return float("nan")
    return float(np.average(err[ok] / scale[ok], weights=weights[ok]))


def pinball(quantiles: dict[float, FloatArray], actual: FloatArray) -> float:
    """Mean pinball loss over the quantile levels and the cells."""
    losses = []
    for q, f in quantiles.items():
        diff = actual - f
        losses.append(np.mean(np.maximum(q * diff, (q - 1) * diff)))
    return float(np.mean(losses))


def score_forecast(
    name: str, level: str, pred: FloatArray, actual: FloatArray, train: FloatArray
) -> ForecastScore:
    """WAPE, bias, MAE and RMSSE of ``pred`` against ``actual`` (series x periods); ``train`` scales RMSSE."""
    wape, bias = _wape_bias(pred, actual)
    weights = train.sum(axis=1)
    return ForecastScore(
        name, level, wape, bias, float(np.mean(np.abs(pred - actual))), rmsse(pred, actual, train, weights)
    )


def _by_category(values: FloatArray, cat_codes: NDArray[np.int64], n_cat: int) -> FloatArray:
    """(n SKUs, T) -> (n categories, T) sums."""
    out = np.zeros((n_cat, values.shape[1]))
    np.add.at(out, cat_codes, values)
    return out


def _naive(training: SalesPanel, holdout: SalesPanel, weeks_back: int = 4) -> FloatArray:
    """Daily: the same-weekday mean of the ``weeks_back`` weeks before the hold-out; weekly: the last week."""
    if training.skus != holdout.skus:
        raise DemandModelError("the product list changed during the backtest; rerun it")
    if holdout.period_days != 1:
        return np.repeat(training.units[:, -1:], holdout.n_days, axis=1)
    before = training.units[:, -7 * weeks_back :]
    weekday = training.weekday[-7 * weeks_back :]
    by_weekday = np.zeros((len(holdout.skus), 7))
    for wd in range(7):
        by_weekday[:, wd] = before[:, weekday == wd].mean(axis=1)
    return by_weekday[:, holdout.weekday]


def _training_mean(training: SalesPanel, n_periods: int) -> FloatArray:
    """Each SKU's mean units per period over its active training periods."""
    active = training.active
    total = np.where(active, training.units, 0.0).sum(axis=1)
    mean = total / np.maximum(active.sum(axis=1), 1)
    return np.repeat(mean[:, None], n_periods, axis=1)


def _truth(
    session: Session, holdout: SalesPanel, rows: NDArray[np.int64], notes: list[str]
) -> tuple[FloatArray, FloatArray] | None:
    """The simulator's true expected sales under the allocation and their median, or None when the shop is
    not simulated (or the simulator no longer reproduces the stored truth)."""
    if session.scalar(select(SimRun.id).limit(1)) is None:
        return None

    world = load_world(session)
    skus = [holdout.skus[i] for i in rows]
    stored = {r.sku: r.elasticity for r in session.execute(select(SimSkuTruth.sku, SimSkuTruth.elasticity))}
    idx = world.sku_index(skus)
    check = np.array([stored.get(s, np.nan) for s in skus])
    if not np.allclose(check, world.elasticity[idx], atol=1e-9, equal_nan=True):
        notes.append(
            "The simulator code no longer reproduces this shop's stored truth (it changed after the shop was "
            "built): truth rows skipped. Rebuild the shop with `python cli.py demo --replace`."
        )
        return None
    mean_out = np.zeros((len(rows), holdout.n_days))
    median_out = np.zeros_like(mean_out)
    for t, date in enumerate(holdout.dates):
        mean = world.expected_units(date, skus, holdout.price[rows, t], holdout.featured[rows, t])
        grid = ForecastGrid(
            skus=skus,
            prices_cents=holdout.price[rows, t].astype(np.int64),
            mean=mean,
            dispersion=np.full(len(skus), float(world.nb_size)),
            signal_ids=[[] for _ in skus],
        )
        cap = holdout.cap[rows, t][:, None]
        mean_out[:, t] = grid.expected_capped(cap)[:, 0]
        median_out[:, t] = np.minimum(grid.quantile(0.5), cap)[:, 0]
    return mean_out, median_out


def _elasticity_scores(
    session: Session, model: DemandModel
) -> tuple[list[ElasticityScore], float | None, tuple[list[float], list[float]]]:

    truth = {
        row.sku: (row.elasticity, row.flash_lift)
        for row in session.execute(select(SimSkuTruth.sku, SimSkuTruth.elasticity, SimSkuTruth.flash_lift))
    }
    if not truth:
        return [], None, ([], [])
    known = np.array([s in truth for s in model.skus])
    true_e = np.array([truth[s][0] if s in truth else np.nan for s in model.skus])
    true_l = np.array([truth[s][1] if s in truth else np.nan for s in model.skus])
    scores = []
    pairs: tuple[list[float], list[float]] = ([], [])
    for label, mask in (
        (f">= {MIN_SELLING_DAYS} selling days", known & (model.selling_days >= MIN_SELLING_DAYS)),
        ("all SKUs with sales", known & (model.selling_days > 0)),
    ):
        if mask.sum() < 3:
            continue
        err = np.abs(model.elasticity[mask] - true_e[mask])
        rho = float(spearmanr(model.elasticity[mask], true_e[mask]).statistic)
        scores.append(ElasticityScore(label, int(mask.sum()), float(np.median(err)), rho))
        if not pairs[0]:
            pairs = (true_e[mask].tolist(), model.elasticity[mask].tolist())
    sold = known & (model.selling_days > 0)
    lift_err = float(np.median(np.abs(model.lift[sold] - true_l[sold]))) if sold.any() else None
    return scores, lift_err, pairs


def run_backtest(
    session: Session,
    *,
    weeks: int = 4,
    by_location: bool = False,
    window_days: int = DEFAULT_WINDOW_DAYS,
    progress: ProgressCallback | None = None,
) -> BacktestResult:
    """Fit on the history before the last ``weeks`` weeks and score the forecasts of those weeks (see the
    module docstring). ``by_location`` scores per (SKU, location) of a sales-period history."""
    if weeks < 1:
        raise DemandModelError(f"--weeks must be at least 1, got {weeks}")
    last = last_sales_date(session)
    if last is None:
        raise NoSalesHistory(
            "there is no sales history; import orders or sales, or build `python cli.py demo`"
        )
    holdout_start = last - dt.timedelta(days=7 * weeks - 1)
    train_end = holdout_start - dt.timedelta(days=1)
    started = time.perf_counter()
    training = load_sales_panel(
        session, train_end - dt.timedelta(days=window_days - 1), train_end, by_location=by_location
    )
    model = fit_panel(training, progress=progress, started=started)
    fit_seconds = time.perf_counter() - started
    holdout = load_sales_panel(session, holdout_start, last, by_location=by_location)
    if holdout.skus != training.skus:
        raise DemandModelError(
            "the product list changed between the fit and the hold-out; rerun the backtest"
        )
    unit = "week" if holdout.period_days == 7 else "day"
    kind = "sku×location" if by_location else "sku"
    # Score the series that sold in the fitting window (the rest have no history to forecast from).
    keep = np.flatnonzero(model.selling_days > 0)
    series = [holdout.skus[i] for i in keep]
    actual = holdout.units[keep]
    train = np.where(training.active, training.units, 0.0)[keep]

    # A series without a single price in the hold-out (no sale, no price history, no list price) keeps the
    # last price of its training window, not the panel's placeholder.
    unpriced = (holdout.units.sum(axis=1) == 0) & ~holdout.has_price_history & (holdout.list_price_cents <= 0)
    hold_price = np.where(unpriced[:, None], training.price[:, -1:], holdout.price)

    pred = np.zeros_like(actual)
    no_lift = np.zeros_like(actual)
    quantiles = {q: np.zeros_like(actual) for q in (0.1, 0.5, 0.9)}
    for t, date in enumerate(holdout.dates):
        signals = active_signals(session, date)
        prices = hold_price[keep, t][:, None]
        grid = model.forecast_grid(
            date,
            series,
            prices,
            featured=holdout.featured[keep, t],
            signals=signals,
            days=holdout.period_days,
        )
        cap = holdout.cap[keep, t][:, None]
        pred[:, t] = grid.expected_capped(cap)[:, 0]
        for q, values in quantiles.items():
            values[:, t] = np.minimum(grid.quantile(q), cap)[:, 0]
        plain = model.forecast_grid(
            date, series, prices, featured=False, signals=signals, days=holdout.period_days
        )
        no_lift[:, t] = plain.mean[:, 0]
    notes: list[str] = []
    truth = _truth(session, holdout, keep, notes) if holdout.period_days == 1 and not by_location else None
    forecasters: dict[str, FloatArray] = {
        "zero": np.zeros_like(actual),
        "naive": np.minimum(_naive(training, holdout)[keep], holdout.cap[keep]),
        "training mean": np.minimum(_training_mean(training, holdout.n_days)[keep], holdout.cap[keep]),
        "model": pred,
        "model median": quantiles[0.5],
    }
    if truth is not None:
        forecasters["truth"], forecasters["truth median"] = truth

    cats = sorted(set(holdout.categories))
    cat_codes = np.array([cats.index(holdout.categories[i]) for i in keep], dtype=np.int64)
    scores: list[ForecastScore] = []
    for name, values in forecasters.items():
        score = score_forecast(name, f"{kind}-{unit}", values, actual, train)
        if name == "model":
            inside = (actual >= quantiles[0.1]) & (actual <= quantiles[0.9])
            score = dataclasses.replace(
                score, coverage_80=float(inside.mean()), pinball=pinball(quantiles, actual)
            )
        scores.append(score)
        if name.endswith("median"):
            continue  # a sum of medians is not a forecast of a total
        scores.append(
            score_forecast(
                name,
                f"category-{unit}",
                _by_category(values, cat_codes, len(cats)),
                _by_category(actual, cat_codes, len(cats)),
                _by_category(train, cat_codes, len(cats)),
            )
        )
        scores.append(
            score_forecast(
                name,
                f"total-{unit}",
                values.sum(axis=0)[None, :],
                actual.sum(axis=0)[None, :],
                train.sum(axis=0)[None, :],
            )
        )
    promoted = holdout.featured[keep] > 0
    promoted_scores: list[ForecastScore] = []
    promoted_lift = None
    if promoted.any():
        for name, values in forecasters.items():
            if name.endswith("median"):
                continue
            wape, bias = _wape_bias(values[promoted], actual[promoted])
            promoted_scores.append(
                ForecastScore(
                    name,
                    f"promoted {kind}-{unit}",
                    wape,
                    bias,
                    float(np.mean(np.abs(values[promoted] - actual[promoted]))),
                )
            )
        base = float(no_lift[promoted].sum())
        if base > 0:
            promoted_lift = (float(pred[promoted].sum()) / base, float(actual[promoted].sum()) / base)
    elasticity, lift_err, pairs = _elasticity_scores(session, model)
    daily = {"actual": actual.sum(axis=0).tolist()}
    daily.update({name: values.sum(axis=0).tolist() for name, values in forecasters.items()})
    return BacktestResult(
        holdout_start=holdout_start,
        holdout_end=last,
        fit_window=(model.window_start, model.window_end),
        fit_seconds=fit_seconds,
        n_skus=len(series),
        scores=scores,
        elasticity=elasticity,
        lift_median_abs_error=lift_err,
        daily=daily,
        dates=holdout.dates,
        elasticity_pairs=pairs,
        notes=notes,
        period=unit,
        series_level=f"{kind}-{unit}",
        promoted_lift=promoted_lift,
        promoted_scores=promoted_scores,
        series=series,
        actual=actual,
        train=train,
        promoted=promoted,
        forecasts=forecasters,
    )


def save_chart(result: BacktestResult, path: Path) -> Path:
    """Daily totals (actual vs forecasts) and estimated vs true elasticities, as a PNG."""
    fig = Figure(figsize=(13, 4.8))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    styles: dict[str, dict[str, Any]] = {
        "actual": {"color": "black", "lw": 2},
        "model": {"color": "tab:blue"},
        "naive": {"color": "tab:orange", "ls": "--"},
        "truth": {"color": "tab:green", "ls": ":"},
    }
    for name, values in result.daily.items():
        if name.endswith("median") or name == "zero":
            continue  # totals of medians are not forecasts of the total
        ax.plot(result.dates, values, label=name, **styles.get(name, {}))
    ax.set_title(f"Units per {result.period}, hold-out {result.holdout_start} to {result.holdout_end}")
    ax.set_ylabel("units")
    ax.legend()
    ax.tick_params(axis="x", rotation=30)
    ax = axes[1]
    true_e, est_e = result.elasticity_pairs
    if true_e:
        ax.scatter(true_e, est_e, s=6, alpha=0.5)
        lo, hi = min(*true_e, *est_e), max(*true_e, *est_e)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
        ax.set_xlabel("true elasticity")
        ax.set_ylabel("estimated elasticity")
        ax.set_title(f"Elasticity recovery (SKUs with >= {MIN_SELLING_DAYS} selling days)")
    else:
        ax.text(0.5, 0.5, "no simulator truth in this database", ha="center", va="center")
        ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
