"""Measure the agent's own time per turn, outside the model: tool execution and bookkeeping.

Usage::

    python -m evals.bench_agent_overhead                 # builds a demo shop (150 SKUs) in a temp folder
    python -m evals.bench_agent_overhead --url sqlite:///data/flashsale.db --repeat 3

Every eval case (``evals/questions.json``) is played by the scripted policy, so the model's share of a turn
is close to zero and what remains is the agent: tool calls (database queries, forecasts), the grounding
check, memory and the audit-log transaction. The script prints, per category and overall, the median, 95th
percentile and maximum of the per-turn overhead, split into tool time and the rest, after one warm-up
pass that is not counted (the first optimiser call of a process pays about a second of imports). Target:
under 300 ms per turn on the demo shop. It measures, it does not assert. Cases that save a draft plan
write drafts into the shop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from db.engine import make_engine, make_session_factory
from db.models import DemandModelRun, OrderLine
from evals.run_evals import CaseResult, run
from evals.timing import percentile
from tools.demand import fit_demand_model, save_demand_model
from tools.simulator import SimConfig
from tools.simulator.demo import build_demo

TARGET_MS = 300.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="Shop to use; default: build a demo shop in a temporary folder.")
    parser.add_argument(
        "--skus", type=int, default=150, help="SKUs of the demo shop built when --url is absent."
    )
    parser.add_argument("--repeat", type=int, default=3, help="How many times to play every case.")
    args = parser.parse_args(argv)
    console = Console(width=120)

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.url:
        url = args.url
    else:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'shop.db'}"
        config = SimConfig.model_validate(
            {"seed": 7, "n_skus": args.skus, "n_customers": 10 * args.skus, "n_days": 120, "n_flash_days": 8}
        )
        t0 = time.perf_counter()
        build_demo(make_engine(url), config)
        console.print(f"built a demo shop with {args.skus} SKUs in {time.perf_counter() - t0:.1f} s")
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        lines, newest = session.execute(select(func.count(), func.max(OrderLine.ts))).one()
        if newest is None:
            raise SystemExit("the shop has no orders: build one with `python cli.py demo`")
        if session.scalar(select(func.count()).select_from(DemandModelRun)) == 0:
            t0 = time.perf_counter()
            save_demand_model(session, fit_demand_model(session))
            console.print(
                f"fitted a demand model in {time.perf_counter() - t0:.1f} s (not part of the figures)"
            )
    today = newest.date() + dt.timedelta(days=1)
    console.print(f"shop: {engine.url.render_as_string()} · {lines:,} order lines · today {today}")

    run(factory, today=today)  # warm-up, not counted: first imports (OR-Tools, numpy paths) and caches
    results: list[CaseResult] = []
    for _ in range(args.repeat):
        results += [r for r in run(factory, today=today) if r.status == "ok"]
    by_category: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        by_category[r.category].append(r)
    by_category["all"] = results

    table = Table(title=f"Agent overhead per turn, outside the model ({args.repeat} runs of each case)")
    for col in (
        "category",
        "turns",
        "median ms",
        "p95 ms",
        "max ms",
        "tools ms (median)",
        "rest ms (median)",
    ):
        table.add_column(col, justify="left" if col == "category" else "right")
    for category, rs in by_category.items():
        overhead = [r.overhead_ms for r in rs]
        table.add_row(
            category,
            str(len(rs)),
            f"{statistics.median(overhead):.1f}",
            f"{percentile(overhead, 0.95):.1f}",
            f"{max(overhead):.1f}",
            f"{statistics.median([r.tool_ms for r in rs]):.1f}",
            f"{statistics.median([r.overhead_ms - r.tool_ms for r in rs]):.1f}",
        )
    console.print(table)
    worst = max(results, key=lambda r: r.overhead_ms)
    p95 = percentile([r.overhead_ms for r in results], 0.95)
    verdict = "within" if p95 < TARGET_MS else "ABOVE"
    console.print(
        f"p95 overhead {p95:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target · slowest turn: {worst.id} "
        f"({worst.overhead_ms:.1f} ms, tools {', '.join(worst.called)})"
    )
    engine.dispose()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
