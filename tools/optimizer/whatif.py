"""What-if: the optimal plan beside an alternative (a SKU pinned or excluded, other constraints)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tools.optimizer.model import (
    Candidates,
    InfeasiblePlan,
    ObjectiveWeights,
    PlanConstraints,
    PlanResult,
    SolverOptions,
)
from tools.optimizer.plan import optimize_plan


class WhatIfResult(BaseModel):
    """The base plan, the alternative, and how they differ (money in cents)."""

    change: str
    base: PlanResult
    alternative: PlanResult | None
    infeasible_reason: str | None = None
    delta_objective: float = 0.0
    delta_profit_cents: int = 0
    delta_revenue_cents: int = 0
    added: list[str] = []
    removed: list[str] = []
    changed_discounts: dict[str, tuple[float, float]] = {}


def apply_change(
    constraints: PlanConstraints,
    *,
    pin: str | None = None,
    pin_discount: float | None = None,
    exclude: str | None = None,
    changes: dict[str, Any] | None = None,
) -> tuple[PlanConstraints, str]:
    """``constraints`` with one SKU pinned (at ``pin_discount``, or at a discount the solver picks) or
    excluded, or fields changed, and the change in words."""
    update: dict[str, Any] = dict(changes or {})
    words = [f"{k}={v}" for k, v in update.items()]
    if pin_discount is not None and pin is None:
        raise ValueError("pin_discount needs the SKU to pin (pin)")
    if pin is not None:
        update["pinned"] = [*[s for s in constraints.pinned if s != pin], pin]
        update["excluded"] = [s for s in constraints.excluded if s != pin]
        discounts = {s: d for s, d in constraints.pinned_discounts.items() if s != pin}
        if pin_discount is not None:
            discounts[pin] = pin_discount
        update["pinned_discounts"] = discounts
        words.append(f"pin {pin}" + (f" at {pin_discount:.0%} off" if pin_discount is not None else ""))
    if exclude is not None:
        update["excluded"] = [
            *[s for s in update.get("excluded", constraints.excluded) if s != exclude],
            exclude,
        ]
        update["pinned"] = [s for s in update.get("pinned", constraints.pinned) if s != exclude]
        update["pinned_discounts"] = {
            s: d
            for s, d in update.get("pinned_discounts", constraints.pinned_discounts).items()
            if s != exclude
        }
        words.append(f"exclude {exclude}")
    changed = PlanConstraints.model_validate({**constraints.model_dump(), **update})
    return changed, ", ".join(words) or "no change"


def plan_difference(
    change: str, base: PlanResult, alternative: PlanResult | None, infeasible_reason: str | None = None
) -> WhatIfResult:
    """How ``alternative`` differs from ``base`` (None: no plan meets the changed constraints)."""
    if alternative is None:
        return WhatIfResult(change=change, base=base, alternative=None, infeasible_reason=infeasible_reason)
    base_lv = {it.sku: it.discount for it in base.items}
    alt_lv = {it.sku: it.discount for it in alternative.items}
    return WhatIfResult(
        change=change,
        base=base,
        alternative=alternative,
        delta_objective=alternative.objective - base.objective,
        delta_profit_cents=alternative.expected_profit_cents - base.expected_profit_cents,
        delta_revenue_cents=alternative.expected_revenue_cents - base.expected_revenue_cents,
        added=sorted(set(alt_lv) - set(base_lv)),
        removed=sorted(set(base_lv) - set(alt_lv)),
        changed_discounts={
            s: (base_lv[s], alt_lv[s]) for s in sorted(set(base_lv) & set(alt_lv)) if base_lv[s] != alt_lv[s]
        },
    )


def what_if(
    candidates: Candidates,
    constraints: PlanConstraints,
    objective: ObjectiveWeights | None = None,
    solver_options: SolverOptions | None = None,
    *,
    base: PlanResult | None = None,
    pin: str | None = None,
    pin_discount: float | None = None,
    exclude: str | None = None,
    changes: dict[str, Any] | None = None,
) -> WhatIfResult:
    """Re-solve with one SKU pinned (at ``pin_discount``, or at a discount the solver picks) or excluded,
    or constraint fields changed, and report the difference."""
    weights = objective or ObjectiveWeights()
    options = solver_options or SolverOptions()
    if base is None:
        base = optimize_plan(candidates, constraints, weights, options)
    alt_constraints, change = apply_change(
        constraints, pin=pin, pin_discount=pin_discount, exclude=exclude, changes=changes
    )
    try:
        alt = optimize_plan(candidates, alt_constraints, weights, options)
    except InfeasiblePlan as exc:
        return plan_difference(change, base, None, str(exc))
    return plan_difference(change, base, alt)
