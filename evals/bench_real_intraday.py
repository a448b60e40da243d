"""Watching a sale day on real timestamps: the intraday profile and the rest-of-day posterior on the Kroger
Complete Journey sample (prints tables; not a unit test).

    python -m evals.bench_real_intraday            # reads ../shared/data; --data DIR elsewhere

The sample (2017's household transactions with their times, see ../shared/data/README.md) is imported with
the project's importer into a SQLite file under /tmp. The whole shop is watched as one series (the sample
is too thin per product for a day's hours):

* **profile**: :func:`tools.intraday.shop_profile` measured on the 8 weeks before ``--cut``, against the
  hour shares of the days from the cut to the end of the year (total variation distance), beside the
  built-in daytime curve;
* **rest of the day**: each day after the cut, watched at the ``--hours`` (UTC, the log's time), forecasts
  its units after that hour from the units before it. The prior is the mean of the same weekday over the 8
  weeks before the day, its negative-binomial size fitted (moments) on the days before the cut. Compared:
  the prior alone; the sales so far scaled up by the profile; :func:`tools.intraday.posterior_rate` with
  the clumping of the shop's baskets (its arrivals); the same read as single units (clumping 1). Scored by
  the mean absolute error of the rest-of-day units.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.engine import make_engine, make_session_factory
from db.importers import ImportOptions, import_file
from db.models import OrderLine, Product
from evals.bench_real_data import NOT_MERCHANDISE
from evals.timing import machine
from tools.intraday import DEFAULT_SHARES, HOURS, clumping, posterior_rate, shop_profile

FloatArray = NDArray[np.float64]
DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CUT = dt.date(2017, 10, 2)
YEAR = (dt.date(2017, 1, 1), dt.date(2018, 1, 1))
FORECASTS = ("prior", "scaled up", "posterior", "single units")


def import_journey(folder: Path, db_path: Path) -> None:
    """The sample's catalogue (fuel and coupons are not merchandise) and order lines into ``db_path``."""
    engine = make_engine(f"sqlite:///{db_path}")
    catalog = ImportOptions(mapping={"title": "product_type"}, non_product_categories=NOT_MERCHANDISE)
    import_file(engine, "catalog", folder / "products.csv", catalog)
    orders = ImportOptions(
        mapping={"order_id": "basket_id", "customer_id": "household_id"},
        skip_bad_rows=True,
        rejects_path=db_path.with_suffix(".rejects.csv"),
    )
    import_file(engine, "orders", folder / "transactions_sample.csv", orders)
    engine.dispose()


def hourly_units(session: Session, start: dt.date, end: dt.date) -> FloatArray:
    """Units of merchandise by (day, hour) from ``start`` to ``end`` (exclusive), straight from the lines."""
    rows = session.execute(
        select(OrderLine.ts, OrderLine.qty)
        .join(Product, Product.sku == OrderLine.sku)
        .where(
            Product.is_product.is_(True),
            OrderLine.qty > 0,
            OrderLine.ts >= dt.datetime.combine(start, dt.time.min),
            OrderLine.ts < dt.datetime.combine(end, dt.time.min),
        )
    ).all()
    out = np.zeros(((end - start).days, HOURS))
    for ts, qty in rows:
        out[(ts.date() - start).days, ts.hour] += qty
    return out


def basket_clumping(session: Session, before: dt.date) -> float:
    """:func:`tools.intraday.clumping` of the merchandise units per basket before ``before``."""
    rows = session.execute(
        select(func.sum(OrderLine.qty))
        .join(Product, Product.sku == OrderLine.sku)
        .where(
            Product.is_product.is_(True),
            OrderLine.qty > 0,
            OrderLine.ts < dt.datetime.combine(before, dt.time.min),
        )
        .group_by(OrderLine.order_id)
    ).all()
    return clumping(np.array([float(r[0]) for r in rows]))


@dataclass(frozen=True)
class ProfileCheck:
    measured: float  # total variation distance of the measured profile to the later days' hour shares
    default: float  # the same for the built-in daytime curve
    source: str


def profile_check(session: Session, cut: dt.date = CUT) -> ProfileCheck:
    profile = shop_profile(session, cut, days=56)
    later = hourly_units(session, cut, YEAR[1]).sum(axis=0)
    later /= later.sum()
    return ProfileCheck(
        float(0.5 * np.abs(profile.shares - later).sum()),
        float(0.5 * np.abs(DEFAULT_SHARES / DEFAULT_SHARES.sum() - later).sum()),
        profile.source,
    )


@dataclass(frozen=True)
class RestOfDayScores:
    clumping: float
    size: float  # the prior's negative-binomial size
    days: int
    mae: dict[int, dict[str, float]]  # hour -> forecast -> mean absolute error of the rest-of-day units


def rest_of_day_scores(session: Session, hours: tuple[int, ...], cut: dt.date = CUT) -> RestOfDayScores:
    start, end = YEAR
    hourly = hourly_units(session, start, end)
    profile = shop_profile(session, cut, days=56)
    clumps = basket_clumping(session, cut)
    daily = hourly.sum(axis=1)
    first = (cut - start).days

    def prior(day: int) -> float:
        return float(np.mean([daily[day - 7 * k] for k in range(1, 9)]))

    train = np.arange(56, first)
    mus = np.array([prior(int(d)) for d in train])
    excess = float(np.mean((daily[train] - mus) ** 2) - mus.mean())
    size = mus.mean() ** 2 / excess if excess > 0 else float("inf")
    mae: dict[int, dict[str, float]] = {}
    for hour in hours:
        share = profile.by(hour)
        errors: dict[str, list[float]] = {name: [] for name in FORECASTS}
        for day in range(first, len(daily)):
            mu, sold, rest = prior(day), hourly[day, :hour].sum(), hourly[day, hour:].sum()
            args = (np.array([mu]), np.array([size]), np.array([sold]), np.array([share]))
            post, _ = posterior_rate(*args, clumping=clumps)
            single, _ = posterior_rate(*args)
            rates = (mu, sold / share, float(post[0]), float(single[0]))
            for name, rate in zip(FORECASTS, rates, strict=True):
                errors[name].append(abs(rate * (1 - share) - rest))
        mae[hour] = {name: float(np.mean(v)) for name, v in errors.items()}
    return RestOfDayScores(clumps, size, len(daily) - first, mae)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DATA, help="The shared data folder.")
    parser.add_argument("--hours", default="4,12,16,20,22", help="Hours (UTC) at which each day is watched.")
    args = parser.parse_args(argv)
    folder = args.data / "complete_journey_sample"
    if not (folder / "transactions_sample.csv").is_file():
        print(f"no {folder}/transactions_sample.csv: see ../shared/data/README.md", file=sys.stderr)
        return 2
    hours = tuple(int(h) for h in args.hours.split(","))
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "journey.db"
        import_journey(folder, db_path)
        engine = make_engine(f"sqlite:///{db_path}")
        with make_session_factory(engine)() as session:
            check = profile_check(session)
            scores = rest_of_day_scores(session, hours)
        engine.dispose()
    print(f"Intraday profile ({check.source}) against the hour shares of {CUT} .. {YEAR[1]}:")
    print(f"  total variation distance {check.measured:.3f}; the built-in daytime curve {check.default:.3f}")
    print(
        f"Rest-of-day units, {scores.days} days after {CUT} (mean absolute error; prior size "
        f"{scores.size:.1f}, basket clumping {scores.clumping:.2f}):"
    )
    print(f"  {'hour':>4} " + " ".join(f"{name:>12}" for name in FORECASTS) + "   posterior / prior")
    for hour, row in scores.mae.items():
        cells = " ".join(f"{row[name]:12.1f}" for name in FORECASTS)
        print(f"  {hour:>4} {cells}   {row['posterior'] / row['prior']:.3f}")
    print(f"Machine: {machine()}; wall time {time.perf_counter() - wall:.1f} s")
    print(f"Command: python -m evals.bench_real_intraday {' '.join(argv or sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
