"""Typed read-only queries over the shop: products, sales history, inventory, competitor prices, signals.

Every function takes the caller's session, runs parameterised SQLAlchemy queries (no SQL text built from
input), caps the rows it returns, and returns pydantic results that the CLI, the agent's tools and the Slack
bot render. Money stays in integer cents.
"""

from __future__ import annotations

import datetime as dt
import difflib

from pydantic import BaseModel, Field
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from db.errors import FlashSaleError
from db.models import (
    CompetitorPrice,
    Inventory,
    MarketNews,
    MarketSignal,
    OrderLine,
    PriceHistory,
    Product,
    Review,
)
from db.sqlvalues import as_date
from tools.outside_text import OutsideText

MAX_ROWS = 200
MAX_HISTORY_DAYS = 366


class UnknownSku(FlashSaleError):
    """The SKU is not in the catalogue; the message suggests close matches."""

    def __init__(self, sku: str, suggestions: list[str]) -> None:
        self.sku = sku
        self.suggestions = suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else " Search the catalogue first."
        super().__init__(f"Unknown SKU {sku!r}.{hint}")


class InvalidQuery(FlashSaleError):
    """Arguments that cannot be answered (empty filters, reversed dates, too long a window)."""


# ---- results ----


class ProductSummary(BaseModel):
    sku: str
    title: OutsideText
    category: str
    brand: str
    list_price_cents: int
    cost_cents: int


class ProductSearchResult(BaseModel):
    items: list[ProductSummary]
    total_matches: int = Field(description="Matches before the row limit.")
    truncated: bool


class CompetitorQuote(BaseModel):
    competitor: OutsideText
    price_cents: int
    seen_at: dt.datetime


class ProductDetails(BaseModel):
    product: ProductSummary
    current_price_cents: int = Field(description="Our shelf price at as_of (list price if no price history).")
    margin_pct_at_current_price: float
    on_hand: int | None
    reserved: int | None
    inventory_as_of: dt.datetime | None
    review_count: int
    average_rating: float | None
    latest_competitor_prices: list[CompetitorQuote]
    units_sold_last_28_days: int
    attributes: dict[str, object]
    as_of: dt.datetime


class DailySales(BaseModel):
    day: dt.date
    units: int = Field(description="Net units (returns and cancellations subtract).")
    revenue_cents: int
    lines: int


class SalesHistory(BaseModel):
    scope: str = Field(description="'sku:<sku>', 'category:<name>', 'brand:<name>' or 'shop'.")
    start: dt.date
    end: dt.date
    days: list[DailySales] = Field(description="One row per day with sales; days without sales are omitted.")
    total_units: int
    total_revenue_cents: int
    average_daily_units: float = Field(description="Total units / number of calendar days in the window.")


class InventoryRow(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    as_of: dt.datetime


class InventoryResult(BaseModel):
    rows: list[InventoryRow]
    total_available: int
    truncated: bool


class CompetitorPriceRow(BaseModel):
    sku: str
    our_price_cents: int
    competitor: OutsideText
    competitor_price_cents: int
    gap_pct: float = Field(description="(competitor - ours) / ours x 100; negative means they are cheaper.")
    seen_at: dt.datetime


class CompetitorPrices(BaseModel):
    rows: list[CompetitorPriceRow]
    truncated: bool


class SignalRow(BaseModel):
    id: int
    scope: str
    scope_value: str
    direction: str
    multiplier: float
    confidence: float
    valid_from: dt.date
    valid_to: dt.date
    evidence: OutsideText
    source_ids: list[object]
    extracted_by: str


class NewsRow(BaseModel):
    id: int
    title: OutsideText
    source: OutsideText
    published_at: dt.datetime


class MarketSignals(BaseModel):
    on: dt.date
    signals: list[SignalRow]
    recent_news: list[NewsRow] = Field(
        description="News published in the 7 days up to the date (titles only)."
    )


# ---- helpers ----


def _cap(limit: int) -> int:
    if limit < 1:
        raise InvalidQuery("limit must be at least 1")
    return min(limit, MAX_ROWS)


def _summary(p: Product) -> ProductSummary:
    return ProductSummary(
        sku=p.sku,
        title=p.title,
        category=p.category,
        brand=p.brand,
        list_price_cents=p.list_price_cents,
        cost_cents=p.cost_cents,
    )


def get_product(session: Session, sku: str) -> Product:
    """The product row, or :class:`UnknownSku` with up to three close SKUs or titles."""
    product = session.get(Product, sku)
    if product is not None:
        return product
    like = f"%{sku.strip()[:20]}%"
    near = session.scalars(
        select(Product.sku).where(or_(Product.sku.ilike(like), Product.title.ilike(like))).limit(3)
    ).all()
    if not near:
        candidates = session.scalars(select(Product.sku).limit(5000)).all()
        near = difflib.get_close_matches(sku, candidates, n=3, cutoff=0.6)
    raise UnknownSku(sku, list(near))


def current_price_cents(session: Session, sku: str, at: dt.datetime) -> int | None:
    return session.scalar(
        select(PriceHistory.price_cents)
        .where(PriceHistory.sku == sku, PriceHistory.valid_from <= at)
        .order_by(PriceHistory.valid_from.desc())
        .limit(1)
    )


# ---- queries ----


def search_products(
    session: Session,
    *,
    query: str | None = None,
    category: str | None = None,
    brand: str | None = None,
    limit: int = 20,
) -> ProductSearchResult:
    """Products whose SKU or title contains ``query`` (case-insensitive), optionally in a category/brand."""
    limit = _cap(limit)
    conditions = []
    if query and query.strip():
        words = query.strip().split()
        for word in words[:6]:
            like = f"%{word}%"
            conditions.append(or_(Product.sku.ilike(like), Product.title.ilike(like)))
    if category:
        conditions.append(func.lower(Product.category) == category.strip().lower())
    if brand:
        conditions.append(func.lower(Product.brand) == brand.strip().lower())
    where = and_(*conditions) if conditions else None
    stmt = select(Product).order_by(Product.sku).limit(limit)
    count_stmt = select(func.count()).select_from(Product)
    if where is not None:
        stmt = stmt.where(where)
        count_stmt = count_stmt.where(where)
    total = session.scalar(count_stmt) or 0
    items = [_summary(p) for p in session.scalars(stmt)]
    return ProductSearchResult(items=items, total_matches=total, truncated=total > len(items))


def product_details(session: Session, sku: str, *, as_of: dt.datetime) -> ProductDetails:
    """Everything a merchandiser looks at for one SKU: price, margin, stock, reviews, competitors, sales."""
    product = get_product(session, sku)
    price = current_price_cents(session, sku, as_of) or product.list_price_cents
    inv = session.scalars(
        select(Inventory)
        .where(Inventory.sku == sku, Inventory.as_of <= as_of)
        .order_by(Inventory.as_of.desc())
    ).first()
    count, avg = session.execute(
        select(func.count(Review.id), func.avg(Review.rating)).where(Review.sku == sku, Review.ts <= as_of)
    ).one()
    latest_seen = (
        select(CompetitorPrice.competitor, func.max(CompetitorPrice.seen_at).label("seen"))
        .where(CompetitorPrice.sku == sku, CompetitorPrice.seen_at <= as_of)
        .group_by(CompetitorPrice.competitor)
        .subquery()
    )
    quotes = session.execute(
        select(CompetitorPrice.competitor, CompetitorPrice.price_cents, CompetitorPrice.seen_at)
        .join(
            latest_seen,
            and_(
                CompetitorPrice.competitor == latest_seen.c.competitor,
                CompetitorPrice.seen_at == latest_seen.c.seen,
            ),
        )
        .where(CompetitorPrice.sku == sku)
        .order_by(CompetitorPrice.price_cents)
        .limit(20)
    ).all()
    units_28 = session.scalar(
        select(func.coalesce(func.sum(OrderLine.qty), 0)).where(
            OrderLine.sku == sku, OrderLine.ts > as_of - dt.timedelta(days=28), OrderLine.ts <= as_of
        )
    )
    margin = (price - product.cost_cents) / price * 100 if price else 0.0
    return ProductDetails(
        product=_summary(product),
        current_price_cents=price,
        margin_pct_at_current_price=round(margin, 1),
        on_hand=inv.on_hand if inv else None,
        reserved=inv.reserved if inv else None,
        inventory_as_of=inv.as_of if inv else None,
        review_count=int(count or 0),
        average_rating=round(float(avg), 2) if avg is not None else None,
        latest_competitor_prices=[
            CompetitorQuote(competitor=c, price_cents=p, seen_at=s) for c, p, s in quotes
        ],
        units_sold_last_28_days=int(units_28 or 0),
        attributes=dict(product.attributes or {}),
        as_of=as_of,
    )


def sales_history(
    session: Session,
    *,
    start: dt.date,
    end: dt.date,
    sku: str | None = None,
    category: str | None = None,
    brand: str | None = None,
) -> SalesHistory:
    """Units and revenue per day from ``start`` to ``end`` (inclusive) for a SKU, category, brand or shop."""
    if end < start:
        raise InvalidQuery(f"end {end} is before start {start}")
    if (end - start).days + 1 > MAX_HISTORY_DAYS:
        raise InvalidQuery(f"at most {MAX_HISTORY_DAYS} days per query; narrow the window")
    if sum(x is not None for x in (sku, category, brand)) > 1:
        raise InvalidQuery("give at most one of sku, category, brand")
    lo = dt.datetime.combine(start, dt.time.min)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min)
    day = func.date(OrderLine.ts)
    stmt = (
        select(
            day.label("day"),
            func.sum(OrderLine.qty),
            func.sum(OrderLine.qty * OrderLine.unit_price_cents),
            func.count(OrderLine.id),
        )
        .where(OrderLine.ts >= lo, OrderLine.ts < hi)
        .group_by(day)
        .order_by(day)
    )
    if sku is not None:
        get_product(session, sku)
        stmt = stmt.where(OrderLine.sku == sku)
        scope = f"sku:{sku}"
    elif category is not None or brand is not None:
        column = Product.category if category is not None else Product.brand
        value = (category or brand or "").strip()
        skus = select(Product.sku).where(func.lower(column) == value.lower())
        if session.scalar(select(func.count()).select_from(skus.subquery())) == 0:
            kind = "category" if category is not None else "brand"
            raise InvalidQuery(f"no products in {kind} {value!r}; search the catalogue for valid names")
        stmt = stmt.where(OrderLine.sku.in_(skus))
        scope = f"category:{value}" if category is not None else f"brand:{value}"
    else:
        scope = "shop"
    days = [
        DailySales(day=as_date(d), units=int(u or 0), revenue_cents=int(r or 0), lines=int(n))
        for d, u, r, n in session.execute(stmt)
    ]
    total_units = sum(d.units for d in days)
    n_days = (end - start).days + 1
    return SalesHistory(
        scope=scope,
        start=start,
        end=end,
        days=days,
        total_units=total_units,
        total_revenue_cents=sum(d.revenue_cents for d in days),
        average_daily_units=round(total_units / n_days, 2),
    )


def inventory(
    session: Session,
    *,
    as_of: dt.datetime,
    skus: list[str] | None = None,
    category: str | None = None,
    limit: int = 50,
) -> InventoryResult:
    """The latest stock snapshot at or before ``as_of`` per SKU (optionally only some SKUs or a category)."""
    limit = _cap(limit)
    latest = (
        select(Inventory.sku, func.max(Inventory.as_of).label("as_of"))
        .where(Inventory.as_of <= as_of)
        .group_by(Inventory.sku)
        .subquery()
    )
    stmt = (
        select(Inventory)
        .join(latest, and_(Inventory.sku == latest.c.sku, Inventory.as_of == latest.c.as_of))
        .order_by(Inventory.sku)
    )
    if skus:
        for sku in skus[:MAX_ROWS]:
            get_product(session, sku)
        stmt = stmt.where(Inventory.sku.in_(skus[:MAX_ROWS]))
    if category:
        stmt = stmt.where(
            Inventory.sku.in_(select(Product.sku).where(func.lower(Product.category) == category.lower()))
        )
    rows = list(session.scalars(stmt.limit(limit + 1)))
    out = [
        InventoryRow(
            sku=r.sku,
            on_hand=r.on_hand,
            reserved=r.reserved,
            available=max(0, r.on_hand - r.reserved),
            as_of=r.as_of,
        )
        for r in rows[:limit]
    ]
    return InventoryResult(
        rows=out, total_available=sum(r.available for r in out), truncated=len(rows) > limit
    )


def competitor_prices(
    session: Session,
    *,
    as_of: dt.datetime,
    sku: str | None = None,
    category: str | None = None,
    days: int = 14,
    limit: int = 50,
) -> CompetitorPrices:
    """Competitor quotes of the ``days`` before ``as_of``, latest per SKU and competitor, with the gap."""
    limit = _cap(limit)
    if days < 1 or days > MAX_HISTORY_DAYS:
        raise InvalidQuery(f"days must be between 1 and {MAX_HISTORY_DAYS}")
    since = as_of - dt.timedelta(days=days)
    latest = (
        select(
            CompetitorPrice.sku,
            CompetitorPrice.competitor,
            func.max(CompetitorPrice.seen_at).label("seen"),
        )
        .where(CompetitorPrice.seen_at > since, CompetitorPrice.seen_at <= as_of)
        .group_by(CompetitorPrice.sku, CompetitorPrice.competitor)
    )
    if sku:
        get_product(session, sku)
        latest = latest.where(CompetitorPrice.sku == sku)
    if category:
        latest = latest.where(
            CompetitorPrice.sku.in_(
                select(Product.sku).where(func.lower(Product.category) == category.lower())
            )
        )
    sub = latest.subquery()
    stmt = (
        select(CompetitorPrice.sku, CompetitorPrice.competitor, CompetitorPrice.price_cents, sub.c.seen)
        .join(
            sub,
            and_(
                CompetitorPrice.sku == sub.c.sku,
                CompetitorPrice.competitor == sub.c.competitor,
                CompetitorPrice.seen_at == sub.c.seen,
            ),
        )
        .order_by(CompetitorPrice.sku, CompetitorPrice.competitor)
        .limit(limit + 1)
    )
    fetched = session.execute(stmt).all()
    rows = []
    for s, competitor, price, seen in fetched[:limit]:
        ours = current_price_cents(session, s, as_of)
        if ours is None:
            product = session.get(Product, s)
            ours = product.list_price_cents if product else price
        gap = (price - ours) / ours * 100 if ours else 0.0
        rows.append(
            CompetitorPriceRow(
                sku=s,
                our_price_cents=ours,
                competitor=competitor,
                competitor_price_cents=price,
                gap_pct=round(gap, 1),
                seen_at=seen,
            )
        )
    return CompetitorPrices(rows=rows, truncated=len(fetched) > limit)


def market_signals(
    session: Session,
    *,
    on: dt.date,
    scope_value: str | None = None,
    limit: int = 50,
) -> MarketSignals:
    """Market signals valid on ``on`` (optionally for one SKU/category/brand) and the week's news titles."""
    limit = _cap(limit)
    stmt = (
        select(MarketSignal)
        .where(MarketSignal.valid_from <= on, MarketSignal.valid_to >= on)
        .order_by(MarketSignal.id)
        .limit(limit)
    )
    if scope_value:
        stmt = stmt.where(func.lower(MarketSignal.scope_value) == scope_value.lower())
    signals = [
        SignalRow(
            id=s.id,
            scope=str(s.scope.value),
            scope_value=s.scope_value,
            direction=str(s.direction.value),
            multiplier=s.multiplier,
            confidence=s.confidence,
            valid_from=s.valid_from,
            valid_to=s.valid_to,
            evidence=s.evidence[:300],
            source_ids=list(s.source_ids or []),
            extracted_by=s.extracted_by,
        )
        for s in session.scalars(stmt)
    ]
    end = dt.datetime.combine(on + dt.timedelta(days=1), dt.time.min)
    news = session.scalars(
        select(MarketNews)
        .where(MarketNews.published_at >= end - dt.timedelta(days=8), MarketNews.published_at < end)
        .order_by(MarketNews.published_at.desc())
        .limit(20)
    )
    return MarketSignals(
        on=on,
        signals=signals,
        recent_news=[
            NewsRow(id=n.id, title=n.title, source=n.source, published_at=n.published_at) for n in news
        ],
    )
