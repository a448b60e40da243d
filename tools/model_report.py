"""A fitted demand model in the terminal: per pooling group its elasticity, sale lift (with the interval and
the evidence behind it) and dispersion, and in words what the fit was made of."""

from __future__ import annotations

import numpy as np
from rich import box
from rich.table import Table

from tools.backtest import BacktestResult
from tools.demand import ELASTICITY_RANGE, DemandModel


def demand_model_table(model: DemandModel) -> Table:
    """One row per pooling group (the category, or the level the fit pooled by)."""
    m = model.metrics
    unit = "week" if model.period_days == 7 else "day"
    table = Table(
        title=f"Demand model {model.id} ({model.window_start} to {model.window_end}, per {unit}, "
        f"pooled by {m.get('pooled_by', 'category')})",
        caption="elast.: price elasticity; lift: the demand multiplier when promoted, shrunk toward 1 (no "
        "lift) where promoted periods are few, with its 90 % interval; NB r: negative-binomial size",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
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
    headers = ["group", "SKUs", "elast.", "τ²", "lift", "90 %", f"promo {unit}s", "NB r"]
    for j, header in enumerate(headers):
        if j == 0:
            table.add_column(header, overflow="fold")
            continue
        width = max([len(header)] + [len(r[j]) for r in rows])
        table.add_column(header, justify="right", no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


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


def backtest_table(result: BacktestResult) -> Table:
    """Every forecaster at every level: WAPE, bias, MAE, RMSSE; the model's interval coverage and pinball."""
    table = Table(
        title=f"Backtest: fit {result.fit_window[0]}..{result.fit_window[1]} ({result.fit_seconds:.1f} s), "
        f"hold-out {result.holdout_start}..{result.holdout_end}, {result.n_skus:,} series",
        caption="zero scores 100 % WAPE by definition: above it a forecast does worse than nothing. "
        "RMSSE: the M5 scaled error (1 = the in-sample one-step naive). cover: actuals within the model's "
        "10-90 % interval (80 % expected). The median is a point forecast of typical periods, not of totals.",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col in ("forecaster", "level", "WAPE", "bias", "MAE", "RMSSE", "cover", "pinball"):
        table.add_column(col, justify="left" if col in ("forecaster", "level") else "right", no_wrap=True)
    for s in [*result.scores, *result.promoted_scores]:
        table.add_row(
            s.forecaster,
            s.level,
            _pct(s.wape),
            f"{s.bias:+.1%}" if np.isfinite(s.bias) else "–",
            _num(s.mae, 2),
            _num(s.rmsse),
            _pct(s.coverage_80),
            _num(s.pinball),
        )
    return table


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
