"""SQLAlchemy 2.x typed models for every entity of the design.

Money is stored as integer minor units (``*_cents`` columns), never as float. Ratios that are not money
(elasticities, multipliers, confidences) are floats. Tables prefixed ``sim_`` hold the market simulator's
hidden ground truth: no assistant tool reads them; only evaluations and benchmarks do.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SKU_LEN = 64


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Store the enum's value (lower-case text) so that SQL written by hand reads naturally.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e], native_enum=False, length=16)


class PlanStatus(enum.StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    LIVE = "live"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


class SignalScope(enum.StrEnum):
    SKU = "sku"
    CATEGORY = "category"
    BRAND = "brand"


class SignalDirection(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    NEUTRAL = "neutral"


class Product(Base):
    __tablename__ = "product"

    sku: Mapped[str] = mapped_column(String(SKU_LEN), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(100), index=True)
    brand: Mapped[str] = mapped_column(String(100), index=True)
    cost_cents: Mapped[int] = mapped_column(BigInteger)
    list_price_cents: Mapped[int] = mapped_column(BigInteger)
    is_product: Mapped[bool] = mapped_column(default=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Inventory(Base):
    __tablename__ = "inventory"
    __table_args__ = (UniqueConstraint("sku", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("product.sku"), index=True)
    on_hand: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    as_of: Mapped[dt.datetime] = mapped_column(DateTime)


class PriceHistory(Base):
    """Our own shelf price of a SKU, valid from ``valid_from`` until the next row of the same SKU."""

    __tablename__ = "price_history"
    __table_args__ = (UniqueConstraint("sku", "valid_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("product.sku"))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime)


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    segment: Mapped[str | None] = mapped_column(String(50), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # KPI queries leave out a period's cancellations: this finds them without reading every order.
        Index("ix_orders_is_cancellation_ts", "is_cancellation", "ts"),
        # On PostgreSQL the period index also carries what the KPI report reads of an order, so a period's
        # orders and buyers come from an index-only scan (once VACUUM has set the visibility map).
        Index("ix_orders_ts", "ts", postgresql_include=["customer_id", "is_cancellation"]),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customer.id"), index=True)
    ts: Mapped[dt.datetime] = mapped_column(DateTime)
    country: Mapped[str | None] = mapped_column(String(60))
    is_cancellation: Mapped[bool] = mapped_column(default=False)
    flash_sale_plan_id: Mapped[int | None] = mapped_column(ForeignKey("flash_sale_plan.id"))

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", cascade="all, delete-orphan")


class OrderLine(Base):
    """One line of an order. ``ts`` and ``customer_id`` repeat the order's so that the hot queries (a SKU's
    sales by day, a day's sales by SKU) need no join."""

    __tablename__ = "order_line"
    __table_args__ = (
        Index("ix_order_line_sku_ts", "sku", "ts"),
        # On PostgreSQL the period index also carries every column the KPI report reads, so a period's
        # lines come from an index-only scan (once VACUUM has set the visibility map) without heap reads.
        Index(
            "ix_order_line_ts_sku",
            "ts",
            "sku",
            postgresql_include=["customer_id", "order_id", "qty", "unit_price_cents"],
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    sku: Mapped[str] = mapped_column(ForeignKey("product.sku"))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[dt.datetime] = mapped_column(DateTime)

    order: Mapped[Order] = relationship(back_populates="lines")


class CompetitorPrice(Base):
    __tablename__ = "competitor_price"
    __table_args__ = (
        UniqueConstraint("sku", "competitor", "seen_at"),
        Index("ix_competitor_price_sku_seen_at", "sku", "seen_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("product.sku"))
    competitor: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Review(Base):
    __tablename__ = "review"
    __table_args__ = (Index("ix_review_sku_ts", "sku", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("product.sku"))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    ts: Mapped[dt.datetime] = mapped_column(DateTime)
    #: db.content_keys.review_key: a review imported twice is one row (NULL: a duplicate kept from before)
    content_key: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)


class MarketNews(Base):
    __tablename__ = "market_news"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    source: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(1000))
    #: db.content_keys.news_key: a news item imported twice is one row
    content_key: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)


class MarketSignal(Base):
    """A typed, bounded demand multiplier extracted from news, reviews or competitor prices."""

    __tablename__ = "market_signal"
    __table_args__ = (Index("ix_market_signal_scope", "scope", "scope_value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[SignalScope] = mapped_column(_enum(SignalScope, "signal_scope"))
    scope_value: Mapped[str] = mapped_column(String(100))
    direction: Mapped[SignalDirection] = mapped_column(_enum(SignalDirection, "signal_direction"))
    multiplier: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)
    evidence: Mapped[str] = mapped_column(Text, default="")
    source_ids: Mapped[list[Any]] = mapped_column(default=list)
    extracted_by: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, server_default=func.now())


class DemandModelRun(Base):
    """A fitted demand model: when it was fitted, on which data window, and its parameters."""

    __tablename__ = "demand_model"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fitted_at: Mapped[dt.datetime] = mapped_column(DateTime)
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    version: Mapped[str] = mapped_column(String(50))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FlashSalePlan(Base):
    __tablename__ = "flash_sale_plan"
    __table_args__ = (Index("ix_flash_sale_plan_sale_date_status", "sale_date", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sale_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[PlanStatus] = mapped_column(_enum(PlanStatus, "plan_status"), default=PlanStatus.DRAFT)
    objective: Mapped[dict[str, Any]] = mapped_column(default=dict)
    constraints: Mapped[dict[str, Any]] = mapped_column(default=dict)
    solver_stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    demand_model_id: Mapped[int | None] = mapped_column(ForeignKey("demand_model.id"))
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, server_default=func.now())
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    notes: Mapped[str | None] = mapped_column(Text)
    # Revisions: a change to an approved or live plan is a new plan row that revises it (revision + 1); the
    # first revision's id names the sale through all its revisions.
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    revises_id: Mapped[int | None] = mapped_column(ForeignKey("flash_sale_plan.id"))
    root_id: Mapped[int | None] = mapped_column(Integer, index=True)

    items: Mapped[list[PlanItem]] = relationship(back_populates="plan", cascade="all, delete-orphan")


class PlanEvent(Base):
    """One move of a plan through its lifecycle (approve, publish, replan, close, cancel, supersede) or one
    thing done to it (a publish delivery, a simulated hour of sales): who, when, from which status to which,
    and the details."""

    __tablename__ = "plan_event"
    __table_args__ = (Index("ix_plan_event_plan_id_ts", "plan_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("flash_sale_plan.id", ondelete="CASCADE"))
    ts: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PlanItem(Base):
    __tablename__ = "plan_item"
    __table_args__ = (UniqueConstraint("plan_id", "sku"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("flash_sale_plan.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(ForeignKey("product.sku"), index=True)
    discount_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    sale_price_cents: Mapped[int] = mapped_column(BigInteger)
    allocated_units: Mapped[int] = mapped_column(Integer)
    forecast_units: Mapped[float] = mapped_column(Float)
    expected_revenue_cents: Mapped[int] = mapped_column(BigInteger)
    expected_profit_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)

    plan: Mapped[FlashSalePlan] = relationship(back_populates="items")


class SalesPeriod(Base):
    """Aggregated sales of one product in one period (a day or a week) at one location (a store or a
    channel; ``""`` for the whole shop), as BI exports and scanner panels give them, with the promotion
    markers of the period."""

    __tablename__ = "sales_period"
    __table_args__ = (
        UniqueConstraint("sku", "location", "period_start"),
        Index("ix_sales_period_period_start", "period_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("product.sku"))
    location: Mapped[str] = mapped_column(String(64), default="")
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_days: Mapped[int] = mapped_column(Integer)
    units: Mapped[float] = mapped_column(Float)
    revenue_cents: Mapped[int] = mapped_column(BigInteger)
    base_price_cents: Mapped[int | None] = mapped_column(BigInteger)
    discounted: Mapped[bool] = mapped_column(default=False)
    featured: Mapped[bool] = mapped_column(default=False)
    display: Mapped[bool] = mapped_column(default=False)
    promotion: Mapped[str | None] = mapped_column(String(200))


class Promotion(Base):
    """One entry of the shop's promotion calendar: a SKU (or a whole category) on promotion from ``start``
    to ``end`` (inclusive) at one location (``""``: everywhere), with its price or discount when known."""

    __tablename__ = "promotion"
    __table_args__ = (Index("ix_promotion_start_end", "start", "end"), Index("ix_promotion_sku", "sku"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sku: Mapped[str | None] = mapped_column(ForeignKey("product.sku"))
    category: Mapped[str | None] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(String(64), default="")
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date] = mapped_column(Date)
    sale_price_cents: Mapped[int | None] = mapped_column(BigInteger)
    discount: Mapped[float | None] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(50), default="promotion")
    source: Mapped[str] = mapped_column(String(200), default="")


class KpiResult(Base):
    __tablename__ = "kpi_result"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    scope: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("flash_sale_plan.id"))
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, server_default=func.now())


class AuditLog(Base):
    """Every tool call, LLM exchange and approval: who, when, inputs, outputs, latency."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_session_ts", "session_id", "ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    session_id: Mapped[str | None] = mapped_column(String(100))
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class ConversationMessage(Base):
    """One message of an assistant conversation (a chat window, a Slack thread), in order of ``id``.

    ``message`` is LangChain's dict form of the message; ``artifact_key`` names what a tool result carries
    beside the text the model saw (e.g. the id of a plan proposal), so that a later turn, or another bot
    process, finds it.
    """

    __tablename__ = "conversation_message"
    __table_args__ = (
        Index("ix_conversation_message_session_id", "session_id", "id"),
        Index("ix_conversation_message_artifact", "session_id", "artifact_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    role: Mapped[str] = mapped_column(String(20))
    message: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifact_key: Mapped[str | None] = mapped_column(String(64))


class ImportBatch(Base):
    """One CSV import: what was loaded, from where, how many rows were accepted and rejected."""

    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(1000))
    rows_loaded: Mapped[int] = mapped_column(BigInteger)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime)


# ---- simulator ground truth (hidden from the assistant) ----


class SimRun(Base):
    """The simulator configuration that generated this shop and its global true parameters."""

    __tablename__ = "sim_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    truth: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SimSkuTruth(Base):
    """Per-SKU true parameters of the simulator, for scoring estimates."""

    __tablename__ = "sim_sku_truth"

    sku: Mapped[str] = mapped_column(String(SKU_LEN), primary_key=True)
    base_rate: Mapped[float] = mapped_column(Float)
    elasticity: Mapped[float] = mapped_column(Float)
    trend_per_year: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    flash_lift: Mapped[float] = mapped_column(Float)
    ref_price_cents: Mapped[int] = mapped_column(BigInteger)


class SimNewsTruth(Base):
    """The known effect of each simulated news item (none for neutral and adversarial items)."""

    __tablename__ = "sim_news_truth"

    news_id: Mapped[int] = mapped_column(ForeignKey("market_news.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str | None] = mapped_column(String(20))
    scope_value: Mapped[str | None] = mapped_column(String(100))
    multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
