"""A fitted demand model in the terminal: per pooling group its elasticity, sale lift (with the interval and
the evidence behind it) and dispersion, and in words what the fit was made of."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rich.table import Table

from tools.backtest import BacktestResult, ForecastScore
from tools.demand import ELASTICITY_RANGE, DemandModel
from tools.table_fit import FitColumn, fit_table


def demand_model_table(model: DemandModel, *, width: int | None = None) -> Table:
    """One row per pooling group (the category, or the level the fit pooled by), no wider than ``width``."""
    m = model.metrics
    unit = "week" if model.period_days == 7 else "day"
    title = (
        f"Demand model {model.id} ({model.window_start} to {model.window_end}, per {unit}, "
        f"pooled by {m.get('pooled_by', 'category')})"
    )
    caption = (
        "elast.: price elasticity; lift: the demand multiplier when promoted, pooled toward the shop's "
        "lift where promoted periods are few, with its 90 % interval; NB r: negative-binomial size"
    )
    rows = []
    for name, p in sorted(model.category_params.items()):
        disp = p.get("dispersion")
        low, high = p.get("lift_low"), p.get("lift_high")
        lift = f"{p.get('lift', float('nan')):.2f}" + (" (at bound)" if p.get("lift_at_bound") else "")
        rows.append(
            [
                name,
                f"{model.pool_groups.count(name):,}",
                f"{p['elasticity']:.2f}",
                f"{p['elasticity_tau2']:.3f}",
                lift,
                "–" if low is None or high is None else f"{low:.2f}–{high:.2f}",
                f"{int(p.get('lift_periods') or 0):,}",
                "Poisson" if disp is None else f"{disp:.1f}",
            ]
        )
    spec = [("group", None), ("SKUs", 3), ("elast.", None), ("τ²", 1), ("lift", None), ("90 %", 4)]
    spec += [(f"promo {unit}s", 5), ("NB r", 2)]
    columns = [
        FitColumn(header, [r[j] for r in rows], left=j == 0, drop_order=drop)
        for j, (header, drop) in enumerate(spec)
    ]
    return fit_table(title, columns, width=width, caption=caption)


def demand_model_lines(model: DemandModel, model_id: int) -> list[str]:
    """What the fit was made of, in words (units, sources, inferred promotions, estimates at a bound)."""
    m = model.metrics
    unit = "week" if model.period_days == 7 else "day"
    source = m.get("promotion_source", "none")
    prices = m["price_source"].replace("_", " ")
    lines = [
        f"{m['n_skus']:,} SKUs, {m['n_sku_days']:,} SKU-{unit}s, {m['n_sale_days']:,} promoted SKU-{unit}s "
        f"(promotions from: {source}; {m['n_censored_days']:,} sold out), {m['n_own_elasticities']:,} own "
        f"elasticity fits; prices from {prices}; fitted in {m['fit_seconds']:.1f} s. "
        f"Stored as model {model_id}."
    ]
    if m.get("inferred_promotion_days"):
        lines.append(
            f"Inferred {m['inferred_promotion_days']:,} promotion {unit}s from price cuts (the shop has no "
            f"promotion labels): {m['inference_rule']}. Import the promotion calendar to replace the "
            "guess."
        )
    if m.get("lift_at_bound"):
        lines.append(
            f"The raw sale lift of {_some(m['lift_at_bound'])} fell outside the allowed range: the data do "
            "not identify it (too few or inconsistent promoted periods); the reported lift is shrunk."
        )
    if m.get("elasticity_at_bound"):
        shown = _some(m["elasticity_at_bound"])
        lo, hi = ELASTICITY_RANGE
        lines.append(
            f"The price elasticity of {shown} fell outside {lo:g} to {hi:g}: the data do not identify it "
            "(prices that barely vary, or vary with something else); those groups use the median of the "
            "other groups."
        )
    if model.period_days == 7:
        lines.append("Weekly data: a day's forecast is a seventh of its week (no weekday profile).")
    return lines


def _some(names: list[str], first: int = 8) -> str:
    """The first names of a long list and how many more there are."""
    more = len(names) - first
    return ", ".join(names[:first]) + (f" and {more} more" if more > 0 else "")


def _pct(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.1%}"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def backtest_table(result: BacktestResult, *, width: int | None = None) -> Table:
    """Every forecaster at every level: WAPE, bias, MAE, RMSSE; the model's interval coverage and pinball;
    no wider than ``width``."""
    title = (
        f"Backtest: fit {result.fit_window[0]}..{result.fit_window[1]} ({result.fit_seconds:.1f} s), "
        f"hold-out {result.holdout_start}..{result.holdout_end}, {result.n_skus:,} series"
    )
    caption = (
        "zero scores 100 % WAPE by definition: above it a forecast does worse than nothing. "
        "RMSSE: the M5 scaled error (1 = the in-sample one-step naive). cover: actuals within the model's "
        "10-90 % interval (80 % expected). The median is a point forecast of typical periods, not of totals."
    )
    scores = [*result.scores, *result.promoted_scores]
    spec: list[tuple[str, int | None, Callable[[ForecastScore], str]]] = [
        ("forecaster", None, lambda s: s.forecaster),
        ("level", None, lambda s: s.level),
        ("WAPE", None, lambda s: _pct(s.wape)),
        ("bias", None, lambda s: f"{s.bias:+.1%}" if np.isfinite(s.bias) else "–"),
        ("MAE", 2, lambda s: _num(s.mae, 2)),
        ("RMSSE", None, lambda s: _num(s.rmsse)),
        ("cover", 3, lambda s: _pct(s.coverage_80)),
        ("pinball", 1, lambda s: _num(s.pinball)),
    ]
    columns = [
        FitColumn(header, [cell(s) for s in scores], left=j < 2, drop_order=drop)
        for j, (header, drop, cell) in enumerate(spec)
    ]
    return fit_table(title, columns, width=width, caption=caption)


def backtest_lines(result: BacktestResult) -> list[str]:
    """The model mean against each baseline, as ratios (below 1: the model is better), and the lift check."""
    lines = []
    sku = result.series_level
    for baseline in ("zero", "naive", "training mean"):
        w, r = result.ratio(baseline, sku, "wape"), result.ratio(baseline, sku, "rmsse")
        if w is None:
            continue
        verdict = "better" if w < 1 else "worse"
        rmsse = "" if r is None else f", RMSSE ratio {r:.3f}"
        lines.append(f"model mean vs {baseline} at {sku}: WAPE ratio {w:.3f} ({verdict}){rmsse}")
    if result.promoted_lift is not None:
        applied, seen = result.promoted_lift
        lines.append(
            f"held-out promoted {result.period}s: the model applied a lift of {applied:.2f}x, the periods "
            f"showed {seen:.2f}x (actual units over the model's forecast without lift)"
        )
    return lines
