"""Profit versus revenue (or sell-through) trade-offs by the epsilon-constraint method.

Anchor plans maximise profit alone and the secondary measure alone; between them, each point maximises
profit subject to ``secondary >= epsilon`` for a grid of epsilons. Dominated points are dropped, so the
frontier lists only plans where more of one measure costs some of the other.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
from pydantic import BaseModel

from tools.formatting import format_cents
from tools.optimizer.model import (
    Candidates,
    CellCoefficients,
    ExtraRow,
    InfeasiblePlan,
    ObjectiveWeights,
    PlanConstraints,
    PlanResult,
    SolverOptions,
    compute_coefficients,
)
from tools.optimizer.plan import solve_plan

Secondary = Literal["revenue", "sell_through"]


class ParetoPoint(BaseModel):
    """One plan of the frontier (money in cents)."""

    expected_profit_cents: int
    expected_revenue_cents: int
    sell_through: float
    expected_units: float
    epsilon: float | None
    skus: list[str]
    gap: float


class ParetoFrontier(BaseModel):
    secondary: Secondary
    points: list[ParetoPoint]


def _point(result: PlanResult, epsilon: float | None) -> ParetoPoint:
    return ParetoPoint(
        expected_profit_cents=result.expected_profit_cents,
        expected_revenue_cents=result.expected_revenue_cents,
        sell_through=result.sell_through,
        expected_units=result.expected_units,
        epsilon=epsilon,
        skus=result.skus,
        gap=result.gap,
    )


def _secondary(p: ParetoPoint, secondary: Secondary) -> float:
    return float(p.expected_revenue_cents) if secondary == "revenue" else p.sell_through


def non_dominated(points: list[ParetoPoint], secondary: Secondary) -> list[ParetoPoint]:
    """Points no other point beats on both profit and the secondary measure, by secondary ascending."""
    keep: list[ParetoPoint] = []
    for p in points:
        ps = _secondary(p, secondary)
        dominated = any(
            (q.expected_profit_cents >= p.expected_profit_cents and _secondary(q, secondary) >= ps)
            and (q.expected_profit_cents > p.expected_profit_cents or _secondary(q, secondary) > ps)
            for q in points
        )
        if not dominated and not any(
            k.expected_profit_cents == p.expected_profit_cents and _secondary(k, secondary) == ps
            for k in keep
        ):
            keep.append(p)
    return sorted(keep, key=lambda p: _secondary(p, secondary))


def pareto_frontier(
    candidates: Candidates,
    constraints: PlanConstraints | None = None,
    solver_options: SolverOptions | None = None,
    *,
    points: int = 7,
    secondary: Secondary = "revenue",
) -> ParetoFrontier:
    """Up to ``points`` non-dominated plans trading expected profit against revenue or sell-through."""
    if points < 2:
        raise ValueError("a frontier needs at least 2 points")
    constraints = constraints or PlanConstraints()
    options = (solver_options or SolverOptions()).model_copy(update={"explain": False})
    base = compute_coefficients(candidates, constraints, ObjectiveWeights(profit=1.0, clearance=0.0))
    profit_coef: CellCoefficients = replace(base, value=base.profit)

    def solve(coef: CellCoefficients, extra: list[ExtraRow] | None) -> PlanResult:
        return solve_plan(
            candidates,
            constraints,
            ObjectiveWeights(profit=1.0, clearance=0.0),
            options,
            extra_rows=extra,
            coefficients=coef,
        )

    best_profit = solve(profit_coef, None)
    if secondary == "revenue":
        other = solve(replace(base, value=base.revenue), None)
        lo, hi = float(best_profit.expected_revenue_cents), float(other.expected_revenue_cents)
    else:
        # The most sell-through any allowed plan can reach is the best single cell's.
        other = best_profit
        ratio = np.where(base.allocated > 0, base.units / np.maximum(base.allocated, 1), 0.0)
        lo, hi = best_profit.sell_through, float(np.max(np.where(base.valid, ratio, 0.0)))
    results: list[ParetoPoint] = [_point(best_profit, None)]
    if secondary == "revenue":
        results.append(_point(other, None))
    for eps in np.linspace(lo, hi, points)[1 : -1 if secondary == "revenue" else None].tolist():
        if secondary == "revenue":
            row = ExtraRow("min_revenue", base.revenue, lb=eps, label=f"revenue at least {format_cents(eps)}")
        else:
            row = ExtraRow(
                "min_sell_through",
                base.units - eps * base.allocated,
                lb=0.0,
                label=f"sell-through at least {eps:.0%}",
            )
        try:
            results.append(_point(solve(profit_coef, [row]), eps))
        except InfeasiblePlan:
            continue
    return ParetoFrontier(secondary=secondary, points=non_dominated(results, secondary))
