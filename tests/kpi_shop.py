"""A tiny shop built by hand for the KPI and report tests; every expected figure is worked out below.

Period of interest: 2026-03-09 .. 2026-03-11. Plan 1 (closed) puts A, B and C on sale on 2026-03-10; plan 2
(a draft, so left out of every figure) offers C on 2026-03-11.

Products (cost / list price, cents): A audio/Sonora 400/1000, B audio/Vox 1000/2000, C home/Sonora 300/500.

Orders in the period (O6 is a cancellation and is left out; O0 and O8 fall outside the period):
    O1 c1 03-09 10:00  A 2 x 1000, C 1 x 500
    O2 c2 03-10 09:00  A 3 x 800,  B 1 x 1500
    O3 c1 03-10 11:30  A 1 x 800            -> A reaches its allocation of 4 at 11:30 (690 minutes)
    O4 c3 03-10 12:00  B 1 x 1500, C 2 x 500 (C was planned at 450: a price miss)
    O5 c3 03-11 08:00  C 1 x 450
    O6 c2 03-10 13:00  B 5 x 1500 (cancellation)
    O7 -- 03-11 09:00  B 1 x 2000 (no customer)

GMV 12150, units 13, COGS 6600, profit 5550. Discount depth: unit-weighted sum of (1 - price/list) =
3*0.2 + 1*0.25 + 1*0.2 + 1*0.25 + 1*0.1 = 1.4 over 13 units. Orders 6; buyers c1 (2 orders), c2 (1),
c3 (2): 3 buyers, 2 repeat.
Plan 1 (allocated / forecast / sold): A 4 / 8 / 4 (stock-out), B 4 / 6 / 2 (an audio market signal is active),
C 10 / 8 / 2 at 500 instead of 450: sell-through 8/18; WAPE (4 + 4 + 6) / 8; bias (22 - 8) / 8.
Inventory: 03-01 snapshot A 10, B 20, C 30; 03-10 snapshot A 6 (in the period, so A's average is 6):
value 6*400 + 20*1000 + 30*300 = 31400; turnover 6600 / 31400.
Daily: 03-09 GMV 2500 profit 1400 units 3; 03-10 GMV 7200 profit 3000 units 8; 03-11 GMV 2450 profit 1150
units 2. By category: audio GMV 10200, units 9, COGS 5400, depth 1.3/9, orders 5, buyers 3, repeat 1,
inventory 22400, plan sold 6 of 8; home GMV 1950, units 4, COGS 1200, depth 0.1/4, orders 3,
buyers 2, repeat 1, inventory 9000, plan sold 2 of 10.
Everyday prices for the counterfactual: A 1000 (price_history before 03-10; the 800 from 03-10 00:00 is the
sale price), B 2000 and C 500 (list prices, no history).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from db.models import (
    Customer,
    FlashSalePlan,
    Inventory,
    MarketSignal,
    Order,
    OrderLine,
    PlanItem,
    PlanStatus,
    PriceHistory,
    Product,
    SignalDirection,
    SignalScope,
)

START = dt.date(2026, 3, 9)
END = dt.date(2026, 3, 11)
SALE_DATE = dt.date(2026, 3, 10)
TODAY = dt.date(2026, 3, 12)  # the shop's date when the tests look back at the sale


def ts(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute)


ORDERS: list[tuple[str, str | None, dt.datetime, bool, list[tuple[str, int, int]]]] = [
    ("O0", "c1", ts(8, 23, 59), False, [("A", 1, 1000)]),
    ("O1", "c1", ts(9, 10), False, [("A", 2, 1000), ("C", 1, 500)]),
    ("O2", "c2", ts(10, 9), False, [("A", 3, 800), ("B", 1, 1500)]),
    ("O3", "c1", ts(10, 11, 30), False, [("A", 1, 800)]),
    ("O4", "c3", ts(10, 12), False, [("B", 1, 1500), ("C", 2, 500)]),
    ("O5", "c3", ts(11, 8), False, [("C", 1, 450)]),
    ("O6", "c2", ts(10, 13), True, [("B", 5, 1500)]),
    ("O7", None, ts(11, 9), False, [("B", 1, 2000)]),
    ("O8", "c2", ts(12, 10), False, [("A", 10, 1000)]),
]


def build_kpi_shop(session: Session) -> int:
    """Fill an empty, migrated database with the shop above; returns the closed plan's id."""
    session.add_all(
        [
            Product(
                sku="A",
                title="Alpha",
                category="audio",
                brand="Sonora",
                cost_cents=400,
                list_price_cents=1000,
            ),
            Product(
                sku="B", title="Beta", category="audio", brand="Vox", cost_cents=1000, list_price_cents=2000
            ),
            Product(
                sku="C", title="Gamma", category="home", brand="Sonora", cost_cents=300, list_price_cents=500
            ),
        ]
    )
    session.add_all([Customer(id=c, segment="regular") for c in ("c1", "c2", "c3", "c4")])
    session.flush()
    for order_id, customer, when, cancelled, lines in ORDERS:
        order = Order(id=order_id, customer_id=customer, ts=when, is_cancellation=cancelled)
        for sku, qty, price in lines:
            order.lines.append(
                OrderLine(sku=sku, customer_id=customer, qty=qty, unit_price_cents=price, ts=when)
            )
        session.add(order)
    session.add_all(
        [
            Inventory(sku="A", on_hand=10, as_of=ts(1, 0)),
            Inventory(sku="B", on_hand=20, as_of=ts(1, 0)),
            Inventory(sku="C", on_hand=30, as_of=ts(1, 0)),
            Inventory(sku="A", on_hand=6, as_of=ts(10, 0)),
            PriceHistory(sku="A", price_cents=1000, valid_from=dt.datetime(2026, 1, 1)),
            PriceHistory(sku="A", price_cents=800, valid_from=ts(10, 0)),
        ]
    )
    plan = FlashSalePlan(sale_date=SALE_DATE, status=PlanStatus.CLOSED, created_by="test")
    plan.items = [
        PlanItem(
            sku="A",
            discount_pct=Decimal("20"),
            sale_price_cents=800,
            allocated_units=4,
            forecast_units=8.0,
            expected_revenue_cents=3200,
            expected_profit_cents=1600,
        ),
        PlanItem(
            sku="B",
            discount_pct=Decimal("25"),
            sale_price_cents=1500,
            allocated_units=4,
            forecast_units=6.0,
            expected_revenue_cents=6000,
            expected_profit_cents=2000,
        ),
        PlanItem(
            sku="C",
            discount_pct=Decimal("10"),
            sale_price_cents=450,
            allocated_units=10,
            forecast_units=8.0,
            expected_revenue_cents=3600,
            expected_profit_cents=1200,
        ),
    ]
    draft = FlashSalePlan(sale_date=END, status=PlanStatus.DRAFT, created_by="test")
    draft.items = [
        PlanItem(
            sku="C",
            discount_pct=Decimal("10"),
            sale_price_cents=450,
            allocated_units=10,
            forecast_units=4.0,
            expected_revenue_cents=1800,
            expected_profit_cents=600,
        ),
    ]
    session.add_all([plan, draft])
    session.add(
        MarketSignal(
            scope=SignalScope.CATEGORY,
            scope_value="audio",
            direction=SignalDirection.DOWN,
            multiplier=0.8,
            confidence=0.9,
            valid_from=START,
            valid_to=SALE_DATE,
            evidence="competitor cut headphone prices",
            source_ids=[],
            extracted_by="test",
        )
    )
    session.flush()
    return plan.id
