"""Watching a live sale on real timestamps nobody here generated: the Kroger Complete Journey sample (see
../shared/data/README.md), 2017's household transactions with their times, through the benchmark's own
functions (evals/bench_real_intraday.py prints the figures). The shop's intraday profile, measured from its
own order lines, must describe its later days; and the posterior that `plan status` and `plan replan` give a
day's demand from the sales so far must forecast the rest of the day no worse than the prior alone, and far
better than the sales so far scaled up. Skipped where the folder is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from evals.bench_real_intraday import DATA, import_journey, profile_check, rest_of_day_scores

JOURNEY = DATA / "complete_journey_sample"

pytestmark = pytest.mark.skipif(
    not (JOURNEY / "transactions_sample.csv").is_file(),
    reason=f"the real data sets are not on this machine ({JOURNEY} is absent; see ../shared/data/README.md)",
)


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    db_path: Path = tmp_path_factory.mktemp("journey") / "shop.db"
    import_journey(JOURNEY, db_path)
    engine = make_engine(f"sqlite:///{db_path}")
    yield make_session_factory(engine)
    engine.dispose()


def test_the_shops_profile_describes_its_later_days(journey: sessionmaker[Session]) -> None:
    """Measured from the 8 weeks before October, the hour shares of the quarter after are met within a
    total variation of 0.1, where the built-in daytime curve is off by a third (the log's times are UTC:
    its peak is in the evening). Fuel (gallons, up to 32,623 on a line) and coupons are not merchandise and
    must not weigh in: with them the profile was 0.28 off."""
    with journey() as session:
        check = profile_check(session)
    assert check.source.startswith("the shop's order lines")
    assert check.measured < 0.1
    assert check.default > 0.3


def test_the_sales_so_far_forecast_the_rest_of_the_day_no_worse_than_the_prior(
    journey: sessionmaker[Session],
) -> None:
    """On this log the hours of a day hardly tell about its other hours (its day-to-day spread is mostly
    baskets of several units), so the posterior must learn to say little: read with the baskets' clumping
    it is within 5 % of the prior's error at every hour and better at 20:00, and far better than the sales
    so far scaled up. Read as single units (clumping 1) it was up to 56 % worse than the prior."""
    with journey() as session:
        scores = rest_of_day_scores(session, (4, 12, 16, 20))
    assert scores.clumping > 2
    for hour, mae in scores.mae.items():
        assert mae["posterior"] < 1.05 * mae["prior"], (hour, mae)
        assert mae["posterior"] < mae["scaled up"], (hour, mae)
        assert mae["posterior"] <= mae["single units"], (hour, mae)
    assert scores.mae[20]["posterior"] < scores.mae[20]["prior"]
