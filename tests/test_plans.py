"""Plans from the demo shop: candidates, drafts with their inputs, approval by a person, the CLI."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli import app
from db.models import AuditLog, FlashSalePlan
from tools.demand import DemandModel, fit_demand_model, save_demand_model
from tools.lifecycle import approve_plan
from tools.optimizer import PlanConstraints, SolverOptions, ladder_prices, optimize_plan
from tools.plans import (
    PlanNotFound,
    PlanStateError,
    build_candidates,
    candidate_inputs,
    load_plan,
    save_draft_plan,
)

SALE_DATE = dt.date(2026, 7, 1)
NOW = dt.datetime(2026, 7, 1, 9, 0)


@pytest.fixture(scope="module")
def model(demo_shop: Any) -> DemandModel:
    with demo_shop.session_factory() as session:
        return fit_demand_model(session)


def test_candidates_come_from_the_shop_and_the_model(demo_shop: Any, model: DemandModel) -> None:
    with demo_shop.session_factory() as session:
        cand = build_candidates(session, SALE_DATE, model, ladder=(0.1, 0.25, 0.4))
    assert cand.n > 50 and set(cand.skus) <= set(model.skus)
    assert np.array_equal(cand.grid.prices_cents, ladder_prices(cand.list_price_cents, (0.1, 0.25, 0.4)))
    assert cand.safety_stock is not None
    assert np.all(cand.on_hand >= 0) and np.all(cand.safety_stock <= cand.on_hand)
    assert cand.on_hand.sum() > 0
    # Deeper discounts sell more (negative elasticities).
    assert np.all(cand.grid.mean[:, 2] >= cand.grid.mean[:, 0] - 1e-9)


def test_plan_saves_as_draft_with_its_inputs(demo_shop_copy: Any, model: DemandModel) -> None:
    constraints = PlanConstraints(slots=8, min_item_margin=0.1, default_category_max=3)
    with demo_shop_copy.session_factory.begin() as session:
        model_id = save_demand_model(session, model)
        cand = build_candidates(session, SALE_DATE, model)
        result = optimize_plan(cand, constraints, None, SolverOptions(deterministic=True))
        assert result.demand_model_id == model_id
        plan_id = save_draft_plan(
            session, result, sale_date=SALE_DATE, inputs=candidate_inputs(cand), created_by="tester"
        )
    with demo_shop_copy.session_factory() as session:
        stored = load_plan(session, plan_id)
        row = session.get(FlashSalePlan, plan_id)
        assert row is not None
        assert row.constraints["inputs"]["columns"]["sku"] == cand.skus
        assert row.solver_stats["lp_bound"] == pytest.approx(result.lp_bound)
        assert set(row.solver_stats["reasons"]) == set(cand.skus)
    assert stored.status == "draft" and stored.created_by == "tester" and stored.sale_date == SALE_DATE
    assert stored.demand_model_id == model_id
    assert {i.sku: (i.sale_price_cents, i.allocated_units) for i in stored.items} == {
        i.sku: (i.sale_price_cents, i.allocated_units) for i in result.items
    }
    assert stored.constraints["slots"] == 8 and stored.constraints["ladder"] == list(cand.ladder)
    assert "inputs" not in stored.constraints  # the per-SKU inputs stay in the database
    assert stored.gap == pytest.approx(result.gap) and stored.solver_status == result.status
    assert stored.objective["expected_profit_cents"] == result.expected_profit_cents
    assert stored.expected_profit_cents == result.expected_profit_cents
    assert all(i.reason and i.reason.startswith("in: ") for i in stored.items)


def test_only_a_person_approves_a_draft_once(demo_shop_copy: Any, model: DemandModel) -> None:
    with demo_shop_copy.session_factory.begin() as session:
        save_demand_model(session, model)
        cand = build_candidates(session, SALE_DATE, model)
        result = optimize_plan(cand, PlanConstraints(slots=5), None, SolverOptions(deterministic=True))
        plan_id = save_draft_plan(session, result, sale_date=SALE_DATE)
    with demo_shop_copy.session_factory.begin() as session:
        with pytest.raises(PlanStateError, match="approver"):
            approve_plan(session, plan_id, "  ", now=NOW)
        approved = approve_plan(session, plan_id, "Dana", now=NOW)
        assert approved.status == "approved" and approved.approved_by == "Dana"
    with demo_shop_copy.session_factory.begin() as session:
        with pytest.raises(PlanStateError, match="already approved by Dana at 2026-07-01 09:00"):
            approve_plan(session, plan_id, "Dana", now=NOW)
        with pytest.raises(PlanNotFound):
            approve_plan(session, 999_999, "Dana", now=NOW)
        audit = session.scalars(select(AuditLog).where(AuditLog.kind == "approval")).all()
        assert [(a.actor, a.inputs["plan_id"]) for a in audit] == [("Dana", plan_id)]


def test_cli_plan_prints_and_saves_a_draft(demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FLASHSALE_DB_PATH", str(demo_shop_copy.path))
    runner = CliRunner()
    out = runner.invoke(app, ["plan", "--date", "2026-07-01", "--slots", "6", "--budget", "300"])
    assert out.exit_code == 0, out.output
    assert "Saved as draft plan" in out.output and "LP bound" in out.output
    plan_id = int(out.output.split("Saved as draft plan")[1].split(";")[0].strip())
    with demo_shop_copy.session_factory() as session:
        stored = load_plan(session, plan_id)
    assert stored.status == "draft" and 0 < len(stored.items) <= 6
    assert stored.constraints["markdown_budget_cents"] == 30_000
    approve = runner.invoke(app, ["plan", "approve", str(plan_id), "--by", "Sam"])
    assert approve.exit_code == 0 and "approved by Sam" in approve.output
    again = runner.invoke(app, ["plan", "approve", str(plan_id), "--by", "Sam"])
    assert again.exit_code == 1 and "already approved by Sam" in again.output
    bad = runner.invoke(app, ["plan", "--date", "2026-07-01", "--slots", "2", "--pin", "NOPE"])
    assert bad.exit_code == 1 and "Unknown SKU 'NOPE'" in bad.output


def test_two_approvals_at_once_make_one_approval(demo_shop_copy: Any, model: DemandModel) -> None:
    """Two approvers pressing Approve at once (or a replayed button): exactly one wins and is audited; the
    other is told who approved the plan and when."""

    with demo_shop_copy.session_factory.begin() as session:
        save_demand_model(session, model)
        cand = build_candidates(session, SALE_DATE, model)
        result = optimize_plan(cand, PlanConstraints(slots=3), None, SolverOptions(deterministic=True))
        plan_id = save_draft_plan(session, result, sale_date=SALE_DATE)
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def approve(name: str) -> None:
        start.wait()
        try:
            with demo_shop_copy.session_factory.begin() as session:
                approve_plan(session, plan_id, name, now=NOW)
            outcomes[name] = "approved"
        except PlanStateError as exc:
            outcomes[name] = str(exc)

    threads = [threading.Thread(target=approve, args=(name,)) for name in ("Ana", "Ben")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [name for name, outcome in outcomes.items() if outcome == "approved"]
    assert len(winners) == 1, outcomes
    (loser,) = set(outcomes) - set(winners)
    assert outcomes[loser] == f"plan {plan_id} is already approved by {winners[0]} at 2026-07-01 09:00"
    with demo_shop_copy.session_factory() as session:
        assert load_plan(session, plan_id).approved_by == winners[0]
        audit = session.scalars(select(AuditLog).where(AuditLog.kind == "approval")).all()
    assert [a.actor for a in audit] == winners
