"""Re-planning a live sale day versus the static plan and an oracle, on the simulator (prints its figures).

    python -m evals.bench_live_replan --days 30

One simulated shop (``--skus`` SKUs, built in memory, no database) and ``--days`` sale days after its
history. Each day's candidates carry the simulator's TRUE expected demand at every ladder price *without*
the day's intraday shock, and its true dispersion: the plan is as good as a forecast can be, so the
benchmark isolates what re-planning adds, not what a better forecast would. Each candidate's stock (as at
planning) is ``--stock-days`` (median) of its flash demand with a log-normal spread, so allocations and
sell-outs matter. A random half of the days get one intraday shock at a random hour 6-16
(:class:`~tools.simulator.intraday.IntradayShock`): ``competitor_cut`` (the category of a plan SKU,
demand x0.4-0.6 from then on), ``viral_sku`` (a plan SKU, x3-6) or ``supply_problem`` (a plan SKU keeps
20-40 % of its stock). The kinds take turns in a random order; targets are drawn among the static plan's
SKUs, since a shock to a SKU outside the sale leaves nothing for re-planning to act on.

The policies meet the same customers (:class:`~tools.simulator.intraday.SaleDay`'s common random numbers):

* **static**: the optimiser's plan at 00:00 (``--slots`` slots, the default objective weights, the repo's
  ladder, a 10 % item margin floor and at most ``max(3, slots // 4)`` SKUs a category), played 24 h;
* **replan**: the same plan, re-planned at 02:00, 04:00, ..., 22:00 by :func:`tools.replan.rest_of_day`
  (the true intraday profile; each SKU's exposure is the share of the day's demand expected while it was
  on sale with stock, ending when it sold out, each hour weighted by the demand at the price it showed
  over the demand at its current price), then played on at the new ladder prices and allocations
  (level -1: out of the sale);
* **oracle**: a plan made at 00:00 that knows the shock (each SKU's demand grid times
  :meth:`~tools.simulator.intraday.SaleDay.known_day_multiplier`; for a supply problem the units the SKU
  can still sell that day, see :func:`usable_stock`, or with ``--oracle-stock share`` its stock times
  :meth:`~tools.simulator.intraday.SaleDay.known_stock_share`), played 24 h; on calm days it is the
  static plan. It does not re-plan, so it is no upper bound for the re-planned sale.

Stock is physical: a plan SKU sells at most the units its plan (or latest re-plan) allocates that are
still in the warehouse, and a supply problem at hour h keeps ``stock_left`` of the warehouse's remaining
units for the rest of the day, whatever a later re-plan allocates. The re-planner is not told of it
(:func:`~tools.replan.rest_of_day` takes the stock as at planning, as ``replan_plan`` does) unless
``--replan-sees-stock``; it sees it only as a sell-out.

Realised profit: units sold x (the hour's sale price - cost), summed. Printed per day and in a summary: on
shocked days the share of the static plan's gap to the oracle that re-planning recovers
(sum(replan - static) / sum(oracle - static)), overall and per kind; on calm days (replan - static) /
static. Re-planning also gains on calm days (it moves the approved units to the SKUs that sell), and that
gain is in the shocked days' figure too, so each shocked day is also played without its shock (same plan,
same customers) and the recovery net of that calm-day gain is printed beside it. Goals (the issue): at
least 50 % of the gap recovered on shocked days, and calm days within 1 % of the static plan (PASS: not
more than 1 % below it; a gain of more than 1 % is flagged). Also printed: whether a re-plan at 00:00 with
nothing sold gives back the static plan. Not a unit test: the figures are the benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from evals.timing import machine
from tools.forecast import ForecastGrid
from tools.intraday import IntradayProfile
from tools.optimizer import (
    DEFAULT_LADDER,
    Candidates,
    ObjectiveWeights,
    PlanConstraints,
    PlanResult,
    SolverOptions,
    ladder_prices,
    optimize_plan,
)
from tools.replan import rest_of_day
from tools.simulator import SimConfig, World, build_world
from tools.simulator.intraday import HOURS, TRUE_SHARES, IntradayShock, SaleDay, ShockKind, play_hours

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

KINDS: tuple[ShockKind, ...] = ("competitor_cut", "viral_sku", "supply_problem")
REPLAN_HOURS = tuple(range(2, HOURS - 1, 2))  # 2, 4, ..., 22
SHOCK_HOURS = (6, 16)  # inclusive
RECOVERY_GOAL = 0.5
CALM_TOLERANCE = 0.01


# ---- the shop and its days ---------------------------------------------------------------------------------


def shop_candidates(world: World, date: dt.date, rng: np.random.Generator, stock_days: float) -> Candidates:
    """Every SKU of the world with its TRUE featured demand on ``date`` at every ladder price (no intraday
    shock) and the world's dispersion; stock ``stock_days`` x the demand at the middle of the ladder, times
    a log-normal spread (sd 0.6), at least one unit."""
    skus = list(world.sku_ids)
    prices = ladder_prices(world.list_price_cents, DEFAULT_LADDER)
    mean = world.expected_units(date, skus, prices, True)
    grid = ForecastGrid(
        skus=skus,
        prices_cents=prices,
        mean=mean,
        dispersion=np.full(len(skus), world.nb_size),
        signal_ids=[[] for _ in skus],
        meta={"source": "simulator truth", "date": date.isoformat()},
    )
    middle = mean[:, len(DEFAULT_LADDER) // 2]
    spread = np.exp(rng.normal(np.log(stock_days), 0.6, len(skus)))
    on_hand = np.maximum(np.round(middle * spread), 1).astype(np.int64)
    return Candidates(
        skus=skus,
        category=np.asarray(world.category_names)[world.category],
        brand=np.asarray(world.brand_names)[world.brand],
        cost_cents=world.cost_cents,
        list_price_cents=world.list_price_cents,
        on_hand=on_hand,
        grid=grid,
        ladder=DEFAULT_LADDER,
    )


def subset(cand: Candidates, rows: IntArray) -> Candidates:
    """The candidates of ``rows`` only (the plan's SKUs), everything else as it is."""
    assert cand.safety_stock is not None and cand.competitor_price_cents is not None
    assert cand.price_floor_cents is not None and cand.excess_units is not None
    assert cand.clearance_value_cents is not None and cand.max_units is not None
    grid = cand.grid
    return dataclasses.replace(
        cand,
        skus=[cand.skus[i] for i in rows.tolist()],
        category=cand.category[rows],
        brand=cand.brand[rows],
        cost_cents=cand.cost_cents[rows],
        list_price_cents=cand.list_price_cents[rows],
        on_hand=cand.on_hand[rows],
        grid=dataclasses.replace(
            grid,
            skus=[grid.skus[i] for i in rows.tolist()],
            prices_cents=grid.prices_cents[rows],
            mean=grid.mean[rows],
            dispersion=grid.dispersion[rows],
            signal_ids=[grid.signal_ids[i] for i in rows.tolist()],
        ),
        safety_stock=cand.safety_stock[rows],
        competitor_price_cents=cand.competitor_price_cents[rows],
        price_floor_cents=cand.price_floor_cents[rows],
        excess_units=cand.excess_units[rows],
        clearance_value_cents=cand.clearance_value_cents[rows],
        max_units=cand.max_units[rows],
        titles=None,
    )


def draw_shock(
    world: World, plan_skus: list[str], kind: ShockKind, rng: np.random.Generator
) -> IntradayShock:
    """A shock of ``kind`` at a random hour 6-16 on a random SKU (or that SKU's category) of the plan."""
    hour = int(rng.integers(SHOCK_HOURS[0], SHOCK_HOURS[1] + 1))
    target = plan_skus[int(rng.integers(len(plan_skus)))]
    if kind == "competitor_cut":
        cat = world.category[world.sku_index([target])[0]]
        skus = tuple(s for s, c in zip(world.sku_ids, world.category.tolist(), strict=True) if c == cat)
        return IntradayShock(kind, hour, skus, multiplier=round(float(rng.uniform(0.4, 0.6)), 2))
    if kind == "viral_sku":
        return IntradayShock(kind, hour, (target,), multiplier=round(float(rng.uniform(3.0, 6.0)), 2))
    return IntradayShock(kind, hour, (target,), stock_left=round(float(rng.uniform(0.2, 0.4)), 2))


def describe(world: World, shock: IntradayShock | None) -> str:
    if shock is None:
        return "-"
    if shock.kind == "competitor_cut":
        cat = world.category_names[int(world.category[world.sku_index([shock.skus[0]])[0]])]
        return f"competitor_cut {cat} x{shock.multiplier:g} @{shock.hour:02d}"
    if shock.kind == "viral_sku":
        return f"viral_sku {shock.skus[0]} x{shock.multiplier:g} @{shock.hour:02d}"
    return f"supply_problem {shock.skus[0]} {shock.stock_left:.0%} left @{shock.hour:02d}"


# ---- playing a day -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Sale:
    """One policy's sale during the day, over ALL candidate SKUs (rows of the day's ``SaleDay``)."""

    cand: Candidates
    level: IntArray  # ladder level on sale, -1: not in the sale
    allowed: IntArray  # units the plan (or latest re-plan) still lets be sold
    stock: IntArray  # units still in the warehouse
    sold: IntArray
    markdown_cents: FloatArray  # (list price - price shown) x units sold, so far
    profit_cents: float = 0.0
    # per SKU and hour: the level it was on sale at (-1: off) and the share of the hour it had stock
    hour_level: IntArray = dataclasses.field(default_factory=lambda: np.zeros((0, HOURS), dtype=np.int64))
    hour_open: FloatArray = dataclasses.field(default_factory=lambda: np.zeros((0, HOURS)))
    hour_off: NDArray[np.bool_] = dataclasses.field(default_factory=lambda: np.zeros((0, HOURS), dtype=bool))

    @classmethod
    def start(cls, cand: Candidates, plan: PlanResult) -> Sale:
        n = cand.n
        pos = cand.index()
        level = np.full(n, -1, dtype=np.int64)
        allowed = np.zeros(n, dtype=np.int64)
        for it in plan.items:
            level[pos[it.sku]] = it.level
            allowed[pos[it.sku]] = it.allocated_units
        return cls(
            cand=cand,
            level=level,
            allowed=allowed,
            stock=cand.on_hand.copy(),
            sold=np.zeros(n, dtype=np.int64),
            markdown_cents=np.zeros(n),
            hour_level=np.full((n, HOURS), -1, dtype=np.int64),
            hour_open=np.zeros((n, HOURS)),
            hour_off=np.zeros((n, HOURS), dtype=bool),
        )

    def prices(self) -> IntArray:
        grid = self.cand.grid.prices_cents
        on = self.level >= 0
        return np.where(
            on, grid[np.arange(self.cand.n), np.maximum(self.level, 0)], self.cand.list_price_cents
        )

    def play(self, demand_day: SaleDay, kept: SaleDay, start: int, end: int) -> None:
        """Hours ``start``..``end - 1`` at the current prices: the warehouse loses what a supply problem
        takes (``kept``), then at most ``min(allowed, stock)`` units sell to ``demand_day``'s customers."""
        cost = self.cand.cost_cents.astype(np.float64)
        for hour in range(start, end):
            self.stock = np.floor(self.stock * kept.stock_kept(hour)).astype(np.int64)
            price = self.prices()
            left = np.where(self.level >= 0, np.minimum(self.allowed, self.stock), 0)
            units, _ = play_hours(demand_day, price, left, hour, hour + 1)
            sold = units[:, 0]
            wanted = demand_day.demand(hour, price)
            self.hour_level[:, hour] = self.level
            self.hour_off[:, hour] = (self.level < 0) & (self.stock > 0)
            # the share of the hour's customers who found stock (sold out during the hour: fewer)
            self.hour_open[:, hour] = np.where(
                left <= 0, 0.0, np.where(wanted > sold, sold / np.maximum(wanted, 1), 1.0)
            )
            self.sold += sold
            self.allowed -= sold
            self.stock -= sold
            self.markdown_cents += (self.cand.list_price_cents - price) * sold
            self.profit_cents += float(((price - cost) * sold).sum())


def exposure(
    sale: Sale, rows: IntArray, now: int, profile: IntradayProfile, ref_level: IntArray
) -> FloatArray:
    """Share of the day's demand (at each SKU's ``ref_level`` price) expected while it was on sale with
    stock, before ``now``: the profile's hourly share x the share of the hour with stock x the demand at the
    price shown then over the demand at the reference price. Without price changes or sell-outs it is
    ``profile.by(now)``; a SKU that sold out stops at the moment it did."""
    mean = sale.cand.grid.mean[rows]
    lv = sale.hour_level[rows, :now]
    open_ = sale.hour_open[rows, :now]
    shown = np.take_along_axis(mean, np.maximum(lv, 0), axis=1)
    ref = np.maximum(mean[np.arange(rows.size), ref_level], 1e-12)
    weight = np.where(lv >= 0, shown / ref[:, None], 0.0)
    return np.asarray((profile.shares[None, :now] * open_ * weight).sum(axis=1), dtype=np.float64)


def usable_stock(on_hand: IntArray, day_units: FloatArray, day: SaleDay) -> IntArray:
    """Units each SKU can sell in the day when it sells its expected demand ``day_units`` along the
    profile and supply problems take their share of what is left at their hour: what an oracle that knows
    the supply problem plans with (``on_hand x known_stock_share()`` would also take the share of the units
    it sells before the problem arrives)."""
    stock = on_hand.astype(np.float64)
    lost = np.zeros(stock.size)
    for hour in range(HOURS):
        cut = stock * (1.0 - day.stock_kept(hour))
        lost += cut
        stock = np.maximum(stock - cut - day_units * TRUE_SHARES[hour], 0.0)
    return np.asarray(np.floor(on_hand - lost + 1e-9), dtype=np.int64)


def replanned(  # noqa: PLR0917
    cand: Candidates,
    static: PlanResult,
    demand_day: SaleDay,
    kept: SaleDay,
    constraints: PlanConstraints,
    weights: ObjectiveWeights,
    options: SolverOptions,
    *,
    sees_stock: bool = False,
) -> Sale:
    """The static plan played with a re-plan by :func:`rest_of_day` at 02:00, 04:00, ..., 22:00."""
    pos = cand.index()
    rows = np.array([pos[it.sku] for it in static.items], dtype=np.int64)
    plan_cand = subset(cand, rows)
    pool = int(static.allocated_units)
    profile = IntradayProfile(TRUE_SHARES, "the simulator's true profile")
    live = Sale.start(cand, static)
    played = 0
    for hour in REPLAN_HOURS:
        live.play(demand_day, kept, played, hour)
        played = hour
        levels = live.level[rows]
        sold = live.sold[rows]
        seen = dataclasses.replace(plan_cand, on_hand=live.stock[rows] + sold) if sees_stock else plan_cand
        rest = rest_of_day(
            seen,
            levels,
            sold,
            exposure(live, rows, hour, profile, np.where(levels >= 0, levels, 0)),
            profile.between(hour, HOURS),
            constraints,
            weights,
            pool_units=pool,
            markdown_spent_cents=float(live.markdown_cents[rows].sum()),
            options=options,
        )
        live.level[rows] = rest.levels
        live.allowed[rows] = np.where(rest.levels >= 0, np.maximum(rest.allocation - sold, 0), 0)
    live.play(demand_day, kept, played, HOURS)
    return live


@dataclasses.dataclass(frozen=True)
class DayResult:
    day: int
    date: dt.date
    shock: IntradayShock | None
    label: str
    static_cents: float
    replan_cents: float
    oracle_cents: float
    calm_static_cents: float  # the same day (plan, customers) without its shock
    calm_replan_cents: float
    price_changes: int  # re-plans' changes of a plan SKU's ladder level (ending one counts as well)
    off_hours: int  # SKU-hours a plan SKU with stock in the warehouse was out of the sale
    hour0_same: bool  # a re-plan at 00:00 with nothing sold gives back the static plan


def run_day(  # noqa: PLR0917
    world: World,
    day: int,
    date: dt.date,
    kind: ShockKind | None,
    args: argparse.Namespace,
    constraints: PlanConstraints,
    weights: ObjectiveWeights,
    options: SolverOptions,
) -> DayResult:
    rng = np.random.default_rng([args.seed, day])
    cand = shop_candidates(world, date, rng, args.stock_days)
    static = optimize_plan(cand, constraints, weights, options)
    pos = cand.index()
    rows = np.array([pos[it.sku] for it in static.items], dtype=np.int64)
    shock = draw_shock(world, [it.sku for it in static.items], kind, rng) if kind else None
    shocks = [shock] if shock else []
    # the same customers for every policy; supply problems are applied to the warehouse by Sale.play
    full = SaleDay(world, date, cand.skus, seed=day, shocks=shocks)
    demand_day = SaleDay(
        world, date, cand.skus, seed=day, shocks=[s for s in shocks if s.kind != "supply_problem"]
    )
    calm = SaleDay(world, date, cand.skus, seed=day)

    # 00:00: a re-plan with nothing sold should give back the static plan
    levels0 = np.array([it.level for it in static.items], dtype=np.int64)
    alloc0 = np.array([it.allocated_units for it in static.items], dtype=np.int64)
    at0 = rest_of_day(
        subset(cand, rows), levels0, np.zeros(rows.size, dtype=np.int64), np.zeros(rows.size), 1.0,
        constraints, weights, pool_units=int(static.allocated_units), options=options,
    )  # fmt: skip
    hour0_same = bool(np.array_equal(at0.levels, levels0) and np.array_equal(at0.allocation, alloc0))

    sale = Sale.start(cand, static)
    sale.play(demand_day, full, 0, HOURS)
    live = replanned(
        cand, static, demand_day, full, constraints, weights, options, sees_stock=args.replan_sees_stock
    )
    lv = live.hour_level[rows]
    price_changes = int((lv[:, 1:] != lv[:, :-1]).sum())
    off_hours = int(live.hour_off[rows].sum())
    if shock is None:
        oracle_cents = calm_static = sale.profit_cents
        calm_replan = live.profit_cents
    else:
        on_hand = cand.on_hand
        if shock.kind == "supply_problem":
            if args.oracle_stock == "share":
                on_hand = np.floor(cand.on_hand * full.known_stock_share()).astype(np.int64)
            else:
                at = np.full(cand.n, len(DEFAULT_LADDER) // 2)
                at[rows] = levels0
                on_hand = usable_stock(cand.on_hand, cand.grid.mean[np.arange(cand.n), at], full)
        known = dataclasses.replace(
            cand,
            grid=dataclasses.replace(cand.grid, mean=cand.grid.mean * full.known_day_multiplier(0)[:, None]),
            on_hand=on_hand,
        )
        oracle = Sale.start(cand, optimize_plan(known, constraints, weights, options))
        oracle.play(demand_day, full, 0, HOURS)
        oracle_cents = oracle.profit_cents
        twin = Sale.start(cand, static)
        twin.play(calm, calm, 0, HOURS)
        calm_static = twin.profit_cents
        calm_replan = replanned(cand, static, calm, calm, constraints, weights, options).profit_cents
    return DayResult(
        day=day,
        date=date,
        shock=shock,
        label=describe(world, shock),
        static_cents=sale.profit_cents,
        replan_cents=live.profit_cents,
        oracle_cents=oracle_cents,
        calm_static_cents=calm_static,
        calm_replan_cents=calm_replan,
        price_changes=price_changes,
        off_hours=off_hours,
        hour0_same=hour0_same,
    )


# ---- the report --------------------------------------------------------------------------------------------


def money(cents: float) -> str:
    return f"{cents / 100:,.2f}"


def ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def share_of_gap(gain: float, gap: float) -> str:
    """``gain / gap`` as a percentage; n/a when the oracle did no better than the static plan."""
    return f"{gain / gap:7.1%}" if gap > 0 else "    n/a (no gap)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30, help="Sale days to simulate (half of them shocked).")
    parser.add_argument("--skus", type=int, default=500, help="SKUs of the simulated shop.")
    parser.add_argument("--slots", type=int, default=20, help="Slots of every plan.")
    parser.add_argument(
        "--stock-days", type=float, default=2.0, help="Median stock, in days of flash demand."
    )
    parser.add_argument("--volume", type=float, default=1.0, help="SimConfig.volume: x every SKU's demand.")
    parser.add_argument(
        "--oracle-stock",
        choices=("usable", "share"),
        default="usable",
        help="The oracle's stock of a SKU with a supply problem: what it can sell that day (usable) or "
        "on_hand x known_stock_share() (share).",
    )
    parser.add_argument(
        "--replan-sees-stock",
        action="store_true",
        help="Give the re-planner the warehouse's stock now (default: the stock as at planning).",
    )
    parser.add_argument("--seed", type=int, default=42, help="Seed of the shop and of the days' draws.")
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error("--days must be at least 2 (half of them are shocked)")
    command = " ".join(["python -m evals.bench_live_replan", *(sys.argv[1:] if argv is None else argv)])
    console = Console(width=180)
    t0 = time.perf_counter()
    config = SimConfig(
        seed=args.seed,
        n_skus=args.skus,
        n_customers=max(2000, args.skus * 10),
        n_days=240,
        n_flash_days=15,
        end_date=dt.date(2026, 6, 30),
        volume=args.volume,
    )
    world = build_world(config)
    constraints = PlanConstraints(
        slots=args.slots, min_item_margin=0.1, default_category_max=max(3, args.slots // 4)
    )
    weights = ObjectiveWeights()
    options = SolverOptions(deterministic=True, time_limit_s=20.0, explain=False)
    rng = np.random.default_rng([args.seed, 7919])
    shocked = set(rng.permutation(args.days)[: args.days // 2].tolist())
    kinds = [KINDS[i % len(KINDS)] for i in range(len(shocked))]
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    kind_of = dict(zip(sorted(shocked), kinds, strict=True))

    results: list[DayResult] = []
    for day in range(args.days):
        date = config.end_date + dt.timedelta(days=1 + day)
        results.append(run_day(world, day, date, kind_of.get(day), args, constraints, weights, options))
    wall = time.perf_counter() - t0
    report(console, results, args, command, wall)


def report(
    console: Console, results: Sequence[DayResult], args: argparse.Namespace, command: str, wall: float
) -> None:
    table = Table(title=f"Live re-planning over {len(results)} simulated sale days: realised profit")
    columns = ("day", "date", "shock", "static", "replan", "oracle", "replan-static", "oracle-static")
    for col in (*columns, "level changes", "off-sale SKU-h"):
        table.add_column(col, justify="left" if col in ("date", "shock") else "right")
    for r in results:
        table.add_row(
            str(r.day),
            r.date.isoformat(),
            r.label,
            money(r.static_cents),
            money(r.replan_cents),
            money(r.oracle_cents) if r.shock else "(= static)",
            money(r.replan_cents - r.static_cents),
            money(r.oracle_cents - r.static_cents) if r.shock else "",
            str(r.price_changes),
            str(r.off_hours),
        )
    console.print(table)
    shocked = [r for r in results if r.shock]
    calm = [r for r in results if not r.shock]

    def recovery(rs: Sequence[DayResult], twin: bool = False) -> tuple[float, float]:
        """Re-planning's gain over the static plan (net of the same days' calm-twin gain with ``twin``)
        and the oracle's."""
        gain = sum(
            r.replan_cents - r.static_cents - (r.calm_replan_cents - r.calm_static_cents if twin else 0.0)
            for r in rs
        )
        return gain, sum(r.oracle_cents - r.static_cents for r in rs)

    def say(text: str) -> None:
        console.print(text, highlight=False)

    def by_kind(twin: bool) -> None:
        for kind in KINDS:
            rs = [r for r in shocked if r.shock is not None and r.shock.kind == kind]
            if rs:
                g, p = recovery(rs, twin)
                say(
                    f"  {kind:15s} ({len(rs):3d} days): {'net ' if twin else ''}gain {money(g):>10s} of a "
                    f"gap of {money(p):>10s}: {share_of_gap(g, p)}"
                )

    gain, gap = recovery(shocked)
    say(
        f"Shocked days ({len(shocked)}): re-planning gains {money(gain)} over the static plan, whose gap to "
        f"the oracle is {money(gap)}: {share_of_gap(gain, gap).strip()} of the gap recovered"
    )
    by_kind(False)
    calm_static = sum(r.static_cents for r in calm)
    calm_diff = sum(r.replan_cents - r.static_cents for r in calm)
    calm_rel = ratio(calm_diff, calm_static)
    worst = min((ratio(r.replan_cents - r.static_cents, r.static_cents) for r in calm), default=float("nan"))
    say(
        f"Calm days ({len(calm)}): re-planning {money(calm_diff)} on the static plan's {money(calm_static)}: "
        f"{calm_rel:+.2%} (worst day {worst:+.2%})"
    )
    twin_static = sum(r.calm_static_cents for r in shocked)
    twin_diff = sum(r.calm_replan_cents - r.calm_static_cents for r in shocked)
    net, _ = recovery(shocked, twin=True)
    say(
        f"The shocked days without their shock (same plans, same customers): re-planning "
        f"{ratio(twin_diff, twin_static):+.2%}; net of that, re-planning recovers {money(net)} of the "
        f"{money(gap)} gap: {share_of_gap(net, gap).strip()}"
    )
    by_kind(True)
    same = sum(r.hour0_same for r in results)
    say(f"A re-plan at 00:00 with nothing sold gives back the static plan on {same}/{len(results)} days")
    verdict = "n/a: the oracle beat the static plan by nothing" if gap <= 0 else ""
    verdict = verdict or ("PASS" if gain / gap >= RECOVERY_GOAL else "MISS")
    ok2 = calm_rel >= -CALM_TOLERANCE
    say(
        f"Goal 1, shocked days recover >= {RECOVERY_GOAL:.0%} of the static plan's gap to the oracle: "
        f"{verdict} ({share_of_gap(gain, gap).strip()}; net of the calm-day effect "
        f"{share_of_gap(net, gap).strip()})"
    )
    say(
        f"Goal 2, calm days within {CALM_TOLERANCE:.0%} of the static plan (not more than "
        f"{CALM_TOLERANCE:.0%} below it): {'PASS' if ok2 else 'MISS'} ({calm_rel:+.2%}"
        f"{f'; more than {CALM_TOLERANCE:.0%} above it' if calm_rel > CALM_TOLERANCE else ''})"
    )
    say(
        f"Settings: {args.skus} SKUs, volume {args.volume:g}, {args.slots} slots, stock {args.stock_days:g} "
        f"days (median), oracle stock {args.oracle_stock}, re-planner sees the stock: "
        f"{'yes' if args.replan_sees_stock else 'no'}, seed {args.seed}"
    )
    say(f"Machine: {machine()}; wall time {wall:.1f} s")
    say(f"Command: {command}")


if __name__ == "__main__":
    main()
