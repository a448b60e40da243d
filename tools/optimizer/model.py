"""The optimiser's model: typed inputs and outputs, per-cell coefficients and the flat problem.

Model (a multiple-choice knapsack with a few coupling constraints):

* ``x[i, k]`` in {0, 1}: SKU ``i`` on sale at discount level ``k`` of the ladder; at most one level per SKU
  (exactly one for pinned SKUs).
* Objective: ``w_rev * revenue + w_profit * gross profit + w_clear * clearance value``, each (i, k)
  coefficient computed with the stock cap ``E[min(D, a)]`` where ``a`` is the stock allocated to the SKU
  at that price: the newsvendor quantile of its demand distribution, never more than on-hand minus safety
  stock.
* Coupling constraints: sale slots, per-category minimum and maximum, brand caps, total markdown budget,
  whole-plan minimum margin. Per-cell rules (price at or above cost and any floor, per-item minimum margin,
  optionally at or below the competitor's price, stock above safety stock, excluded SKUs) remove cells.

This module holds the typed inputs and outputs and the vectorised coefficient building;
:mod:`tools.optimizer.solve` solves the model (LP relaxation on a working set + exact CP-SAT finish),
:mod:`tools.optimizer.explain` explains it (reasons, binding constraints, infeasibility diagnosis),
:mod:`tools.optimizer.plan` composes the two into :func:`~tools.optimizer.plan.optimize_plan`,
:mod:`tools.optimizer.whatif` compares a plan with an alternative and :mod:`tools.optimizer.pareto` traces
the profit / revenue frontier.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from db.errors import FlashSaleError
from tools.forecast import ForecastGrid, allocation_and_sales
from tools.formatting import format_cents

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

DEFAULT_LADDER: tuple[float, ...] = (0.10, 0.20, 0.30, 0.40, 0.50, 0.60)

#: Per-unit value of clearing excess stock, as a fraction of cost (holding and later-markdown cost avoided).
CLEARANCE_VALUE_OF_COST = 0.2

#: Per-cell rules, in the order a reason names them.
CELL_RULES: tuple[str, ...] = (
    "excluded",
    "pinned_level",
    "no_stock",
    "below_cost",
    "below_floor",
    "item_margin",
    "above_competitor",
)


class InvalidPlanInput(FlashSaleError):
    """The optimiser's inputs are malformed (shapes, ladder, unknown SKUs)."""


def ladder_level(ladder: Sequence[float], discount: float, sku: str) -> int:
    """The ladder step of ``discount`` for ``sku``'s pin; :class:`InvalidPlanInput` when it is none."""
    for k, step in enumerate(ladder):
        if abs(step - discount) < 1e-6:
            return k
    steps = ", ".join(f"{d:.0%}" for d in ladder)
    raise InvalidPlanInput(f"{sku} pinned at {discount:.0%} off: that is not a step of the ladder ({steps})")


def _other_levels(cand: Candidates, pinned_discounts: dict[str, float]) -> BoolArray:
    """Per cell: the SKU is pinned at another discount than this cell's."""
    out = np.zeros((cand.n, cand.k), dtype=bool)
    idx = cand.index()
    for sku, discount in pinned_discounts.items():
        if sku not in idx:
            raise InvalidPlanInput(f"pinned SKU {sku} is not a candidate")
        out[idx[sku]] = True
        out[idx[sku], ladder_level(cand.ladder, discount, sku)] = False
    return out


class InfeasiblePlan(FlashSaleError):
    """No plan satisfies the constraints; ``conflicts`` names the constraint groups that clash."""

    def __init__(self, message: str, conflicts: list[str] | None = None) -> None:
        super().__init__(message)
        self.conflicts: list[str] = list(conflicts or [])


# ---- inputs ----------------------------------------------------------------------------------------------


def ladder_prices(list_price_cents: NDArray[Any], ladder: tuple[float, ...] | list[float]) -> IntArray:
    """Sale prices (n, k) in cents: the list price less each discount of the ladder, rounded to a cent."""
    lp = np.asarray(list_price_cents, dtype=np.float64).reshape(-1, 1)
    disc = np.asarray(ladder, dtype=np.float64).reshape(1, -1)
    return np.asarray(np.round(lp * (1.0 - disc)), dtype=np.int64)


def validate_ladder(ladder: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    values = tuple(float(d) for d in ladder)
    if not values:
        raise InvalidPlanInput("the discount ladder is empty; give at least one discount, e.g. 0.1,0.2,0.3")
    if any(not 0.0 < d < 1.0 for d in values):
        raise InvalidPlanInput(f"discounts must be fractions strictly between 0 and 1, got {list(values)}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise InvalidPlanInput(f"the discount ladder must be strictly increasing, got {list(values)}")
    return values


@dataclass(frozen=True)
class Candidates:
    """The SKUs that may go on sale, with their demand forecast at every ladder price.

    Per-SKU arrays have length ``n``; ``grid`` holds the forecast at ``ladder_prices(list_price, ladder)``.
    ``competitor_price_cents`` and ``price_floor_cents`` use 0 for "none". ``excess_units`` is the stock
    above what regular sales will absorb; selling it earns ``clearance_value_cents`` per unit (avoided
    holding and markdown cost) on top of revenue and profit.
    """

    skus: list[str]
    category: NDArray[np.str_]
    brand: NDArray[np.str_]
    cost_cents: IntArray
    list_price_cents: IntArray
    on_hand: IntArray
    grid: ForecastGrid
    ladder: tuple[float, ...] = DEFAULT_LADDER
    safety_stock: IntArray | None = None
    competitor_price_cents: IntArray | None = None
    price_floor_cents: IntArray | None = None
    excess_units: FloatArray | None = None
    clearance_value_cents: FloatArray | None = None
    titles: list[str] | None = None
    max_units: IntArray | None = None  # most units allocated per SKU (0: no limit), e.g. the forecast guard's
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.skus)
        if n == 0:
            raise InvalidPlanInput("no candidate SKUs: nothing to plan")
        if len(set(self.skus)) != n:
            raise InvalidPlanInput("candidate SKUs must be unique")
        object.__setattr__(self, "ladder", validate_ladder(self.ladder))

        def arr(name: str, value: Any, dtype: Any, default: Any) -> None:
            a = np.full(n, default, dtype=dtype) if value is None else np.asarray(value, dtype=dtype)
            if a.shape != (n,):
                raise InvalidPlanInput(f"{name} must have one value per SKU ({n}), got shape {a.shape}")
            object.__setattr__(self, name, a)

        arr("category", self.category, np.str_, "")
        arr("brand", self.brand, np.str_, "")
        arr("cost_cents", self.cost_cents, np.int64, 0)
        arr("list_price_cents", self.list_price_cents, np.int64, 0)
        arr("on_hand", self.on_hand, np.int64, 0)
        arr("safety_stock", self.safety_stock, np.int64, 0)
        arr("competitor_price_cents", self.competitor_price_cents, np.int64, 0)
        arr("price_floor_cents", self.price_floor_cents, np.int64, 0)
        arr("excess_units", self.excess_units, np.float64, 0.0)
        arr("clearance_value_cents", self.clearance_value_cents, np.float64, 0.0)
        arr("max_units", self.max_units, np.int64, 0)
        if np.any(self.list_price_cents <= 0):
            raise InvalidPlanInput("every candidate needs a positive list price")
        if np.any(self.cost_cents < 0):
            raise InvalidPlanInput("costs must not be negative")
        if self.grid.skus != list(self.skus):
            raise InvalidPlanInput("the forecast grid's SKUs must match the candidates, in the same order")
        expected = ladder_prices(self.list_price_cents, self.ladder)
        if self.grid.prices_cents.shape != expected.shape or not np.array_equal(
            self.grid.prices_cents, expected
        ):
            raise InvalidPlanInput(
                "the forecast grid's prices must be the ladder prices (ladder_prices(list_price, ladder))"
            )

    @property
    def n(self) -> int:
        return len(self.skus)

    @property
    def k(self) -> int:
        return len(self.ladder)

    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.skus)}


class PlanConstraints(BaseModel):
    """The merchandiser's constraints. Money in cents; margins as fractions of the sale price."""

    model_config = ConfigDict(extra="forbid")

    slots: int | None = Field(20, ge=0, description="Most SKUs in the sale (None: no limit).")
    category_min: dict[str, int] = Field(default_factory=dict, description="Least SKUs per category.")
    category_max: dict[str, int] = Field(default_factory=dict, description="Most SKUs per category.")
    default_category_max: int | None = Field(
        None, ge=0, description="Most SKUs of any category not named in category_max."
    )
    brand_max: dict[str, int] = Field(default_factory=dict, description="Most SKUs per brand.")
    default_brand_max: int | None = Field(None, ge=0, description="Most SKUs of any brand not named.")
    markdown_budget_cents: int | None = Field(
        None, ge=0, description="Most expected markdown (list price - sale price) x units, in cents."
    )
    min_item_margin: float = Field(
        0.0, ge=-1.0, lt=1.0, description="Least (price - cost) / price of each item on sale."
    )
    min_plan_margin: float | None = Field(
        None, ge=-1.0, lt=1.0, description="Least expected profit / expected revenue over the plan."
    )
    match_competitor: bool = Field(False, description="Sale price at or below the competitor's price.")
    service_level: float = Field(
        0.8, gt=0.0, lt=1.0, description="Newsvendor quantile of demand allocated to each chosen SKU."
    )
    pinned: list[str] = Field(default_factory=list, description="SKUs that must be in the sale.")
    pinned_discounts: dict[str, float] = Field(
        default_factory=dict,
        description="SKUs that must be in the sale at this discount (a ladder step, 0.4 = 40 % off); "
        "each is pinned too.",
    )
    excluded: list[str] = Field(default_factory=list, description="SKUs that must stay out.")

    @field_validator("category_min", "category_max", "brand_max")
    @classmethod
    def _non_negative(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if n < 0}
        if bad:
            raise ValueError(f"limits must not be negative: {bad}")
        return v

    @field_validator("pinned_discounts")
    @classmethod
    def _fractions(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: d for k, d in v.items() if not 0.0 <= d < 1.0}
        if bad:
            raise ValueError(f"a pinned discount is a fraction between 0 and 1 (0.4 = 40 % off): {bad}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PlanConstraints:
        self.pinned = [*self.pinned, *(s for s in self.pinned_discounts if s not in self.pinned)]
        both = sorted(set(self.pinned) & set(self.excluded))
        if both:
            raise ValueError(f"SKUs both pinned and excluded: {', '.join(both)}")
        return self


class ObjectiveWeights(BaseModel):
    """Weights of the objective's parts (each in cents of expected value)."""

    model_config = ConfigDict(extra="forbid")

    revenue: float = Field(0.0, ge=0.0, description="Weight of expected revenue.")
    profit: float = Field(1.0, ge=0.0, description="Weight of expected gross profit.")
    clearance: float = Field(1.0, ge=0.0, description="Weight of the clearance value of excess stock.")

    @model_validator(mode="after")
    def _some_weight(self) -> ObjectiveWeights:
        if self.revenue == 0 and self.profit == 0 and self.clearance == 0:
            raise ValueError("at least one objective weight must be positive")
        return self


class SolverOptions(BaseModel):
    """How hard to try. ``deterministic`` gives the same plan for the same inputs on every run."""

    model_config = ConfigDict(extra="forbid")

    time_limit_s: float = Field(60.0, gt=0, description="Wall-clock limit of the whole solve.")
    relative_gap: float = Field(1e-3, ge=0.0, description="Stop once within this gap of the bound.")
    deterministic: bool = Field(False, description="Single-threaded, seeded, reproducible search.")
    num_workers: int = Field(2, ge=1, description="CP-SAT search workers when not deterministic.")
    random_seed: int = Field(0, description="Seed of the CP-SAT search.")
    exact_finish: bool = Field(True, description="Run CP-SAT on the undecided remainder of the LP.")
    explain: bool = Field(True, description="Compute a reason for every candidate SKU.")


# ---- coefficients ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellCoefficients:
    """Per-(SKU, level) expected outcomes, all (n, k); money in (fractional) cents."""

    prices: IntArray
    allocated: IntArray
    mean_units: FloatArray
    units: FloatArray
    revenue: FloatArray
    profit: FloatArray
    markdown: FloatArray
    clearance_units: FloatArray
    clearance: FloatArray
    value: FloatArray
    rule_fails: dict[str, BoolArray]
    valid: BoolArray


def compute_coefficients(
    cand: Candidates, constraints: PlanConstraints, weights: ObjectiveWeights
) -> CellCoefficients:
    """Vectorised coefficients and per-cell rule checks for every (SKU, ladder level)."""
    grid = cand.grid
    n, k = grid.shape
    prices = grid.prices_cents
    assert cand.safety_stock is not None
    assert cand.competitor_price_cents is not None and cand.price_floor_cents is not None
    assert cand.excess_units is not None and cand.clearance_value_cents is not None
    available = np.maximum(cand.on_hand - cand.safety_stock, 0)
    assert cand.max_units is not None
    available = np.where(cand.max_units > 0, np.minimum(available, cand.max_units), available)
    with_excess = weights.clearance > 0 and bool(np.any(cand.excess_units > 0))
    allocated, units, clearance_units = allocation_and_sales(
        grid, constraints.service_level, available, cand.excess_units if with_excess else None
    )
    pf = prices.astype(np.float64)
    cost = cand.cost_cents.astype(np.float64)[:, None]
    revenue = pf * units
    profit = (pf - cost) * units
    markdown = (cand.list_price_cents.astype(np.float64)[:, None] - pf) * units
    clearance = clearance_units * cand.clearance_value_cents[:, None]
    value = weights.revenue * revenue + weights.profit * profit + weights.clearance * clearance

    excluded = np.zeros(n, dtype=bool)
    if constraints.excluded:
        idx = cand.index()
        excluded[[idx[s] for s in constraints.excluded if s in idx]] = True
    comp = cand.competitor_price_cents[:, None]
    floor = cand.price_floor_cents[:, None]
    fails: dict[str, BoolArray] = {
        "excluded": np.broadcast_to(excluded[:, None], (n, k)),
        "pinned_level": _other_levels(cand, constraints.pinned_discounts),
        "no_stock": np.broadcast_to((available < 1)[:, None], (n, k)),
        "below_cost": prices < cand.cost_cents[:, None],
        "below_floor": (floor > 0) & (prices < floor),
        "item_margin": (pf - cost) < constraints.min_item_margin * pf - 1e-9,
        "above_competitor": (comp > 0) & (prices > comp)
        if constraints.match_competitor
        else np.zeros((n, k), dtype=bool),
    }
    valid = ~np.logical_or.reduce([fails[r] for r in CELL_RULES])
    return CellCoefficients(
        prices=prices,
        allocated=allocated,
        mean_units=grid.mean,
        units=units,
        revenue=revenue,
        profit=profit,
        markdown=markdown,
        clearance_units=clearance_units,
        clearance=clearance,
        value=value,
        rule_fails=fails,
        valid=valid,
    )


# ---- the flat problem the solver sees --------------------------------------------------------------------


@dataclass(frozen=True)
class RowInfo:
    """One coupling constraint: ``lb <= sum(A[row] * x) <= ub``."""

    name: str
    group: str
    lb: float
    ub: float
    label: str


@dataclass
class Problem:
    """Valid cells flattened; coupling rows as a sparse matrix (rows x cells)."""

    n: int
    k: int
    cell_sku: IntArray
    cell_level: IntArray
    value: FloatArray
    A: sp.csc_matrix
    rows: list[RowInfo]
    pinned: BoolArray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def row_lb(self) -> FloatArray:
        return np.array([r.lb for r in self.rows], dtype=np.float64)

    @property
    def row_ub(self) -> FloatArray:
        return np.array([r.ub for r in self.rows], dtype=np.float64)


@dataclass(frozen=True)
class ExtraRow:
    """An additional constraint on per-cell coefficients (used by the Pareto frontier)."""

    name: str
    coef: FloatArray
    lb: float = -np.inf
    ub: float = np.inf
    label: str = ""


GROUP_LABELS: dict[str, str] = {
    "slots": "the slot limit",
    "category_min": "the category minimums",
    "category_max": "the category maximums",
    "brand_max": "the brand caps",
    "budget": "the markdown budget",
    "plan_margin": "the plan's minimum margin",
    "item_margin": "the per-item minimum margin",
    "price_floor": "the price floors",
    "competitor": "the competitor price match",
    "pinned": "the pinned SKUs",
    "stock": "the safety stock",
}


def build_problem(
    cand: Candidates,
    coef: CellCoefficients,
    constraints: PlanConstraints,
    extra_rows: list[ExtraRow] | None = None,
    ignore_rules: frozenset[str] = frozenset(),
) -> Problem:
    """Flatten the valid cells and build the coupling rows, without any Python loop over SKUs.

    ``ignore_rules`` drops per-cell rules (e.g. ``{"item_margin"}``) to test whether they cause infeasibility.
    """
    n, k = cand.n, cand.k
    idx = cand.index()
    unknown = [s for s in [*constraints.pinned, *constraints.excluded] if s not in idx]
    if unknown:
        raise InvalidPlanInput(f"pinned/excluded SKUs are not candidates: {', '.join(sorted(unknown)[:10])}")
    pinned = np.zeros(n, dtype=bool)
    if constraints.pinned:
        pinned[[idx[s] for s in constraints.pinned]] = True

    valid = coef.valid
    if ignore_rules:
        valid = ~np.logical_or.reduce([coef.rule_fails[r] for r in CELL_RULES if r not in ignore_rules])
    flat = np.flatnonzero(valid.reshape(-1))
    cell_sku = (flat // k).astype(np.int64)
    cell_level = (flat % k).astype(np.int64)
    m = flat.size
    cols_all = np.arange(m, dtype=np.int64)
    row_ids: list[IntArray] = []
    col_ids: list[IntArray] = []
    data: list[FloatArray] = []
    rows: list[RowInfo] = []

    def add(info: RowInfo, cols: IntArray, vals: FloatArray) -> None:
        row_ids.append(np.full(cols.size, len(rows), dtype=np.int64))
        col_ids.append(cols)
        data.append(vals)
        rows.append(info)

    ones = np.ones(m)
    if constraints.slots is not None:
        add(
            RowInfo("slots", "slots", -np.inf, float(constraints.slots), f"{constraints.slots} sale slots"),
            cols_all,
            ones,
        )

    def group_rows(
        values: NDArray[np.str_], explicit: dict[str, int], default: int | None, group: str, noun: str
    ) -> None:
        names, inverse = np.unique(values, return_inverse=True)
        cell_code = inverse[cell_sku]
        limits: dict[int, int] = {}
        for code, name in enumerate(names.tolist()):
            if name in explicit:
                limits[code] = explicit[name]
            elif default is not None and group.endswith("max"):
                limits[code] = default
        if not limits:
            return
        order = np.argsort(cell_code, kind="stable")
        bounds = np.searchsorted(cell_code[order], np.arange(len(names) + 1))
        for code, limit in limits.items():
            cols = order[bounds[code] : bounds[code + 1]]
            name = str(names[code])
            if group.endswith("min"):
                info = RowInfo(
                    f"{group}:{name}", group, float(limit), np.inf, f"at least {limit} {noun} {name!r}"
                )
            else:
                info = RowInfo(
                    f"{group}:{name}", group, -np.inf, float(limit), f"at most {limit} {noun} {name!r}"
                )
            add(info, cols.astype(np.int64), np.ones(cols.size))
        missing = [c for c in explicit if c not in set(names.tolist())]
        if missing and group.endswith("min"):
            for name in missing:
                if explicit[name] > 0:
                    add(
                        RowInfo(
                            f"{group}:{name}",
                            group,
                            float(explicit[name]),
                            np.inf,
                            f"at least {explicit[name]} {noun} {name!r}",
                        ),
                        np.zeros(0, dtype=np.int64),
                        np.zeros(0),
                    )

    group_rows(cand.category, constraints.category_min, None, "category_min", "SKUs of category")
    group_rows(
        cand.category,
        constraints.category_max,
        constraints.default_category_max,
        "category_max",
        "SKUs of category",
    )
    group_rows(cand.brand, constraints.brand_max, constraints.default_brand_max, "brand_max", "SKUs of brand")

    if constraints.markdown_budget_cents is not None:
        add(
            RowInfo(
                "budget",
                "budget",
                -np.inf,
                float(constraints.markdown_budget_cents),
                f"markdown budget {format_cents(constraints.markdown_budget_cents)}",
            ),
            cols_all,
            coef.markdown[cell_sku, cell_level],
        )
    if constraints.min_plan_margin is not None:
        mm = constraints.min_plan_margin
        add(
            RowInfo("plan_margin", "plan_margin", 0.0, np.inf, f"plan margin at least {mm:.0%}"),
            cols_all,
            coef.profit[cell_sku, cell_level] - mm * coef.revenue[cell_sku, cell_level],
        )
    for extra in extra_rows or []:
        add(
            RowInfo(extra.name, "extra", extra.lb, extra.ub, extra.label or extra.name),
            cols_all,
            np.asarray(extra.coef, dtype=np.float64)[cell_sku, cell_level],
        )

    if rows:
        A = sp.csc_matrix(
            (np.concatenate(data), (np.concatenate(row_ids), np.concatenate(col_ids))), shape=(len(rows), m)
        )
    else:
        A = sp.csc_matrix((0, m))
    return Problem(
        n=n,
        k=k,
        cell_sku=cell_sku,
        cell_level=cell_level,
        value=coef.value[cell_sku, cell_level].astype(np.float64),
        A=A,
        rows=rows,
        pinned=pinned,
    )


# ---- outputs ---------------------------------------------------------------------------------------------


class PlanItemResult(BaseModel):
    """One SKU of the plan with its expected outcome (money in cents)."""

    sku: str
    category: str
    brand: str
    level: int
    discount: float
    list_price_cents: int
    sale_price_cents: int
    cost_cents: int
    allocated_units: int
    forecast_units: float = Field(description="Expected demand at the sale price, uncapped.")
    expected_units: float = Field(description="Expected units sold, E[min(demand, allocated)].")
    expected_revenue_cents: int
    expected_profit_cents: int
    markdown_cost_cents: int
    clearance_value_cents: int
    objective_value: float
    margin: float
    pinned: bool = False
    reason: str = ""


class CandidateReason(BaseModel):
    """Why a candidate SKU is in or out of the plan."""

    sku: str
    selected: bool
    code: str
    reason: str


class BindingConstraint(BaseModel):
    """A coupling constraint at (or near) its bound, with its LP dual value and what that is worth.

    ``dual`` is the raw LP dual: the change of the objective (cents of objective value) per unit of the
    row (per slot, per SKU of a category, per cent of budget, per cent of the margin row). Read
    ``marginal_value_cents`` with ``marginal_unit`` instead: the objective value (expected profit plus the
    other weighted terms, in cents) of relaxing the limit by one ``marginal_unit``.
    """

    name: str
    group: str
    label: str
    activity: float
    lower: float | None
    upper: float | None
    dual: float
    slack: float
    marginal_value_cents: float = Field(
        0.0, description="Objective value of relaxing the limit by one marginal_unit, in cents."
    )
    marginal_unit: str = Field("", description="The unit of relaxation, e.g. 'one more sale slot'.")


class SolveStats(BaseModel):
    """How the solve went: sizes, times, LP iterations of the working set, and the exact finish."""

    candidates: int
    valid_cells: int
    coupling_rows: int
    working_set_skus: int = 0
    sifting_rounds: int = 0
    free_cells_exact: int = 0
    fixed_cells: int = 0
    lp_status: str = ""
    exact_status: str = ""
    time_coefficients_s: float = 0.0
    time_build_s: float = 0.0
    time_lp_s: float = 0.0
    time_exact_s: float = 0.0
    time_explain_s: float = 0.0
    time_total_s: float = 0.0


class PlanResult(BaseModel):
    """The optimiser's answer: the plan, its value, how close to optimal it is and why."""

    status: Literal["optimal", "feasible"]
    items: list[PlanItemResult]
    objective: float
    expected_revenue_cents: int
    expected_profit_cents: int
    expected_units: float
    markdown_cost_cents: int
    clearance_value_cents: int
    allocated_units: int
    lp_bound: float = Field(description="Objective of the LP relaxation: no plan can beat it.")
    gap: float = Field(description="(lp_bound - objective) / |lp_bound|; 0 when the plan meets the bound.")
    best_bound: float = Field(description="Tightest proven bound (LP bound or the exact solver's).")
    proven_gap: float
    binding: list[BindingConstraint]
    reasons: list[CandidateReason]
    stats: SolveStats
    constraints: PlanConstraints
    weights: ObjectiveWeights
    options: SolverOptions
    ladder: list[float]
    demand_model_id: int | None = None

    @property
    def sell_through(self) -> float:
        return self.expected_units / self.allocated_units if self.allocated_units else 0.0

    def reason_for(self, sku: str) -> CandidateReason:
        for r in self.reasons:
            if r.sku == sku:
                return r
        raise KeyError(f"SKU {sku!r} was not a candidate of this plan")

    @property
    def skus(self) -> list[str]:
        return [it.sku for it in self.items]

    def expected_totals(self) -> dict[str, int | float]:
        """The plan's expected totals by field name, as a stored plan and a draft record them."""
        return {
            "expected_revenue_cents": self.expected_revenue_cents,
            "expected_profit_cents": self.expected_profit_cents,
            "expected_units": self.expected_units,
            "allocated_units": self.allocated_units,
            "markdown_cost_cents": self.markdown_cost_cents,
            "clearance_value_cents": self.clearance_value_cents,
        }
