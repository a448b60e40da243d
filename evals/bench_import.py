"""Benchmark of the CSV importer: N order lines in the UCI "Online Retail" shape into a fresh SQLite file.

    python -m evals.bench_import                 # 1,000,000 lines, ~25k invoices, ~4k stock codes
    python -m evals.bench_import --rows 100000   # a quicker run

The generated file has the quirks of the real one: cancellations (invoice "C...", negative quantities),
lines without a customer, non-product codes (POST, M, D, DOT, BANK CHARGES), a few zero-priced lines and
month/day/year dates. It is imported with ``--preset uci --create-products`` in one transaction, and the
script prints rows, seconds (wall and CPU: on a shared machine the CPU time is the steadier figure), rows/s
and memory: the process's peak RSS and the RSS seen at each batch during the import (streaming keeps it
flat).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from db.engine import make_engine
from db.importers import ImportOptions, import_file
from db.migrate import upgrade

HEADER = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
NON_PRODUCTS = [
    ("POST", "POSTAGE", 18.0),
    ("M", "Manual", 2.5),
    ("D", "Discount", 5.0),
    ("DOT", "DOTCOM POSTAGE", 11.0),
    ("BANK CHARGES", "Bank Charges", 15.0),
]
COUNTRIES = ["United Kingdom"] * 9 + ["France", "Germany", "EIRE", "Spain", "Netherlands"]
WORDS = [
    "WHITE",
    "HANGING",
    "HEART",
    "T-LIGHT",
    "HOLDER",
    "METAL",
    "LANTERN",
    "JAM",
    "SET",
    "RETROSPOT",
    "VINTAGE",
    "CAKE",
    "CASES",
    "BAG",
    "RED",
    "PINK",
    "LUNCH",
    "BOX",
    "GLASS",
    "STAR",
    "CERAMIC",
    "MUG",
    "PAPER",
    "CHAIN",
]


def generate(
    path: Path, n_rows: int, *, n_invoices: int, n_codes: int, n_customers: int, seed: int = 0
) -> None:
    """Write a UCI-shaped CSV of ``n_rows`` order lines, streaming in chunks."""
    rng = np.random.default_rng(seed)
    codes = [f"{20000 + i:05d}{'' if i % 5 else 'A'}" for i in range(n_codes)]
    titles = [" ".join(rng.choice(WORDS, size=3)) for _ in range(n_codes)]
    base_price = np.round(rng.lognormal(1.0, 0.8, n_codes), 2).clip(0.19, 300)
    popularity = 1.0 / np.arange(1, n_codes + 1) ** 0.8
    popularity /= popularity.sum()

    start = dt.datetime(2010, 12, 1, 8, 0)
    minutes = np.sort(rng.integers(0, 365 * 24 * 60, n_invoices))
    invoice_dates = [(start + dt.timedelta(minutes=int(m))).strftime("%-m/%-d/%Y %-H:%M") for m in minutes]
    cancelled = rng.random(n_invoices) < 0.02
    invoice_ids = [("C" if c else "") + str(536365 + i) for i, c in enumerate(cancelled)]
    customer = rng.integers(12346, 12346 + n_customers, n_invoices)
    no_customer = rng.random(n_invoices) < 0.25
    customers = ["" if missing else f"{c}.0" for c, missing in zip(customer, no_customer, strict=True)]
    countries = rng.choice(COUNTRIES, n_invoices)
    invoice_of_line = np.sort(rng.integers(0, n_invoices, n_rows))

    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        chunk = 200_000
        for begin in range(0, n_rows, chunk):
            inv = invoice_of_line[begin : begin + chunk]
            size = len(inv)
            code_idx = rng.choice(n_codes, size=size, p=popularity)
            qty = rng.integers(1, 25, size)
            price = base_price[code_idx] * np.where(rng.random(size) < 0.1, 0.85, 1.0)
            special = rng.random(size)
            rows = []
            for j in range(size):
                i = int(inv[j])
                q = int(qty[j])
                if special[j] < 0.005:
                    code, title, p = NON_PRODUCTS[int(special[j] * 1000) % len(NON_PRODUCTS)]
                    q = 1
                elif special[j] < 0.006:
                    code, title, p = codes[code_idx[j]], titles[code_idx[j]], 0.0
                else:
                    code, title, p = codes[code_idx[j]], titles[code_idx[j]], float(price[j])
                if cancelled[i]:
                    q = -q
                rows.append(
                    (invoice_ids[i], code, title, q, invoice_dates[i], f"{p:.2f}", customers[i], countries[i])
                )
            writer.writerows(rows)


def _rss_mib() -> float | None:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="order lines to generate")
    parser.add_argument("--invoices", type=int, default=None, help="invoices (default rows / 40)")
    parser.add_argument("--codes", type=int, default=4_000, help="distinct stock codes")
    parser.add_argument("--customers", type=int, default=4_300, help="distinct customers")
    parser.add_argument("--batch-size", type=int, default=10_000, help="rows per batch")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        csv_path = folder / "online_retail_bench.csv"
        db_path = folder / "bench_import.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        invoices = args.invoices or max(1, args.rows // 40)
        t0 = time.perf_counter()
        generate(csv_path, args.rows, n_invoices=invoices, n_codes=args.codes, n_customers=args.customers)
        print(
            f"generated {args.rows:,} lines ({csv_path.stat().st_size / 2**20:.0f} MiB, "
            f"{invoices:,} invoices) in {time.perf_counter() - t0:.1f} s"
        )

        engine = make_engine(f"sqlite:///{db_path}")
        upgrade(engine)
        samples: list[float] = []

        def progress(_bytes: int, _rows: int) -> None:
            rss = _rss_mib()
            if rss is not None:
                samples.append(rss)

        rss_before = _rss_mib()
        options = ImportOptions(preset="uci", create_products=True, batch_size=args.batch_size)
        cpu_start = time.process_time()
        summary = import_file(engine, "orders", csv_path, options, progress=progress)
        cpu_seconds = time.process_time() - cpu_start
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with engine.connect() as conn:
            counts = {
                table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("order_line", "orders", "product", "customer")
            }
            cancellations = conn.execute(
                text("SELECT COUNT(*) FROM orders WHERE is_cancellation")
            ).scalar_one()
        engine.dispose()

        print(f"rows read:      {summary.rows_read:,}")
        print(f"lines loaded:   {summary.rows_loaded:,}  skipped: {summary.skipped}")
        print(f"created:        {summary.created}")
        print(f"in database:    {counts}, cancellations {cancellations:,}")
        print(f"seconds:        {summary.seconds:.1f} wall, {cpu_seconds:.1f} CPU of this process")
        print(f"rows/s:         {summary.rows_per_s:,.0f}")
        print(f"peak RSS:       {peak_kib / 1024:.0f} MiB (whole process, getrusage)")
        if samples and rss_before is not None:
            print(
                f"RSS in import:  before {rss_before:.0f} MiB, per batch min {min(samples):.0f} / "
                f"median {float(np.median(samples)):.0f} / max {max(samples):.0f} MiB "
                f"over {len(samples)} batches"
            )
        print(f"database file:  {db_path.stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
