"""What the assistant's tools may write, shown by behaviour: every read-only tool, called on the demo shop,
leaves every table as it was, and the database itself refuses a write from a read-only tool."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from assistant.deps import Deps, make_deps
from assistant.llm_tools import READ_ONLY_TOOLS, TOOLS, WRITING_TOOLS, build_tools
from assistant.llm_tools.base import ToolSpec, is_error, run_tool
from assistant.settings import Settings
from db.engine import make_session_factory, read_only_scope
from db.models import Base, FlashSalePlan, PlanStatus, Product
from tools.demand import fit_demand_model, load_latest_demand_model, save_demand_model
from tools.lifecycle import approve_plan
from tools.optimizer import PlanConstraints, SolverOptions, optimize_plan
from tools.plans import build_candidates, candidate_inputs, save_draft_plan
from tools.publish import publish_plan
from tools.simulator.live import play_live_sale

NOW = dt.datetime(2026, 7, 1, 9, 0)


def table_fingerprints(engine: Engine) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every row (in primary-key order) of every table."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest = hashlib.sha256("\n".join(repr(tuple(r)) for r in rows).encode()).hexdigest()
            out[table.name] = (len(rows), digest)
    return out


@pytest.fixture
def shop_deps(demo_shop_copy: Any) -> Deps:
    with demo_shop_copy.session_factory.begin() as s:
        save_demand_model(s, fit_demand_model(s))
    return make_deps(Settings(), demo_shop_copy.session_factory, actor="ana", channel="cli")


def _live_sale(deps: Deps, tmp_path: Path) -> int:
    """A sale of the demo shop made by the optimiser, approved, published and played to 10:00."""
    sale_date = dt.date(2026, 7, 1)
    with deps.session_factory.begin() as s:
        model = load_latest_demand_model(s)
        assert model is not None
        cand = build_candidates(s, sale_date, model)
        result = optimize_plan(cand, PlanConstraints(slots=4), None, SolverOptions(deterministic=True))
        plan_id = save_draft_plan(s, result, sale_date=sale_date, inputs=candidate_inputs(cand))
        approve_plan(s, plan_id, "Dana", now=NOW)
        publish_plan(s, plan_id, actor="Dana", now=NOW, out_dir=tmp_path, currency="EUR")
        play_live_sale(s, plan_id, 10, now=NOW)
    return plan_id


def _calls(deps: Deps, live: int) -> dict[str, dict[str, Any]]:
    """A realistic call of every read-only tool on the demo shop."""
    with deps.session_factory() as s:
        sku, category = s.execute(select(Product.sku, Product.category).limit(1)).one()
        closed = s.scalar(select(func.max(FlashSalePlan.id)).where(FlashSalePlan.status == PlanStatus.CLOSED))
    return {
        "search_products": {"query": sku[:3]},
        "get_product_details": {"sku": sku},
        "get_sales_history": {"category": category, "days": 30},
        "get_inventory": {"category": category},
        "get_competitor_prices": {"sku": sku},
        "get_market_signals": {},
        "run_sql": {"sql": "SELECT sku, SUM(qty) FROM order_line GROUP BY sku ORDER BY 2 DESC LIMIT 3"},
        "kpi_report": {"plan_id": closed, "by": "category"},
        "forecast_demand": {"skus": [sku], "discounts": [0.0, 0.3]},
        "optimize_plan": {"slots": 5, "explain_skus": [sku]},
        "what_if": {"slots": 5, "exclude": sku},
        "pareto_frontier": {"slots": 5, "points": 3},
        "explain_plan": {"plan_id": closed, "sku": sku},
        "data_check": {},
        "live_sale_status": {"plan_id": live},
        "compare_campaigns": {"plans_a": [closed], "plans_b": [closed - 1]},
        "sale_vs_plan": {"plan_id": closed, "by": "brand"},
        "forecast_error_trend": {"last": 4},
        "get_reviews": {"category": category, "recent_days": 60},
    }


def test_every_read_only_tool_leaves_every_table_as_it_was(
    demo_shop_copy: Any, shop_deps: Deps, tmp_path: Path
) -> None:
    calls = _calls(shop_deps, _live_sale(shop_deps, tmp_path))
    assert set(calls) == READ_ONLY_TOOLS  # a new read-only tool must be added to this test
    before = table_fingerprints(demo_shop_copy.engine)
    tools = {t.name: t for t in build_tools(shop_deps)}
    for name, args in calls.items():
        output = tools[name].invoke(args)
        assert isinstance(output, str) and not is_error(output), (name, output[:300])
    assert table_fingerprints(demo_shop_copy.engine) == before


def test_a_replan_proposed_by_the_model_is_only_a_draft_revision(
    demo_shop_copy: Any, shop_deps: Deps, tmp_path: Path
) -> None:
    live = _live_sale(shop_deps, tmp_path)
    before = table_fingerprints(demo_shop_copy.engine)
    (replan,) = [t for t in build_tools(shop_deps) if t.name == "propose_replan"]
    out = json.loads(replan.invoke({"plan_id": live}))
    assert not is_error(json.dumps(out)) and out["status"] == "draft", out
    after = table_fingerprints(demo_shop_copy.engine)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {
        "flash_sale_plan",
        "plan_item",
        "plan_event",
        "audit_log",
    }  # the revision and its record
    with demo_shop_copy.session_factory() as s:
        revision = s.get(FlashSalePlan, out["revision_id"])
        parent = s.get(FlashSalePlan, live)
        assert revision is not None and parent is not None
        assert revision.status is PlanStatus.DRAFT and revision.approved_by is None
        assert parent.status is PlanStatus.LIVE  # the shop's prices are untouched
        assert revision.created_by == "assistant:ana"


def test_the_writing_tools_write_only_drafts(demo_shop_copy: Any, shop_deps: Deps) -> None:
    assert set(WRITING_TOOLS) == {"save_draft_plan", "propose_replan"}
    before = table_fingerprints(demo_shop_copy.engine)
    (save,) = [t for t in build_tools(shop_deps) if t.name == "save_draft_plan"]
    assert not is_error(save.invoke({"slots": 3}))
    after = table_fingerprints(demo_shop_copy.engine)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"flash_sale_plan", "plan_item"}
    with demo_shop_copy.session_factory() as s:
        newest = s.scalars(select(FlashSalePlan).order_by(FlashSalePlan.id.desc()).limit(1)).one()
    assert newest.status is PlanStatus.DRAFT and newest.approved_by is None


class _NoArgs(BaseModel):
    pass


def _sneaky_write(deps: Deps, session: Session, args: _NoArgs) -> dict[str, Any]:
    """A read-only tool that tries to change a price."""
    session.execute(text("UPDATE product SET list_price_cents = 1"))
    session.flush()
    return {"done": True}


def test_a_read_only_tool_that_writes_is_refused_by_the_database(
    demo_shop_copy: Any, shop_deps: Deps
) -> None:
    spec = ToolSpec("sneaky", "tries to write", _NoArgs, _sneaky_write)
    assert spec.read_only and "sneaky" not in TOOLS
    before = table_fingerprints(demo_shop_copy.engine)
    with pytest.raises(DBAPIError, match="readonly"):
        run_tool(spec, shop_deps, {})
    assert table_fingerprints(demo_shop_copy.engine) == before


def test_read_only_sessions_cannot_write_on_either_database(db_engine: Engine) -> None:
    factory = make_session_factory(db_engine)
    with pytest.raises(DBAPIError, match=r"(?i)read-?only"), read_only_scope(factory) as s:
        s.execute(text("INSERT INTO customer (id, segment, attributes) VALUES ('c1', 'x', '{}')"))
        s.flush()
    with factory.begin() as s:  # the connection went back to the pool writable
        s.execute(text("INSERT INTO customer (id, segment, attributes) VALUES ('c2', 'x', '{}')"))
    with factory() as s:
        assert s.scalars(text("SELECT id FROM customer")).all() == ["c2"]


# ---- hostile arguments: every one a named error, none a crash or a stored control character ----


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("forecast_demand", {"skus": ["X"], "date": "0001-01-01"}, "date"),
        ("forecast_demand", {"skus": ["X"], "date": "9999-12-31"}, "date"),
        ("kpi_report", {"start": "0001-01-01", "end": "9999-12-31"}, "start"),
        ("get_market_signals", {"date": "0001-01-01"}, "date"),
        ("get_sales_history", {"sku": "X", "start": "0001-01-01", "end": "0001-01-02"}, "start"),
        ("explain_plan", {"sale_date": "9999-12-31"}, "sale_date"),
    ],
)
def test_dates_out_of_any_shop_s_range_are_named_errors(
    shop_deps: Deps, tool: str, args: dict[str, Any], expected: str
) -> None:
    out, _ = run_tool(TOOLS[tool], shop_deps, args)
    assert is_error(out), out
    assert expected in out and "OverflowError" not in out


def test_a_forecast_far_from_the_shop_s_today_is_refused(shop_deps: Deps) -> None:
    with shop_deps.session_factory() as s:
        sku = s.scalars(select(Product.sku).limit(1)).one()
    far = shop_deps.today().replace(year=shop_deps.today().year + 2)
    out, _ = run_tool(TOOLS["forecast_demand"], shop_deps, {"skus": [sku], "date": str(far)})
    assert is_error(out) and "days ahead" in out, out


def test_control_characters_never_reach_a_stored_note(demo_shop_copy: Any, shop_deps: Deps) -> None:
    out, _ = run_tool(TOOLS["save_draft_plan"], shop_deps, {"slots": 3, "notes": "bad\x00note\x1b[31m ok\n"})
    assert not is_error(out), out
    with demo_shop_copy.session_factory() as s:
        notes = s.scalars(select(FlashSalePlan.notes).order_by(FlashSalePlan.id.desc()).limit(1)).one()
    assert notes is not None and "\x00" not in notes and "\x1b" not in notes and "note" in notes


# ---- every tool call runs under a time limit ----


def _slow_query(deps: Deps, session: Session, args: BaseModel) -> dict[str, Any]:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_sleep(30)"))
    else:  # a query that runs for minutes
        session.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
                "SELECT COUNT(*) FROM n"
            )
        )
    return {"done": True}


def test_a_tool_call_past_its_time_limit_is_stopped_with_a_named_error(db_engine: Engine) -> None:
    deps = Deps(session_factory=make_session_factory(db_engine), settings=Settings(tool_time_limit_s=1.0))
    spec = ToolSpec("slow_query", "runs for minutes", _NoArgs, _slow_query)
    started = time.perf_counter()
    out, _ = run_tool(spec, deps, {})
    assert is_error(out) and "slow_query did not finish within 1 s" in out, out
    assert time.perf_counter() - started < 10
    # the query itself was interrupted: the database is free for the next call at once
    with deps.session_factory() as s:
        assert s.execute(text("SELECT 1")).scalar_one() == 1


def _write_then_dawdle(deps: Deps, session: Session, args: BaseModel) -> dict[str, Any]:
    session.execute(text("INSERT INTO customer (id, segment, attributes) VALUES ('late', 'x', '{}')"))
    session.flush()
    time.sleep(1.5)
    return {"saved": True}


def test_a_writing_tool_given_up_at_its_time_limit_saves_nothing(db_engine: Engine) -> None:
    deps = Deps(session_factory=make_session_factory(db_engine), settings=Settings(tool_time_limit_s=0.5))
    spec = ToolSpec("slow_writer", "writes, then dawdles", _NoArgs, _write_then_dawdle, writes="customer")
    out, _ = run_tool(spec, deps, {})
    assert is_error(out) and "nothing was saved" in out, out
    time.sleep(2.0)  # the worker has finished by now, and rolled back
    with deps.session_factory() as s:
        assert s.scalars(text("SELECT id FROM customer")).all() == []
