"""The assistant's analysis tools on the demo shop's past sales: a comparison of two campaigns (plans or
date ranges) with per-slot figures, a past sale's misses by category with their drivers, and the forecast
error of the last sales as a series. Each tool's figures must be the ones the CLI's functions give."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from assistant.deps import Deps, make_deps
from assistant.llm_tools import build_tools, is_error
from assistant.settings import Settings
from db.models import FlashSalePlan, PlanItem, PlanStatus
from tools.campaigns import compare_campaigns, plan_vs_actual
from tools.kpi import kpi_report


@pytest.fixture(scope="module")
def deps(demo_shop: Any) -> Deps:
    return make_deps(Settings(), demo_shop.session_factory, actor="ana", channel="cli")


@pytest.fixture(scope="module")
def closed(demo_shop: Any) -> list[int]:
    with demo_shop.session_factory() as s:
        ids = s.scalars(
            select(FlashSalePlan.id)
            .where(FlashSalePlan.status == PlanStatus.CLOSED)
            .order_by(FlashSalePlan.sale_date)
        ).all()
    assert len(ids) >= 6
    return list(ids)


def _call(deps: Deps, name: str, args: dict[str, Any]) -> dict[str, Any]:
    tools = {t.name: t for t in build_tools(deps)}
    out = tools[name].invoke(args)
    assert isinstance(out, str)
    return dict(json.loads(out))


def _money(text: str) -> Decimal:
    amount, currency = text.split()
    assert currency == "EUR"
    return Decimal(amount)


def test_compare_campaigns_of_plans_gives_the_clis_verdict_and_per_slot_figures(
    deps: Deps, demo_shop: Any, closed: list[int]
) -> None:
    a, b = closed[:3], closed[3:6]
    data = _call(deps, "compare_campaigns", {"plans_a": a, "plans_b": b})
    with demo_shop.session_factory() as s:
        direct = compare_campaigns(s, a, b)
        profit_a = sum(
            kpi_report(s, None, None, plan_id=p, counterfactual=False).total.gross_profit_cents for p in a
        )
        slots_a = len(s.scalars(select(PlanItem.id).where(PlanItem.plan_id.in_(a))).all())
    assert data["unit"] == "day" and data["verdict"] == direct.verdict
    assert _money(data["difference"]) == Decimal(round(direct.difference)) / 100
    assert _money(data["ci_low"]) <= _money(data["difference"]) <= _money(data["ci_high"])
    side = data["side_a"]
    assert side["slots"] == slots_a and _money(side["gross_profit"]) == Decimal(profit_a) / 100
    assert _money(side["profit_per_slot"]) == Decimal(round(profit_a / slots_a)) / 100
    assert "per day" in data["note_on_units"]


def test_compare_campaigns_of_two_date_ranges_counts_each_day(deps: Deps, closed: list[int]) -> None:
    data = _call(
        deps,
        "compare_campaigns",
        {
            "start_a": "2026-05-01",
            "end_a": "2026-05-14",
            "start_b": "2026-05-15",
            "end_b": "2026-05-31",
            "metric": "units",
        },
    )
    assert not is_error(json.dumps(data)), data
    assert (data["n_a"], data["n_b"]) == (14, 17)
    assert isinstance(data["mean_a"], float) and data["label_a"] == "2026-05-01 to 2026-05-14"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"plans_a": [1], "start_a": "2026-05-01"}, "either plans_a and plans_b"),
        (
            {"start_a": "2026-05-10", "end_a": "2026-05-01", "start_b": "2026-05-01", "end_b": "2026-05-02"},
            "before it starts",
        ),
        (
            {
                "start_a": "2026-05-01",
                "end_a": "2026-05-02",
                "start_b": "2026-05-03",
                "end_b": "2026-05-04",
                "unit": "customer",
            },
            "per day",
        ),
        ({"plans_a": [999999], "plans_b": [1]}, "999999"),
    ],
)
def test_compare_campaigns_bad_arguments_are_named_errors(
    deps: Deps, args: dict[str, Any], words: str
) -> None:
    data = _call(deps, "compare_campaigns", args)
    assert set(data) == {"error", "hint"} and words in data["error"] + data["hint"]


def test_sale_vs_plan_by_category_adds_up_to_the_sale_and_puts_the_worst_first(
    deps: Deps, demo_shop: Any, closed: list[int]
) -> None:
    plan_id = closed[-1]
    data = _call(deps, "sale_vs_plan", {"plan_id": plan_id, "by": "category", "top": 50})
    with demo_shop.session_factory() as s:
        pva = plan_vs_actual(s, plan_id, today=deps.today())
    groups = data["groups"]
    assert sum(g["sold_units"] for g in groups) == pva.sold_units
    assert (
        sum(g["items"] for g in groups) == sum(sum(g["drivers"].values()) for g in groups) == len(pva.items)
    )
    through = [g["sell_through"] for g in groups]
    assert through == sorted(through)
    assert {g["key"] for g in groups} == {i.category for i in pva.items}
    worst = groups[0]
    assert worst["worst_item"].split(":")[0] in {i.sku for i in pva.items if i.category == worst["key"]}


def test_sale_vs_plan_of_an_unknown_plan_is_a_named_error(deps: Deps) -> None:
    data = _call(deps, "sale_vs_plan", {"plan_id": 999999})
    assert set(data) == {"error", "hint"} and "999999" in data["error"]


def test_forecast_error_trend_lists_the_last_sales_oldest_first(
    deps: Deps, demo_shop: Any, closed: list[int]
) -> None:
    data = _call(deps, "forecast_error_trend", {"last": 5})
    sales = data["sales"]
    assert [s["plan_id"] for s in sales] == closed[-5:]
    dates = [dt.date.fromisoformat(s["sale_date"]) for s in sales]
    assert dates == sorted(dates)
    with demo_shop.session_factory() as s:
        pva = plan_vs_actual(s, closed[-1], today=deps.today())
    assert sales[-1]["wape"] == pytest.approx(pva.wape, abs=1e-4)
    trend = data["trend"]
    assert trend["p_value"] is not None and 0 <= trend["p_value"] <= 1
    assert ("no clear trend" in trend["verdict"]) == (trend["p_value"] >= 0.1)
    assert set(_call(deps, "forecast_error_trend", {"last": 1})) == {"error", "hint"}
