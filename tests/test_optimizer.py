"""The flash-sale optimiser on small hand-checkable instances (brute force gives the optimum)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from scipy.optimize import linprog

from evals.optimizer_instances import synthetic_candidates
from tools.forecast import ForecastGrid, allocation_and_sales
from tools.optimizer import (
    Candidates,
    InfeasiblePlan,
    InvalidPlanInput,
    ObjectiveWeights,
    PlanConstraints,
    SolverOptions,
    compute_coefficients,
    ladder_prices,
    optimize_plan,
    pareto_frontier,
    what_if,
)

EXACT = SolverOptions(relative_gap=0.0, deterministic=True, time_limit_s=20)


def tiny(seed: int, n: int = 6, ladder: tuple[float, ...] = (0.1, 0.3, 0.5)) -> Candidates:
    return synthetic_candidates(n, seed=seed, ladder=ladder, n_categories=2, n_brands=3, competitor_share=0.5)


def brute_force(cand: Candidates, cons: PlanConstraints, weights: ObjectiveWeights) -> float:
    """Best objective over every assignment (each SKU: off, or one ladder level)."""
    coef = compute_coefficients(cand, cons, weights)
    idx = cand.index()
    best = -np.inf
    for combo in itertools.product(range(-1, cand.k), repeat=cand.n):
        chosen = [(i, k) for i, k in enumerate(combo) if k >= 0]
        if any(not coef.valid[i, k] for i, k in chosen):
            continue
        skus = {cand.skus[i] for i, _ in chosen}
        if not set(cons.pinned) <= skus:
            continue
        if cons.slots is not None and len(chosen) > cons.slots:
            continue
        cats = [str(cand.category[i]) for i, _ in chosen]
        if any(cats.count(c) < m for c, m in cons.category_min.items()):
            continue
        if any(cats.count(c) > m for c, m in cons.category_max.items()):
            continue
        brands = [str(cand.brand[i]) for i, _ in chosen]
        if cons.default_brand_max is not None and any(
            brands.count(b) > cons.default_brand_max for b in brands
        ):
            continue
        if cons.markdown_budget_cents is not None and (
            sum(coef.markdown[i, k] for i, k in chosen) > cons.markdown_budget_cents + 1e-6
        ):
            continue
        if cons.min_plan_margin is not None and (
            sum(coef.profit[i, k] - cons.min_plan_margin * coef.revenue[i, k] for i, k in chosen) < -1e-6
        ):
            continue
        best = max(best, sum(coef.value[i, k] for i, k in chosen))
    assert idx  # the instance is not empty
    return float(best)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_brute_force_on_tiny_instances(seed: int) -> None:
    cand = tiny(seed)
    coef = compute_coefficients(
        cand, PlanConstraints(min_item_margin=0.05, match_competitor=True), ObjectiveWeights()
    )
    eligible = sorted({str(cand.category[i]) for i in np.flatnonzero(coef.valid.any(axis=1))})
    assert eligible
    # Binding budget that still leaves room for the category minimum: its cheapest cell plus a typical one.
    in_min = (cand.category == eligible[0])[:, None] & coef.valid
    budget = int(coef.markdown[in_min].min() + np.median(coef.markdown[coef.valid]))
    cons = PlanConstraints(
        slots=3,
        category_min={eligible[0]: 1},
        category_max={eligible[-1]: 2},
        default_brand_max=2,
        markdown_budget_cents=budget,
        min_item_margin=0.05,
        min_plan_margin=0.1,
        match_competitor=True,
    )
    weights = ObjectiveWeights(revenue=0.1, profit=1.0, clearance=1.0)
    expected = brute_force(cand, cons, weights)
    assert np.isfinite(expected), "the instance must be feasible"
    result = optimize_plan(cand, cons, weights, EXACT)
    assert result.objective == pytest.approx(expected, rel=1e-6, abs=1.0)
    assert result.status == "optimal"
    # The LP bound is a bound, and the gap is measured against it.
    assert result.lp_bound >= result.objective - 1e-6
    assert result.gap >= 0
    assert result.gap == pytest.approx((result.lp_bound - result.objective) / abs(result.lp_bound), abs=1e-12)


def test_lp_bound_equals_an_independent_lp_solve() -> None:
    cand = tiny(5, n=8)
    cons = PlanConstraints(slots=3, markdown_budget_cents=20_000, min_plan_margin=0.25)
    weights = ObjectiveWeights()
    coef = compute_coefficients(cand, cons, weights)
    cells = np.argwhere(coef.valid)
    c = -np.array([coef.value[i, k] for i, k in cells])
    rows, rhs = [], []
    for i in range(cand.n):  # at most one level per SKU
        rows.append([1.0 if ci == i else 0.0 for ci, _ in cells])
        rhs.append(1.0)
    rows.append([1.0] * len(cells))
    rhs.append(3.0)
    rows.append([coef.markdown[i, k] for i, k in cells])
    rhs.append(20_000.0)
    rows.append([-(coef.profit[i, k] - 0.25 * coef.revenue[i, k]) for i, k in cells])
    rhs.append(0.0)
    lp = linprog(c, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=(0, 1), method="highs")
    result = optimize_plan(cand, cons, weights, EXACT)
    assert result.lp_bound == pytest.approx(-lp.fun, rel=1e-7)


def test_every_constraint_is_respected() -> None:
    cand = synthetic_candidates(300, seed=11, n_categories=4, n_brands=10)
    pinned, excluded = cand.skus[5], cand.skus[7]
    cons = PlanConstraints(
        slots=25,
        category_min={"cat00": 4},
        category_max={"cat01": 5},
        default_category_max=9,
        brand_max={"brand000": 1},
        default_brand_max=4,
        markdown_budget_cents=150_000,
        min_item_margin=0.12,
        min_plan_margin=0.3,
        match_competitor=True,
        pinned=[pinned],
        excluded=[excluded],
    )
    # The pinned SKU needs one allowed level; give it stock and no competitor.
    assert cand.competitor_price_cents is not None and cand.safety_stock is not None
    cand.competitor_price_cents[5] = 0
    cand.on_hand[5] = 50
    result = optimize_plan(cand, cons, ObjectiveWeights(), SolverOptions(deterministic=True))
    items = result.items
    idx = cand.index()
    assert len(items) <= 25
    cats = [it.category for it in items]
    assert cats.count("cat00") >= 4 and cats.count("cat01") <= 5
    assert all(cats.count(c) <= 9 for c in set(cats))
    brands = [it.brand for it in items]
    assert brands.count("brand000") <= 1 and all(brands.count(b) <= 4 for b in set(brands))
    assert sum(it.markdown_cost_cents for it in items) <= 150_000 + len(items)
    assert result.expected_profit_cents >= 0.3 * result.expected_revenue_cents - len(items)
    for it in items:
        i = idx[it.sku]
        assert it.sale_price_cents == ladder_prices(cand.list_price_cents[[i]], cand.ladder)[0, it.level]
        assert it.sale_price_cents >= it.cost_cents
        assert (it.sale_price_cents - it.cost_cents) >= 0.12 * it.sale_price_cents - 1e-9
        comp = int(cand.competitor_price_cents[i])
        assert comp == 0 or it.sale_price_cents <= comp
        assert 1 <= it.allocated_units <= cand.on_hand[i] - cand.safety_stock[i]
        assert it.expected_units <= it.allocated_units + 1e-9
    assert pinned in result.skus and excluded not in result.skus
    assert result.reason_for(pinned).code == "pinned"
    assert result.reason_for(excluded).reason == "out: excluded by the merchandiser"


def test_every_candidate_gets_a_reason() -> None:
    cand = synthetic_candidates(200, seed=3, n_categories=3)
    assert cand.competitor_price_cents is not None and cand.safety_stock is not None
    cand.cost_cents[0] = int(cand.list_price_cents[0] * 0.7)
    cand.competitor_price_cents[0] = 0
    cand.on_hand[0] = cand.safety_stock[0] + 10
    cons = PlanConstraints(slots=10, min_item_margin=0.25, match_competitor=True)
    result = optimize_plan(cand, cons, ObjectiveWeights(), SolverOptions(deterministic=True))
    assert [r.sku for r in result.reasons] == cand.skus
    assert all(r.reason.startswith("in: " if r.selected else "out: ") for r in result.reasons)
    codes = {r.code for r in result.reasons}
    assert "slots" in codes and "chosen" in codes
    r = result.reasons[0]  # SKU 0 costs 70 % of its list price (set below)
    assert r.code == "no_allowed_level"
    assert "10–30 % off its margin" in r.reason and "falls below the 25% floor" in r.reason
    assert "40–60 % off the price" in r.reason and "below its cost" in r.reason
    slot = next(r for r in result.reasons if r.code == "slots")
    assert "slot limit (10 slots)" in slot.reason
    assert [it.reason for it in result.items] == [result.reason_for(it.sku).reason for it in result.items]


def test_binding_constraints_carry_duals() -> None:
    cand = synthetic_candidates(300, seed=4)
    result = optimize_plan(
        cand, PlanConstraints(slots=5), ObjectiveWeights(), SolverOptions(deterministic=True)
    )
    slots = next(b for b in result.binding if b.name == "slots")
    assert slots.activity == 5 and slots.upper == 5 and slots.dual > 0
    # One more slot is worth about the dual: the 6-slot plan gains at most that (LP duality).
    wider = optimize_plan(
        cand, PlanConstraints(slots=6), ObjectiveWeights(), SolverOptions(deterministic=True)
    )
    assert wider.lp_bound - result.lp_bound <= slots.dual + 1e-6


def test_infeasible_constraints_are_explained_plainly() -> None:
    cand = tiny(0, n=10)
    cons = PlanConstraints(slots=2, category_min={"cat00": 2, "cat01": 2})
    with pytest.raises(InfeasiblePlan) as info:
        optimize_plan(cand, cons, ObjectiveWeights(), EXACT)
    assert set(info.value.conflicts) == {"slots", "category_min"}
    assert "slot limit (2)" in str(info.value) and "category minimums" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_infeasible_pinned_sku_is_named() -> None:
    cand = tiny(1, n=8)
    coef = compute_coefficients(cand, PlanConstraints(min_item_margin=0.9), ObjectiveWeights())
    assert not coef.valid.any()
    cons = PlanConstraints(slots=3, min_item_margin=0.9, pinned=[cand.skus[2]])
    with pytest.raises(InfeasiblePlan) as info:
        optimize_plan(cand, cons, ObjectiveWeights(), EXACT)
    assert info.value.conflicts == ["pinned", "item_margin"]
    assert cand.skus[2] in str(info.value) and "90% floor" in str(info.value)


def test_budget_conflicting_with_category_minimum() -> None:
    cand = tiny(2, n=10)
    cons = PlanConstraints(slots=5, category_min={"cat00": 3}, markdown_budget_cents=1)
    with pytest.raises(InfeasiblePlan) as info:
        optimize_plan(cand, cons, ObjectiveWeights(), EXACT)
    assert set(info.value.conflicts) == {"budget", "category_min"}


def test_deterministic_runs_give_the_same_plan() -> None:
    cand = synthetic_candidates(2000, seed=9)
    cons = PlanConstraints(slots=40, markdown_budget_cents=300_000, default_category_max=4)
    opts = SolverOptions(deterministic=True, relative_gap=0.0, time_limit_s=5)
    a = optimize_plan(cand, cons, ObjectiveWeights(), opts)
    b = optimize_plan(cand, cons, ObjectiveWeights(), opts)
    assert [(i.sku, i.level) for i in a.items] == [(i.sku, i.level) for i in b.items]
    assert a.objective == b.objective


def test_large_instance_reaches_the_gap_target() -> None:
    cand = synthetic_candidates(20_000, seed=5)
    cons = PlanConstraints(
        slots=300, markdown_budget_cents=2_000_000, default_category_max=30, min_plan_margin=0.3
    )
    result = optimize_plan(cand, cons, ObjectiveWeights(), SolverOptions(explain=False, deterministic=True))
    assert 0 <= result.gap <= 1e-3
    assert result.stats.working_set_skus < cand.n  # the LP ran on a working set, not on every SKU


def test_what_if_pin_reports_the_difference() -> None:
    cand = synthetic_candidates(100, seed=6)
    cons = PlanConstraints(slots=5)
    base = optimize_plan(cand, cons, ObjectiveWeights(), EXACT)
    outsider = next(r.sku for r in base.reasons if r.code == "slots")
    result = what_if(cand, cons, ObjectiveWeights(), EXACT, base=base, pin=outsider)
    assert result.alternative is not None
    assert outsider in result.alternative.skus and result.added == [outsider]
    assert len(result.removed) == 1
    assert result.delta_objective == pytest.approx(result.alternative.objective - base.objective)
    assert result.delta_objective <= 1e-6  # the base plan was optimal
    changed = what_if(cand, cons, ObjectiveWeights(), EXACT, base=base, changes={"slots": 6})
    assert changed.alternative is not None and len(changed.alternative.items) == 6
    assert changed.delta_objective >= 0


@pytest.mark.parametrize("secondary", ["revenue", "sell_through"])
def test_pareto_points_are_non_dominated(secondary: Any) -> None:
    cand = synthetic_candidates(300, seed=8)
    cons = PlanConstraints(slots=10)
    frontier = pareto_frontier(
        cand, cons, SolverOptions(deterministic=True, time_limit_s=5), points=5, secondary=secondary
    )
    pts = frontier.points
    assert len(pts) >= 2

    def sec(p: Any) -> float:
        return p.expected_revenue_cents if secondary == "revenue" else p.sell_through

    for p, q in itertools.permutations(pts, 2):
        assert not (
            q.expected_profit_cents >= p.expected_profit_cents
            and sec(q) >= sec(p)
            and (q.expected_profit_cents > p.expected_profit_cents or sec(q) > sec(p))
        )
    # Sorted by the secondary measure, so profit falls as it rises.
    assert [sec(p) for p in pts] == sorted(sec(p) for p in pts)
    assert pts[0].expected_profit_cents == max(p.expected_profit_cents for p in pts)


def test_allocation_matches_the_forecast_grid() -> None:
    rng = np.random.default_rng(0)
    n = 400
    mean = np.exp(rng.normal(0.5, 1.5, (n, 3)))
    mean[:5] = [[250.0, 300.0, 0.0]] * 5
    disp = np.where(rng.random(n) < 0.3, np.inf, rng.uniform(0.5, 30, n))
    grid = ForecastGrid([str(i) for i in range(n)], np.ones((n, 3), dtype=np.int64), mean, disp, [[]] * n)
    available = rng.integers(0, 40, n)
    excess = rng.uniform(0, 20, n)
    alloc, units, clear = allocation_and_sales(grid, 0.8, available, excess)
    want = np.minimum(np.maximum(grid.quantile(0.8), 1), available[:, None]).astype(np.int64)
    assert np.array_equal(alloc, want)
    np.testing.assert_allclose(units, grid.expected_capped(want), atol=1e-9)
    np.testing.assert_allclose(
        clear, grid.expected_capped(np.minimum(want, np.floor(excess)[:, None])), atol=1e-9
    )


def test_bad_inputs_are_rejected() -> None:
    cand = tiny(0)
    with pytest.raises(ValueError, match="both pinned and excluded"):
        PlanConstraints(pinned=["A"], excluded=["A"])

    with pytest.raises(InvalidPlanInput, match="not candidates"):
        optimize_plan(cand, PlanConstraints(pinned=["nope"]))
    with pytest.raises(InvalidPlanInput, match="strictly increasing"):
        synthetic_candidates(5, ladder=(0.3, 0.1))


def test_a_sku_pinned_at_a_discount_goes_on_sale_at_that_discount() -> None:
    """ "Put SKU Y at 50 % off: what happens to the plan?" The pinned SKU is in the plan at exactly that
    ladder step, whatever the solver would have chosen, and the rest of the plan is optimal around it."""
    cand = synthetic_candidates(100, seed=6)
    base = optimize_plan(cand, PlanConstraints(slots=5), ObjectiveWeights(), EXACT)
    item = base.items[0]
    other = next(d for d in cand.ladder if abs(d - item.discount) > 1e-9)
    cons = PlanConstraints(slots=5, pinned_discounts={item.sku: other})
    assert cons.pinned == [item.sku]  # pinning at a discount pins
    result = optimize_plan(cand, cons, ObjectiveWeights(), EXACT)
    pinned = next(i for i in result.items if i.sku == item.sku)
    assert pinned.discount == pytest.approx(other)
    assert result.objective <= base.objective + 1e-6
    outsider = next(r.sku for r in base.reasons if r.code == "slots")
    alt = what_if(
        cand, PlanConstraints(slots=5), ObjectiveWeights(), EXACT, base=base, pin=outsider, pin_discount=other
    )
    assert alt.alternative is not None and f"pin {outsider} at {other:.0%} off" in alt.change
    assert next(i for i in alt.alternative.items if i.sku == outsider).discount == pytest.approx(other)


def test_a_pinned_discount_off_the_ladder_or_against_a_rule_is_named() -> None:
    cand = tiny(1, n=8)
    with pytest.raises(InvalidPlanInput, match=r"20% off.*not a step of the ladder \(10%, 30%, 50%\)"):
        optimize_plan(
            cand, PlanConstraints(slots=3, pinned_discounts={cand.skus[2]: 0.2}), ObjectiveWeights(), EXACT
        )
    with pytest.raises(ValueError, match="between 0 and 1"):
        PlanConstraints(pinned_discounts={cand.skus[2]: 40})
    with pytest.raises(ValueError, match="both pinned and excluded"):
        PlanConstraints(pinned_discounts={cand.skus[2]: 0.3}, excluded=[cand.skus[2]])
    cons = PlanConstraints(slots=3, min_item_margin=0.9, pinned_discounts={cand.skus[2]: 0.5})
    with pytest.raises(InfeasiblePlan) as info:
        optimize_plan(cand, cons, ObjectiveWeights(), EXACT)
    message = str(info.value)
    assert cand.skus[2] in message and "pinned at 50 % off" in message and "90% floor" in message
