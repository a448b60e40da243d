"""The typed catalogue queries, the read-only SQL tool and the LangChain tool wrappers."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from assistant.deps import Deps
from assistant.llm_tools import FORBIDDEN_TOOL_WORDS, READ_ONLY_TOOLS, WRITING_TOOLS, build_tools
from db.engine import make_session_factory
from db.models import FlashSalePlan, PlanItem, PlanStatus, PriceHistory, Product
from tests.assistant_shop import NOW, TODAY, build_assistant_shop
from tests.scripted_model import cents
from tools import catalog, readonly_sql
from tools.demand import fit_demand_model, save_demand_model
from tools.readonly_sql import SqlFailed, UnsafeSql, check_select, run_readonly_sql


@pytest.fixture
def shop(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    build_assistant_shop(session_factory)
    return session_factory


@pytest.fixture
def deps(shop: sessionmaker[Session]) -> Deps:
    return Deps(session_factory=shop, clock=lambda: NOW)


def _tool(deps: Deps, name: str) -> object:
    return next(t for t in build_tools(deps) if t.name == name)


def test_search_finds_products_by_words_category_and_brand(shop: sessionmaker[Session]) -> None:
    with shop() as s:
        found = catalog.search_products(s, query="aurora headphones")
        assert [p.sku for p in found.items] == ["HP-100", "HP-200"]
        assert catalog.search_products(s, category="kitchen").total_matches == 2
        limited = catalog.search_products(s, brand="Aurora", limit=1)
        assert limited.truncated and limited.total_matches == 2 and len(limited.items) == 1


def test_product_details_uses_current_price_latest_stock_and_competitors(shop: sessionmaker[Session]) -> None:
    with shop() as s:
        d = catalog.product_details(s, "HP-200", as_of=NOW)
        assert d.current_price_cents == 17_900  # the November price, not the list price
        assert d.margin_pct_at_current_price == round((17_900 - 9_000) / 17_900 * 100, 1)
        assert (d.on_hand, d.reserved) == (40, 0)
        assert [(q.competitor, q.price_cents) for q in d.latest_competitor_prices] == [("ShopCo", 18_900)]
        hp = catalog.product_details(s, "HP-100", as_of=NOW)
        assert hp.on_hand == 100  # the newer snapshot
        assert hp.review_count == 2 and hp.average_rating == 4.0
        assert [q.price_cents for q in hp.latest_competitor_prices] == [8_900]
        assert hp.units_sold_last_28_days == 42


def test_unknown_sku_suggests_close_matches(shop: sessionmaker[Session]) -> None:
    with shop() as s, pytest.raises(catalog.UnknownSku, match="HP-100"):
        catalog.product_details(s, "HP-10", as_of=NOW)


def test_sales_history_by_day_for_sku_category_and_shop(shop: sessionmaker[Session]) -> None:
    with shop() as s:
        h = catalog.sales_history(s, start=dt.date(2026, 11, 10), end=dt.date(2026, 11, 23), sku="HP-100")
        assert len(h.days) == 14 and {d.units for d in h.days} == {3}
        assert h.total_units == 42 and h.total_revenue_cents == 42 * 9_900
        assert h.average_daily_units == 3.0
        k = catalog.sales_history(
            s, start=dt.date(2026, 11, 10), end=dt.date(2026, 11, 11), category="Kitchen"
        )
        assert [(d.day, d.units) for d in k.days] == [(dt.date(2026, 11, 10), 1)]
        shop_total = catalog.sales_history(s, start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 30))
        assert shop_total.total_units == 42 + 7
        with pytest.raises(catalog.InvalidQuery, match="before"):
            catalog.sales_history(s, start=TODAY, end=dt.date(2026, 1, 1))
        with pytest.raises(catalog.InvalidQuery, match="no products"):
            catalog.sales_history(s, start=TODAY, end=TODAY, category="Garden")


def test_inventory_and_competitor_prices(shop: sessionmaker[Session]) -> None:
    with shop() as s:
        inv = catalog.inventory(s, as_of=NOW, category="Headphones")
        assert [(r.sku, r.available) for r in inv.rows] == [("HP-100", 90), ("HP-200", 40)]
        old = catalog.inventory(s, as_of=dt.datetime(2026, 11, 21), skus=["HP-100"])
        assert old.rows[0].on_hand == 120
        cp = catalog.competitor_prices(s, as_of=NOW, sku="HP-100")
        assert [(r.competitor, r.competitor_price_cents, r.gap_pct) for r in cp.rows] == [
            ("MegaMart", 8_900, round((8_900 - 9_900) / 9_900 * 100, 1))
        ]


def test_market_signals_valid_on_a_date_with_news(shop: sessionmaker[Session]) -> None:
    with shop() as s:
        on = catalog.market_signals(s, on=dt.date(2026, 11, 25))
        assert [(x.scope_value, x.multiplier, x.source_ids) for x in on.signals] == [("Kitchen", 1.15, [1])]
        assert {n.id for n in on.recent_news} == {1, 2}
        assert catalog.market_signals(s, on=dt.date(2026, 12, 5)).signals == []


# ---- read-only SQL ----


@pytest.mark.parametrize(
    "sql,reason",
    [
        ("DELETE FROM product", "only SELECT"),
        ("SELECT 1; DROP TABLE product", "exactly one statement"),
        ("UPDATE product SET list_price_cents = 1", "only SELECT"),
        ("PRAGMA table_info(product)", "only SELECT"),
        ("ATTACH DATABASE 'x.db' AS x", "only SELECT"),
        ("SELECT * FROM sim_sku_truth", "cannot be read"),
        ("SELECT * FROM audit_log", "cannot be read"),
        ("SELECT name FROM sqlite_master", "cannot be read"),
        ("SELECT load_extension('evil')", "not allowed"),
        ("WITH t AS (SELECT * FROM sim_run) SELECT * FROM t", "cannot be read"),
        ("SELECT * INTO copy FROM product", "not allowed"),
        ("SELECT * FROM main.product", "schema-qualified"),
        ("", "empty"),
    ],
)
def test_unsafe_sql_is_refused_before_running(sql: str, reason: str) -> None:
    with pytest.raises(UnsafeSql, match=reason):
        check_select(sql, "sqlite")


def test_postgres_side_effect_functions_are_refused() -> None:
    with pytest.raises(UnsafeSql, match="not allowed"):
        check_select("SELECT pg_sleep(10)", "postgres")


def test_readonly_sql_runs_selects_with_a_row_limit(shop: sessionmaker[Session], db_engine: Engine) -> None:
    result = run_readonly_sql(
        db_engine,
        "WITH s AS (SELECT sku, SUM(qty) AS units FROM order_line GROUP BY sku) "
        "SELECT p.sku, s.units FROM product p JOIN s ON s.sku = p.sku ORDER BY s.units DESC",
        max_rows=1,
    )
    assert result.columns == ["sku", "units"]
    assert result.rows == [["HP-100", 42]] and result.truncated
    with pytest.raises(SqlFailed, match="refused"):
        run_readonly_sql(db_engine, "SELECT no_such_column FROM product")
    with shop() as s:  # nothing changed
        assert s.scalar(select(func.count()).select_from(Product)) == 5


def test_readonly_connection_cannot_write_even_if_the_parser_were_fooled(sqlite_engine: Engine) -> None:

    ro = readonly_sql._sqlite_readonly_engine(sqlite_engine)
    try:
        with ro.connect() as conn, pytest.raises(Exception, match="readonly"):
            conn.exec_driver_sql("CREATE TABLE x (a int)")
    finally:
        ro.dispose()


# ---- LangChain tools ----


def test_tools_return_json_of_typed_results(deps: Deps) -> None:
    out = json.loads(_tool(deps, "get_sales_history").invoke({"sku": "HP-100", "days": 14}))  # type: ignore[attr-defined]
    assert out["total_units"] == 42 and out["end"] == "2026-11-23"
    sql = json.loads(_tool(deps, "run_sql").invoke({"sql": "SELECT COUNT(*) AS n FROM product"}))  # type: ignore[attr-defined]
    assert sql["rows"] == [[5]]


@pytest.mark.parametrize(
    "name,args,needle",
    [
        ("get_product_details", {"sku": "HP-10"}, "Did you mean"),
        ("get_product_details", {}, "sku"),
        ("get_sales_history", {"sku": "HP-100", "category": "Kitchen"}, "at most one"),
        ("get_sales_history", {"days": 0}, "days"),
        ("search_products", {"limit": 1000}, "limit"),
        ("search_products", {"colour": "red"}, "colour"),
        ("run_sql", {"sql": "DROP TABLE product"}, "only SELECT"),
    ],
)
def test_bad_arguments_come_back_as_recoverable_errors(
    deps: Deps, name: str, args: dict, needle: str
) -> None:
    out = json.loads(_tool(deps, name).invoke(args))  # type: ignore[attr-defined]
    assert set(out) == {"error", "hint"}
    assert needle in out["error"] + out["hint"]


def test_no_tool_writes_prices_or_approves_plans(deps: Deps) -> None:
    names = [t.name for t in build_tools(deps)]
    assert len(names) == len(set(names))
    for name in names:
        assert not any(word in name for word in FORBIDDEN_TOOL_WORDS), name
    assert set(WRITING_TOOLS) == {"save_draft_plan", "propose_replan"}
    assert set(names) <= READ_ONLY_TOOLS | set(WRITING_TOOLS)


def test_forecast_tool_needs_a_model_then_forecasts_with_signals(sqlite_engine: Engine) -> None:

    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    deps = Deps(session_factory=factory, clock=lambda: NOW)
    args = {"skus": ["KT-100", "HP-100"], "discounts": [0.0, 0.3]}
    missing = json.loads(_tool(deps, "forecast_demand").invoke(args))  # type: ignore[attr-defined]
    assert "python cli.py fit" in missing["error"]
    with factory.begin() as s:
        model_id = save_demand_model(s, fit_demand_model(s))
    out = json.loads(_tool(deps, "forecast_demand").invoke(args))  # type: ignore[attr-defined]
    assert out["demand_model_id"] == model_id and out["date"] == "2026-11-25"
    kettle, headphones = out["forecasts"]
    assert kettle["signal_ids"] and not headphones["signal_ids"]  # the Kitchen signal is active
    for f in (kettle, headphones):
        full, cut = f["points"]
        assert cents(cut["price"]) == round(cents(f["list_price"]) * 0.7)
        assert cut["expected_units"] > full["expected_units"]  # demand rises when the price falls
        assert full["p10_units"] <= full["expected_units"] <= full["p90_units"]
    bad = json.loads(_tool(deps, "forecast_demand").invoke({"skus": ["KT-100"], "discounts": [20]}))  # type: ignore[attr-defined]
    assert "0.2 for 20 %" in bad["hint"]


def test_explain_plan_reads_a_saved_plan_and_answers_for_a_sku(deps: Deps) -> None:

    with deps.session_factory.begin() as s:
        plan = FlashSalePlan(sale_date=dt.date(2026, 11, 25), status=PlanStatus.DRAFT, created_by="optimizer")
        plan.items.append(
            PlanItem(
                sku="HP-100",
                discount_pct=Decimal(20),
                sale_price_cents=7_920,
                allocated_units=30,
                forecast_units=24.5,
                expected_revenue_cents=190_080,
                expected_profit_cents=94_080,
                reason="highest expected profit per slot",
            )
        )
        s.add(plan)
        s.flush()
        plan_id = plan.id
    tool = _tool(deps, "explain_plan")
    inside = json.loads(tool.invoke({"sale_date": "2026-11-25", "sku": "HP-100"}))  # type: ignore[attr-defined]
    assert inside["id"] == plan_id and inside["status"] == "draft"
    assert inside["items"][0]["sale_price"] == "79.20 EUR" and inside["expected_profit"] == "940.80 EUR"
    assert "highest expected profit" in inside["sku_question"]
    outside = json.loads(tool.invoke({"plan_id": plan_id, "sku": "KT-100"}))  # type: ignore[attr-defined]
    assert outside["sku_question"].startswith(f"KT-100 is not in plan {plan_id}")
    listed = json.loads(tool.invoke({"list_recent": True}))  # type: ignore[attr-defined]
    assert listed["plans"] == [
        {
            "plan_id": plan_id,
            "sale_date": "2026-11-25",
            "status": "draft",
            "items": 1,
            "created_by": "optimizer",
        }
    ]
    missing = json.loads(tool.invoke({"plan_id": 999}))  # type: ignore[attr-defined]
    assert "no plan with id 999" in missing["error"]


def test_readonly_sql_stops_a_runaway_query_at_the_time_limit(db_engine: Engine) -> None:
    runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
    with pytest.raises(SqlFailed, match=r"time limit"):
        run_readonly_sql(db_engine, runaway, timeout_s=0.3)


def test_plan_tools_optimise_compare_and_save_only_a_draft(sqlite_engine: Engine) -> None:

    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    with factory.begin() as s:
        save_demand_model(s, fit_demand_model(s))
        prices_before = s.scalar(select(func.count()).select_from(PriceHistory))
    deps = Deps(session_factory=factory, clock=lambda: NOW, actor="ana")
    args = {"slots": 2, "explain_skus": ["HP-100", "KT-200"]}
    plan = json.loads(_tool(deps, "optimize_plan").invoke(args))  # type: ignore[attr-defined]
    assert plan["sale_date"] == "2026-11-25" and 1 <= len(plan["items"]) <= 2
    assert set(plan["reasons"]) == {"HP-100", "KT-200"}
    for item in plan["items"]:
        assert cents(item["sale_price"]) < cents(item["list_price"])
    chosen = {i["sku"] for i in plan["items"]}
    outsider = next(sku for sku in ("HP-100", "HP-200", "HP-300", "KT-100", "KT-200") if sku not in chosen)
    alt = json.loads(_tool(deps, "what_if").invoke({"slots": 2, "pin": outsider}))  # type: ignore[attr-defined]
    assert alt["change"] == f"pin {outsider}"
    assert alt["alternative"] is None or outsider in alt["alternative"]["skus"]
    assert alt["alternative"] is None or cents(alt["delta_profit"]) <= 0  # the optimum cannot be beaten
    nothing = json.loads(_tool(deps, "what_if").invoke({"slots": 2}))  # type: ignore[attr-defined]
    assert "say what changes" in nothing["error"] + nothing["hint"]
    frontier = json.loads(_tool(deps, "pareto_frontier").invoke({"slots": 2, "points": 3}))  # type: ignore[attr-defined]
    points = frontier["points"]
    profits = [cents(p["expected_profit"]) for p in points]
    assert points and profits[0] == max(profits)
    revenues = [cents(p["expected_revenue"]) for p in points]
    assert revenues == sorted(revenues)  # more revenue costs profit along the frontier
    saved = json.loads(_tool(deps, "save_draft_plan").invoke({"slots": 2, "notes": "for review"}))  # type: ignore[attr-defined]
    with factory() as s:
        stored = s.get(FlashSalePlan, saved["plan_id"])
        assert stored is not None and stored.status is PlanStatus.DRAFT
        assert stored.created_by == "assistant:ana" and stored.approved_by is None
        assert {i.sku for i in stored.items} == chosen
        assert s.scalar(select(func.count()).select_from(PriceHistory)) == prices_before  # no price written
    assert "plan approve" in saved["next_step"]
