"""Every entity round-trips through SQLite and PostgreSQL with its types intact (money as integers/Decimal,
JSON attributes, enums, dates and datetimes)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    AuditLog,
    CompetitorPrice,
    Customer,
    DemandModelRun,
    FlashSalePlan,
    Inventory,
    KpiResult,
    MarketNews,
    MarketSignal,
    Order,
    OrderLine,
    PlanItem,
    PlanStatus,
    PriceHistory,
    Product,
    Review,
    SignalDirection,
    SignalScope,
)

T0 = dt.datetime(2026, 3, 1, 9, 30, 15, 123456)


def _fill(session: Session) -> None:
    session.add(
        Product(
            sku="HP-100",
            title="Studio headphones",
            category="audio",
            brand="Sonora",
            cost_cents=4_250,
            list_price_cents=9_999,
            attributes={"colour": "black", "wireless": True},
        )
    )
    session.add(Customer(id="C1", segment="bargain", attributes={"city": "Lyon"}))
    session.flush()
    session.add(Inventory(sku="HP-100", on_hand=120, reserved=5, as_of=T0))
    session.add(PriceHistory(sku="HP-100", price_cents=8_999, valid_from=T0))
    order = Order(id="O-1", customer_id="C1", ts=T0, country="FR")
    order.lines.append(OrderLine(sku="HP-100", customer_id="C1", qty=2, unit_price_cents=8_999, ts=T0))
    session.add(order)
    session.add(CompetitorPrice(sku="HP-100", competitor="MegaMart", price_cents=8_499, seen_at=T0))
    session.add(Review(sku="HP-100", customer_id="C1", rating=4, text="Great bass, «comfy»", ts=T0))
    session.add(MarketNews(title="Headphone prices fall", body="…", published_at=T0, source="wire"))
    session.add(
        MarketSignal(
            scope=SignalScope.CATEGORY,
            scope_value="audio",
            direction=SignalDirection.DOWN,
            multiplier=0.85,
            confidence=0.7,
            valid_from=T0.date(),
            valid_to=T0.date() + dt.timedelta(days=7),
            evidence="competitor cut",
            source_ids=["news:1"],
            extracted_by="test",
        )
    )
    model = DemandModelRun(
        fitted_at=T0, window_start=dt.date(2025, 3, 1), window_end=dt.date(2026, 2, 28), version="t"
    )
    session.add(model)
    session.flush()
    plan = FlashSalePlan(
        sale_date=dt.date(2026, 3, 2),
        objective={"profit": 1.0},
        constraints={"slots": 40},
        solver_stats={"gap": 0.0005},
        demand_model_id=model.id,
    )
    plan.items.append(
        PlanItem(
            sku="HP-100",
            discount_pct=Decimal("25.00"),
            sale_price_cents=7_499,
            allocated_units=30,
            forecast_units=22.5,
            expected_revenue_cents=168_728,
            expected_profit_cents=73_102,
            reason="in: best profit per slot",
        )
    )
    session.add(plan)
    session.flush()
    session.add(
        KpiResult(
            kind="gmv",
            scope="category:audio",
            period_start=dt.date(2026, 3, 1),
            period_end=dt.date(2026, 3, 1),
            plan_id=plan.id,
            values={"gmv_cents": 17_998},
        )
    )
    session.add(
        AuditLog(
            ts=T0,
            actor="alice",
            channel="cli",
            kind="tool_call",
            name="search_products",
            inputs={"q": "headphones"},
            outputs={"n": 1},
            latency_ms=3.2,
        )
    )


def test_every_entity_round_trips(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        _fill(session)
    with session_factory() as session:
        product = session.get(Product, "HP-100")
        assert product is not None
        assert product.cost_cents == 4_250 and isinstance(product.cost_cents, int)
        assert product.attributes == {"colour": "black", "wireless": True}
        line = session.scalars(select(OrderLine)).one()
        assert (line.qty, line.unit_price_cents, line.ts) == (2, 8_999, T0)
        assert line.order.customer_id == "C1"
        plan = session.scalars(select(FlashSalePlan)).one()
        assert plan.status is PlanStatus.DRAFT
        assert plan.items[0].discount_pct == Decimal("25.00")
        assert plan.constraints == {"slots": 40}
        signal = session.scalars(select(MarketSignal)).one()
        assert signal.scope is SignalScope.CATEGORY and signal.source_ids == ["news:1"]
        assert session.scalars(select(Review)).one().text == "Great bass, «comfy»"
        assert session.scalars(select(KpiResult)).one().values == {"gmv_cents": 17_998}
        assert session.scalars(select(AuditLog)).one().inputs == {"q": "headphones"}
        assert session.scalars(select(Inventory)).one().on_hand == 120
        assert session.scalars(select(PriceHistory)).one().price_cents == 8_999
        assert session.scalars(select(CompetitorPrice)).one().competitor == "MegaMart"


def test_unknown_sku_is_rejected_by_the_database(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        session.add(Inventory(sku="NOPE", on_hand=1, reserved=0, as_of=T0))
    with session_factory() as session:
        assert session.scalars(select(Inventory)).all() == []
