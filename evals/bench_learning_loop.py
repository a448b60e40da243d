"""The learning loop on the market simulator: does the shop get better at its sales as it runs them?

    python -m evals.bench_learning_loop                      # 60 days, a 300-SKU shop, seed 42
    python -m evals.bench_learning_loop --days 14 --scale 0.1

A simulated shop (``--scale`` of the default demo shop, its history ending on ``--end-date``) is built into
a SQLite file under /tmp. Then, for each of ``--days`` sale days after the history, the shop runs the whole
lifecycle, in the order the product runs it:

1. **refit**: :func:`tools.demand.refresh_demand_model` (a new fit whenever orders were added);
2. **draft**: the plan service (:func:`tools.planning.propose_plan`, the default :class:`PlanRequest`: 20
   slots, 10 % item margin, forecast guard on) and :func:`tools.planning.save_proposal`;
3. **approve** (:func:`tools.lifecycle.approve_plan`) and **publish** (:func:`tools.publish.publish_plan`,
   price files only, no endpoint): the plan is live;
4. **live**: :func:`tools.simulator.live.play_live_sale` writes the sale day's orders hour by hour at the
   live prices and allocations;
5. the day's **ordinary** orders of every SKU not in the sale, drawn by the same generator as the history
   (``--sale-orders-only`` leaves them out, to show what that does to the fit);
6. **close**, the morning after (:func:`tools.sale_close.close_sale`): the plan is closed, so the next fit
   reads its items as featured days (sold-out items as censored demand).

Scored each day, against the simulator's truth (``sim_sku_truth``), never shown to the shop:

* the mean absolute error of the demand model's elasticity and flash lift (the model the day's plan was
  made with), over all SKUs and over the SKUs the loop features at some point (a fixed set, known at the
  end, so that the weeks compare like with like);
* the realised gross profit of the day's plan and of the **oracle**'s: the same optimiser, constraints and
  candidates (stock, safety stock, ladder) on the TRUE expected demand (``World.expected_units``), without
  the forecast guard. Both plans are played on the same random draws: one
  :class:`~tools.simulator.intraday.SaleDay` over the whole catalogue per date (each SKU's draws fixed
  whichever plan features it), hour by hour with :func:`~tools.simulator.intraday.play_hours`, the same
  realisation the live sale uses. The profit the live orders made (a different draw: the live sale's
  draws depend on the plan's SKU list) is printed beside it, and so is the share of the same request with
  the forecast guard's cap off (the oracle has no guard), to show what the guard costs.

The goal: from the first week to the last, both errors fall and the profit share (plan / oracle) rises. The
script prints the weekly table, the verdict (PASS or MISS per criterion), the machine, the wall time and the
command. It measures, it does not assert.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.models import SimSkuTruth
from evals.timing import machine
from tools.backtest import _elasticity_scores
from tools.demand import DemandModel, refresh_demand_model
from tools.forecast import ForecastGrid
from tools.lifecycle import approve_plan
from tools.optimizer import Candidates, optimize_plan
from tools.planning import PlanRequest, plan_inputs, propose_plan, save_proposal
from tools.publish import publish_plan
from tools.sale_close import close_sale
from tools.simulator import SimConfig, World, load_world
from tools.simulator.demo import _write_chunk, _Writer, build_demo
from tools.simulator.history import SalesChunk, _sales_chunk
from tools.simulator.intraday import HOURS, SaleDay, play_hours
from tools.simulator.live import play_live_sale
from tools.simulator.world import COUNTRIES

FloatArray = NDArray[np.float64]
ACTOR = "bench-loop"
APPROVER = "bench-approver"


# ---- the truth and the errors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    elasticity: dict[str, float]
    lift: dict[str, float]


def read_truth(session: Session) -> Truth:
    rows = session.execute(select(SimSkuTruth.sku, SimSkuTruth.elasticity, SimSkuTruth.flash_lift)).all()
    return Truth({r[0]: float(r[1]) for r in rows}, {r[0]: float(r[2]) for r in rows})


def abs_errors(model: DemandModel, truth: Truth) -> tuple[dict[str, float], dict[str, float]]:
    """|estimate - truth| of the elasticity and of the flash lift, per SKU the model and the truth know."""
    e_err, l_err = {}, {}
    for i, sku in enumerate(model.skus):
        if sku in truth.elasticity:
            e_err[sku] = abs(float(model.elasticity[i]) - truth.elasticity[sku])
            l_err[sku] = abs(float(model.lift[i]) - truth.lift[sku])
    return e_err, l_err


def mean_over(errors: dict[str, float], skus: set[str] | None) -> float:
    values = [v for s, v in errors.items() if skus is None or s in skus]
    return float(np.mean(values)) if values else float("nan")


# ---- the day's ordinary orders -----------------------------------------------------------------------------


def ordinary_chunk(world: World, day: int, featured: set[str]) -> SalesChunk:
    """The ordinary (non-sale) orders of ``day`` (a day index past the history) for the SKUs not in the sale.

    ``tools.simulator.history`` has no public way to draw a day after the history (``iter_sales`` walks
    the history's own days), so this calls its day generator, ``_sales_chunk``, for one day with no flash
    sale: the same demand model, prices (the last shelf prices), shocks, customers and random stream as the
    history. The lines of the sale's SKUs are dropped (their day is the live sale's), orders left without a
    line with them. Reviews of days past the history are never drawn by that generator.
    """
    chunk = _sales_chunk(world, day, day, {})
    keep_line = ~np.isin(chunk.line_sku, world.sku_index(sorted(featured)))
    kept_orders = np.unique(chunk.line_order[keep_line])
    new_index = np.full(len(chunk.order_ids), -1, dtype=np.int64)
    new_index[kept_orders] = np.arange(kept_orders.size)
    return dataclasses.replace(
        chunk,
        order_ids=[chunk.order_ids[i] for i in kept_orders.tolist()],
        order_customer=chunk.order_customer[kept_orders],
        order_ts=chunk.order_ts[kept_orders],
        order_plan_id=np.zeros(kept_orders.size, dtype=np.int64),
        line_order=new_index[chunk.line_order[keep_line]],
        line_sku=chunk.line_sku[keep_line],
        line_qty=chunk.line_qty[keep_line],
        line_price_cents=chunk.line_price_cents[keep_line],
    )


def write_ordinary_orders(session: Session, world: World, day: int, featured: set[str]) -> int:
    """Write the day's ordinary orders with the demo's writer, in the session's transaction; order lines."""
    chunk = ordinary_chunk(world, day, featured)
    writer = _Writer(session.connection(), None)
    sku_obj = np.array(world.sku_ids, dtype=object)
    cust_obj = np.array(world.customer_ids, dtype=object)
    country_obj = np.array(COUNTRIES, dtype=object)[world.customer_country]
    _write_chunk(writer, chunk, sku_obj, cust_obj, country_obj)
    return int(chunk.line_sku.size)


# ---- playing a plan on common draws ------------------------------------------------------------------------


def realised_profit(world: World, day: SaleDay, items: list[tuple[str, int, int]]) -> int:
    """Gross profit of ``items`` (sku, sale price, units) sold hour by hour on ``day``'s draws (catalogue-wide
    SaleDay: the same SKU meets the same customers whichever plan features it)."""
    price = world.list_price_cents.copy()
    stock = np.zeros(world.n_skus, dtype=np.int64)
    for sku, sale_price, units in items:
        i = int(world.sku_index([sku])[0])
        price[i], stock[i] = sale_price, units
    sold, _ = play_hours(day, price, stock, 0, HOURS)
    return int((sold.sum(axis=1) * (price - world.cost_cents)).sum())


def oracle_items(
    world: World, cand: Candidates, request: PlanRequest, date: dt.date
) -> list[tuple[str, int, int]]:
    """The optimiser's plan on the TRUE expected demand, with the model plan's candidates and constraints."""
    truth = ForecastGrid(
        skus=cand.skus,
        prices_cents=cand.grid.prices_cents,
        mean=world.expected_units(date, cand.skus, cand.grid.prices_cents, True),
        dispersion=np.full(cand.n, world.nb_size),
        signal_ids=[[] for _ in cand.skus],
    )
    result = optimize_plan(
        dataclasses.replace(cand, grid=truth, max_units=None),
        request.constraints(),
        request.weights,
        request.solver_options(),
    )
    return [(it.sku, it.sale_price_cents, it.allocated_units) for it in result.items]


# ---- the loop ----------------------------------------------------------------------------------------------


@dataclass
class DayRecord:
    day: int  # 1-based
    date: dt.date
    model_id: int | None
    e_err: dict[str, float]
    l_err: dict[str, float]
    featured: list[str]
    model_profit: int  # common draws
    unguarded_profit: int  # the same request with the forecast guard's cap off, common draws
    oracle_profit: int  # common draws
    live_profit: int  # what the live orders made (close report)
    censored: int
    fit_s: float
    seconds: float
    overlap: int  # SKUs in both the plan and the oracle's plan


@dataclass
class LoopResult:
    days: list[DayRecord] = field(default_factory=list)
    final_e_err: dict[str, float] = field(default_factory=dict)
    final_l_err: dict[str, float] = field(default_factory=dict)
    start_scores: str = ""
    end_scores: str = ""


def _scores_line(session: Session, model: DemandModel) -> str:
    """The backtest's own elasticity/lift scorer (median absolute errors, Spearman), for cross-checking."""
    scores, lift_err, _ = _elasticity_scores(session, model)
    parts = [
        f"elasticity {s.subset}: median |err| {s.median_abs_error:.3f}, rho {s.spearman:.2f}" for s in scores
    ]
    if lift_err is not None:
        parts.append(f"lift median |err| {lift_err:.3f}")
    return "; ".join(parts)


def run_loop(
    factory: sessionmaker[Session],
    world: World,
    args: argparse.Namespace,
    request: PlanRequest,
    out_dir: Path,
) -> LoopResult:
    result = LoopResult()
    end = world.end_date
    with factory.begin() as session:
        truth = read_truth(session)
    for k in range(1, args.days + 1):
        started = time.perf_counter()
        date = end + dt.timedelta(days=k)
        midnight = dt.datetime.combine(date, dt.time.min)
        with factory.begin() as session:
            t0 = time.perf_counter()
            model, _ = refresh_demand_model(session)
            fit_s = time.perf_counter() - t0
            e_err, l_err = abs_errors(model, truth)
            if k == 1:
                result.start_scores = _scores_line(session, model)
            inputs = plan_inputs(session, date, request.ladder, request.assume_stock)
            day_request = request.model_copy(update={"sale_date": date})
            proposal = propose_plan(session, day_request, today=date, inputs=inputs)
            items = [(it.sku, it.sale_price_cents, it.allocated_units) for it in proposal.result.items]
            unguarded_request = day_request.model_copy(update={"guard_cap": False})
            unguarded = propose_plan(session, unguarded_request, today=date, inputs=inputs).result.items
            oracle = oracle_items(world, inputs.candidates, request, date)
            sale_day = SaleDay(world, date, list(world.sku_ids), seed=args.seed)
            model_profit = realised_profit(world, sale_day, items)
            unguarded_profit = realised_profit(
                world, sale_day, [(it.sku, it.sale_price_cents, it.allocated_units) for it in unguarded]
            )
            oracle_profit = realised_profit(world, sale_day, oracle)
            featured = [s for s, _, _ in items]
            live_profit, censored = 0, 0
            plan_id: int | None = None
            if items:
                plan_id = save_proposal(session, proposal, created_by=ACTOR)
                approve_plan(session, plan_id, APPROVER, now=midnight + dt.timedelta(seconds=20))
                publish_plan(
                    session,
                    plan_id,
                    actor=APPROVER,
                    now=midnight + dt.timedelta(seconds=30),
                    out_dir=out_dir,
                    currency="EUR",
                )
                play_live_sale(
                    session,
                    plan_id,
                    HOURS,
                    now=midnight + dt.timedelta(hours=24),
                    seed=args.seed,
                    world=world,
                )
            if not args.sale_orders_only:
                write_ordinary_orders(session, world, world.day_index(date), set(featured))
            if plan_id is not None:
                closed = close_sale(
                    session, plan_id, actor=ACTOR, now=midnight + dt.timedelta(days=1, seconds=5)
                )
                live_profit = int(closed.report.profit_cents)
                censored = len(closed.censored_skus)
        record = DayRecord(
            day=k,
            date=date,
            model_id=model.id,
            e_err=e_err,
            l_err=l_err,
            featured=featured,
            model_profit=model_profit,
            unguarded_profit=unguarded_profit,
            oracle_profit=oracle_profit,
            live_profit=live_profit,
            censored=censored,
            fit_s=fit_s,
            seconds=time.perf_counter() - started,
            overlap=len(set(featured) & {s for s, _, _ in oracle}),
        )
        result.days.append(record)
        share = model_profit / oracle_profit if oracle_profit else float("nan")
        print(
            f"day {k:2d}/{args.days} {date}: fit {fit_s:4.1f} s, {len(items):2d} items "
            f"({record.overlap} also the oracle's, {censored} sold out), profit {model_profit / 100:9,.2f} "
            f"vs oracle {oracle_profit / 100:9,.2f} ({share:6.1%}), live {live_profit / 100:9,.2f}; "
            f"MAE elasticity {mean_over(e_err, None):.3f}, lift {mean_over(l_err, None):.3f}; "
            f"{record.seconds:4.1f} s",
            file=sys.stderr,
            flush=True,
        )
    with factory.begin() as session:  # the model after the last sale's close
        model, _ = refresh_demand_model(session)
        result.final_e_err, result.final_l_err = abs_errors(model, truth)
        result.end_scores = _scores_line(session, model)
    return result


# ---- the report --------------------------------------------------------------------------------------------


def _fmt(value: float, spec: str = ".3f") -> str:
    return "n/a" if not math.isfinite(value) else format(value, spec)


@dataclass(frozen=True)
class WeekRow:
    week: int
    days: str
    n_days: int
    e_all: float
    e_feat: float
    e_sofar: float
    l_all: float
    l_feat: float
    l_sofar: float
    model: float
    unguarded: float
    oracle: float
    live: float
    share_se: float  # standard error of the mean of the week's daily shares

    @property
    def share(self) -> float:
        return self.model / self.oracle if self.oracle else float("nan")

    @property
    def unguarded_share(self) -> float:
        return self.unguarded / self.oracle if self.oracle else float("nan")

    @property
    def label(self) -> str:
        return f"{self.week} ({self.days})"


def weekly_rows(result: LoopResult, ever: set[str]) -> list[WeekRow]:
    rows = []
    seen: set[str] = set()
    so_far_of: list[set[str]] = []
    for rec in result.days:  # SKUs featured by the sales closed before the day's fit
        so_far_of.append(set(seen))
        seen |= set(rec.featured)
    for w in range(math.ceil(len(result.days) / 7)):
        recs = result.days[7 * w : 7 * w + 7]
        sofar = so_far_of[7 * w : 7 * w + 7]
        daily = [r.model_profit / r.oracle_profit for r in recs if r.oracle_profit]

        def mean(values: list[float]) -> float:
            ok = [v for v in values if math.isfinite(v)]
            return float(np.mean(ok)) if ok else float("nan")

        rows.append(
            WeekRow(
                week=w + 1,
                days=f"{recs[0].day}-{recs[-1].day}",
                n_days=len(recs),
                e_all=mean([mean_over(r.e_err, None) for r in recs]),
                e_feat=mean([mean_over(r.e_err, ever) for r in recs]),
                e_sofar=mean(
                    [mean_over(r.e_err, s) if s else float("nan") for r, s in zip(recs, sofar, strict=True)]
                ),
                l_all=mean([mean_over(r.l_err, None) for r in recs]),
                l_feat=mean([mean_over(r.l_err, ever) for r in recs]),
                l_sofar=mean(
                    [mean_over(r.l_err, s) if s else float("nan") for r, s in zip(recs, sofar, strict=True)]
                ),
                model=sum(r.model_profit for r in recs) / 100,
                unguarded=sum(r.unguarded_profit for r in recs) / 100,
                oracle=sum(r.oracle_profit for r in recs) / 100,
                live=sum(r.live_profit for r in recs) / 100,
                share_se=float(np.std(daily, ddof=1) / math.sqrt(len(daily))) if len(daily) > 1 else math.nan,
            )
        )
    return rows


def _slope(values: list[float]) -> float:
    x = np.arange(len(values), dtype=float)
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(y)
    return float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 else float("nan")


def report(result: LoopResult, world: World, args: argparse.Namespace, wall_s: float, command: str) -> None:
    ever = {s for r in result.days for s in r.featured}
    rows = weekly_rows(result, ever)
    n = world.n_skus
    print()
    print(
        f"Learning loop: {len(result.days)} sale days after {world.end_date} on a {n}-SKU simulated shop "
        f"(seed {args.seed}, {world.config.n_days} days of history, {world.config.n_flash_days} past flash "
        f"sales); {'sale orders only' if args.sale_orders_only else 'sale + ordinary orders'} each day"
    )
    print(
        "Errors are mean absolute errors of the model each day's plan was made with, averaged over the week: "
        f"'all' = all {n} SKUs, 'loop' = the {len(ever)} SKUs the loop featured at some point (fixed set), "
        "'so far' = the SKUs featured by the sales closed before that day's fit."
    )
    print(
        "Profit: realised gross profit of the week's plans and of the oracle's on common draws; share = "
        "plan / oracle (± se: standard error of the week's daily shares); no guard = share of the same "
        "request with the forecast guard's cap off; live = what the live orders of the plan made (own draws)."
    )
    header = (
        f"{'week (days)':<11} | {'elast all':>9} {'loop':>6} {'so far':>6} | {'lift all':>8} {'loop':>6} "
        f"{'so far':>6} | {'plan':>10} {'oracle':>10} {'share':>6} {'± se':>5} | {'no guard':>8} | "
        f"{'live':>10}"
    )
    print(header)
    print("-" * len(header))
    start = result.days[0]
    print(
        f"{'start':<11} | {_fmt(mean_over(start.e_err, None)):>9} {_fmt(mean_over(start.e_err, ever)):>6} "
        f"{'':>6} | {_fmt(mean_over(start.l_err, None)):>8} {_fmt(mean_over(start.l_err, ever)):>6} {'':>6} |"
    )
    for r in rows:
        print(
            f"{r.label:<11} | {_fmt(r.e_all):>9} {_fmt(r.e_feat):>6} {_fmt(r.e_sofar):>6} | "
            f"{_fmt(r.l_all):>8} {_fmt(r.l_feat):>6} {_fmt(r.l_sofar):>6} | {r.model:>10,.2f} "
            f"{r.oracle:>10,.2f} {_fmt(r.share, '.1%'):>6} {_fmt(r.share_se, '.1%'):>5} | "
            f"{_fmt(r.unguarded_share, '.1%'):>8} | {r.live:>10,.2f}"
        )
    print(
        f"{'end (refit)':<11} | {_fmt(mean_over(result.final_e_err, None)):>9} "
        f"{_fmt(mean_over(result.final_e_err, ever)):>6} {'':>6} | "
        f"{_fmt(mean_over(result.final_l_err, None)):>8} {_fmt(mean_over(result.final_l_err, ever)):>6} "
        f"{'':>6} |"
    )
    total_model = sum(r.model for r in rows)
    total_oracle = sum(r.oracle for r in rows)
    total_share = total_model / total_oracle if total_oracle else float("nan")
    total_unguarded = sum(r.unguarded for r in rows) / total_oracle if total_oracle else float("nan")
    sold_out = sum(r.censored for r in result.days)
    planned = sum(len(r.featured) for r in result.days)
    print(
        f"Total: plan {total_model:,.2f}, oracle {total_oracle:,.2f}, share {_fmt(total_share, '.1%')} "
        f"(no guard {_fmt(total_unguarded, '.1%')}); live {sum(r.live for r in rows):,.2f}. Sold-out items: "
        f"{sold_out} of {planned}; plan and oracle share {np.mean([r.overlap for r in result.days]):.1f} "
        "SKUs a day on average."
    )
    print(f"Backtest scorer (tools.backtest), first model: {result.start_scores}")
    print(f"Backtest scorer (tools.backtest), final model: {result.end_scores}")
    shocks = [
        f"{s.kind} {s.scope_value} x{s.multiplier:g} to {world.date_of(s.end_day)}"
        for s in world.shocks
        if s.end_day > world.config.n_days - 1
    ]
    if shocks:
        print(
            "Market shocks still running after the history (the oracle knows them, the model does not: no "
            "market signals are stored): " + "; ".join(shocks)
        )

    first, last = rows[0], rows[-1]
    checks = [
        ("elasticity MAE, all SKUs, falls", first.e_all, last.e_all, last.e_all < first.e_all),
        ("elasticity MAE, loop SKUs, falls", first.e_feat, last.e_feat, last.e_feat < first.e_feat),
        ("lift MAE, all SKUs, falls", first.l_all, last.l_all, last.l_all < first.l_all),
        ("lift MAE, loop SKUs, falls", first.l_feat, last.l_feat, last.l_feat < first.l_feat),
        ("profit share rises", first.share, last.share, last.share > first.share),
    ]
    print()
    print(f"Verdict, week {first.week} ({first.n_days} days) against week {last.week} ({last.n_days} days):")
    for name, a, b, ok in checks:
        spec = ".1%" if "share" in name else ".4f"
        print(f"  {'PASS' if ok else 'MISS'}  {name}: {_fmt(a, spec)} -> {_fmt(b, spec)}")
    slopes = {
        name: _fmt(_slope([getattr(r, attr) for r in rows]), spec)
        for name, attr, spec in (
            ("elasticity all", "e_all", "+.4f"),
            ("elasticity loop", "e_feat", "+.4f"),
            ("lift all", "l_all", "+.4f"),
            ("lift loop", "l_feat", "+.4f"),
            ("share", "share", "+.2%"),
        )
    }
    print(
        "  (not part of the verdict) least-squares slope per week: "
        + ", ".join(f"{name} {value}" for name, value in slopes.items())
    )
    overall = all(ok for *_, ok in checks)
    print(
        f"Goal (errors fall, share rises over the {len(result.days)} days): {'PASS' if overall else 'MISS'}"
    )
    print()
    print(f"Machine: {machine()}")
    print(f"Wall time: {wall_s:.1f} s ({np.mean([r.fit_s for r in result.days]):.1f} s a fit on average)")
    print(f"Command: {command}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="See the module docstring for what is measured.",
    )
    parser.add_argument("--days", type=int, default=60, help="Sale days to run after the history.")
    parser.add_argument(
        "--scale", type=float, default=0.15, help="Size of the shop relative to the demo's (0.15: 300 SKUs)."
    )
    parser.add_argument("--seed", type=int, default=42, help="Simulator seed (the shop and the sale draws).")
    parser.add_argument(
        "--history-days", type=int, default=365, help="Days of order history before the loop."
    )
    parser.add_argument(
        "--end-date",
        default="2026-03-31",
        help="Last day of the history (YYYY-MM-DD); the loop starts after.",
    )
    parser.add_argument(
        "--slots", type=int, default=20, help="Slots of every plan (the plan service's default)."
    )
    parser.add_argument(
        "--folder", default="/tmp/bench_loop", help="Folder for the shop's database and outputs."
    )
    parser.add_argument(
        "--sale-orders-only",
        action="store_true",
        help="Write only the sale's orders on loop days (no ordinary orders of the other SKUs).",
    )
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m evals.bench_learning_loop", *(shlex.quote(a) for a in given)])
    wall = time.perf_counter()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    variant = "sale-only" if args.sale_orders_only else "full"
    db_path = folder / f"loop-s{args.scale:g}-seed{args.seed}-{variant}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    config = SimConfig.scaled(
        args.scale,
        seed=args.seed,
        n_days=args.history_days,
        end_date=dt.date.fromisoformat(args.end_date),
        n_flash_days=min(26, max(1, (args.history_days - 4) // 14)),
    )
    engine = make_engine(f"sqlite:///{db_path}")
    t0 = time.perf_counter()
    summary = build_demo(engine, config)
    print(
        f"built a {config.n_skus}-SKU shop ({summary.counts.get('order_line', 0):,} order lines) in "
        f"{db_path} in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    factory = make_session_factory(engine)
    with factory() as session:
        world = load_world(session)
    request = PlanRequest(slots=args.slots)
    result = run_loop(factory, world, args, request, folder / f"published-{variant}")
    engine.dispose()
    report(result, world, args, time.perf_counter() - wall, command)


if __name__ == "__main__":
    main()
