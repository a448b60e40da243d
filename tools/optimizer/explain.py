"""Explaining a plan: why each candidate is in or out, which constraints bind, why no plan exists.

Reasons use the LP duals: a SKU left out although it would add value was priced out by the coupling
constraint that charges it most (slots, a category or brand cap, the markdown budget, the plan margin);
a SKU with no allowed discount level is out because of the per-item rule that blocks each level.
Infeasibility is diagnosed by relaxing constraint groups one at a time (then in pairs) and re-solving.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tools.formatting import format_cents
from tools.optimizer.model import (
    CELL_RULES,
    GROUP_LABELS,
    BindingConstraint,
    CandidateReason,
    Candidates,
    CellCoefficients,
    ExtraRow,
    PlanConstraints,
    Problem,
    RowInfo,
    SolverOptions,
    build_problem,
)
from tools.optimizer.solve import Solution, activity, solve_problem


def _pct(d: float) -> str:
    return f"{round(d * 100):d} %"


def _levels(ladder: tuple[float, ...], levels: list[int]) -> str:
    ds = [round(ladder[k] * 100) for k in levels]
    if len(ds) == 1:
        return f"{ds[0]} % off"
    if ds == list(range(ds[0], ds[-1] + 1, ds[1] - ds[0])):
        return f"{ds[0]}–{ds[-1]} % off"
    return ", ".join(str(d) for d in ds) + " % off"


def blocked_reason(
    cand: Candidates, coef: CellCoefficients, constraints: PlanConstraints, i: int
) -> tuple[str, str]:
    """(code, text) for a SKU none of whose discount levels passes the per-item rules."""
    fails = {r: coef.rule_fails[r][i] for r in CELL_RULES}
    assert cand.safety_stock is not None and cand.competitor_price_cents is not None
    assert cand.price_floor_cents is not None
    if fails["excluded"].all():
        return "excluded", "out: excluded by the merchandiser"
    if fails["no_stock"].all():
        return "no_stock", (
            f"out: no stock above safety stock (on hand {int(cand.on_hand[i])}, "
            f"safety stock {int(cand.safety_stock[i])})"
        )
    by_rule: dict[str, list[int]] = {}
    for k in range(cand.k):
        rule = next(r for r in CELL_RULES if fails[r][k])
        by_rule.setdefault(rule, []).append(k)
    cost = int(cand.cost_cents[i])
    parts = []
    for rule, levels in by_rule.items():
        k0 = levels[0]
        price = int(coef.prices[i, k0])
        where = _levels(cand.ladder, levels) if len(by_rule) > 1 else f"{_pct(cand.ladder[k0])} off"
        if rule == "pinned_level":
            pinned_at = constraints.pinned_discounts.get(cand.skus[i])
            parts.append(f"it is pinned at {_pct(pinned_at or 0.0)} off")
        elif rule == "below_cost":
            parts.append(f"at {where} the price {format_cents(price)} is below its cost {format_cents(cost)}")
        elif rule == "below_floor":
            parts.append(
                f"at {where} the price {format_cents(price)} is below its price floor "
                f"{format_cents(int(cand.price_floor_cents[i]))}"
            )
        elif rule == "item_margin":
            margin = (price - cost) / price if price else 0.0
            parts.append(
                f"at {where} its margin ({margin:.1%}) falls below the "
                f"{constraints.min_item_margin:.0%} floor"
            )
        elif rule == "above_competitor":
            k_last = levels[-1]
            parts.append(
                f"even at {_levels(cand.ladder, [k_last]) if len(by_rule) == 1 else where} the price "
                f"{format_cents(int(coef.prices[i, k_last]))} is above the competitor's "
                f"{format_cents(int(cand.competitor_price_cents[i]))}"
            )
    code = next(iter(by_rule)) if len(by_rule) == 1 else "no_allowed_level"
    return code, "out: " + "; ".join(parts)


def explain_candidates(
    cand: Candidates,
    coef: CellCoefficients,
    problem: Problem,
    sol: Solution,
    constraints: PlanConstraints,
) -> list[CandidateReason]:
    """A reason for every candidate SKU, in candidate order."""
    n = cand.n
    chosen_cell = np.full(n, -1, dtype=np.int64)
    chosen_cell[problem.cell_sku[sol.cells]] = sol.cells
    has_cells = np.zeros(n, dtype=bool)
    has_cells[problem.cell_sku] = True
    y = sol.lp.y
    # Best cell by value of each SKU.
    m = problem.value.size
    order = np.lexsort((-problem.value, problem.cell_sku)) if m else np.zeros(0, dtype=np.int64)
    first = np.r_[True, problem.cell_sku[order][1:] != problem.cell_sku[order][:-1]] if m else order
    best_cell = np.full(n, -1, dtype=np.int64)
    best_cell[problem.cell_sku[order[first]]] = order[first]
    # Which coupling row charges each SKU's best cell most.
    charge_row = np.full(n, -1, dtype=np.int64)
    charge_val = np.zeros(n)
    out_skus = np.flatnonzero((chosen_cell < 0) & has_cells)
    if problem.rows and out_skus.size:
        cells = best_cell[out_skus]
        charges = problem.A[:, cells].multiply(y[:, None]).toarray()
        charge_row[out_skus] = np.argmax(charges, axis=0)
        charge_val[out_skus] = np.max(charges, axis=0)
    chosen_values = problem.value[sol.cells]
    weakest = float(chosen_values.min()) if chosen_values.size else 0.0
    weakest_sku = (
        cand.skus[int(problem.cell_sku[sol.cells[np.argmin(chosen_values)]])] if sol.cells.size else ""
    )
    # Weakest chosen per category / brand.
    weakest_in: dict[tuple[str, str], tuple[float, str]] = {}
    for c in sol.cells.tolist():
        i = int(problem.cell_sku[c])
        for key in (("category_max", str(cand.category[i])), ("brand_max", str(cand.brand[i]))):
            if key not in weakest_in or problem.value[c] < weakest_in[key][0]:
                weakest_in[key] = (float(problem.value[c]), cand.skus[i])

    reasons: list[CandidateReason] = []
    for i in range(n):
        sku = cand.skus[i]
        c = int(chosen_cell[i])
        if c >= 0:
            k = int(problem.cell_level[c])
            text = (
                f"in: {_pct(cand.ladder[k])} off at {format_cents(int(coef.prices[i, k]))}, allocate "
                f"{int(coef.allocated[i, k])} units, expect {coef.units[i, k]:.1f} sold, profit "
                f"{format_cents(coef.profit[i, k])}"
            )
            code = "pinned" if problem.pinned[i] else "chosen"
            reasons.append(
                CandidateReason(
                    sku=sku, selected=True, code=code, reason=text + (" (pinned)" if code == "pinned" else "")
                )
            )
            continue
        if not has_cells[i]:
            code, text = blocked_reason(cand, coef, constraints, i)
            reasons.append(CandidateReason(sku=sku, selected=False, code=code, reason=text))
            continue
        b = int(best_cell[i])
        k = int(problem.cell_level[b])
        v = float(problem.value[b])
        at = f"{_pct(cand.ladder[k])} off"
        if v <= 0:
            reasons.append(
                CandidateReason(
                    sku=sku,
                    selected=False,
                    code="no_value",
                    reason=f"out: no discount level adds value (best, {at}, is worth {format_cents(v)})",
                )
            )
            continue
        row = int(charge_row[i])
        info = problem.rows[row] if row >= 0 and charge_val[i] > 1e-9 else None
        if info is None:
            code = "integer_tradeoff"
            text = (
                f"out: lost the final whole-number trade-off; at {at} it is worth {format_cents(v)}, "
                f"{format_cents(weakest - v)} less than the weakest chosen SKU ({weakest_sku})"
                if v <= weakest
                else f"out: lost the final whole-number trade-off; at {at} it is worth {format_cents(v)} but "
                "uses more of the binding limits than the chosen SKUs"
            )
        elif info.group in ("slots", "category_max", "brand_max"):
            code = info.group
            name = info.name.split(":", 1)[1] if ":" in info.name else ""
            ref_v, ref_sku = (
                (weakest, weakest_sku)
                if info.group == "slots"
                else weakest_in.get((info.group, name), (weakest, weakest_sku))
            )
            what = {
                "slots": f"slot limit ({info.ub:.0f} slots)",
                "category_max": f"category {name!r} is limited to {info.ub:.0f} SKUs",
                "brand_max": f"brand {name!r} is capped at {info.ub:.0f} SKUs",
            }[info.group]
            if sol.cells.size == 0:
                text = f"out: {what}"
            elif v <= ref_v:
                text = (
                    f"out: {what}; at its best ({at}) it is worth {format_cents(ref_v - v)} less than the "
                    f"weakest chosen SKU ({ref_sku})"
                )
            else:
                text = (
                    f"out: {what}; at its best ({at}) it is worth {format_cents(v)} but would use more of "
                    "the markdown budget or margin than the chosen SKUs"
                )
        elif info.group == "budget":
            code = "budget"
            text = (
                f"out: markdown budget ({format_cents(info.ub)}); at {at} it would use "
                f"{format_cents(coef.markdown[i, k])} of budget for {format_cents(v)} of value, "
                "less value per "
                "budget than the chosen SKUs"
            )
        elif info.group == "plan_margin":
            code = "plan_margin"
            price = int(coef.prices[i, k])
            margin = (price - int(cand.cost_cents[i])) / price if price else 0.0
            text = (
                f"out: at {at} its margin ({margin:.1%}) would pull the plan below the "
                f"{(constraints.min_plan_margin or 0):.0%} plan margin floor"
            )
        elif info.group == "category_min":
            code = "category_min"
            text = f"out: its category's minimum is met by better SKUs; worth {format_cents(v)} at {at}"
        else:
            code = info.group
            text = f"out: held back by {info.label}; worth {format_cents(v)} at {at}"
        reasons.append(CandidateReason(sku=sku, selected=False, code=code, reason=text))
    return reasons


def marginal_value(info: RowInfo, dual: float, plan_revenue_cents: float) -> tuple[float, str]:
    """(objective cents, unit) of relaxing row ``info`` by one unit a merchandiser thinks in."""
    worth = abs(dual)
    name = info.name.split(":", 1)[1] if ":" in info.name else ""
    if info.group == "slots":
        return worth, "one more sale slot"
    if info.group == "category_max":
        return worth, f"one more SKU allowed in category {name!r}"
    if info.group == "category_min":
        return worth, f"one SKU fewer required in category {name!r}"
    if info.group == "brand_max":
        return worth, f"one more SKU allowed of brand {name!r}"
    if info.group == "budget":
        return worth * 100, "1.00 more markdown budget"
    if info.group == "plan_margin":
        return worth * 0.01 * plan_revenue_cents, "a plan margin floor one percentage point lower"
    return worth, f"one unit less of {info.label}"


def binding_constraints(
    problem: Problem, sol: Solution, plan_revenue_cents: float = 0.0
) -> list[BindingConstraint]:
    """Coupling rows that are tight in the plan or carry a non-zero LP dual, with their marginal values."""
    act = activity(problem, sol.cells)
    scale = 1.0 + float(np.max(np.abs(problem.value))) if problem.value.size else 1.0
    out = []
    for r, info in enumerate(problem.rows):
        dual = float(sol.lp.y[r]) if r < sol.lp.y.size else 0.0
        slack_ub = info.ub - act[r] if np.isfinite(info.ub) else np.inf
        slack_lb = act[r] - info.lb if np.isfinite(info.lb) else np.inf
        slack = float(min(slack_ub, slack_lb))
        tight = slack <= 1e-6 * max(1.0, abs(info.ub if np.isfinite(info.ub) else info.lb)) + 1e-6
        if abs(dual) > 1e-9 * scale or tight:
            value, unit = marginal_value(info, dual, plan_revenue_cents)
            out.append(
                BindingConstraint(
                    name=info.name,
                    group=info.group,
                    label=info.label,
                    activity=float(act[r]),
                    lower=float(info.lb) if np.isfinite(info.lb) else None,
                    upper=float(info.ub) if np.isfinite(info.ub) else None,
                    dual=dual,
                    slack=slack,
                    marginal_value_cents=round(value, 2),
                    marginal_unit=unit,
                )
            )
    out.sort(key=lambda b: -abs(b.dual))
    return out


# ---- infeasibility ---------------------------------------------------------------------------------------


def _group_label(group: str, cand: Candidates, constraints: PlanConstraints) -> str:
    base = GROUP_LABELS[group]
    if group == "slots":
        return f"{base} ({constraints.slots})"
    if group == "budget" and constraints.markdown_budget_cents is not None:
        return f"{base} ({format_cents(constraints.markdown_budget_cents)})"
    if group == "plan_margin":
        return f"{base} ({(constraints.min_plan_margin or 0):.0%})"
    if group == "item_margin":
        return f"{base} ({constraints.min_item_margin:.0%})"
    if group == "category_min":
        return f"{base} ({', '.join(f'{k} >= {v}' for k, v in constraints.category_min.items() if v > 0)})"
    if group == "pinned":
        return f"{base} ({', '.join(constraints.pinned[:5])}{'...' if len(constraints.pinned) > 5 else ''})"
    return base


def _relaxations(
    cand: Candidates, constraints: PlanConstraints
) -> dict[str, tuple[dict[str, Any], frozenset[str]]]:
    """Each active constraint group and how to relax it: (constraint updates, per-cell rules to ignore)."""
    assert cand.price_floor_cents is not None
    out: dict[str, tuple[dict[str, Any], frozenset[str]]] = {}
    if constraints.slots is not None:
        out["slots"] = ({"slots": None}, frozenset())
    if any(v > 0 for v in constraints.category_min.values()):
        out["category_min"] = ({"category_min": {}}, frozenset())
    if constraints.category_max or constraints.default_category_max is not None:
        out["category_max"] = ({"category_max": {}, "default_category_max": None}, frozenset())
    if constraints.brand_max or constraints.default_brand_max is not None:
        out["brand_max"] = ({"brand_max": {}, "default_brand_max": None}, frozenset())
    if constraints.markdown_budget_cents is not None:
        out["budget"] = ({"markdown_budget_cents": None}, frozenset())
    if constraints.min_plan_margin is not None:
        out["plan_margin"] = ({"min_plan_margin": None}, frozenset())
    if constraints.min_item_margin > 0:
        out["item_margin"] = ({}, frozenset({"item_margin"}))
    if np.any(cand.price_floor_cents > 0):
        out["price_floor"] = ({}, frozenset({"below_floor"}))
    if constraints.match_competitor:
        out["competitor"] = ({}, frozenset({"above_competitor"}))
    if constraints.pinned:
        out["pinned"] = ({"pinned": [], "pinned_discounts": {}}, frozenset())
    return out


def _feasible(
    cand: Candidates,
    coef: CellCoefficients,
    constraints: PlanConstraints,
    options: SolverOptions,
    extra_rows: list[ExtraRow] | None,
    *,
    ignore: frozenset[str],
) -> bool:
    problem = build_problem(cand, coef, constraints, extra_rows, ignore_rules=ignore)
    quick = options.model_copy(update={"time_limit_s": min(options.time_limit_s, 10.0)})
    return solve_problem(problem, constraints, quick) is not None


def diagnose_infeasibility(
    cand: Candidates,
    coef: CellCoefficients,
    constraints: PlanConstraints,
    options: SolverOptions,
    extra_rows: list[ExtraRow] | None = None,
) -> tuple[list[str], str]:
    """(conflicting groups, plain message) for a constraint set with no feasible plan."""
    idx = cand.index()
    blocked_pins = [s for s in constraints.pinned if not coef.valid[idx[s]].any()]
    if blocked_pins:
        sku = blocked_pins[0]
        code, text = blocked_reason(cand, coef, constraints, idx[sku])
        rule_group = {
            "below_floor": "price_floor",
            "item_margin": "item_margin",
            "above_competitor": "competitor",
            "no_stock": "stock",
        }.get(code, code)
        return ["pinned", rule_group], (
            f"No plan is possible: SKU {sku} is pinned but cannot go on sale ({text.removeprefix('out: ')}). "
            "Unpin it or relax that rule."
        )
    groups = _relaxations(cand, constraints)
    names = list(groups)

    def relaxed(keys: tuple[str, ...]) -> bool:
        update: dict[str, Any] = {}
        ignore: frozenset[str] = frozenset()
        for key in keys:
            upd, ign = groups[key]
            update.update(upd)
            ignore = ignore | ign
        return _feasible(
            cand, coef, constraints.model_copy(update=update), options, extra_rows, ignore=ignore
        )

    singles = [g for g in names if relaxed((g,))]
    if singles:
        labels = [_group_label(g, cand, constraints) for g in singles]
        if len(singles) == 1:
            msg = (
                f"No plan meets all the constraints: {labels[0]} cannot be met together with the rest; "
                "relaxing it makes a plan possible."
            )
        else:
            msg = (
                "No plan meets all the constraints: "
                + " and ".join([", ".join(labels[:-1]), labels[-1]])
                + " conflict; relaxing any one of them makes a plan possible."
            )
        return singles, msg
    pairs = [(a, b) for j, a in enumerate(names) for b in names[j + 1 :] if relaxed((a, b))]
    if pairs:
        conflicts = sorted({g for p in pairs for g in p})
        text = "; ".join(
            f"{_group_label(p, cand, constraints)} with {_group_label(q, cand, constraints)}"
            for p, q in pairs[:4]
        )
        return conflicts, (
            f"No plan meets all the constraints: no single constraint is to blame, but relaxing two together "
            f"makes a plan possible: {text}."
        )
    return names, (
        "No plan meets all the constraints, even with any two constraint groups relaxed: check the pinned "
        "SKUs, the category minimums and whether enough candidates have stock and an allowed price."
    )
