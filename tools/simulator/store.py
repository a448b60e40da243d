"""The simulated shop in the database: rebuild its world from ``sim_run`` and play stored plans in it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import DatabaseNotReady
from db.models import FlashSalePlan, PlanItem, SimRun
from tools.simulator.world import RealisedDay, SimConfig, SimulationError, World, build_world


def load_world(session: Session) -> World:
    """Rebuild the world of the shop in the database from its latest ``sim_run`` configuration."""
    row = session.execute(select(SimRun).order_by(SimRun.id.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        raise DatabaseNotReady("this database holds no simulated shop; run `python cli.py demo` first")
    return build_world(SimConfig.model_validate(row.config))


def play_plan(session: Session, plan_id: int, seed: int = 0, world: World | None = None) -> RealisedDay:
    """Play a stored flash-sale plan forward on its sale date in the shop's simulated world."""
    plan = session.get(FlashSalePlan, plan_id)
    if plan is None:
        raise SimulationError(f"there is no flash-sale plan {plan_id}")
    rows = session.execute(
        select(PlanItem.sku, PlanItem.sale_price_cents, PlanItem.allocated_units)
        .where(PlanItem.plan_id == plan_id)
        .order_by(PlanItem.sku)
    ).all()
    if not rows:
        raise SimulationError(f"plan {plan_id} has no items to play")
    world = world or load_world(session)
    return world.play(plan.sale_date, [(r[0], int(r[1]), int(r[2])) for r in rows], seed=seed)
