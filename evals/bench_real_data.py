"""The demand model on real retail data beside public baselines (prints tables; not a unit test).

    pip install -e ".[bench]"                  # statsforecast and lightgbm, for the baselines only
    python -m evals.bench_real_data            # reads ../shared/data; --data DIR elsewhere

Each data set is imported into a fresh SQLite file with the project's importer and documented options only,
then the project's backtest fits on the history before the last 12 weeks and forecasts them (at each week's
actual price and promotion markers, as a planner knows them). The benchmark adds baselines computed here,
each from the same training history and with settings fixed in this file (nothing is tuned on the hold-out):
zero, naive (last week), seasonal naive (52 weeks back), training mean, statsforecast's ADIDA, IMAPA and
CrostonSBA, and a LightGBM global model with the Tweedie objective on lags of at least the horizon, the price
ratio and the promotion markers. Scores: WAPE and RMSSE (M5; weighted by training units) at each level,
overall and on the promoted weeks, and the model's ratio to every baseline (below 1: the model is better).

* ``breakfast_at_the_frat`` (dunnhumby, weekly store x product scanner panel with price, base price and
  feature/display/TPR markers): product x store x week and product x week.
* ``complete_journey_sample`` (84.51 / Kroger, a 5 % sample of household transactions with a promotion table):
  product x week of the products with at least 8 selling weeks in training (the orders import keeps no store,
  so no store level); the model's daily forecasts are summed to weeks.

Also printed: the promotion lift the model applied on held-out promoted weeks against the lift they showed,
and each product's price elasticity with its 90 % interval (dunnhumby).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from db.engine import make_engine, make_session_factory
from db.importers import ImportOptions, import_file
from tools.backtest import BacktestResult, rmsse, run_backtest
from tools.demand import fit_demand_model
from tools.sales_panel import SalesPanel, load_sales_panel

FloatArray = NDArray[np.float64]
HORIZON_WEEKS = 12
SEASON_WEEKS = 52
MIN_SELLING_WEEKS = 8  # complete journey: products scored
#: Complete journey: categories and departments that are not merchandise (fuel in gallons, coupons).
NOT_MERCHANDISE = ("FUEL", "COUPON", "COUPON/MISC ITEMS", "COUPONS/STORE & MFG", "CHARITABLE CONT")
LIGHTGBM_PARAMS: dict[str, Any] = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.2,
    "n_estimators": 400,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 0.9,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "n_jobs": 1,
    "random_state": 0,
    "verbose": -1,
}
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass
class Level:
    """One level of one data set: the hold-out, the training history and every forecaster's forecast."""

    name: str
    actual: FloatArray  # series x hold-out weeks
    train: FloatArray  # series x training weeks (the model's window), for RMSSE and the training mean
    history: FloatArray  # series x all weeks before the hold-out, for the baselines
    promoted: NDArray[np.bool_]
    price_ratio: FloatArray  # series x (history + hold-out) weeks: price over the series' median price
    markers: FloatArray  # series x (history + hold-out) weeks: promotion intensity
    groups: NDArray[np.int64]  # category code per series (LightGBM)
    forecasts: dict[str, FloatArray]


def _weeks(days: FloatArray) -> FloatArray:
    """Daily columns summed into weeks (the last columns, a whole number of weeks)."""
    n = days.shape[1] // 7
    return np.asarray(days[:, -7 * n :].reshape(days.shape[0], n, 7).sum(axis=2))


def _weekly_panel(panel: SalesPanel) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Units, price ratio and promotion intensity per week of a daily or weekly panel."""
    if panel.period_days == 7:
        units, price, featured = panel.units, panel.price, panel.featured
    else:
        units, price, featured = _weeks(panel.units), _weeks(panel.price) / 7, _weeks(panel.featured) / 7
    median = np.nanmedian(np.where(units > 0, price, np.nan), axis=1)
    median = np.where(np.isfinite(median) & (median > 0), median, np.nanmean(price, axis=1))
    return units, price / np.maximum(median[:, None], 1e-9), featured


# ---- baselines -------------------------------------------------------------------------------------------


def seasonal_naive(history: FloatArray, h: int) -> FloatArray:
    if history.shape[1] < SEASON_WEEKS:
        return np.repeat(history[:, -1:], h, axis=1)
    return np.asarray(
        history[:, -SEASON_WEEKS : -SEASON_WEEKS + h] if h < SEASON_WEEKS else history[:, -SEASON_WEEKS:]
    )


def statsforecast_baselines(history: FloatArray, h: int) -> dict[str, FloatArray]:
    """ADIDA, IMAPA and CrostonSBA (statsforecast) per series; a series they cannot fit forecasts 0."""
    from statsforecast import StatsForecast  # noqa: PLC0415  (the bench extra)
    from statsforecast.models import ADIDA, IMAPA, CrostonSBA  # noqa: PLC0415

    n, t = history.shape
    dates = pd.date_range("2000-01-02", periods=t + h, freq="W")
    frame = pd.DataFrame(
        {"unique_id": np.repeat(np.arange(n), t), "ds": np.tile(dates[:t], n), "y": history.reshape(-1)}
    )
    sf = StatsForecast(models=[ADIDA(), IMAPA(), CrostonSBA()], freq="W", n_jobs=1)
    out = sf.forecast(df=frame, h=h)
    out = out.reset_index() if "unique_id" not in out.columns else out
    result = {}
    for model in ("ADIDA", "IMAPA", "CrostonSBA"):
        values = out.pivot(index="unique_id", columns="ds", values=model).reindex(range(n)).to_numpy(float)
        result[model] = np.nan_to_num(values, nan=0.0)
    return result


def lightgbm_baseline(level: Level, h: int) -> FloatArray:
    """A LightGBM global model (Tweedie) on lags of at least the horizon, the price ratio, the promotion
    markers, the week of the year and the series' category; trained on the history, predicting the hold-out
    directly (every feature is known when the forecast is made)."""
    import lightgbm  # noqa: PLC0415  (the bench extra)

    y_all = np.concatenate([level.history, np.full((level.history.shape[0], h), np.nan)], axis=1)
    n, t_all = y_all.shape
    t_train = level.history.shape[1]

    def features(t: int) -> FloatArray:
        lag = lambda k: y_all[:, t - k] if t - k >= 0 else np.full(n, np.nan)  # noqa: E731
        window = y_all[:, max(0, t - h - 12) : max(0, t - h + 1)]
        return np.column_stack(
            [
                lag(h),
                lag(h + 1),
                lag(h + 2),
                lag(h + 3),
                lag(SEASON_WEEKS),
                np.nanmean(window, axis=1) if window.shape[1] else np.full(n, np.nan),
                level.price_ratio[:, t],
                level.markers[:, t],
                np.full(n, t % SEASON_WEEKS),
                level.groups,
                np.arange(n),
            ]
        )

    rows = [(features(t), y_all[:, t]) for t in range(h, t_train)]
    x = np.vstack([r[0] for r in rows])
    y = np.concatenate([r[1] for r in rows])
    model = lightgbm.LGBMRegressor(**LIGHTGBM_PARAMS)
    model.fit(x, y, categorical_feature=[9, 10])
    forecast = np.column_stack([model.predict(features(t)) for t in range(t_train, t_all)])
    return np.asarray(np.maximum(forecast, 0.0))


def add_baselines(level: Level) -> None:
    h = level.actual.shape[1]
    level.forecasts["seasonal naive"] = seasonal_naive(level.history, h)
    level.forecasts.update(statsforecast_baselines(level.history, h))
    level.forecasts["LightGBM (Tweedie)"] = lightgbm_baseline(level, h)


# ---- scores ------------------------------------------------------------------------------------------------


def _masked_rmsse(pred: FloatArray, actual: FloatArray, train: FloatArray, mask: NDArray[np.bool_]) -> float:
    rows = mask.any(axis=1)
    if not rows.any():
        return float("nan")
    err = np.where(mask, pred - actual, 0.0)[rows]
    counts = mask[rows].sum(axis=1)
    rmse = np.sqrt((err**2).sum(axis=1) / counts)
    scale = np.sqrt(np.mean(np.diff(train[rows], axis=1) ** 2, axis=1))
    ok = scale > 0
    weights = train[rows].sum(axis=1)
    return float(np.average(rmse[ok] / scale[ok], weights=weights[ok])) if ok.any() else float("nan")


def scores(level: Level) -> list[dict[str, Any]]:
    out = []
    a, m = level.actual, level.promoted
    for name, f in level.forecasts.items():
        wape = float(np.abs(f - a).sum() / a.sum())
        row = {
            "forecaster": name,
            "WAPE": wape,
            "RMSSE": rmsse(f, a, level.train, level.train.sum(axis=1)),
            "bias": float((f - a).sum() / a.sum()),
            "promoted WAPE": float(np.abs(f - a)[m].sum() / a[m].sum()) if m.any() else float("nan"),
            "promoted RMSSE": _masked_rmsse(f, a, level.train, m),
        }
        out.append(row)
    return out


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    model = next(r for r in rows if r["forecaster"] == "model")
    table = Table(title=title, header_style="bold")
    for col in (
        "forecaster",
        "WAPE",
        "RMSSE",
        "bias",
        "promo WAPE",
        "promo RMSSE",
        "model/it WAPE",
        "model/it RMSSE",
    ):
        table.add_column(col, justify="left" if col == "forecaster" else "right", no_wrap=True)
    for r in rows:

        def ratio(k: str, r: dict[str, Any] = r) -> str:
            return "" if r is model or not r[k] else f"{model[k] / r[k]:.3f}"

        table.add_row(
            r["forecaster"],
            f"{r['WAPE']:.1%}",
            f"{r['RMSSE']:.3f}",
            f"{r['bias']:+.1%}",
            f"{r['promoted WAPE']:.1%}",
            f"{r['promoted RMSSE']:.3f}",
            ratio("WAPE") + ("" if r is model else f" / {ratio('promoted WAPE')}"),
            ratio("RMSSE") + ("" if r is model else f" / {ratio('promoted RMSSE')}"),
        )
    table.caption = (
        "model/it: the model's score over the forecaster's, overall / on promoted weeks (< 1: the model wins)"
    )
    return table


# ---- the data sets ----------------------------------------------------------------------


def _level(
    name: str, result: BacktestResult, full: SalesPanel, *, daily: bool, keep: NDArray[np.bool_] | None = None
) -> Level:
    index = {s: i for i, s in enumerate(full.skus)}
    rows = np.array([index[s] for s in result.series])
    units, ratio, markers = _weekly_panel(full)
    history = units[rows]
    actual = _weeks(result.actual) if daily else result.actual
    h = actual.shape[1]
    forecasts = {
        k: (_weeks(v) if daily else v) for k, v in result.forecasts.items() if not k.endswith("median")
    }
    forecasts = {"model": forecasts.pop("model"), **forecasts}
    promoted = (_weeks(result.promoted.astype(float)) > 0) if daily else result.promoted
    train = _weeks(result.train) if daily else result.train
    cats = sorted(set(full.categories))
    groups = np.array([cats.index(full.categories[i]) for i in rows])
    holdout_ratio = ratio[rows][:, -1:].repeat(h, axis=1)
    level = Level(
        name,
        actual,
        train,
        history,
        promoted,
        np.concatenate([ratio[rows], holdout_ratio], axis=1),
        np.concatenate([markers[rows], np.zeros_like(actual)], axis=1),
        groups,
        forecasts,
    )
    if keep is not None:
        for attr in ("actual", "train", "history", "promoted", "price_ratio", "markers", "groups"):
            setattr(level, attr, getattr(level, attr)[keep])
        level.forecasts = {k: v[keep] for k, v in level.forecasts.items()}
    return level


def frat(data: Path, workdir: Path, console: Console) -> dict[str, Any]:
    folder = data / "breakfast_at_the_frat"
    engine = make_engine(f"sqlite:///{workdir / 'frat.db'}")
    t0 = time.perf_counter()
    import_file(engine, "catalog", folder / "products.csv", ImportOptions(mapping={"title": "description"}))
    import_file(engine, "sales", folder / "transactions_308series.csv")
    console.print(f"dunnhumby: imported in {time.perf_counter() - t0:.1f} s")
    factory = make_session_factory(engine)
    out: dict[str, Any] = {}
    with factory() as session:
        for by_location, name in ((True, "product x store x week"), (False, "product x week")):
            result = run_backtest(session, weeks=HORIZON_WEEKS, by_location=by_location, window_days=365)
            train_end = result.holdout_start - dt.timedelta(days=1)
            full = load_sales_panel(session, dt.date(2000, 1, 1), train_end, by_location=by_location)
            future = load_sales_panel(
                session, result.holdout_start, result.holdout_end, by_location=by_location
            )
            level = _level(name, result, full, daily=False)
            index = {s: i for i, s in enumerate(future.skus)}
            rows = np.array([index[s] for s in result.series])
            _, _, fut_markers = _weekly_panel(future)
            level.markers[:, -HORIZON_WEEKS:] = fut_markers[rows]
            median = np.nanmedian(np.where(full.units > 0, full.price, np.nan), axis=1)[
                [list(full.skus).index(s) for s in result.series]
            ]
            level.price_ratio[:, -HORIZON_WEEKS:] = future.price[rows] / np.maximum(median[:, None], 1e-9)
            add_baselines(level)
            rows_out = scores(level)
            console.print(
                _table(
                    f"dunnhumby Breakfast at the Frat: {name} ({len(result.series)} series, "
                    f"hold-out {result.holdout_start}..{result.holdout_end})",
                    rows_out,
                )
            )
            if result.promoted_lift is not None:
                applied, seen = result.promoted_lift
                console.print(
                    f"  held-out promoted weeks: lift applied {applied:.2f}x, lift seen {seen:.2f}x"
                )
            out[name] = {
                "scores": rows_out,
                "promoted_lift": result.promoted_lift,
                "series": len(result.series),
            }
        model = fit_demand_model(session, window_days=365)
    table = Table(
        title="dunnhumby: price elasticity per product (fit on the last 52 weeks), 90 % interval",
        header_style="bold",
    )
    for col in ("UPC", "category", "elasticity", "90 % interval", "own estimate", "weight"):
        table.add_column(col, justify="left" if col in ("UPC", "category") else "right")
    elasticities = []
    for i, sku in enumerate(model.skus):
        if model.selling_days[i] == 0:
            continue
        se, w = model.elasticity_se[i], model.elasticity_weight[i]
        tau2 = model.category_params[model.pool_groups[i]]["elasticity_tau2"]
        sd = float(np.sqrt(w) * se) if np.isfinite(se) else float(np.sqrt(tau2))
        e = float(model.elasticity[i])
        own = model.elasticity_own[i]
        table.add_row(
            sku,
            model.categories[i],
            f"{e:.2f}",
            f"{e - 1.645 * sd:.2f} to {e + 1.645 * sd:.2f}",
            "–" if not np.isfinite(own) else f"{own:.2f}",
            f"{w:.2f}",
        )
        elasticities.append({"upc": sku, "elasticity": e, "low": e - 1.645 * sd, "high": e + 1.645 * sd})
    console.print(table)
    out["elasticities"] = elasticities
    engine.dispose()
    return out


def complete_journey(data: Path, workdir: Path, console: Console) -> dict[str, Any]:
    folder = data / "complete_journey_sample"
    engine = make_engine(f"sqlite:///{workdir / 'cj.db'}")
    t0 = time.perf_counter()
    catalog = ImportOptions(mapping={"title": "product_type"}, non_product_categories=NOT_MERCHANDISE)
    import_file(engine, "catalog", folder / "products.csv", catalog)
    import_file(
        engine,
        "orders",
        folder / "transactions_sample.csv",
        ImportOptions(
            mapping={"order_id": "basket_id", "customer_id": "household_id"},
            skip_bad_rows=True,
            rejects_path=workdir / "cj_rejects.csv",
        ),
    )
    import_file(
        engine,
        "promotions",
        folder / "promotions_sample.csv",
        ImportOptions(week_origin=dt.date(2016, 12, 26)),
    )
    console.print(f"complete journey: imported in {time.perf_counter() - t0:.1f} s")
    factory = make_session_factory(engine)
    with factory() as session:
        result = run_backtest(session, weeks=HORIZON_WEEKS, window_days=7 * 40)
        train_end = result.holdout_start - dt.timedelta(days=1)
        full = load_sales_panel(session, train_end - dt.timedelta(days=7 * 40 - 1), train_end)
    level = _level("product x week", result, full, daily=True)
    selling = (level.history > 0).sum(axis=1)
    keep = selling >= MIN_SELLING_WEEKS
    level = _level("product x week", result, full, daily=True, keep=keep)
    add_baselines(level)
    rows_out = scores(level)
    zero_share = float((level.actual == 0).mean())
    console.print(
        _table(
            f"Complete Journey (5 % sample): product x week, {int(keep.sum())} products with >= "
            f"{MIN_SELLING_WEEKS} selling weeks; {zero_share:.0%} of hold-out product-weeks without sales",
            rows_out,
        )
    )
    engine.dispose()
    return {
        "product x week": {
            "scores": rows_out,
            "products": int(keep.sum()),
            "zero_share": zero_share,
            "promoted_lift": result.promoted_lift,
        }
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Folder of the real data sets.")
    parser.add_argument("--json-out", type=Path, help="Write every score as JSON.")
    parser.add_argument("--only", choices=("frat", "journey"), help="Run one data set.")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no real data at {args.data}: pass --data DIR (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    console = Console(width=170)
    runs: dict[str, Callable[[Path, Path, Console], dict[str, Any]]] = {
        "frat": frat,
        "journey": complete_journey,
    }
    out = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for key, run in runs.items():
            if args.only and key != args.only:
                continue
            out[key] = run(args.data, Path(tmp), console)
    console.print(f"benchmark took {time.perf_counter() - started:.0f} s")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
