"""Backtest of the demand model: hold out the last weeks of history, forecast them, score the forecasts.

Scores, at SKU-day and category-day level, the WAPE (sum |forecast - actual| / sum actual) and the bias
(sum (forecast - actual) / sum actual) of

* the demand model fitted on the history before the hold-out (at each day's actual price, flash-sale
  status and allocation: expected sales ``E[min(D, cap)]``, with the market signals active that day);
* a naive baseline: the same-weekday mean of the 4 weeks before the hold-out (capped at the allocation);
* the simulator's true expected demand (an oracle: the best any model could do), when the shop is simulated.

The model and the oracle are scored twice: with their mean (``E[min(D, cap)]``, the forecast that totals add
up and that bias is about) and with their median (``P50``, the point forecast that minimises absolute
error and therefore WAPE; for slow sellers the two differ a lot: at 0.3 units a day the median is 0).

It also scores elasticity recovery against the simulator's true elasticities: median absolute error and
Spearman rank correlation, for SKUs with at least 30 selling days and for all SKUs. This module reads the
simulator's hidden truth (``sim_*`` tables); the assistant never does.
"""

from __future__ import annotations

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

from db.models import SimRun, SimSkuTruth
from tools.demand import (
    DemandModel,
    DemandModelError,
    NoSalesHistory,
    ProgressCallback,
    SalesPanel,
    fit_demand_model,
    last_sales_date,
    load_sales_panel,
)
from tools.forecast import ForecastGrid
from tools.signals import active_signals
from tools.simulator import load_world

FloatArray = NDArray[np.float64]
MIN_SELLING_DAYS = 30


@dataclass(frozen=True)
class ForecastScore:
    forecaster: str  # "model", "model P50", "naive", "truth", "truth P50"
    level: str  # "sku-day" | "category-day"
    wape: float
    bias: float


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

    def score(self, forecaster: str, level: str) -> ForecastScore | None:
        for s in self.scores:
            if s.forecaster == forecaster and s.level == level:
                return s
        return None

    def improvement_over_naive(self, level: str = "sku-day", forecaster: str = "model") -> float | None:
        """Relative WAPE reduction of ``forecaster`` against the naive baseline (0.15 = 15 % better)."""
        model, naive = self.score(forecaster, level), self.score("naive", level)
        if model is None or naive is None or naive.wape == 0:
            return None
        return 1.0 - model.wape / naive.wape


def _wape_bias(pred: FloatArray, actual: FloatArray) -> tuple[float, float]:
    total = float(actual.sum())
    if total <= 0:
        return float("nan"), float("nan")
    return float(np.abs(pred - actual).sum() / total), float((pred - actual).sum() / total)


def _by_category(values: FloatArray, cat_codes: NDArray[np.int64], n_cat: int) -> FloatArray:
    """(n SKUs, T) -> (n categories, T) sums."""
    out = np.zeros((n_cat, values.shape[1]))
    np.add.at(out, cat_codes, values)
    return out


def _naive(session: Session, holdout: SalesPanel, weeks_back: int = 4) -> FloatArray:
    """Same-weekday mean of the ``weeks_back`` weeks before the hold-out, per SKU and hold-out day."""
    before_end = holdout.start - dt.timedelta(days=1)
    before = load_sales_panel(session, before_end - dt.timedelta(days=7 * weeks_back - 1), before_end)
    if before.skus != holdout.skus:
        raise DemandModelError("the product list changed during the backtest; rerun it")
    by_weekday = np.zeros((len(holdout.skus), 7))
    for wd in range(7):
        cols = np.flatnonzero(before.weekday == wd)
        by_weekday[:, wd] = before.units[:, cols].mean(axis=1)
    return by_weekday[:, holdout.weekday]


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
    session: Session, *, weeks: int = 4, progress: ProgressCallback | None = None
) -> BacktestResult:
    """Fit on the history before the last ``weeks`` weeks and score the forecasts of those weeks."""
    if weeks < 1:
        raise DemandModelError(f"--weeks must be at least 1, got {weeks}")
    last = last_sales_date(session)
    if last is None:
        raise NoSalesHistory("there are no order lines; build a shop with `python cli.py demo`")
    holdout_start = last - dt.timedelta(days=7 * weeks - 1)
    started = time.perf_counter()
    model = fit_demand_model(session, window_end=holdout_start - dt.timedelta(days=1), progress=progress)
    fit_seconds = time.perf_counter() - started
    holdout = load_sales_panel(session, holdout_start, last)
    model_rows = model.rows(holdout.skus)
    # Score the SKUs that sold in the fitting window (the rest have no history to forecast from).
    keep = np.flatnonzero(model.selling_days[model_rows] > 0)
    skus = [holdout.skus[i] for i in keep]
    actual = holdout.units[keep]

    pred = np.zeros_like(actual)
    pred_p50 = np.zeros_like(actual)
    for t, date in enumerate(holdout.dates):
        grid = model.forecast_grid(
            date,
            skus,
            holdout.price[keep, t][:, None],
            featured=holdout.featured[keep, t],
            signals=active_signals(session, date),
        )
        cap = holdout.cap[keep, t][:, None]
        pred[:, t] = grid.expected_capped(cap)[:, 0]
        pred_p50[:, t] = np.minimum(grid.quantile(0.5), cap)[:, 0]
    naive = np.minimum(_naive(session, holdout)[keep], holdout.cap[keep])
    notes: list[str] = []
    truth = _truth(session, holdout, keep, notes)

    cats = sorted(set(holdout.categories))
    cat_codes = np.array([cats.index(holdout.categories[i]) for i in keep], dtype=np.int64)
    forecasters: dict[str, FloatArray] = {"model": pred, "model P50": pred_p50, "naive": naive}
    if truth is not None:
        forecasters["truth"], forecasters["truth P50"] = truth
    scores = []
    for name, values in forecasters.items():
        scores.append(ForecastScore(name, "sku-day", *_wape_bias(values, actual)))
        if name.endswith("P50"):
            continue  # a sum of medians is not a forecast of the category's total
        scores.append(
            ForecastScore(
                name,
                "category-day",
                *_wape_bias(
                    _by_category(values, cat_codes, len(cats)), _by_category(actual, cat_codes, len(cats))
                ),
            )
        )
    elasticity, lift_err, pairs = _elasticity_scores(session, model)
    daily = {"actual": actual.sum(axis=0).tolist()}
    daily.update({name: values.sum(axis=0).tolist() for name, values in forecasters.items()})
    return BacktestResult(
        holdout_start=holdout_start,
        holdout_end=last,
        fit_window=(model.window_start, model.window_end),
        fit_seconds=fit_seconds,
        n_skus=len(skus),
        scores=scores,
        elasticity=elasticity,
        lift_median_abs_error=lift_err,
        daily=daily,
        dates=holdout.dates,
        elasticity_pairs=pairs,
        notes=notes,
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
        if name.endswith("P50"):
            continue  # daily totals of medians are not forecasts of the total
        ax.plot(result.dates, values, label=name, **styles.get(name, {}))
    ax.set_title(f"Units per day, hold-out {result.holdout_start} to {result.holdout_end}")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
