"""The product on real retail data nobody here generated (``../shared/data``, see its README): the
dunnhumby weekly store x product panel imports with documented options, the data check says what it
supports, the weekly model fits without estimates at a bound, beats the naive and training-mean forecasts on
held-out weeks, and a plan on it flags nothing absurd. Skipped where the folder is absent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.importers import ImportOptions, import_file
from tools.backtest import run_backtest
from tools.data_check import check_data
from tools.demand import fit_demand_model, save_demand_model
from tools.planning import PlanRequest, propose_plan

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
FRAT = DATA / "breakfast_at_the_frat"

pytestmark = pytest.mark.skipif(
    not (FRAT / "transactions_308series.csv").is_file(),
    reason=f"the real data sets are not on this machine ({FRAT} is absent; see ../shared/data/README.md)",
)


@pytest.fixture(scope="module")
def frat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('frat') / 'shop.db'}")
    import_file(engine, "catalog", FRAT / "products.csv", ImportOptions(mapping={"title": "description"}))
    summary = import_file(engine, "sales", FRAT / "transactions_308series.csv")
    assert summary.rows_loaded == 43_951
    yield make_session_factory(engine)
    engine.dispose()


def test_the_data_check_on_a_scanner_panel(frat: sessionmaker[Session]) -> None:
    with frat() as session:
        check = check_data(session)
    c = check.counts
    assert (c.products_with_sales, c.period) == (53, "week")
    assert (c.first_day, c.last_day) == (dt.date(2009, 1, 8), dt.date(2012, 1, 4))
    assert c.promotion_periods > 0 and c.products == 58  # five catalogue UPCs never sold in the subset
    assert check.status("forecast") == "ok" and check.status("sale lift") == "ok"
    assert check.status("plan") == "missing"  # no stock levels in a scanner panel: says what to import


def test_the_weekly_model_beats_naive_and_the_training_mean_on_held_out_weeks(
    frat: sessionmaker[Session],
) -> None:
    with frat() as session:
        result = run_backtest(session, weeks=12, window_days=365)
    assert result.period == "week"
    model, naive, mean = (result.score(f, "sku-week") for f in ("model", "naive", "training mean"))
    assert model is not None and naive is not None and mean is not None
    assert model.wape < 0.8 * min(naive.wape, mean.wape)
    assert model.rmsse < 0.8 * min(naive.rmsse, mean.rmsse)
    assert result.promoted_lift is not None
    applied, seen = result.promoted_lift
    assert abs(np.log(applied / seen)) < np.log(1.25)  # the lift it applies is the lift the weeks showed


def test_a_plan_on_the_panel_shows_its_evidence_and_flags_nothing_absurd(frat: sessionmaker[Session]) -> None:
    with frat.begin() as session:
        model = fit_demand_model(session, window_days=365)
        save_demand_model(session, model)
    assert model.period_days == 7 and not model.metrics["lift_at_bound"]
    assert not model.metrics["elasticity_at_bound"]
    with frat() as session:
        proposal = propose_plan(session, PlanRequest(assume_stock=200, slots=10), today=model.window_end)
    assert proposal.result.items
    for item in proposal.result.items:
        ev = proposal.evidence[item.sku]
        assert ev.basis == "weekly sales / 7" and ev.best_promotion_day is not None
        assert not ev.flagged, ev.summary()
