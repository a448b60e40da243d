"""Solving the flash-sale model: LP relaxation on a working set, then an exact CP-SAT finish.

The model is a multiple-choice knapsack with a few coupling rows. Its LP relaxation leaves only a handful
of SKUs fractional, so the solve goes:

1. **LP by sifting.** Solve the LP (GLOP) on a working set of promising SKUs, price every other cell
   with the duals in one vectorised pass (``value - A.T @ y``), add SKUs whose best cell has a positive
   reduced value, repeat until none does. The Lagrangian value ``L(y)`` of the final duals is a valid
   upper bound on every plan (equal to the LP optimum at convergence).
2. **Rounding.** Keep the LP's integral SKUs and add fractional ones greedily while the rows allow.
3. **Reduced-cost fixing + CP-SAT.** With bound ``L`` and incumbent ``z``, a cell whose reduced-value
   loss exceeds ``L - z`` cannot be in a better plan and is fixed at 0; a SKU whose dual exceeds it must
   be chosen. CP-SAT (integer-scaled: cents) solves what is left exactly, with a hint from the rounding.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from ortools.linear_solver.python import model_builder_helper as mbh
from ortools.sat.python import cp_model

from tools.optimizer.model import (
    Candidates,
    CellCoefficients,
    PlanConstraints,
    PlanItemResult,
    Problem,
    SolverOptions,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_FULL_LP_SKUS = 3_000  # below this many eligible SKUs the LP sees all of them at once


@dataclass
class LpSolution:
    objective: float
    bound: float
    y: FloatArray
    x: FloatArray
    mu: FloatArray
    slack: float
    status: str
    rounds: int
    working: int


@dataclass
class Solution:
    cells: IntArray
    objective: float
    lp: LpSolution
    best_bound: float
    exact_status: str
    free_cells: int
    fixed_cells: int
    time_lp_s: float
    time_exact_s: float


# ---- helpers ---------------------------------------------------------------------------------------------


def segment_max(values: FloatArray, cell_sku: IntArray, n: int) -> FloatArray:
    """Max of ``values`` per SKU (cells are sorted by SKU); -inf for SKUs without cells."""
    out = np.full(n, -np.inf)
    if values.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, cell_sku[1:] != cell_sku[:-1]])
    out[cell_sku[starts]] = np.maximum.reduceat(values, starts)
    return out


def _row_tol(bound: FloatArray) -> FloatArray:
    return 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(bound), bound, 0.0))) + 1e-6


def activity(problem: Problem, cells: IntArray) -> FloatArray:
    if cells.size == 0:
        return np.zeros(len(problem.rows))
    return np.asarray(problem.A[:, cells].sum(axis=1)).reshape(-1)


def is_feasible(problem: Problem, cells: IntArray) -> bool:
    skus = problem.cell_sku[cells]
    if np.unique(skus).size != skus.size:
        return False
    if problem.pinned.any() and not np.all(np.isin(np.flatnonzero(problem.pinned), skus)):
        return False
    act = activity(problem, cells)
    lb, ub = problem.row_lb, problem.row_ub
    return bool(np.all(act >= lb - _row_tol(lb)) and np.all(act <= ub + _row_tol(ub)))


def lagrangian(problem: Problem, y: FloatArray) -> tuple[float, FloatArray, FloatArray]:
    """L(y), reduced values of all cells and the per-SKU best reduced value (mu)."""
    lb, ub = problem.row_lb, problem.row_ub
    y = np.where(np.isfinite(ub), np.maximum(y, 0.0), 0.0) + np.where(
        np.isfinite(lb), np.minimum(y, 0.0), 0.0
    )
    rv = problem.value - (problem.A.T @ y if problem.rows else 0.0)
    best = segment_max(rv, problem.cell_sku, problem.n)
    mu = np.where(problem.pinned, best, np.maximum(best, 0.0))
    if np.any(problem.pinned & ~np.isfinite(best)):
        return math.inf, rv, mu
    mu = np.where(np.isfinite(mu), mu, 0.0)
    side = np.where(y > 0, ub, np.where(y < 0, lb, 0.0))
    return float(np.sum(y * np.where(y != 0, side, 0.0)) + mu.sum()), rv, mu


# ---- 1. LP by sifting ------------------------------------------------------------------------------------


def _initial_working_set(problem: Problem, constraints: PlanConstraints) -> NDArray[np.bool_]:
    n = problem.n
    best = segment_max(problem.value, problem.cell_sku, n)
    eligible = np.isfinite(best)
    n_eligible = int(eligible.sum())
    if constraints.slots is None or n_eligible <= _FULL_LP_SKUS:
        return eligible
    size = min(n_eligible, 3 * constraints.slots + 500)
    work = np.zeros(n, dtype=bool)
    top = np.argpartition(-np.where(eligible, best, -np.inf), size - 1)[:size]
    work[top] = True
    work |= problem.pinned
    for r, info in enumerate(problem.rows):
        if info.group == "category_min":
            skus = np.unique(problem.cell_sku[problem.A[[r], :].indices])
            want = min(skus.size, 3 * int(info.lb) + 50)
            work[skus[np.argsort(-best[skus])[:want]]] = True
    return work & eligible


def solve_lp(
    problem: Problem, constraints: PlanConstraints, deadline: float, max_rounds: int = 40
) -> LpSolution:
    """The LP relaxation by sifting over SKUs; see the module docstring."""
    n, m = problem.n, len(problem.rows)
    cells_total = problem.value.size
    work = _initial_working_set(problem, constraints)
    lb_rows, ub_rows = problem.row_lb, problem.row_ub
    scale = float(np.max(np.abs(problem.value))) if cells_total else 1.0
    # Scale rows and objective to unit size (money rows are in cents, up to 1e9 at a million SKUs);
    # GLOP's dual simplex turns imprecise on the raw magnitudes.
    row_scale = np.ones(m)
    if m:
        csr = problem.A.tocsr()
        nonempty = np.diff(csr.indptr) > 0
        if nonempty.any():
            row_max = np.maximum.reduceat(np.abs(csr.data), csr.indptr[:-1][nonempty])
            row_scale[nonempty] = np.maximum(row_max, 1e-12)
    obj_scale = max(scale, 1e-12)
    big = 10.0
    tol = 1e-7 * (1.0 + scale)
    x_full = np.zeros(cells_total)
    y = np.zeros(m)
    mu_full = np.zeros(n)
    status = "not solved"
    slack_total = 0.0
    lp_obj = 0.0
    rounds = 0
    csr_a = problem.A.tocsr() if m else None
    for rounds in range(1, max_rounds + 1):  # noqa: B007  (the count is reported)
        cols = np.flatnonzero(work[problem.cell_sku])
        skus_w = np.flatnonzero(work)
        pos = np.full(n, -1, dtype=np.int64)
        pos[skus_w] = np.arange(skus_w.size)
        a_w = (sp.diags(1.0 / row_scale) @ problem.A[:, cols]).tocsc() if m else sp.csc_matrix((0, cols.size))
        a_w.data[np.abs(a_w.data) < 1e-9] = 0.0  # dust from cells that sell ~nothing
        a_w.eliminate_zeros()
        choice = sp.csc_matrix(
            (np.ones(cols.size), (pos[problem.cell_sku[cols]], np.arange(cols.size))),
            shape=(skus_w.size, cols.size),
        )
        lower = np.r_[lb_rows / row_scale, np.where(problem.pinned[skus_w], 1.0, -np.inf)]
        upper = np.r_[ub_rows / row_scale, np.ones(skus_w.size)]
        needs_slack = np.flatnonzero(np.isfinite(lower) & (lower > 0))
        slack = sp.csc_matrix(
            (np.ones(needs_slack.size), (needs_slack, np.arange(needs_slack.size))),
            shape=(m + skus_w.size, needs_slack.size),
        )
        matrix = sp.hstack([sp.vstack([a_w, choice]), slack]).tocsr()
        helper = mbh.ModelBuilderHelper()
        helper.fill_model_from_sparse_data(
            np.zeros(cols.size + needs_slack.size),  # type: ignore[arg-type]
            np.r_[np.ones(cols.size), np.full(needs_slack.size, np.inf)],
            np.r_[problem.value[cols] / obj_scale, np.full(needs_slack.size, -big)],
            lower,
            upper,
            matrix,
        )
        helper.set_maximize(True)
        solver = mbh.ModelSolverHelper("glop")
        solver.set_time_limit_in_seconds(max(1.0, deadline - time.perf_counter()))
        # Dual simplex: the columns are boxed in [0, 1] and start dual feasible; ~10x faster here.
        solver.set_solver_specific_parameters("use_dual_simplex: true")
        solver.solve(helper)
        status = solver.status().name.lower()
        if not solver.has_solution():
            break
        values = np.asarray(solver.variable_values())
        duals = np.asarray(solver.dual_values())
        y = duals[:m] * obj_scale / row_scale
        x_full[:] = 0.0
        x_full[cols] = np.clip(values[: cols.size], 0.0, 1.0)
        mu_full[:] = 0.0
        mu_full[skus_w] = duals[m:] * obj_scale
        slack_total = float(values[cols.size :].sum())
        lp_obj = float(problem.value[cols] @ x_full[cols])
        # Price every cell outside the working set.
        rv = problem.value - (csr_a.T @ y if csr_a is not None else 0.0)
        best_out = segment_max(rv, problem.cell_sku, n)
        best_out[work] = -np.inf
        entering = np.flatnonzero(best_out > tol)
        if entering.size == 0 or time.perf_counter() > deadline:
            break
        batch = max(500, skus_w.size // 2)
        if entering.size > batch:
            entering = entering[np.argpartition(-best_out[entering], batch - 1)[:batch]]
        work[entering] = True
    bound, _, _ = lagrangian(problem, y)
    return LpSolution(
        objective=lp_obj,
        bound=max(bound, lp_obj) if math.isfinite(bound) else bound,
        y=y,
        x=x_full,
        mu=mu_full,
        slack=slack_total,
        status=status,
        rounds=rounds,
        working=int(work.sum()),
    )


# ---- 2. rounding -----------------------------------------------------------------------------------------


def round_lp(problem: Problem, lp: LpSolution) -> IntArray | None:
    """A feasible plan near the LP optimum, or None when the greedy rounding cannot find one."""
    support = np.flatnonzero(lp.x > 1e-9)
    if support.size == 0:
        cells = np.zeros(0, dtype=np.int64)
        return cells if is_feasible(problem, cells) else None
    # The largest x of each SKU in the support.
    order = support[np.lexsort((-lp.x[support], problem.cell_sku[support]))]
    first = np.r_[True, problem.cell_sku[order][1:] != problem.cell_sku[order][:-1]]
    top = order[first]
    integral = top[lp.x[top] >= 1.0 - 1e-6]
    fractional = top[lp.x[top] < 1.0 - 1e-6]
    pinned_frac = fractional[problem.pinned[problem.cell_sku[fractional]]]
    chosen = np.r_[integral, pinned_frac].astype(np.int64)
    # Fill the room the fractional SKUs left, best reduced value first (LP duals price the rows).
    _, rv, _ = lagrangian(problem, lp.y)
    taken = np.zeros(problem.n, dtype=bool)
    taken[problem.cell_sku[chosen]] = True
    pool = np.flatnonzero(~taken[problem.cell_sku])
    if pool.size > 5000:
        pool = pool[np.argpartition(-rv[pool], 4999)[:5000]]
    pool = pool[np.lexsort((-problem.value[pool], -rv[pool]))]
    ub, lb = problem.row_ub, problem.row_lb
    act = activity(problem, chosen)
    cols = problem.A[:, pool].toarray() if len(problem.rows) else np.zeros((0, pool.size))
    tol_ub = ub + _row_tol(ub)
    for repair in (True, False):
        # First cover the shortfalls of lower-bounded rows (category minimums, margin), then fill.
        for j, c in enumerate(pool.tolist()):
            i = problem.cell_sku[c]
            if taken[i]:
                continue
            if repair:
                short = act < lb - _row_tol(lb)
                if not short.any():
                    break
                if not np.any(cols[short, j] > 0):
                    continue
            elif problem.value[c] <= 0:
                continue
            if np.all(act + cols[:, j] <= tol_ub):
                chosen = np.r_[chosen, c]
                act = act + cols[:, j]
                taken[i] = True
    if not np.all(act >= lb - _row_tol(lb)):
        return None
    return chosen if is_feasible(problem, chosen) else None


class _StopAtTarget(cp_model.CpSolverSolutionCallback):
    def __init__(self, target: float) -> None:
        super().__init__()
        self.target = target

    def on_solution_callback(self) -> None:
        if self.objective_value >= self.target:
            self.stop_search()


# ---- 3. exact finish -------------------------------------------------------------------------------------


def exact_finish(
    problem: Problem,
    lp: LpSolution,
    incumbent: IntArray | None,
    options: SolverOptions,
    deadline: float,
) -> tuple[IntArray | None, float, str, int, int]:
    """CP-SAT on the cells that reduced-cost fixing leaves undecided.

    Returns (cells or None, proven upper bound, CP-SAT status, free cells, cells fixed at 1).
    """
    bound, rv, mu = lagrangian(problem, lp.y)
    z_inc = float(problem.value[incumbent].sum()) if incumbent is not None else -math.inf
    if incumbent is not None and math.isfinite(bound):
        slack = bound - z_inc + 1e-9 * abs(bound) + 1.0
        loss = mu[problem.cell_sku] - rv
        free = np.flatnonzero(loss <= slack)
        forced = (mu > slack) | problem.pinned
    else:
        # No incumbent: search the LP's working set and support (the bound stays L(y)).
        in_lp = np.zeros(problem.n, dtype=bool)
        in_lp[problem.cell_sku[lp.x > 1e-9]] = True
        if lp.working <= _FULL_LP_SKUS or problem.n <= _FULL_LP_SKUS:
            in_lp[:] = True
        free = np.flatnonzero(in_lp[problem.cell_sku] | (rv >= mu[problem.cell_sku] - 1e-6))
        forced = problem.pinned.copy()
    # Forced SKUs with a single free cell are fixed at 1.
    f_sku = problem.cell_sku[free]
    counts = np.bincount(f_sku, minlength=problem.n)
    single = forced[f_sku] & (counts[f_sku] == 1)
    fixed = free[single]
    free = free[~single]
    if np.any(forced & (counts == 0)):
        return None, bound, "infeasible", 0, 0
    fixed_act = activity(problem, fixed)
    fixed_value = float(problem.value[fixed].sum())

    model = cp_model.CpModel()
    xs = [model.new_bool_var(f"x{c}") for c in free.tolist()]
    f_sku = problem.cell_sku[free]
    if free.size:
        order = np.argsort(f_sku, kind="stable")
        starts = np.flatnonzero(np.r_[True, f_sku[order][1:] != f_sku[order][:-1]])
        ends = np.r_[starts[1:], order.size]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            group = [xs[j] for j in order[s:e].tolist()]
            if forced[f_sku[order[s]]]:
                model.add_exactly_one(group)
            elif len(group) > 1:
                model.add_at_most_one(group)
    a_free = problem.A[:, free].tocsr() if len(problem.rows) else None
    for r, info in enumerate(problem.rows):
        assert a_free is not None
        row = a_free.getrow(r)
        idx, coefs = row.indices, row.data
        lo = info.lb - fixed_act[r]
        hi = info.ub - fixed_act[r]
        if np.isfinite(hi) and not np.isfinite(lo):
            ic = np.ceil(coefs - 1e-9).astype(np.int64)
            lo_i, hi_i = -(2**62), math.floor(hi + 1e-9)
        elif np.isfinite(lo) and not np.isfinite(hi):
            ic = np.floor(coefs + 1e-9).astype(np.int64)
            lo_i, hi_i = math.ceil(lo - 1e-9), 2**62
        else:
            ic = np.round(coefs).astype(np.int64)
            lo_i = math.ceil(lo - 1e-9) if np.isfinite(lo) else -(2**62)
            hi_i = math.floor(hi + 1e-9) if np.isfinite(hi) else 2**62
        if idx.size == 0:
            if lo_i > 0 or hi_i < 0:
                return None, bound, "infeasible", int(free.size), int(fixed.size)
            continue
        model.add_linear_constraint(
            cp_model.LinearExpr.weighted_sum([xs[j] for j in idx.tolist()], ic.tolist()), lo_i, hi_i
        )
    obj = np.round(problem.value[free]).astype(np.int64)
    model.maximize(cp_model.LinearExpr.weighted_sum(xs, obj.tolist()))
    if incumbent is not None:
        chosen = set(incumbent.tolist())
        for j, c in enumerate(free.tolist()):
            model.add_hint(xs[j], c in chosen)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = max(0.5, deadline - time.perf_counter())
    params.relative_gap_limit = options.relative_gap
    params.random_seed = options.random_seed
    if options.deterministic:
        params.num_workers = 1
        params.max_deterministic_time = max(0.5, options.time_limit_s)
    else:
        params.num_workers = options.num_workers
    callback = None
    if options.relative_gap > 0 and math.isfinite(bound):
        # Stop as soon as a plan is within the requested gap of the LP bound (CP-SAT's own bound on the
        # reduced problem is often weaker than the LP's, so its relative_gap_limit alone can take long).
        callback = _StopAtTarget(bound - options.relative_gap * abs(bound) - fixed_value)
    status = solver.solve(model, callback)
    name = solver.status_name(status).lower()
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if status == cp_model.INFEASIBLE and incumbent is None:
            return None, bound, name, int(free.size), int(fixed.size)
        return incumbent, bound, name, int(free.size), int(fixed.size)
    picked = free[np.asarray([solver.boolean_value(v) for v in xs], dtype=bool)] if xs else free
    cells = np.sort(np.r_[fixed, picked].astype(np.int64))
    value = float(problem.value[cells].sum())
    if incumbent is not None and (value < z_inc or not is_feasible(problem, cells)):
        cells, value = incumbent, z_inc
    elif not is_feasible(problem, cells):
        return None, bound, "infeasible", int(free.size), int(fixed.size)
    # Every plan better than the incumbent lies in the reduced problem, so the proven bound is the
    # reduced problem's bound (rounded objective: allow half a cent per free cell).
    cp_bound = fixed_value + solver.best_objective_bound + 0.5 * min(free.size, problem.n)
    proven = max(value, min(bound, max(cp_bound, z_inc)))
    if name == "optimal":
        proven = max(value, min(bound, cp_bound))
    return cells, proven, name, int(free.size), int(fixed.size)


# ---- orchestration ---------------------------------------------------------------------------------------


def solve_problem(problem: Problem, constraints: PlanConstraints, options: SolverOptions) -> Solution | None:
    """LP, rounding and exact finish; None when no feasible plan was found."""
    start = time.perf_counter()
    deadline = start + options.time_limit_s
    if np.any(problem.pinned & ~np.isin(np.arange(problem.n), problem.cell_sku)):
        return None
    lp = solve_lp(problem, constraints, deadline)
    t_lp = time.perf_counter() - start
    if lp.status not in ("optimal", "feasible") or lp.slack > 1e-6:
        return None
    incumbent = round_lp(problem, lp)
    t1 = time.perf_counter()
    best = lp.bound
    exact_status, free, fixed = "skipped", 0, 0
    cells = incumbent
    if options.exact_finish or incumbent is None:
        cells, best, exact_status, free, fixed = exact_finish(problem, lp, incumbent, options, deadline)
    if cells is None:
        return None
    value = float(problem.value[cells].sum())
    return Solution(
        cells=cells,
        objective=value,
        lp=lp,
        best_bound=max(value, min(best, lp.bound)),
        exact_status=exact_status,
        free_cells=free,
        fixed_cells=fixed,
        time_lp_s=t_lp,
        time_exact_s=time.perf_counter() - t1,
    )


def plan_items(
    cand: Candidates, coef: CellCoefficients, problem: Problem, cells: IntArray
) -> list[PlanItemResult]:
    items = []
    for c in cells.tolist():
        i, k = int(problem.cell_sku[c]), int(problem.cell_level[c])
        price = int(coef.prices[i, k])
        items.append(
            PlanItemResult(
                sku=cand.skus[i],
                category=str(cand.category[i]),
                brand=str(cand.brand[i]),
                level=k,
                discount=float(cand.ladder[k]),
                list_price_cents=int(cand.list_price_cents[i]),
                sale_price_cents=price,
                cost_cents=int(cand.cost_cents[i]),
                allocated_units=int(coef.allocated[i, k]),
                forecast_units=float(coef.mean_units[i, k]),
                expected_units=float(coef.units[i, k]),
                expected_revenue_cents=round(float(coef.revenue[i, k])),
                expected_profit_cents=round(float(coef.profit[i, k])),
                markdown_cost_cents=round(float(coef.markdown[i, k])),
                clearance_value_cents=round(float(coef.clearance[i, k])),
                objective_value=float(coef.value[i, k]),
                margin=(price - int(cand.cost_cents[i])) / price if price else 0.0,
                pinned=bool(problem.pinned[i]),
            )
        )
    items.sort(key=lambda it: -it.objective_value)
    return items
