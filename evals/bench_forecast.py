"""Time DemandModel.forecast_grid on 10,000 SKUs x 8 price levels (and the grid's distribution queries).

    python -m evals.bench_forecast [--skus 10000] [--levels 8] [--repeats 5]

The model's parameters are drawn at random (the forecast's cost does not depend on their values); 50 market
signals over categories, brands and single SKUs are applied so that the signal path is timed too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np

from db.models import SignalDirection, SignalScope
from tools.demand import DemandModel
from tools.signals import SignalEffect


def random_model(n_skus: int, seed: int = 0) -> DemandModel:
    rng = np.random.default_rng(seed)
    cats = [f"cat-{c}" for c in range(12)]
    categories = [cats[i % len(cats)] for i in range(n_skus)]
    end = dt.date(2026, 6, 30)
    return DemandModel(
        skus=[f"SKU-{i:06d}" for i in range(n_skus)],
        categories=categories,
        brands=[f"brand-{i % 70}" for i in range(n_skus)],
        ref_price_cents=rng.integers(500, 30_000, n_skus).astype(np.float64),
        level=rng.normal(-1.0, 1.0, n_skus),
        trend=rng.normal(0.0, 0.2, n_skus),
        elasticity=rng.uniform(-3.0, -0.8, n_skus),
        elasticity_own=np.full(n_skus, np.nan),
        elasticity_se=np.full(n_skus, np.nan),
        elasticity_weight=np.zeros(n_skus),
        lift=rng.uniform(1.4, 2.2, n_skus),
        dispersion=np.where(rng.random(n_skus) < 0.2, np.inf, rng.uniform(2.0, 12.0, n_skus)),
        selling_days=np.full(n_skus, 200, dtype=np.int64),
        category_params={c: {"dow": list(rng.normal(0, 0.05, 7))} for c in cats},
        window_start=end - dt.timedelta(days=364),
        window_end=end,
        fitted_at=dt.datetime(2026, 7, 1),
    )


def random_signals(model: DemandModel, date: dt.date, n: int = 50, seed: int = 1) -> list[SignalEffect]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        scope = [SignalScope.CATEGORY, SignalScope.BRAND, SignalScope.SKU][k % 3]
        value = {
            SignalScope.CATEGORY: model.categories,
            SignalScope.BRAND: model.brands,
            SignalScope.SKU: model.skus,
        }[scope][int(rng.integers(0, len(model.skus)))]
        up = bool(rng.random() < 0.5)
        out.append(
            SignalEffect(
                id=k + 1,
                scope=scope,
                scope_value=value,
                direction=SignalDirection.UP if up else SignalDirection.DOWN,
                multiplier=float(rng.uniform(1.1, 1.8) if up else rng.uniform(0.5, 0.9)),
                confidence=float(rng.uniform(0.3, 1.0)),
                valid_from=date - dt.timedelta(days=3),
                valid_to=date + dt.timedelta(days=3),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=10_000, help="Number of SKUs in the grid.")
    parser.add_argument("--levels", type=int, default=8, help="Candidate prices per SKU.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed repetitions (the best is reported).")
    args = parser.parse_args()

    model = random_model(args.skus)
    date = model.window_end + dt.timedelta(days=1)
    discounts = np.linspace(0.1, 0.6, args.levels)
    prices = np.rint(model.ref_price_cents[:, None] * (1 - discounts[None, :])).astype(np.int64)
    signals = random_signals(model, date)
    caps = np.rint(np.exp(model.level) * 10)[:, None]

    timings: dict[str, list[float]] = {"forecast_grid": [], "expected_capped": [], "P10/P50/P90": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        grid = model.forecast_grid(date, model.skus, prices, featured=True, signals=signals)
        t1 = time.perf_counter()
        grid.expected_capped(caps)
        t2 = time.perf_counter()
        grid.quantiles((0.1, 0.5, 0.9))
        t3 = time.perf_counter()
        timings["forecast_grid"].append(t1 - t0)
        timings["expected_capped"].append(t2 - t1)
        timings["P10/P50/P90"].append(t3 - t2)
    print(f"{args.skus:,} SKUs x {args.levels} price levels, {len(signals)} signals, best of {args.repeats}:")
    total = 0.0
    for name, values in timings.items():
        best = min(values)
        total += best
        print(f"  {name:<16} {best * 1000:8.1f} ms")
    print(f"  {'total':<16} {total * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
