"""Plan quality on the market simulator (prints a table; not a unit test).

    FLASHSALE_DB_PATH=/tmp/opt/quality.db python evals/bench_plan_quality.py --days 10

A simulated shop is built into a temporary SQLite file, the demand model is fitted on its history, and for
each of ``--days`` sale days after the history four plans are played forward with ``World.play`` (the
same seed for every plan of a day):

* **ours**: the optimiser on the fitted demand model's forecasts;
* **ours, forecast guard**: the same with the plan service's forecast guard (allocations capped at 3x the
  SKU's best comparable day, :mod:`tools.forecast_guard`), as ``cli.py plan`` plans;
* **oracle**: the same optimiser on the simulator's TRUE expected demand (``World.expected_units``);
* **best sellers -30 %**: the SKUs that sold most in the last 28 days, all at a flat 30 % off;
* **high margin, deepest**: the SKUs with the highest list-price margin, each at the deepest ladder
  discount that keeps the item margin floor.

All plans get the same number of slots and the same allocation rule (the newsvendor quantile of the
fitted model's demand at the chosen price, capped by stock above safety stock); the objective is expected
gross profit and the score is REALISED gross profit. Reported: each plan's realised profit over the
oracle's, averaged over the days, and ours over the better baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from db.engine import make_engine, make_session_factory
from db.models import OrderLine
from tools.demand import fit_demand_model
from tools.forecast import ForecastGrid, allocation_and_sales
from tools.forecast_guard import GUARD_FACTOR, guard_caps
from tools.optimizer import (
    Candidates,
    ObjectiveWeights,
    PlanConstraints,
    SolverOptions,
    optimize_plan,
)
from tools.plans import build_candidates
from tools.simulator import SimConfig, World, build_world
from tools.simulator.demo import build_demo

PLANS = ("ours", "ours, forecast guard", "oracle", "best sellers -30 %", "high margin, deepest")


def _with_grid(cand: Candidates, grid: ForecastGrid) -> Candidates:
    return Candidates(
        skus=cand.skus,
        category=cand.category,
        brand=cand.brand,
        cost_cents=cand.cost_cents,
        list_price_cents=cand.list_price_cents,
        on_hand=cand.on_hand,
        grid=grid,
        ladder=cand.ladder,
        safety_stock=cand.safety_stock,
        competitor_price_cents=cand.competitor_price_cents,
        price_floor_cents=cand.price_floor_cents,
        excess_units=cand.excess_units,
        clearance_value_cents=cand.clearance_value_cents,
    )


def _baseline_items(
    cand: Candidates, rows: np.ndarray, levels: np.ndarray, service_level: float
) -> list[tuple[str, int, int]]:
    """Items for SKU rows at given ladder levels, allocated like the optimiser does (fitted demand)."""
    assert cand.safety_stock is not None
    available = np.maximum(cand.on_hand - cand.safety_stock, 0)
    alloc, _, _ = allocation_and_sales(cand.grid, service_level, available)
    return [
        (cand.skus[i], int(cand.grid.prices_cents[i, k]), int(alloc[i, k]))
        for i, k in zip(rows.tolist(), levels.tolist(), strict=True)
        if alloc[i, k] > 0
    ]


def _realised(world: World, date: dt.date, items: list[tuple[str, int, int]], seed: int) -> float:
    if not items:
        return 0.0
    return float(world.play(date, items, seed=seed).total_profit_cents)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=10, help="Sale days to simulate (at least 10).")
    parser.add_argument("--skus", type=int, default=500, help="SKUs of the simulated shop.")
    parser.add_argument("--slots", type=int, default=20, help="Slots of every plan.")
    parser.add_argument("--seed", type=int, default=42, help="Simulator seed.")
    parser.add_argument("--db", default=None, help="SQLite file for the shop (default: a temporary file).")
    args = parser.parse_args(argv)
    console = Console(width=160)
    config = SimConfig(
        seed=args.seed,
        n_skus=args.skus,
        n_customers=max(2000, args.skus * 10),
        n_days=240,
        n_flash_days=15,
        end_date=dt.date(2026, 6, 30),
    )
    folder = Path(tempfile.mkdtemp(prefix="plan_quality_"))
    db_path = Path(args.db) if args.db else folder / "shop.db"
    db_path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db_path}")
    factory = make_session_factory(engine)
    console.print(f"Building a {args.skus}-SKU shop in {db_path} ...")
    build_demo(engine, config)
    world = build_world(config)
    constraints = PlanConstraints(
        slots=args.slots, min_item_margin=0.1, default_category_max=max(3, args.slots // 4)
    )
    weights = ObjectiveWeights(profit=1.0, clearance=0.0)
    options = SolverOptions(deterministic=True, time_limit_s=30.0)
    ratios: dict[str, list[float]] = {p: [] for p in PLANS}
    totals: dict[str, float] = dict.fromkeys(PLANS, 0.0)
    gaps: list[float] = []
    with factory() as session, Progress(console=console) as progress:
        task = progress.add_task("fitting the demand model", total=args.days + 1)
        model = fit_demand_model(session)
        progress.advance(task)
        since = dt.datetime.combine(config.end_date - dt.timedelta(days=27), dt.time.min)
        query = select(OrderLine.sku, func.sum(OrderLine.qty)).where(OrderLine.ts >= since)
        sold = {str(sku): int(qty or 0) for sku, qty in session.execute(query.group_by(OrderLine.sku)).all()}
        for day in range(args.days):
            date = config.end_date + dt.timedelta(days=1 + day)
            progress.update(task, description=f"sale day {date}")
            cand = build_candidates(session, date, model, use_signals=False)
            ours = optimize_plan(cand, constraints, weights, options)
            caps = guard_caps(model, cand.skus, GUARD_FACTOR)
            guarded = optimize_plan(dataclasses.replace(cand, max_units=caps), constraints, weights, options)
            gaps.append(ours.gap)
            truth = ForecastGrid(
                skus=cand.skus,
                prices_cents=cand.grid.prices_cents,
                mean=world.expected_units(date, cand.skus, cand.grid.prices_cents, True),
                dispersion=np.full(cand.n, world.nb_size),
                signal_ids=[[] for _ in cand.skus],
            )
            oracle = optimize_plan(_with_grid(cand, truth), constraints, weights, options)
            # Baselines, restricted to SKUs with stock above safety stock.
            assert cand.safety_stock is not None
            stocked = np.flatnonzero(cand.on_hand - cand.safety_stock >= 1)
            units = np.array([float(sold.get(cand.skus[i], 0)) for i in stocked])
            best = stocked[np.argsort(-units, kind="stable")[: args.slots]]
            k30 = int(np.argmin(np.abs(np.asarray(cand.ladder) - 0.3)))
            best_items = _baseline_items(cand, best, np.full(best.size, k30), constraints.service_level)
            list_margin = 1.0 - cand.cost_cents[stocked] / cand.list_price_cents[stocked]
            prices = cand.grid.prices_cents[stocked].astype(float)
            ok = (prices - cand.cost_cents[stocked, None]) >= constraints.min_item_margin * prices
            has_level = ok.any(axis=1)
            pool = stocked[has_level]
            top = np.argsort(-list_margin[has_level], kind="stable")[: args.slots]
            deepest = np.array([int(np.flatnonzero(row).max()) for row in ok[has_level][top]], dtype=np.int64)
            margin_items = _baseline_items(cand, pool[top], deepest, constraints.service_level)
            plans = {
                "ours": [(it.sku, it.sale_price_cents, it.allocated_units) for it in ours.items],
                "ours, forecast guard": [
                    (it.sku, it.sale_price_cents, it.allocated_units) for it in guarded.items
                ],
                "oracle": [(it.sku, it.sale_price_cents, it.allocated_units) for it in oracle.items],
                "best sellers -30 %": best_items,
                "high margin, deepest": margin_items,
            }
            realised = {name: _realised(world, date, items, seed=day) for name, items in plans.items()}
            for name in PLANS:
                totals[name] += realised[name]
                ratios[name].append(
                    realised[name] / realised["oracle"] if realised["oracle"] else float("nan")
                )
            progress.advance(task)
    table = Table(
        title=f"Plan quality over {args.days} simulated sale days ({args.skus} SKUs, {args.slots} slots)"
    )
    for col in ("plan", "realised profit (sum)", "mean ratio to oracle", "ratio of sums", "min day ratio"):
        table.add_column(col, justify="right")
    for name in PLANS:
        r = np.array(ratios[name])
        table.add_row(
            name,
            f"{totals[name] / 100:,.2f}",
            f"{np.nanmean(r):.3f}",
            f"{totals[name] / totals['oracle']:.3f}",
            f"{np.nanmin(r):.3f}",
        )
    console.print(table)
    better = max(totals["best sellers -30 %"], totals["high margin, deepest"])
    console.print(
        f"ours / oracle (mean of daily ratios): {np.nanmean(ratios['ours']):.3f}, with the forecast guard "
        f"{np.nanmean(ratios['ours, forecast guard']):.3f}; ours / better baseline "
        f"(sums): {totals['ours'] / better:.3f}; our plans' mean gap to the LP bound {np.mean(gaps):.4%}",
        highlight=False,
    )
    engine.dispose()


if __name__ == "__main__":
    main()
