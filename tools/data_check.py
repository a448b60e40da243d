"""What the shop's data support: per capability (forecast, elasticities, sale lift, plan, KPIs, signals,
targeting), whether it can be done, the counts behind the verdict and what to import next.

One read of the database (counts and a few aggregates, no model fit); the CLI shows it as a table
(``python cli.py data check``), the assistant reads the same result as JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Float, case, cast, distinct, func, or_, select
from sqlalchemy.orm import Session

from db.models import (
    CompetitorPrice,
    Customer,
    FlashSalePlan,
    Inventory,
    MarketNews,
    OrderLine,
    PlanItem,
    PlanStatus,
    PriceHistory,
    Product,
    Promotion,
    Review,
    SalesPeriod,
)
from db.sqlvalues import as_date

Status = Literal["ok", "limited", "missing"]

#: Least history for a forecast, SKUs with price variation for elasticities, labelled promotion periods for
#: a sale lift of its own.
MIN_HISTORY_DAYS = 28
MIN_PRICED_SKUS = 10
MIN_PROMOTION_PERIODS = 20


class DataCounts(BaseModel):
    """The counts behind the verdicts."""

    products: int
    products_with_sales: int
    order_lines: int
    sales_periods: int
    period: Literal["day", "week", "none"] = Field(description="Granularity of the sales history.")
    first_day: dt.date | None
    last_day: dt.date | None
    history_days: int
    zero_share: float | None = Field(description="Share of SKU-periods without sales, over active SKUs.")
    skus_with_price_variation: int = Field(description="SKUs sold at two or more prices.")
    price_history_rows: int
    promotion_periods: int = Field(description="Labelled SKU-periods: promotion calendar, markers, sales.")
    closed_sales: int
    skus_with_stock: int
    costs_estimated: int = Field(description="Products whose cost was estimated, not imported.")
    list_prices_estimated: int
    list_prices_missing: int = Field(description="Products without a list price: they cannot be planned.")
    uncategorised: int
    categories: int
    reviews: int
    news: int
    competitor_prices: int
    customers: int
    order_lines_with_customer: int


class Capability(BaseModel):
    name: str
    status: Status
    evidence: str = Field(description="The counts that decide the status.")
    next_step: str | None = Field(description="What to import or run next; None when nothing is missing.")


class DataCheck(BaseModel):
    counts: DataCounts
    capabilities: list[Capability]

    def status(self, name: str) -> Status:
        return next(c.status for c in self.capabilities if c.name == name)


def _counts(session: Session) -> DataCounts:
    def count(column: Any) -> int:
        return int(session.scalar(select(func.count(column))) or 0)

    products = int(session.scalar(select(func.count()).where(Product.is_product.is_(True))) or 0)
    lines = int(session.scalar(select(func.count(OrderLine.id))) or 0)
    periods = int(session.scalar(select(func.count(SalesPeriod.id))) or 0)
    first: dt.date | None = None
    last: dt.date | None = None
    period: Literal["day", "week", "none"] = "none"
    cells = sold_cells = 0
    priced = 0
    if lines:
        period = "day"
        lo, hi = session.execute(select(func.min(OrderLine.ts), func.max(OrderLine.ts))).one()
        first, last = as_date(lo), as_date(hi)
        day = func.date(OrderLine.ts)
        per_sku = (
            select(
                OrderLine.sku,
                func.count(distinct(day)).label("days"),
                func.min(day).label("first"),
                func.count(distinct(OrderLine.unit_price_cents)).label("prices"),
            )
            .where(OrderLine.qty > 0)
            .group_by(OrderLine.sku)
            .subquery()
        )
        rows = session.execute(select(per_sku.c.days, per_sku.c.first, per_sku.c.prices)).all()
        sold_cells = sum(int(r.days) for r in rows)
        cells = sum((last - as_date(r.first)).days + 1 for r in rows)
        priced = sum(1 for r in rows if int(r.prices) >= 2)
        with_sales = len(rows)
    elif periods:
        days = int(session.scalar(select(func.max(SalesPeriod.period_days))) or 7)
        period = "day" if days == 1 else "week"
        bounds = session.execute(
            select(func.min(SalesPeriod.period_start), func.max(SalesPeriod.period_start))
        ).one()
        first, last_start = as_date(bounds[0]), as_date(bounds[1])
        last = last_start + dt.timedelta(days=days - 1)
        price = cast(SalesPeriod.revenue_cents, Float) / func.nullif(SalesPeriod.units, 0)
        per_sku = (
            select(
                SalesPeriod.sku,
                func.min(SalesPeriod.period_start).label("first"),
                func.count(distinct(case((SalesPeriod.units > 0, SalesPeriod.period_start)))).label("sold"),
                (func.max(price) - func.min(price)).label("spread"),
            )
            .group_by(SalesPeriod.sku)
            .subquery()
        )
        rows = session.execute(select(per_sku.c.first, per_sku.c.sold, per_sku.c.spread)).all()
        with_sales = len(rows)
        cells = sum((last_start - as_date(r.first)).days // days + 1 for r in rows)
        sold_cells = sum(int(r.sold or 0) for r in rows)
        priced = sum(1 for r in rows if (r.spread or 0) > 0.5)
    else:
        with_sales = 0
    history_days = (last - first).days + 1 if first and last else 0
    promotions = count(Promotion.id)
    markers = int(
        session.scalar(
            select(func.count()).where(
                or_(
                    SalesPeriod.discounted.is_(True),
                    SalesPeriod.featured.is_(True),
                    SalesPeriod.display.is_(True),
                )
            )
        )
        or 0
    )
    closed_items = int(
        session.scalar(
            select(func.count(PlanItem.id))
            .join(FlashSalePlan, FlashSalePlan.id == PlanItem.plan_id)
            .where(FlashSalePlan.status == PlanStatus.CLOSED)
        )
        or 0
    )
    attrs = session.execute(
        select(Product.attributes, Product.category).where(Product.is_product.is_(True))
    ).all()
    return DataCounts(
        products=products,
        products_with_sales=with_sales,
        order_lines=lines,
        sales_periods=periods,
        period=period,
        first_day=first,
        last_day=last,
        history_days=history_days,
        zero_share=None if not cells else round(1 - sold_cells / cells, 4),
        skus_with_price_variation=priced,
        price_history_rows=count(PriceHistory.id),
        promotion_periods=promotions + markers + closed_items,
        closed_sales=int(
            session.scalar(select(func.count()).where(FlashSalePlan.status == PlanStatus.CLOSED)) or 0
        ),
        skus_with_stock=int(session.scalar(select(func.count(distinct(Inventory.sku)))) or 0),
        costs_estimated=sum(1 for a, _ in attrs if (a or {}).get("cost_estimated")),
        list_prices_estimated=sum(
            1 for a, _ in attrs if (a or {}).get("list_price_estimated") and (a or {}).get("list_price_from")
        ),
        list_prices_missing=int(
            session.scalar(
                select(func.count())
                .select_from(Product)
                .where(Product.is_product.is_(True), Product.list_price_cents <= 0)
            )
            or 0
        ),
        uncategorised=sum(1 for _, c in attrs if c in ("", "uncategorised")),
        categories=len({c for _, c in attrs}),
        reviews=count(Review.id),
        news=count(MarketNews.id),
        competitor_prices=count(CompetitorPrice.id),
        customers=count(Customer.id),
        order_lines_with_customer=int(
            session.scalar(select(func.count()).where(OrderLine.customer_id.is_not(None))) or 0
        ),
    )


def _cap(name: str, status: Status, evidence: str, next_step: str | None = None) -> Capability:
    return Capability(name=name, status=status, evidence=evidence, next_step=next_step)


def _forecast(c: DataCounts) -> Capability:
    if c.products_with_sales == 0:
        return _cap(
            "forecast", "missing", "no sales history", "import orders (order lines) or sales per period"
        )
    unit = "week" if c.period == "week" else "day"
    evidence = f"{c.products_with_sales:,} SKUs with sales over {c.history_days:,} days ({c.first_day} to "
    evidence += f"{c.last_day}), sold per {unit}"
    if c.zero_share is not None:
        evidence += f"; {c.zero_share:.0%} of SKU-{unit}s without sales"
    if c.history_days < MIN_HISTORY_DAYS:
        return _cap("forecast", "limited", evidence, f"import at least {MIN_HISTORY_DAYS} days of history")
    return _cap("forecast", "ok", evidence)


def _elasticities(c: DataCounts) -> Capability:
    evidence = f"{c.skus_with_price_variation:,} SKUs sold at two or more prices; "
    evidence += f"{c.price_history_rows:,} shelf-price changes"
    if c.skus_with_price_variation >= MIN_PRICED_SKUS:
        return _cap("elasticities", "ok", evidence)
    status: Status = "limited" if c.skus_with_price_variation else "missing"
    return _cap(
        "elasticities",
        status,
        evidence,
        "import the shelf-price history (or sales with base prices); SKUs without price variation get "
        "their category's elasticity",
    )


def _lift(c: DataCounts) -> Capability:
    evidence = (
        f"{c.promotion_periods:,} labelled promotion SKU-periods ({c.closed_sales:,} closed flash sales)"
    )
    if c.promotion_periods >= MIN_PROMOTION_PERIODS:
        return _cap("sale lift", "ok", evidence)
    return _cap(
        "sale lift",
        "limited" if c.promotion_periods else "missing",
        evidence,
        "import the promotion calendar (import promotions) or sales with promotion markers; without them the "
        "lift is inferred from price cuts only, shrunk toward no lift",
    )


def _plan(c: DataCounts) -> Capability:
    evidence = f"{c.skus_with_stock:,} of {c.products:,} SKUs with stock; "
    evidence += f"{c.products - c.costs_estimated:,} costs imported, {c.costs_estimated:,} estimated"
    missing = []
    if c.skus_with_stock == 0:
        missing.append("no stock levels: import inventory, or plan with --assume-stock N")
    if c.costs_estimated:
        missing.append(f"{c.costs_estimated:,} costs estimated: import the catalog with costs")
    if c.list_prices_estimated:
        missing.append(
            f"{c.list_prices_estimated:,} list prices estimated from the sales (base or unit prices)"
        )
    if c.list_prices_missing:
        missing.append(
            f"{c.list_prices_missing:,} products without a list price (none imported, none sold) are not "
            "planned"
        )
    if c.skus_with_stock == 0 or c.products_with_sales == 0:
        status: Status = "missing"
    else:
        status = "limited" if missing else "ok"
    return _cap("plan", status, evidence, "; ".join(missing) or None)


def _capabilities(c: DataCounts) -> list[Capability]:
    categorised = c.products - c.uncategorised
    sources = c.news + c.reviews + c.competitor_prices
    return [
        _forecast(c),
        _elasticities(c),
        _lift(c),
        _plan(c),
        _cap(
            "KPIs",
            "ok" if c.order_lines else ("limited" if c.sales_periods else "missing"),
            f"{c.order_lines:,} order lines; {c.sales_periods:,} sales periods",
            None
            if c.order_lines
            else "import orders: KPIs (GMV, buyers, sell-through) come from order lines",
        ),
        _cap(
            "pooling by category",
            "ok" if c.uncategorised == 0 else ("limited" if categorised else "missing"),
            f"{c.categories:,} categories; {c.uncategorised:,} of {c.products:,} SKUs uncategorised",
            None
            if c.uncategorised == 0
            else "import the catalog with categories: thin SKUs borrow from them",
        ),
        _cap(
            "signals",
            "ok" if c.news and (c.reviews or c.competitor_prices) else ("limited" if sources else "missing"),
            f"{c.news:,} news items, {c.reviews:,} reviews, {c.competitor_prices:,} competitor prices",
            None if sources else "import news, reviews or competitor prices",
        ),
        _cap(
            "targeting",
            "ok" if c.order_lines_with_customer and c.customers else "missing",
            f"{c.customers:,} customers; {c.order_lines_with_customer:,} order lines with a customer",
            None if c.order_lines_with_customer else "import orders with customer ids",
        ),
    ]


def check_data(session: Session) -> DataCheck:
    """What the shop's data support, capability by capability."""
    counts = _counts(session)
    return DataCheck(counts=counts, capabilities=_capabilities(counts))
