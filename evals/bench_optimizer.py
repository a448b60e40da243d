"""Solve time and gap to the LP bound of the flash-sale optimiser on synthetic candidates (prints a table).

    python evals/bench_optimizer.py --sizes 1000,10000,100000,1000000

Each size gets ``max(50, n / 50)`` slots, per-category minimums and maximums, brand caps, a binding
markdown budget, item and plan margin floors and the competitor price match (see
``evals.optimizer_instances.benchmark_constraints``), 6 discount levels. "total" is model building (the
per-(SKU, level) coefficients from the demand distribution, the sparse constraint rows) plus the solve;
generating the synthetic forecast is not counted. Explanations are timed separately (``--explain``).
Not a unit test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from evals.optimizer_instances import benchmark_constraints, synthetic_candidates
from tools.optimizer import ObjectiveWeights, SolverOptions, optimize_plan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="Comma-separated candidate counts.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic instances.")
    parser.add_argument("--gap", type=float, default=1e-3, help="Relative gap target.")
    parser.add_argument("--time-limit", type=float, default=300.0, help="Solver time limit per size (s).")
    parser.add_argument("--workers", type=int, default=2, help="CP-SAT workers.")
    parser.add_argument("--explain", action="store_true", help="Also compute every candidate's reason.")
    args = parser.parse_args(argv)
    console = Console(width=200)
    table = Table(title="Flash-sale optimiser: solve time and gap to the LP bound (6 discount levels)")
    for col in (
        "SKUs",
        "slots",
        "valid cells",
        "rows",
        "coef s",
        "build s",
        "LP s",
        "exact s",
        "explain s",
        "total s",
        "LP working set",
        "CP-SAT vars",
        "gap vs LP",
        "status",
    ):
        table.add_column(col, justify="right")
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        cand = synthetic_candidates(n, seed=args.seed)
        slots = max(50, n // 50)
        cons = benchmark_constraints(cand, slots)
        opts = SolverOptions(
            time_limit_s=args.time_limit,
            relative_gap=args.gap,
            num_workers=args.workers,
            explain=args.explain,
        )
        t0 = time.perf_counter()
        result = optimize_plan(cand, cons, ObjectiveWeights(), opts)
        wall = time.perf_counter() - t0
        st = result.stats
        table.add_row(
            f"{n:,}",
            f"{slots:,}",
            f"{st.valid_cells:,}",
            f"{st.coupling_rows}",
            f"{st.time_coefficients_s:.2f}",
            f"{st.time_build_s:.2f}",
            f"{st.time_lp_s:.2f}",
            f"{st.time_exact_s:.2f}",
            f"{st.time_explain_s:.2f}" if args.explain else "-",
            f"{wall - st.time_explain_s:.2f}",
            f"{st.working_set_skus:,}",
            f"{st.free_cells_exact:,}",
            f"{result.gap:.4%}",
            f"{result.status}/{st.exact_status}",
        )
        console.print(
            f"n={n:,}: objective {result.objective:,.0f}, LP bound {result.lp_bound:,.0f}, "
            f"gap {result.gap:.5%}, "
            f"{wall:.2f} s",
            highlight=False,
        )
        del cand, result
    console.print(table)


if __name__ == "__main__":
    main()
