"""Time the demo shop: simulating the history alone, and building it into a database.

    python -m evals.bench_demo [--scale 1] [--seed 42] [--url sqlite:///path.db] [--generate-only]

Without ``--url`` the shop goes into a fresh SQLite file in a temporary folder (deleted afterwards).
``--generate-only`` runs the simulator without writing anything (to size very large shops, e.g. scale 50:
100k SKUs and more than 20M order lines, without filling the disk). Prints rows, seconds, rows per second,
the database size and the peak resident memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

from db.engine import make_engine
from tools.simulator import SimConfig, build_world, inventory_snapshot, iter_sales
from tools.simulator.demo import build_demo


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_only(config: SimConfig) -> None:
    started = time.perf_counter()
    world = build_world(config)
    world_s = time.perf_counter() - started
    orders = lines = reviews = units = 0
    for chunk in iter_sales(world):
        orders += len(chunk.order_ids)
        lines += chunk.line_sku.size
        reviews += chunk.review_sku.size
        units += int(chunk.units.sum())
    inventory_snapshot(world)
    total = time.perf_counter() - started
    print(f"world: {world.n_skus:,} SKUs, {len(world.customer_ids):,} customers built in {world_s:.1f} s")
    print(f"history: {orders:,} orders, {lines:,} order lines, {units:,} units, {reviews:,} reviews")
    print(
        f"simulated in {total:.1f} s ({lines / total:,.0f} order lines/s), peak RSS {_peak_rss_mb():,.0f} MB"
    )


def build(config: SimConfig, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        target = url or f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = make_engine(target)
        summary = build_demo(engine, config, replace=True)
        engine.dispose()
        size = ""
        if target.startswith("sqlite:///"):
            size = f", file {Path(target.removeprefix('sqlite:///')).stat().st_size / 1e6:,.1f} MB"
        for table, count in summary.counts.items():
            print(f"  {table:<18}{count:>14,}")
        print(
            f"built {summary.total_rows:,} rows ({summary.counts.get('order_line', 0):,} order lines) in "
            f"{summary.seconds:.1f} s ({summary.total_rows / summary.seconds:,.0f} rows/s){size}, "
            f"peak RSS {_peak_rss_mb():,.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="Shop size multiplier (SKUs and customers).")
    parser.add_argument("--seed", type=int, default=42, help="Simulator seed.")
    parser.add_argument("--end-date", default="2026-06-30", help="Last history day (YYYY-MM-DD).")
    parser.add_argument("--url", default=None, help="Database URL (default: a temporary SQLite file).")
    parser.add_argument("--generate-only", action="store_true", help="Simulate without writing anything.")
    args = parser.parse_args()
    config = SimConfig.scaled(args.scale, seed=args.seed, end_date=dt.date.fromisoformat(args.end_date))
    if args.generate_only:
        generate_only(config)
    else:
        build(config, args.url)


if __name__ == "__main__":
    main()
