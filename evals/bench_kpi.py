"""Time a KPI report over the last N days of a shop (default: 90 days by category) and print the seconds.

Usage::

    python -m evals.bench_kpi --url postgresql+psycopg://postgres@127.0.0.1:5432/bench --days 90

The period ends on the last day with order lines unless ``--end`` is given. The report is computed
``--repeat`` times (default 1) in one read-only transaction each; the script prints the shop's size, the
period's order lines and every run's wall time. It measures, it does not assert: compare the figure with the
target (under 5 s on the 10M-order-line shop on PostgreSQL) by eye.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from sqlalchemy import func, select

import tools.demand  # noqa: F401  (imported up front: its import time is not the report's)
from db.engine import make_engine, make_session_factory
from db.models import Customer, Order, OrderLine, Product
from db.sqlvalues import as_date
from tools.kpi import kpi_report, parse_group_by


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the shop to benchmark.")
    parser.add_argument("--days", type=int, default=90, help="Length of the reported period in days.")
    parser.add_argument("--end", default=None, help="Last day of the period (default: last day with sales).")
    parser.add_argument("--by", default="category", help="Grouping: sku, category, brand or none.")
    parser.add_argument("--repeat", type=int, default=1, help="How many times to run the report.")
    parser.add_argument(
        "--no-counterfactual", action="store_true", help="Skip the demand-model counterfactual."
    )
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")

    engine = make_engine(args.url)
    factory = make_session_factory(engine)
    by = parse_group_by(None if args.by == "none" else args.by)
    with factory() as session:
        total_lines, last_ts = session.execute(select(func.count(), func.max(OrderLine.ts))).one()
        sizes = {
            name: session.scalar(select(func.count()).select_from(model))
            for name, model in (("products", Product), ("customers", Customer), ("orders", Order))
        }
        if last_ts is None:
            raise SystemExit("The shop has no order lines: build one with `python cli.py demo`.")
        end = dt.date.fromisoformat(args.end) if args.end else as_date(last_ts)
        start = end - dt.timedelta(days=args.days - 1)
        period_lines = session.scalar(
            select(func.count()).where(
                OrderLine.ts >= dt.datetime.combine(start, dt.time()),
                OrderLine.ts < dt.datetime.combine(end + dt.timedelta(days=1), dt.time()),
            )
        )
    print(
        f"shop: {engine.url.render_as_string()} ({engine.dialect.name}), {total_lines:,} order lines, "
        + ", ".join(f"{count:,} {name}" for name, count in sizes.items())
    )
    print(f"period: {start} to {end} ({args.days} days, {period_lines:,} order lines), by {by or 'total'}")
    timings = []
    for run in range(args.repeat):
        with factory() as session:
            started = time.perf_counter()
            report = kpi_report(session, start, end, by=by, counterfactual=not args.no_counterfactual)
            elapsed = time.perf_counter() - started
        timings.append(elapsed)
        print(
            f"run {run + 1}: {elapsed:.2f} s  (GMV {report.total.gmv_cents / 100:,.2f}, "
            f"{len(report.groups)} groups, {len(report.plan_items)} plan items)"
        )
    for note in report.notes:
        print(f"note: {note}")
    print(f"kpi_report_seconds={min(timings):.3f}")


if __name__ == "__main__":
    main()
