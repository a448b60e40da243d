"""KPI figures, plan against actual and campaign comparisons, checked against the hand-computed values of the
fixture shop in tests/kpi_shop.py, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import tools.kpi
from db.engine import make_session_factory
from db.models import Customer, FlashSalePlan, Order, OrderLine, PlanItem, PlanStatus, Product
from tests.kpi_shop import END, SALE_DATE, START, TODAY, build_kpi_shop
from tools.campaigns import (
    PlanNotClosed,
    compare_campaigns,
    compare_days,
    compare_samples,
    customer_arm,
    plan_vs_actual,
)
from tools.forecast import ForecastGrid
from tools.kpi import KpiInputError, UnknownPlan, kpi_report


@pytest.fixture
def shop(db_engine: Engine) -> Iterator[tuple[sessionmaker[Session], int]]:
    factory = make_session_factory(db_engine)
    with factory.begin() as session:
        plan_id = build_kpi_shop(session)
    yield factory, plan_id


class StubDemandModel:
    """Expected units = everyday price / 1000; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[dt.date, list[str], list[int], bool]] = []

    def forecast_grid(
        self,
        date: dt.date,
        skus: Sequence[str],
        prices_cents: Any,
        featured: bool = True,
        signals: Any = None,
    ) -> ForecastGrid:
        prices = np.asarray(prices_cents, dtype=np.int64)
        self.calls.append((date, list(skus), [int(p) for p in prices[:, 0]], bool(featured)))
        return ForecastGrid(
            skus=list(skus),
            prices_cents=prices,
            mean=prices / 1000.0,
            dispersion=np.full(len(skus), np.inf),
            signal_ids=[[] for _ in skus],
            model_id=77,
        )


def test_totals_match_hand_computed_figures(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, _ = shop
    with factory() as session:
        report = kpi_report(session, START, END)
    t = report.total
    assert (t.gmv_cents, t.units, t.cogs_cents, t.gross_profit_cents) == (12150, 13, 6600, 5550)
    assert t.margin == pytest.approx(5550 / 12150)
    assert t.avg_discount_depth == pytest.approx(1.4 / 13)
    assert (t.orders, t.unique_buyers, t.repeat_buyers) == (6, 3, 2)
    assert t.repeat_buyer_share == pytest.approx(2 / 3)
    assert (t.plan_items, t.allocated_units, t.sale_units, t.stock_outs) == (3, 18, 8, 1)
    assert t.sell_through == pytest.approx(8 / 18)
    assert t.avg_inventory_value_cents == 31400
    assert t.inventory_turnover == pytest.approx(6600 / 31400)
    assert [(d.day, d.gmv_cents, d.gross_profit_cents, d.units) for d in report.daily] == [
        (dt.date(2026, 3, 9), 2500, 1400, 3),
        (dt.date(2026, 3, 10), 7200, 3000, 8),
        (dt.date(2026, 3, 11), 2450, 1150, 2),
    ]
    assert report.groups == []


def test_by_category_figures(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, _ = shop
    with factory() as session:
        report = kpi_report(session, START, END, by="category")
    audio, home = report.groups  # ordered by GMV, largest first
    assert audio.key == "audio"
    assert (audio.gmv_cents, audio.units, audio.cogs_cents, audio.gross_profit_cents) == (
        10200,
        9,
        5400,
        4800,
    )
    assert audio.avg_discount_depth == pytest.approx(1.3 / 9)
    assert (audio.orders, audio.unique_buyers, audio.repeat_buyers) == (None, 3, 1)  # orders: total only
    assert (audio.allocated_units, audio.sale_units, audio.stock_outs) == (8, 6, 1)
    assert audio.sell_through == pytest.approx(0.75)
    assert audio.avg_inventory_value_cents == 22400
    assert audio.inventory_turnover == pytest.approx(5400 / 22400)
    assert home.key == "home"
    assert (home.gmv_cents, home.units, home.cogs_cents, home.gross_profit_cents) == (1950, 4, 1200, 750)
    assert home.avg_discount_depth == pytest.approx(0.1 / 4)
    assert (home.unique_buyers, home.repeat_buyers) == (2, 1)
    assert home.sell_through == pytest.approx(2 / 10)
    assert home.inventory_turnover == pytest.approx(1200 / 9000)
    # the totals do not depend on the grouping
    assert report.total.unique_buyers == 3 and report.total.gmv_cents == 12150


def test_by_sku_and_brand(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, _ = shop
    with factory() as session:
        by_sku = {g.key: g for g in kpi_report(session, START, END, by="sku").groups}
        by_brand = {g.key: g for g in kpi_report(session, START, END, by="brand").groups}
    assert {k: (g.gmv_cents, g.units) for k, g in by_sku.items()} == {
        "A": (5200, 6),
        "B": (5000, 3),
        "C": (1950, 4),
    }
    assert by_sku["A"].stock_outs == 1 and by_sku["A"].sell_through == pytest.approx(1.0)
    assert by_sku["B"].unique_buyers == 2  # c2, c3; the anonymous order has no buyer
    assert by_sku["A"].avg_inventory_value_cents == 2400
    assert {k: g.gmv_cents for k, g in by_brand.items()} == {"Sonora": 7150, "Vox": 5000}
    assert by_brand["Sonora"].repeat_buyers == 2  # c1 (O1, O3) and c3 (O4, O5)


def test_stock_out_and_time_to_sell_out(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, plan_id = shop
    with factory() as session:
        report = kpi_report(session, START, END)
    (out,) = report.stock_outs
    assert (out.plan_id, out.sku, out.allocated_units, out.sold_units) == (plan_id, "A", 4, 4)
    assert out.sold_out_at == dt.datetime(2026, 3, 10, 11, 30)
    assert out.minutes_to_sell_out == pytest.approx(690.0)
    b = next(i for i in report.plan_items if i.sku == "B")
    assert (b.sold_units, b.revenue_cents, b.stocked_out, b.sold_out_at) == (2, 3000, False, None)


def test_plan_report_defaults_to_sale_date_and_plan_skus(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, plan_id = shop
    with factory() as session:
        report = kpi_report(session, None, None, plan_id=plan_id)
    assert (report.start, report.end) == (SALE_DATE, SALE_DATE)
    assert (report.total.gmv_cents, report.total.units, report.total.cogs_cents) == (7200, 8, 4200)
    assert report.total.orders == 3  # SKU-restricted: counted from the plan SKUs' lines
    assert (report.total.unique_buyers, report.total.repeat_buyers) == (3, 0)
    assert len(report.plan_items) == 3


def test_incremental_units_from_the_demand_model(
    shop: tuple[sessionmaker[Session], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    factory, _ = shop
    model = StubDemandModel()
    monkeypatch.setattr(tools.kpi, "load_latest_demand_model", lambda session: model)
    with factory() as session:
        report = kpi_report(session, START, END, by="category")
    # counterfactual at the everyday prices (A 1000 from price history, B and C list), not featured
    assert model.calls == [(SALE_DATE, ["A", "B", "C"], [1000, 2000, 500], False)]
    assert report.demand_model_id == 77
    items = {i.sku: i for i in report.plan_items}
    assert items["A"].incremental_units == pytest.approx(4 - 1.0)
    assert items["B"].incremental_units == pytest.approx(2 - 2.0)
    assert items["C"].incremental_units == pytest.approx(2 - 0.5)
    assert report.total.counterfactual_units == pytest.approx(3.5)
    assert report.total.incremental_units == pytest.approx(4.5)
    groups = {g.key: g for g in report.groups}
    assert groups["audio"].incremental_units == pytest.approx(3.0)
    assert groups["home"].incremental_units == pytest.approx(1.5)


def test_incremental_units_skipped_without_a_model(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, _ = shop
    with factory() as session:
        report = kpi_report(session, START, END)
    assert report.total.incremental_units is None
    assert any("no demand model is stored" in note for note in report.notes)


def test_period_without_sales_or_plans(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, _ = shop
    with factory() as session:
        report = kpi_report(session, dt.date(2025, 1, 1), dt.date(2025, 1, 31), by="sku")
    assert report.total.gmv_cents == 0 and report.total.margin is None and report.daily == []
    assert report.total.sell_through is None
    # opening stock from the 2026-03-01 snapshot does not exist yet in January 2025
    assert report.total.avg_inventory_value_cents is None


def test_bad_requests_say_what_to_do(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, _ = shop
    with factory() as session:
        with pytest.raises(KpiInputError, match="before it starts"):
            kpi_report(session, END, START)
        with pytest.raises(KpiInputError, match="Unknown grouping"):
            kpi_report(session, START, END, by="colour")  # type: ignore[arg-type]
        with pytest.raises(UnknownPlan, match="999"):
            kpi_report(session, None, None, plan_id=999)
        with pytest.raises(KpiInputError, match="start and an end"):
            kpi_report(session, START, None)


def test_plan_vs_actual(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, plan_id = shop
    with factory() as session:
        pva = plan_vs_actual(session, plan_id, today=TODAY)
    assert (pva.forecast_units, pva.sold_units) == (22.0, 8)
    assert pva.wape == pytest.approx(14 / 8)
    assert pva.bias == pytest.approx(14 / 8)
    assert (pva.revenue_cents, pva.profit_cents) == (7200, 3000)
    assert (pva.expected_revenue_cents, pva.expected_profit_cents) == (12800, 4800)
    items = {i.sku: i for i in pva.items}
    assert items["A"].driver == "stock-out" and "11:30" in items["A"].explanation
    assert items["B"].driver == "signals" and items["B"].signal_ids
    assert items["C"].driver == "price"
    assert items["C"].realised_avg_price_cents == 500
    assert (items["C"].error_units, items["C"].profit_cents) == (-6.0, 400)
    assert pva.drivers == {"stock-out": 1, "signals": 1, "price": 1}


def test_plan_vs_actual_needs_a_finished_plan(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, _ = shop
    with factory() as session:
        draft_id = session.query(FlashSalePlan.id).filter_by(status=PlanStatus.DRAFT).scalar()
        with pytest.raises(PlanNotClosed, match="draft"):
            plan_vs_actual(session, draft_id, today=TODAY)


# ---- comparisons ----------------------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_true_difference() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(1000.0, 100.0, 300)
    b = rng.normal(1100.0, 100.0, 300)  # true difference +100, +10 %
    result = compare_samples(a, b, label_a="Plan A", label_b="Plan B", seed=3)
    assert result.ci_low < 100.0 < result.ci_high
    assert result.relative_ci_low is not None and result.relative_ci_high is not None
    assert result.relative_ci_low < 0.10 < result.relative_ci_high
    assert result.significant and result.welch_p is not None and result.welch_p < 0.001
    assert result.verdict.startswith("Plan B earned")
    assert "more profit per day" in result.verdict and "the difference is significant" in result.verdict
    # the same seed gives the same interval
    again = compare_samples(a, b, label_a="Plan A", label_b="Plan B", seed=3)
    assert (again.ci_low, again.ci_high) == (result.ci_low, result.ci_high)


def test_verdict_flips_when_the_difference_is_noise() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(1000.0, 100.0, 30)
    b = rng.normal(1000.0, 100.0, 30)
    result = compare_samples(a, b, seed=3)
    assert result.ci_low < 0.0 < result.ci_high
    assert not result.significant
    assert "not distinguishable from noise" in result.verdict


def test_sparse_customer_samples_use_the_exact_zero_bootstrap() -> None:
    rng = np.random.default_rng(4)
    a = np.zeros(20_000)
    b = np.zeros(20_000)
    a[rng.choice(20_000, 400, replace=False)] = 50.0
    b[rng.choice(20_000, 600, replace=False)] = 50.0  # true mean difference 0.5
    result = compare_samples(a, b, unit="customer", seed=5, n_boot=1000)
    assert result.ci_low < 0.5 < result.ci_high
    assert result.significant and "per customer" in result.verdict


def test_few_days_use_welchs_interval_and_need_welchs_agreement() -> None:
    # three days a side: a percentile bootstrap would call this significant; Welch's t interval does not
    a = [2360.0, 2100.0, 2620.0]
    b = [3050.0, 2500.0, 3600.0]
    result = compare_samples(a, b, label_a="Plan A", label_b="Plan B")
    assert result.ci_method == "welch"
    assert result.ci_low < result.difference < result.ci_high
    assert result.welch_p is not None and result.welch_p > 0.05
    assert not result.significant and "not distinguishable from noise" in result.verdict
    far = compare_samples(a, [x + 5000.0 for x in b], label_a="Plan A", label_b="Plan B")
    assert far.significant and far.ci_low > 0


def test_compare_needs_two_observations_per_side() -> None:
    with pytest.raises(KpiInputError, match="at least two"):
        compare_samples([1.0], [1.0, 2.0])


def test_compare_days_uses_each_days_metric(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, _ = shop
    with factory() as session:
        result = compare_days(session, [START, SALE_DATE], [SALE_DATE, END], metric="gmv")
    assert (result.n_a, result.n_b) == (2, 2)
    assert result.mean_a == pytest.approx((2500 + 7200) / 2)
    assert result.mean_b == pytest.approx((7200 + 2450) / 2)
    assert result.difference == pytest.approx(-25.0)
    assert not result.significant


def test_compare_campaigns_per_customer(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, plan_id = shop
    with factory() as session:
        draft_id = session.query(FlashSalePlan.id).filter_by(status=PlanStatus.DRAFT).scalar()
        result = compare_campaigns(session, plan_id, draft_id, metric="gross_profit", n_boot=500)
    # customers c1..c4: plan 1's SKUs on 03-10 earned c1 400, c2 1700, c3 900, c4 0;
    # plan 2's SKU C on 03-11 earned c3 150 and nothing from the others.
    assert result.unit == "customer" and (result.n_a, result.n_b) == (4, 4)
    assert result.mean_a == pytest.approx(750.0)
    assert result.mean_b == pytest.approx(37.5)
    assert result.label_a == f"Plan {plan_id}"


def test_ab_split_on_one_sale_date_compares_customer_halves(sqlite_engine: Engine) -> None:
    day = dt.date(2026, 4, 1)
    customers = [f"cust-{i}" for i in range(40)]
    arms = {c: customer_arm(c) for c in customers}
    assert set(arms.values()) == {0, 1}  # the hash splits this population both ways
    factory = make_session_factory(sqlite_engine)
    with factory.begin() as session:
        session.add_all(
            [
                Product(sku=s, title=s, category="c", brand="b", cost_cents=500, list_price_cents=1000)
                for s in ("A", "B")
            ]
        )
        session.add_all([Customer(id=c) for c in customers])
        plans = []
        for sku, price in (("A", 900), ("B", 800)):
            plan = FlashSalePlan(sale_date=day, status=PlanStatus.CLOSED)
            plan.items = [
                PlanItem(
                    sku=sku,
                    discount_pct=Decimal("10"),
                    sale_price_cents=price,
                    allocated_units=100,
                    forecast_units=10.0,
                    expected_revenue_cents=0,
                    expected_profit_cents=0,
                )
            ]
            plans.append(plan)
        session.add_all(plans)
        session.flush()
        # arm A customers see plan A (SKU A at 9.00), arm B customers plan B (SKU B at 8.00); every third
        # customer buys two units, the others one.
        for i, c in enumerate(customers):
            sku, price = ("A", 900) if arms[c] == 0 else ("B", 800)
            qty = 2 if i % 3 == 0 else 1
            when = dt.datetime(2026, 4, 1, 10, i)
            order = Order(id=f"o-{i}", customer_id=c, ts=when)
            order.lines.append(OrderLine(sku=sku, customer_id=c, qty=qty, unit_price_cents=price, ts=when))
            session.add(order)
        plan_a, plan_b = plans[0].id, plans[1].id
    expected: dict[int, list[float]] = {0: [], 1: []}
    for i, c in enumerate(customers):
        qty = 2 if i % 3 == 0 else 1
        expected[arms[c]].append(qty * ((900 if arms[c] == 0 else 800) - 500))
    with factory() as session:
        result = compare_campaigns(session, plan_a, plan_b, n_boot=500)
    assert result.unit == "customer"
    assert (result.n_a, result.n_b) == (len(expected[0]), len(expected[1]))
    assert result.mean_a == pytest.approx(np.mean(expected[0]))
    assert result.mean_b == pytest.approx(np.mean(expected[1]))


def test_demo_shop_figures_agree_with_a_plain_recount(demo_shop: Any) -> None:
    """On the simulated shop, the SQL aggregates agree with a line-by-line recount in Python."""
    with demo_shop.session_factory() as session:
        plans = session.query(FlashSalePlan).filter_by(status=PlanStatus.CLOSED).all()
        assert plans, "the demo shop has closed flash sales"
        first = min(p.sale_date for p in plans)
        start, end = first - dt.timedelta(days=6), first + dt.timedelta(days=7)
        report = kpi_report(session, start, end, by="category", counterfactual=False)
        products = {p.sku: p for p in session.query(Product)}
        t0, t1 = dt.datetime.combine(start, dt.time()), dt.datetime.combine(end + dt.timedelta(1), dt.time())
        lines = (
            session.query(OrderLine)
            .join(Order, Order.id == OrderLine.order_id)
            .filter(OrderLine.ts >= t0, OrderLine.ts < t1, Order.is_cancellation.is_(False))
            .all()
        )
        gmv = sum(line.qty * line.unit_price_cents for line in lines)
        cogs = sum(line.qty * products[line.sku].cost_cents for line in lines)
        orders_by_customer: dict[str, set[str]] = {}
        for line in lines:
            if line.customer_id:
                orders_by_customer.setdefault(line.customer_id, set()).add(line.order_id)
        first_plan = min(plans, key=lambda p: p.sale_date)
        pva = plan_vs_actual(session, first_plan.id, today=TODAY)
        day_lines = [line for line in lines if line.ts.date() == first_plan.sale_date]
        sold = {item.sku: sum(ln.qty for ln in day_lines if ln.sku == item.sku) for item in first_plan.items}
    assert (report.total.gmv_cents, report.total.cogs_cents) == (gmv, cogs)
    assert report.total.units == sum(line.qty for line in lines)
    assert report.total.unique_buyers == len(orders_by_customer)
    assert report.total.repeat_buyers == sum(1 for o in orders_by_customer.values() if len(o) >= 2)
    assert sum(g.gmv_cents for g in report.groups) == gmv
    assert sum(d.gmv_cents for d in report.daily) == gmv
    assert {i.sku: i.sold_units for i in pva.items} == sold
    for item in report.plan_items:
        assert (
            item.sold_units <= item.allocated_units
        )  # the simulator caps a sale SKU's day at its allocation
        if item.stocked_out:
            assert item.sold_out_at is not None and item.sold_out_at.date() == item.sale_date
