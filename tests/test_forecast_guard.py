"""Plans a merchandiser can trust: every item carries what its SKU sold before beside its forecast, a
forecast far beyond anything sold is flagged and its allocation capped (unless the user turns the cap off),
and a log whose cheap days are bulk lines, not promotions, fits no sale lift and plans nothing absurd."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from assistant.draft_render import guard_lines, plan_rows
from assistant.llm_tools.planning import proposal_view
from db.engine import make_engine, make_session_factory
from db.importers import ImportOptions, import_file
from tools.demand import (
    DemandModel,
    fit_demand_model,
    load_latest_demand_model,
    sales_evidence,
    save_demand_model,
)
from tools.forecast_guard import forecast_evidence, guard_caps
from tools.plan_report import plan_table
from tools.planning import PlanProposal, PlanRequest, propose_plan, save_proposal
from tools.plans import load_plan
from tools.sales_panel import SalesPanel

START = dt.date(2026, 1, 5)
DAYS = 182
SKUS = [f"T{k:03d}" for k in range(24)]


def _write_quantity_tier_log(path: Path, seed: int = 7) -> None:
    """A wholesaler's log: every day a few ordinary orders of 1-3 units at the list price and now and then a
    bulk order of 24-72 units at the 20 %-off tier price. No promotion ever ran."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice"])
        invoice = 500000
        for d in range(DAYS):
            day = START + dt.timedelta(days=d)
            for k, sku in enumerate(SKUS):
                price = 4.0 + k * 0.5
                for _ in range(rng.poisson(1.5 + (k % 4))):
                    invoice += 1
                    stamp = f"{day:%m/%d/%Y} 10:{invoice % 60:02d}"
                    out.writerow([invoice, sku, f"item {sku}", rng.integers(1, 4), stamp, f"{price:.2f}"])
                if rng.random() < 0.12:
                    invoice += 1
                    qty = int(rng.choice([24, 48, 72]))
                    stamp = f"{day:%m/%d/%Y} 15:00"
                    out.writerow([invoice, sku, f"item {sku}", qty, stamp, f"{price * 0.8:.2f}"])


@pytest.fixture(scope="module")
def tier_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    folder = tmp_path_factory.mktemp("tiers")
    log = folder / "wholesale.csv"
    _write_quantity_tier_log(log)
    engine: Engine = make_engine(f"sqlite:///{folder / 'shop.db'}")
    import_file(engine, "orders", log, ImportOptions(preset="uci", create_products=True))
    factory = make_session_factory(engine)
    with factory.begin() as session:
        save_demand_model(session, fit_demand_model(session))
    yield factory
    engine.dispose()


def _plan(factory: sessionmaker[Session], **request: Any) -> tuple[DemandModel, PlanProposal]:
    with factory() as session:
        model = load_latest_demand_model(session)
        assert model is not None
        proposal = propose_plan(
            session,
            PlanRequest(assume_stock=5000, slots=8, **request),
            today=model.window_end,
        )
    return model, proposal


def test_bulk_tier_prices_are_not_promotions_and_fit_no_lift(tier_shop: sessionmaker[Session]) -> None:
    with tier_shop() as session:
        model = load_latest_demand_model(session)
    assert model is not None
    assert model.metrics["inferred_promotion_days"] == 0
    assert model.metrics["n_sale_days"] == 0
    assert model.category_params  # pooled by price band: the log has no categories
    for params in model.category_params.values():
        assert params["lift"] == pytest.approx(1.0, abs=0.02)  # no promotion, no lift
        assert params["lift_low"] == pytest.approx(1.0, abs=0.02)
        assert params["lift_high"] >= 1.9  # ... and no evidence either: the interval says so
        assert not params["lift_at_bound"]


def test_a_plan_on_the_bulk_log_flags_nothing_and_shows_its_evidence(
    tier_shop: sessionmaker[Session],
) -> None:
    _, proposal = _plan(tier_shop)
    assert proposal.result.items
    evidence = proposal.evidence
    assert set(evidence) == set(proposal.result.skus)
    for item in proposal.result.items:
        ev = evidence[item.sku]
        assert not ev.flagged, ev.summary()
        assert ev.best_promotion_day is None and ev.compared_with == "best ordinary day"
        assert ev.forecast_units == pytest.approx(item.forecast_units, abs=0.01)
        assert ev.ratio_to_best_ordinary == pytest.approx(
            item.forecast_units / ev.best_ordinary_day, abs=0.01
        )
        assert ev.recent_mean is not None and 0 < ev.recent_mean < ev.best_ordinary_day
    assert not any("comparable day" in note for note in proposal.notes)


def _plant_outlier(
    factory: sessionmaker[Session], sku: str, factor: float
) -> tuple[DemandModel, DemandModel]:
    """Store a copy of the latest model whose forecast of ``sku`` is ``factor`` times too high; returns the
    model and the planted copy."""
    with factory.begin() as session:
        model = load_latest_demand_model(session)
        assert model is not None
        level = model.level.copy()
        level[model.rows([sku])[0]] += math.log(factor)
        planted = dataclasses.replace(model, level=level, id=None)
        save_demand_model(session, planted)
    return model, planted


def test_the_guard_flags_a_planted_outlier_and_caps_its_allocation(
    tier_shop: sessionmaker[Session], tmp_path: Path
) -> None:
    sku = SKUS[3]
    original, planted = _plant_outlier(tier_shop, sku, 40.0)
    try:
        _, proposal = _plan(tier_shop, pinned=(sku,))
        item = next(i for i in proposal.result.items if i.sku == sku)
        ev = proposal.evidence[sku]
        best = float(planted.evidence[planted.rows([sku])[0], 1])
        assert ev.flagged and ev.best_ordinary_day == pytest.approx(best, abs=1e-3)
        assert ev.ratio_to_best_ordinary is not None and ev.ratio_to_best_ordinary > 3
        assert ev.cap_units == math.ceil(3 * best)
        assert item.allocated_units <= ev.cap_units < item.forecast_units
        assert item.expected_units <= ev.cap_units  # the plan's sales and profit stay within the bound
        note = next(n for n in proposal.notes if "comparable day" in n)
        assert sku in note and "capped" in note
        others = [e for s, e in proposal.evidence.items() if s != sku]
        assert not any(e.flagged for e in others)

        # the tool JSON the assistant reads carries the check
        view = proposal_view(proposal)
        row = next(r for r in view["items"] if r["sku"] == sku)
        assert row["forecast_flag"] == ev.summary() and f"capped at {ev.cap_units:,}" in row["forecast_flag"]
        assert row["forecast_vs_best_comparable_day"] == ev.ratio_to_best_ordinary
        assert all("forecast_flag" not in r for r in view["items"] if r["sku"] != sku)
        json.dumps(view, default=str)

        # the saved plan keeps it, and the terminal table marks the item
        with tier_shop.begin() as session:
            plan_id = save_proposal(session, proposal, created_by="test")
        with tier_shop() as session:
            stored = load_plan(session, plan_id)
        stored_item = next(i for i in stored.items if i.sku == sku)
        assert stored_item.evidence is not None and stored_item.evidence.flagged
        console = Console(width=80, record=True)
        console.print(plan_table(stored, width=80))
        text = console.export_text()
        assert f"{sku} * !" in text and "! forecast" in text
        # ... and so does the daily draft
        data = {"plan": stored.model_dump(mode="json")}
        assert guard_lines(data) == [stored_item.evidence.summary()]
        assert [r[0] for r in plan_rows(data) if r[0].startswith(sku)] == [f"{sku} (!)"]

        # the user who trusts the forecast turns the cap off: still flagged, no longer capped
        _, unguarded = _plan(tier_shop, pinned=(sku,), guard_cap=False)
        free = next(i for i in unguarded.result.items if i.sku == sku)
        assert unguarded.evidence[sku].flagged and unguarded.evidence[sku].cap_units is None
        assert free.allocated_units > ev.cap_units
        assert any("not capped" in n for n in unguarded.notes)
    finally:
        with tier_shop.begin() as session:  # leave the module's shop with its own model as the latest
            save_demand_model(session, dataclasses.replace(original, id=None))


def test_sales_evidence_by_hand() -> None:
    units = np.array([[0.0, 2.0, 5.0, 1.0, 9.0], [0.0, 0.0, 3.0, 4.0, 0.0]])
    featured = np.array([[0.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    active = np.array([[True] * 5, [False, False, True, True, True]])
    panel = SalesPanel(
        skus=["A", "B"],
        categories=["c", "c"],
        brands=["", ""],
        list_price_cents=np.array([100.0, 100.0]),
        start=START,
        end=START + dt.timedelta(days=4),
        units=units,
        price=np.full((2, 5), 100.0),
        featured=featured,
        cap=np.full((2, 5), np.inf),
        active=active,
        has_price_history=np.array([False, False]),
    )
    ev = sales_evidence(panel)
    np.testing.assert_allclose(ev[0], [17 / 5, 5.0, 9.0])  # recent mean, best ordinary, best promotion
    np.testing.assert_allclose(ev[1, :2], [7 / 3, 4.0])  # only the days on offer count
    assert np.isnan(ev[1, 2])  # never promoted
    weekly = dataclasses.replace(panel, period_days=7)
    np.testing.assert_allclose(sales_evidence(weekly)[0], [17 / 4 / 7, 5 / 7, 9 / 7])  # the last 4 weeks


def test_a_promotion_that_sold_little_does_not_cap_below_the_best_ordinary_day(
    tier_shop: sessionmaker[Session],
) -> None:
    """A SKU once featured on a day it sold nothing (best promotion day 0) that sells 7 on a good ordinary
    day: its sale is compared with the 7, the most it ever sold, and capped at 3 x 7, not at one unit."""
    with tier_shop() as session:
        model = load_latest_demand_model(session)
    assert model is not None
    evidence = model.evidence.copy()
    row = model.rows([SKUS[0]])[0]
    evidence[row] = [1.0, 7.0, 0.0]
    model = dataclasses.replace(model, evidence=evidence)
    assert guard_caps(model, [SKUS[0]], 3.0).tolist() == [21]
    ev = forecast_evidence(model, SKUS[0], 10.0, 3.0, 21)
    assert ev is not None and not ev.flagged
    assert ev.compared_with == "best ordinary day" and ev.best_promotion_day == 0.0
