"""The optimiser as one call: coefficients, model, solve, explanation -> :class:`PlanResult`."""

from __future__ import annotations

import time

from tools.optimizer.explain import binding_constraints, diagnose_infeasibility, explain_candidates
from tools.optimizer.model import (
    Candidates,
    CellCoefficients,
    ExtraRow,
    InfeasiblePlan,
    ObjectiveWeights,
    PlanConstraints,
    PlanResult,
    SolverOptions,
    SolveStats,
    build_problem,
    compute_coefficients,
)
from tools.optimizer.solve import plan_items, solve_problem


def solve_plan(
    cand: Candidates,
    constraints: PlanConstraints,
    weights: ObjectiveWeights,
    options: SolverOptions,
    *,
    extra_rows: list[ExtraRow] | None = None,
    coefficients: CellCoefficients | None = None,
) -> PlanResult:
    """Coefficients, problem, solve, explanation. Raises InfeasiblePlan with a plain diagnosis."""
    t0 = time.perf_counter()
    coef = coefficients or compute_coefficients(cand, constraints, weights)
    t1 = time.perf_counter()
    problem = build_problem(cand, coef, constraints, extra_rows)
    t2 = time.perf_counter()
    sol = solve_problem(problem, constraints, options)
    if sol is None:
        conflicts, message = diagnose_infeasibility(cand, coef, constraints, options, extra_rows)
        raise InfeasiblePlan(message, conflicts)
    items = plan_items(cand, coef, problem, sol.cells)
    t3 = time.perf_counter()
    reasons = explain_candidates(cand, coef, problem, sol, constraints) if options.explain else []
    if options.explain:
        by_sku = {r.sku: r.reason for r in reasons}
        for it in items:
            it.reason = by_sku[it.sku]
    binding = binding_constraints(problem, sol, sum(it.expected_revenue_cents for it in items))
    t4 = time.perf_counter()
    bound = sol.lp.bound
    value = sol.objective
    denom = max(abs(bound), 1e-9)
    gap = max(0.0, (bound - value) / denom) if bound != 0 or value != 0 else 0.0
    proven_gap = max(0.0, (sol.best_bound - value) / max(abs(sol.best_bound), 1e-9))
    stats = SolveStats(
        candidates=cand.n,
        valid_cells=int(problem.value.size),
        coupling_rows=len(problem.rows),
        working_set_skus=sol.lp.working,
        sifting_rounds=sol.lp.rounds,
        free_cells_exact=sol.free_cells,
        fixed_cells=sol.fixed_cells,
        lp_status=sol.lp.status,
        exact_status=sol.exact_status,
        time_coefficients_s=t1 - t0,
        time_build_s=t2 - t1,
        time_lp_s=sol.time_lp_s,
        time_exact_s=sol.time_exact_s,
        time_explain_s=t4 - t3,
        time_total_s=time.perf_counter() - t0,
    )
    return PlanResult(
        status="optimal" if sol.exact_status == "optimal" or proven_gap <= 1e-9 else "feasible",
        items=items,
        objective=value,
        expected_revenue_cents=sum(it.expected_revenue_cents for it in items),
        expected_profit_cents=sum(it.expected_profit_cents for it in items),
        expected_units=float(sum(it.expected_units for it in items)),
        markdown_cost_cents=sum(it.markdown_cost_cents for it in items),
        clearance_value_cents=sum(it.clearance_value_cents for it in items),
        allocated_units=sum(it.allocated_units for it in items),
        lp_bound=bound,
        gap=gap,
        best_bound=sol.best_bound,
        proven_gap=proven_gap,
        binding=binding,
        reasons=reasons,
        stats=stats,
        constraints=constraints,
        weights=weights,
        options=options,
        ladder=list(cand.ladder),
        demand_model_id=cand.grid.model_id,
    )


def optimize_plan(
    candidates: Candidates,
    constraints: PlanConstraints | None = None,
    objective: ObjectiveWeights | None = None,
    solver_options: SolverOptions | None = None,
    *,
    extra_rows: list[ExtraRow] | None = None,
) -> PlanResult:
    """Optimise the flash sale. Raises :class:`InfeasiblePlan` (with the conflicting constraint groups)."""
    return solve_plan(
        candidates,
        constraints or PlanConstraints(),
        objective or ObjectiveWeights(),
        solver_options or SolverOptions(),
        extra_rows=extra_rows,
    )
