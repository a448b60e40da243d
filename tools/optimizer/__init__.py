"""The flash-sale optimiser (OR-Tools): which SKUs go on sale, at which discount, with how much stock.

The public API, composed from the package's layers (each imports only those below it):

- :mod:`tools.optimizer.model`: typed inputs and outputs, the per-cell coefficients and the flat problem;
- :mod:`tools.optimizer.solve`: LP relaxation by sifting, rounding, exact CP-SAT finish;
- :mod:`tools.optimizer.explain`: reasons, binding constraints, infeasibility diagnosis;
- :mod:`tools.optimizer.plan`: :func:`optimize_plan`, the three above as one call;
- :mod:`tools.optimizer.whatif` and :mod:`tools.optimizer.pareto`: comparisons built on :func:`optimize_plan`.
"""

from tools.optimizer.model import (
    CELL_RULES,
    CLEARANCE_VALUE_OF_COST,
    DEFAULT_LADDER,
    BindingConstraint,
    CandidateReason,
    Candidates,
    CellCoefficients,
    ExtraRow,
    InfeasiblePlan,
    InvalidPlanInput,
    ObjectiveWeights,
    PlanConstraints,
    PlanItemResult,
    PlanResult,
    SolverOptions,
    SolveStats,
    compute_coefficients,
    ladder_prices,
    validate_ladder,
)
from tools.optimizer.pareto import ParetoFrontier, ParetoPoint, pareto_frontier
from tools.optimizer.plan import optimize_plan, solve_plan
from tools.optimizer.whatif import WhatIfResult, what_if

__all__ = [
    "CELL_RULES",
    "CLEARANCE_VALUE_OF_COST",
    "DEFAULT_LADDER",
    "BindingConstraint",
    "CandidateReason",
    "Candidates",
    "CellCoefficients",
    "ExtraRow",
    "InfeasiblePlan",
    "InvalidPlanInput",
    "ObjectiveWeights",
    "ParetoFrontier",
    "ParetoPoint",
    "PlanConstraints",
    "PlanItemResult",
    "PlanResult",
    "SolveStats",
    "SolverOptions",
    "WhatIfResult",
    "compute_coefficients",
    "ladder_prices",
    "optimize_plan",
    "pareto_frontier",
    "solve_plan",
    "validate_ladder",
    "what_if",
]
