"""Play a live sale of the simulated shop hour by hour into its database, as the shop's orders would arrive.

Each call plays the hours from where the last one stopped up to ``until_hour`` with the prices and stock of
the revision that is live at that moment, so a sale can be played to 10:00, re-planned, the revision
approved and published, and played on to 24:00. Shocks (a competitor's cut, a viral SKU, a supply
problem) are stored with the play that brought them and apply to every later hour; so is the stock a supply
problem took, which later plays do not find again. The draws are fixed
by the seed and the date: replaying the same prices gives the same customers.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Order, OrderLine, PlanItem, Product
from tools.lifecycle import live_revision, plan_history, record_event, sale_revisions
from tools.live_status import simulated_until, sold_so_far
from tools.plans import PlanStateError
from tools.simulator.intraday import HOURS, IntradayShock, SaleDay, play_hours
from tools.simulator.store import load_world
from tools.simulator.world import STREAM_PLAY, SimulationError, World

_SHOCK = re.compile(r"^(competitor_cut|viral_sku|supply_problem):([^@]+)@(\d{1,2})(?::([0-9.]+))?$")


def parse_shock(text: str, session: Session) -> IntradayShock:
    """``KIND:TARGET@HOUR[:FACTOR]``: ``competitor_cut:Audio@10:0.5`` (a category's demand x0.5 from 10:00),
    ``viral_sku:SKU-00042@9:4`` (x4), ``supply_problem:SKU-00042@12:0.3`` (30 % of its stock left)."""
    match = _SHOCK.match(text.strip())
    if match is None:
        raise SimulationError(
            "a shock is KIND:TARGET@HOUR[:FACTOR] with KIND competitor_cut (TARGET a category), viral_sku or "
            f"supply_problem (TARGET a SKU), e.g. competitor_cut:Audio@10:0.5; got {text!r}"
        )
    kind, target, hour, factor = match.groups()
    if kind == "competitor_cut":
        skus = tuple(session.scalars(select(Product.sku).where(Product.category == target)))
        if not skus:
            raise SimulationError(f"no category {target!r} in the catalogue (for {text!r})")
        return IntradayShock("competitor_cut", int(hour), skus, multiplier=float(factor or 0.6))
    if session.get(Product, target) is None:
        raise SimulationError(f"no SKU {target!r} in the catalogue (for {text!r})")
    if kind == "viral_sku":
        return IntradayShock("viral_sku", int(hour), (target,), multiplier=float(factor or 3.0))
    return IntradayShock("supply_problem", int(hour), (target,), stock_left=float(factor or 0.3))


@dataclass(frozen=True)
class PlayedHours:
    plan_id: int
    from_hour: int
    until_hour: int
    units: int
    revenue_cents: int
    orders: int


def _stored_shocks(session: Session, plan_id: int) -> list[IntradayShock]:
    """The shocks that earlier plays of the sale brought (they go on applying)."""
    stored = [
        s
        for event in plan_history(session, plan_id)
        if event.action == "simulate"
        for s in event.detail.get("shocks") or []
    ]
    return [
        IntradayShock(s["kind"], int(s["hour"]), tuple(s["skus"]), s["multiplier"], s["stock_left"])
        for s in stored
    ]


def _stored_losses(session: Session, plan_id: int) -> dict[str, int]:
    """Units per SKU that earlier plays lost to supply problems (gone from the stock for the rest of the day,
    whichever revision is live)."""
    lost: dict[str, int] = {}
    for event in plan_history(session, plan_id):
        if event.action == "simulate":
            for sku, units in (event.detail.get("lost") or {}).items():
                lost[sku] = lost.get(sku, 0) + int(units)
    return lost


def play_live_sale(
    session: Session,
    plan_id: int,
    until_hour: int,
    *,
    now: dt.datetime,
    seed: int = 0,
    shocks: list[IntradayShock] | None = None,
    world: World | None = None,
) -> PlayedHours:
    """Write the orders of the live sale of ``plan_id`` from the last played hour to ``until_hour``."""
    plan = live_revision(session, plan_id)
    if plan is None:
        raise PlanStateError(f"plan {plan_id}'s sale is not live: publish an approved revision first")
    if not 1 <= until_hour <= HOURS:
        raise SimulationError(f"--until must be an hour 1-24, got {until_hour}")
    start = int(simulated_until(plan_history(session, plan_id)) or 0)
    if until_hour <= start:
        raise SimulationError(f"the sale is already played to {start:02d}:00; give a later --until")
    world = world or load_world(session)
    all_skus = sorted(
        {
            s
            for p in sale_revisions(session, plan_id)
            for s in session.scalars(select(PlanItem.sku).where(PlanItem.plan_id == p.id))
        }
    )
    new = list(shocks or [])
    day = SaleDay(world, plan.sale_date, all_skus, seed, _stored_shocks(session, plan_id) + new)
    items = {it.sku: it for it in session.scalars(select(PlanItem).where(PlanItem.plan_id == plan.id))}
    day_start = dt.datetime.combine(plan.sale_date, dt.time.min)
    sold = sold_so_far(
        session,
        plan.sale_date,
        {s: int(items[s].allocated_units) if s in items else 0 for s in all_skus},
        day_start + dt.timedelta(hours=start),
    ).units
    price = np.array(
        [
            int(items[s].sale_price_cents)
            if s in items
            else int(world.list_price_cents[world.sku_index([s])[0]])
            for s in all_skus
        ],
        dtype=np.int64,
    )
    lost_before = _stored_losses(session, plan_id)
    left = np.array(
        [
            max(int(items[s].allocated_units) - sold[s] - lost_before.get(s, 0), 0) if s in items else 0
            for s in all_skus
        ],
        dtype=np.int64,
    )
    units, left_after = play_hours(day, price, left, start, until_hour)
    lost_now = left - units.sum(axis=1) - left_after
    rng = np.random.default_rng(
        np.random.SeedSequence([world.config.seed, STREAM_PLAY, seed, plan.sale_date.toordinal(), start])
    )
    idx = world.sku_index(all_skus)
    orders = 0
    for k, hour in enumerate(range(start, until_hour)):
        hour_units = units[:, k]
        if not hour_units.any():
            continue
        lines = world._lines_for(rng, idx, hour_units, price)
        secs = np.sort(rng.integers(0, 3600, lines.sku.size))
        for j in range(lines.sku.size):
            ts = day_start + dt.timedelta(hours=hour, seconds=int(secs[j]))
            order_id = f"L{plan.sale_date:%Y%m%d}-{plan.id}-{hour:02d}-{j:05d}"
            customer = world.customer_ids[int(lines.customer[j])]
            session.add(Order(id=order_id, customer_id=customer, ts=ts, flash_sale_plan_id=plan.id))
            session.add(
                OrderLine(
                    order_id=order_id,
                    sku=world.sku_ids[int(lines.sku[j])],
                    customer_id=customer,
                    qty=int(lines.qty[j]),
                    unit_price_cents=int(lines.price[j]),
                    ts=ts,
                )
            )
            orders += 1
    revenue = int((units.sum(axis=1) * price).sum())
    record_event(
        session,
        plan,
        "simulate",
        actor="simulator",
        now=now,
        channel="sim",
        detail={
            "from_hour": start,
            "until_hour": until_hour,
            "units": int(units.sum()),
            "lost": {s: int(n) for s, n in zip(all_skus, lost_now.tolist(), strict=True) if n > 0},
            "shocks": [
                {
                    "kind": s.kind,
                    "hour": s.hour,
                    "skus": list(s.skus),
                    "multiplier": s.multiplier,
                    "stock_left": s.stock_left,
                }
                for s in new
            ],
        },
    )
    session.flush()
    return PlayedHours(plan.id, start, until_hour, int(units.sum()), revenue, orders)
