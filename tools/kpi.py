"""KPI reports over any date range, by SKU, category or brand, and for a flash-sale plan.

Every figure is computed by aggregate SQL (SQLAlchemy Core, ``GROUP BY`` in the database) and returned as a
typed pydantic result; renderers (terminal, Markdown, HTML) live in :mod:`tools.reports`. Money stays in
integer cents. Ratios are fractions in [0, 1] (renderers show them as percentages).

Definitions (all over order lines with ``ts`` in ``[start 00:00, end + 1 day 00:00)``):

- **Cancellations**: lines of orders flagged ``orders.is_cancellation`` are excluded from every figure.
- **GMV** = ``sum(qty * unit_price_cents)`` of the remaining lines.
- **Units** = ``sum(qty)``. **COGS** = ``sum(qty * product.cost_cents)`` (the product's current cost).
- **Gross profit** = GMV - COGS; **margin** = gross profit / GMV.
- **Average discount depth** = ``1 - unit_price / list_price`` per line, weighted by units (lines of
  products without a list price are left out of this figure).
- **Orders** = distinct orders (of the total only); **unique buyers** = distinct non-empty ``customer_id``;
  **repeat-buyer share** = buyers with at least two distinct orders in the period (within the group) /
  unique buyers.
- **Plan items** are the items of plans that are approved, live or closed whose ``sale_date`` lies in the
  period (with ``plan_id``: that plan's items only). A plan item's **sold units** are the units of its SKU
  sold on the plan's sale date.
- **Sell-through** = sold units of plan items / allocated units of plan items.
- **Stock-out**: a plan item with ``allocated_units > 0`` whose sold units reached its allocation; its
  **time to sell out** is the first order-line ``ts`` at which the cumulative units of that SKU on the sale
  date reached the allocation, measured from the sale date's midnight.
- **Inventory turnover** = COGS over the period / average inventory value at cost. A SKU's average stock is
  the mean ``on_hand`` of its inventory snapshots taken in the period, or, when it has none there, its
  latest snapshot before the period (opening stock). SKUs without any snapshot are left out of the value.
- **Incremental units** (plan items only) = sold units - counterfactual units, where the counterfactual is
  the stored demand model's expected units at the everyday price (the latest ``price_history`` price set
  before the sale date, else the list price) without the flash-sale lift. Skipped, with the reason in
  ``notes``, when no demand model is stored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    Select,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.errors import FlashSaleError
from db.models import (
    FlashSalePlan,
    Inventory,
    Order,
    OrderLine,
    PlanItem,
    PlanStatus,
    PriceHistory,
    Product,
)
from db.sqlvalues import as_date, as_datetime
from tools.demand import load_latest_demand_model
from tools.signals import active_signals

GroupBy = Literal["sku", "category", "brand"]
GROUP_BY_VALUES: tuple[str, ...] = ("sku", "category", "brand")
REPORTED_PLAN_STATUSES = (PlanStatus.APPROVED, PlanStatus.LIVE, PlanStatus.CLOSED)

_ol = OrderLine.__table__
_o = Order.__table__
_p = Product.__table__
_pi = PlanItem.__table__
_fp = FlashSalePlan.__table__
_inv = Inventory.__table__
_ph = PriceHistory.__table__


# Session settings for the report's transaction on PostgreSQL: room for the big hash aggregates (buyers x
# groups) so that they neither spill to disk nor fall back to sorting, and no JIT compilation, which costs
# more than it saves on these one-off aggregate queries.
POSTGRES_SETTINGS: dict[str, str] = {"work_mem": "256MB", "jit": "off"}


class KpiInputError(FlashSaleError):
    """A KPI request that cannot be answered as asked (bad period, unknown grouping)."""


class UnknownPlan(FlashSaleError):
    """The plan id names no flash-sale plan."""


# ---- results --------------------------------------------------------------------------------------------


class KpiFigures(BaseModel):
    """The KPIs of one group (a SKU, category or brand) or of the whole period (``key`` is ``None``)."""

    key: str | None = Field(description="Group value (SKU, category or brand); None for the total.")
    gmv_cents: int = 0
    units: int = 0
    cogs_cents: int = 0
    gross_profit_cents: int = 0
    margin: float | None = Field(None, description="Gross profit / GMV, a fraction.")
    avg_discount_depth: float | None = Field(None, description="1 - unit/list price, weighted by units.")
    orders: int | None = Field(0, description="Distinct orders; counted for the total only (None in groups).")
    unique_buyers: int = 0
    repeat_buyers: int = 0
    repeat_buyer_share: float | None = None
    plan_items: int = 0
    allocated_units: int = 0
    sale_units: int = Field(0, description="Units of plan items sold on their sale dates.")
    sell_through: float | None = None
    stock_outs: int = 0
    avg_inventory_value_cents: int | None = None
    inventory_turnover: float | None = None
    counterfactual_units: float | None = None
    incremental_units: float | None = None


class DailyKpi(BaseModel):
    """GMV, profit and units of one day."""

    day: dt.date
    gmv_cents: int
    gross_profit_cents: int
    units: int


class PlanItemOutcome(BaseModel):
    """What happened to one plan item on its sale date."""

    plan_id: int
    sale_date: dt.date
    sku: str
    key: str | None
    discount_pct: float
    sale_price_cents: int
    list_price_cents: int
    allocated_units: int
    forecast_units: float
    sold_units: int
    revenue_cents: int
    sell_through: float | None
    stocked_out: bool
    sold_out_at: dt.datetime | None = None
    minutes_to_sell_out: float | None = None
    counterfactual_units: float | None = None
    incremental_units: float | None = None


class KpiReport(BaseModel):
    """KPIs of a period: the total, one row per group, the daily series and the plan items."""

    start: dt.date
    end: dt.date
    by: GroupBy | None
    plan_id: int | None
    total: KpiFigures
    groups: list[KpiFigures]
    daily: list[DailyKpi]
    plan_items: list[PlanItemOutcome]
    demand_model_id: int | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def stock_outs(self) -> list[PlanItemOutcome]:
        return [item for item in self.plan_items if item.stocked_out]


# ---- helpers --------------------------------------------------------------------------------------------


def parse_group_by(text: str | None) -> GroupBy | None:
    """Validate a grouping given as text: sku, category, brand, or nothing for totals only."""
    if text is None or text in ("", "none", "total"):
        return None
    if text == "sku":
        return "sku"
    if text == "category":
        return "category"
    if text == "brand":
        return "brand"
    raise KpiInputError(f"Unknown grouping {text!r}: use one of {', '.join(GROUP_BY_VALUES)}.")


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start 00:00, end + 1 day 00:00)``: the half-open timestamp range of an inclusive date range."""
    if end < start:
        raise KpiInputError(f"The period ends ({end}) before it starts ({start}); swap --start and --end.")
    t0 = dt.datetime.combine(start, dt.time())
    return t0, dt.datetime.combine(end + dt.timedelta(days=1), dt.time())


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _key_column(by: str | None) -> ColumnElement[Any] | None:
    if by is None:
        return None
    if by == "sku":
        return _ol.c.sku
    if by == "category":
        return _p.c.category
    if by == "brand":
        return _p.c.brand
    raise KpiInputError(f"Unknown grouping {by!r}: use one of {', '.join(GROUP_BY_VALUES)}.")


def _product_key_column(by: str | None) -> ColumnElement[Any] | None:
    if by == "sku":
        return _p.c.sku
    return _key_column(by)


def _not_cancelled(t0: dt.datetime, t1: dt.datetime) -> ColumnElement[bool]:
    """Order lines whose order is not a cancellation (anti-join against the period's few cancellations)."""
    cancelled = select(_o.c.id).where(_o.c.is_cancellation == true(), _o.c.ts >= t0, _o.c.ts < t1)
    return _ol.c.order_id.not_in(cancelled)


def _line_filter(t0: dt.datetime, t1: dt.datetime, skus: Sequence[str] | None) -> list[ColumnElement[bool]]:
    conds = [_ol.c.ts >= t0, _ol.c.ts < t1, _not_cancelled(t0, t1)]
    if skus is not None:
        conds.append(_ol.c.sku.in_(list(skus)))
    return conds


def _money_columns() -> list[Any]:
    has_list = _p.c.list_price_cents > 0
    return [
        func.coalesce(func.sum(_ol.c.qty * _ol.c.unit_price_cents), 0).label("gmv"),
        func.coalesce(func.sum(_ol.c.qty), 0).label("units"),
        func.coalesce(func.sum(_ol.c.qty * _p.c.cost_cents), 0).label("cogs"),
        func.sum(
            case(
                (has_list, _ol.c.qty * cast(_ol.c.unit_price_cents, Float) / _p.c.list_price_cents),
                else_=0.0,
            )
        ).label("price_ratio_units"),
        func.sum(case((has_list, _ol.c.qty), else_=0)).label("depth_units"),
    ]


_MONEY_SUMS = ("gmv", "units", "cogs", "price_ratio_units", "depth_units")
_FLOAT_SUMS = ("price_ratio_units",)


def _money_query(
    key: ColumnElement[Any] | None,
    t0: dt.datetime,
    t1: dt.datetime,
    skus: Sequence[str] | None,
    *,
    by_day: bool,
) -> Select[Any]:
    """Money sums per group and/or per day in one pass over the period's order lines."""
    day = func.date(_ol.c.ts)
    group = ([day] if by_day else []) + ([key] if key is not None else [])
    labelled = ([day.label("day")] if by_day else []) + ([key.label("k")] if key is not None else [])
    query = (
        select(*labelled, *_money_columns())
        .select_from(_ol.join(_p, _p.c.sku == _ol.c.sku))
        .where(*_line_filter(t0, t1, skus))
    )
    return query.group_by(*group) if group else query


def _money_sets_query(
    key: ColumnElement[Any], t0: dt.datetime, t1: dt.datetime, skus: Sequence[str] | None
) -> Select[Any]:
    """Money sums per day and per group in one pass (PostgreSQL ``GROUPING SETS``): rows with ``is_group``
    1 hold one group each (``day`` is null), the others one day each (``k`` is null)."""
    day = func.date(_ol.c.ts)
    return (
        select(func.grouping(day).label("is_group"), day.label("day"), key.label("k"), *_money_columns())
        .select_from(_ol.join(_p, _p.c.sku == _ol.c.sku))
        .where(*_line_filter(t0, t1, skus))
        .group_by(func.grouping_sets(day, key))
    )


def _buyer_counts(per_order: Any, key: bool) -> Select[Any]:
    """Orders, buyers and repeat buyers from rows of distinct ((group,) order) with the order's customer."""
    keys = [per_order.c.k] if key else []
    per_customer = (
        select(*keys, per_order.c.customer_id, func.count().label("n_orders"))
        .group_by(*keys, per_order.c.customer_id)
        .subquery("per_customer")
    )
    known = per_customer.c.customer_id.is_not(None)
    outer_keys = [per_customer.c.k] if key else []
    query = select(
        *outer_keys,
        func.coalesce(func.sum(per_customer.c.n_orders), 0).label("orders"),
        func.count(per_customer.c.customer_id).label("buyers"),
        func.coalesce(func.sum(case((and_(known, per_customer.c.n_orders >= 2), 1), else_=0)), 0).label(
            "repeat_buyers"
        ),
    )
    return query.group_by(*outer_keys) if key else query


def _buyers_query(
    key: ColumnElement[Any] | None, t0: dt.datetime, t1: dt.datetime, skus: Sequence[str] | None
) -> Select[Any]:
    """Orders, unique buyers and repeat buyers, in total or per group, with plain nested GROUP BYs (hash
    aggregates, which PostgreSQL runs in parallel) rather than COUNT(DISTINCT), which it can only sort.

    The period's totals over all SKUs come from the ``orders`` table (one row per order, no distinct
    needed); groups and SKU-restricted totals reduce the order lines to distinct (group, order) first.
    """
    if key is None and skus is None:
        per_order = (
            select(_o.c.customer_id.label("customer_id"))
            .where(_o.c.ts >= t0, _o.c.ts < t1, _o.c.is_cancellation == false())
            .subquery("per_order")
        )
        return _buyer_counts(per_order, key=False)
    needs_product = key is not None and key is not _ol.c.sku
    source = _ol.join(_p, _p.c.sku == _ol.c.sku) if needs_product else _ol
    if key is None:
        per_order = (
            select(func.max(_ol.c.customer_id).label("customer_id"))
            .select_from(source)
            .where(*_line_filter(t0, t1, skus))
            .group_by(_ol.c.order_id)
            .subquery("per_order")
        )
        return _buyer_counts(per_order, key=False)
    # Per group: one aggregate over (group, customer); a customer with two or more distinct orders in the
    # group has different smallest and largest order ids. Orders per group are not counted (that would
    # need a further pass over the lines).
    per_customer = (
        select(
            key.label("k"),
            _ol.c.customer_id.label("customer_id"),
            (func.min(_ol.c.order_id) != func.max(_ol.c.order_id)).label("repeat"),
        )
        .select_from(source)
        .where(*_line_filter(t0, t1, skus), _ol.c.customer_id.is_not(None))
        .group_by(key, _ol.c.customer_id)
        .subquery("per_customer")
    )
    return select(
        per_customer.c.k,
        literal(None).label("orders"),
        func.count().label("buyers"),
        func.coalesce(func.sum(case((per_customer.c.repeat, 1), else_=0)), 0).label("repeat_buyers"),
    ).group_by(per_customer.c.k)


def _fill_money(fig: KpiFigures, row: Any) -> None:
    fig.gmv_cents = int(row.gmv or 0)
    fig.units = int(row.units or 0)
    fig.cogs_cents = int(row.cogs or 0)
    fig.gross_profit_cents = fig.gmv_cents - fig.cogs_cents
    fig.margin = _ratio(fig.gross_profit_cents, fig.gmv_cents)
    depth_units = float(row.depth_units or 0)
    fig.avg_discount_depth = 1.0 - float(row.price_ratio_units or 0.0) / depth_units if depth_units else None


def _fill_buyers(fig: KpiFigures, row: Any) -> None:
    fig.orders = None if row.orders is None else int(row.orders)
    fig.unique_buyers = int(row.buyers or 0)
    fig.repeat_buyers = int(row.repeat_buyers or 0)
    fig.repeat_buyer_share = _ratio(fig.repeat_buyers, fig.unique_buyers)


# ---- a second connection on the same snapshot (PostgreSQL) --------------------------------------------


@contextmanager
def _snapshot_twin(session: Session) -> Iterator[Connection | None]:
    """A second PostgreSQL connection that sees exactly the rows the session sees, or ``None``.

    The session's transaction exports its snapshot (``pg_export_snapshot``, as ``pg_dump --jobs`` does) and
    the twin adopts it, so a query run on the twin in another thread returns what it would have returned in
    the session while the session runs other queries: the report uses two cores. ``None`` (run everything
    in the session) on SQLite, when the session is bound to a connection rather than an engine, and when
    its transaction has written rows that another connection could not see.
    """
    bind = session.get_bind()
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        yield None
        return
    if session.execute(text("SELECT txid_current_if_assigned()")).scalar() is not None:
        yield None  # uncommitted writes in this transaction
        return
    snapshot = str(session.execute(text("SELECT pg_export_snapshot()")).scalar_one())
    if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):  # SET takes no bind parameters: check what is inlined
        yield None
        return
    twin = _open_twin(bind, snapshot)
    try:
        yield twin
    finally:
        if twin is not None:
            twin.rollback()
            twin.close()


def _open_twin(engine: Engine, snapshot: str) -> Connection | None:
    """A connection in a transaction on ``snapshot``; ``None`` when none can be had (e.g. the server's
    connection limit), in which case the report runs everything in the session."""
    try:
        twin = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    except DBAPIError:
        return None
    try:
        twin.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        _apply_postgres_settings(twin)
    except DBAPIError:
        twin.close()
        return None
    return twin


def _apply_postgres_settings(target: Session | Connection) -> None:
    """``SET LOCAL`` the report's settings (until the transaction ends): see POSTGRES_SETTINGS."""
    for setting, setting_value in POSTGRES_SETTINGS.items():
        target.execute(text(f"SET LOCAL {setting} = '{setting_value}'"))


# ---- plan items -----------------------------------------------------------------------------------------


def _sale_day_join(session: Session, t0: dt.datetime, t1: dt.datetime) -> ColumnElement[bool]:
    """Order lines of a plan item's SKU on its plan's sale date, as an index-friendly (sku, ts) range."""
    if session.get_bind().dialect.name == "sqlite":
        # Dates are 'YYYY-MM-DD' text there, which sorts before every timestamp of that day.
        day_start: ColumnElement[Any] = _fp.c.sale_date
        day_end: ColumnElement[Any] = func.date(_fp.c.sale_date, "+1 day")
    else:
        day_start, day_end = _fp.c.sale_date, _fp.c.sale_date + 1
    return and_(
        _ol.c.sku == _pi.c.sku,
        _ol.c.ts >= t0,
        _ol.c.ts < t1,
        _ol.c.ts >= day_start,
        _ol.c.ts < day_end,
    )


def _plan_items(
    session: Session, by: str | None, start: dt.date, end: dt.date, plan_id: int | None
) -> list[PlanItemOutcome]:
    t0, t1 = period_bounds(start, end)
    key = _product_key_column(by)
    plan_filter: list[ColumnElement[bool]] = [
        _fp.c.sale_date >= start,
        _fp.c.sale_date <= end,
        _fp.c.status.in_([s.value for s in REPORTED_PLAN_STATUSES]),
    ]
    if plan_id is not None:
        plan_filter = [_fp.c.id == plan_id, _fp.c.sale_date >= start, _fp.c.sale_date <= end]
    key_col = key.label("k") if key is not None else None
    items_q = (
        select(
            _pi.c.id,
            _pi.c.plan_id,
            _fp.c.sale_date,
            _pi.c.sku,
            *([key_col] if key_col is not None else []),
            _pi.c.discount_pct,
            _pi.c.sale_price_cents,
            _p.c.list_price_cents,
            _pi.c.allocated_units,
            _pi.c.forecast_units,
        )
        .select_from(_pi.join(_fp, _fp.c.id == _pi.c.plan_id).join(_p, _p.c.sku == _pi.c.sku))
        .where(*plan_filter)
        .order_by(_fp.c.sale_date, _pi.c.plan_id, _pi.c.sku)
    )
    items = session.execute(items_q).all()
    if not items:
        return []

    # Units and revenue of each item's SKU on its sale date, aggregated in SQL.
    sale_day_join = _sale_day_join(session, t0, t1)
    sold_q = (
        select(
            _pi.c.id,
            func.sum(_ol.c.qty).label("units"),
            func.sum(_ol.c.qty * _ol.c.unit_price_cents).label("revenue"),
        )
        .select_from(_pi.join(_fp, _fp.c.id == _pi.c.plan_id).join(_ol, sale_day_join))
        .where(*plan_filter, _not_cancelled(t0, t1))
        .group_by(_pi.c.id)
    )
    sold = {row.id: (int(row.units or 0), int(row.revenue or 0)) for row in session.execute(sold_q)}

    outcomes: dict[int, PlanItemOutcome] = {}
    for row in items:
        units, revenue = sold.get(row.id, (0, 0))
        allocated = int(row.allocated_units)
        outcomes[row.id] = PlanItemOutcome(
            plan_id=row.plan_id,
            sale_date=as_date(row.sale_date),
            sku=row.sku,
            key=(str(row.k) if key_col is not None else None),
            discount_pct=float(row.discount_pct),
            sale_price_cents=int(row.sale_price_cents),
            list_price_cents=int(row.list_price_cents),
            allocated_units=allocated,
            forecast_units=float(row.forecast_units),
            sold_units=units,
            revenue_cents=revenue,
            sell_through=_ratio(units, allocated),
            stocked_out=allocated > 0 and units >= allocated,
        )

    stocked = [item_id for item_id, o in outcomes.items() if o.stocked_out]
    if stocked:
        _sell_out_times(session, outcomes, stocked, t0, t1)
    return list(outcomes.values())


def _sell_out_times(
    session: Session,
    outcomes: dict[int, PlanItemOutcome],
    stocked: list[int],
    t0: dt.datetime,
    t1: dt.datetime,
) -> None:
    """First ``ts`` at which cumulative sales of each stocked-out item reached its allocation (window sum)."""
    sale_day_join = _sale_day_join(session, t0, t1)
    cumulative = (
        select(
            _pi.c.id.label("item_id"),
            _pi.c.allocated_units.label("allocated"),
            _ol.c.ts.label("ts"),
            func.sum(_ol.c.qty).over(partition_by=_pi.c.id, order_by=(_ol.c.ts, _ol.c.id)).label("cum_units"),
        )
        .select_from(_pi.join(_fp, _fp.c.id == _pi.c.plan_id).join(_ol, sale_day_join))
        .where(_pi.c.id.in_(stocked), _not_cancelled(t0, t1))
        .subquery("cumulative")
    )
    first = select(cumulative.c.item_id, func.min(cumulative.c.ts).label("sold_out_at")).where(
        cumulative.c.cum_units >= cumulative.c.allocated
    )
    for row in session.execute(first.group_by(cumulative.c.item_id)):
        outcome = outcomes[row.item_id]
        at = as_datetime(row.sold_out_at)
        outcome.sold_out_at = at
        opened = dt.datetime.combine(outcome.sale_date, dt.time())
        outcome.minutes_to_sell_out = (at - opened).total_seconds() / 60.0


# ---- inventory --------------------------------------------------------------------------------------------


def _inventory_value_query(
    key: ColumnElement[Any] | None, t0: dt.datetime, t1: dt.datetime, skus: Sequence[str] | None
) -> Select[Any]:
    """Average inventory value at cost, in total or per group, in one statement.

    A SKU's average stock is the mean ``on_hand`` of its snapshots in the period, else its latest snapshot
    before the period; SKUs with neither are left out.
    """
    sku_filter = [_inv.c.sku.in_(list(skus))] if skus is not None else []
    in_period = (
        select(_inv.c.sku, func.avg(cast(_inv.c.on_hand, Float)).label("avg_on_hand"))
        .where(_inv.c.as_of >= t0, _inv.c.as_of < t1, *sku_filter)
        .group_by(_inv.c.sku)
        .subquery("in_period")
    )
    latest = (
        select(_inv.c.sku, func.max(_inv.c.as_of).label("as_of"))
        .where(_inv.c.as_of < t0, *sku_filter)
        .group_by(_inv.c.sku)
        .subquery("latest")
    )
    opening = (
        select(_inv.c.sku, cast(_inv.c.on_hand, Float).label("on_hand"))
        .select_from(_inv.join(latest, and_(latest.c.sku == _inv.c.sku, latest.c.as_of == _inv.c.as_of)))
        .subquery("opening")
    )
    stock = func.coalesce(in_period.c.avg_on_hand, opening.c.on_hand)
    group_key = _p.c.sku if key is _ol.c.sku else key
    query = (
        select(
            *([group_key.label("k")] if group_key is not None else []),
            func.sum(stock * _p.c.cost_cents).label("value"),
        )
        .select_from(
            _p.outerjoin(in_period, in_period.c.sku == _p.c.sku).outerjoin(opening, opening.c.sku == _p.c.sku)
        )
        .where(or_(in_period.c.sku.is_not(None), opening.c.sku.is_not(None)))
    )
    return query.group_by(group_key) if group_key is not None else query


# ---- counterfactual -------------------------------------------------------------------------------------


def _everyday_prices(session: Session, items: Sequence[PlanItemOutcome]) -> dict[tuple[str, dt.date], int]:
    """(sku, sale_date) -> the shelf price set before the sale date began (else the list price).

    Prices that start exactly at the sale date's midnight are the sale's own and are ignored."""
    skus = sorted({i.sku for i in items})
    horizon = dt.datetime.combine(max(i.sale_date for i in items), dt.time())
    history: dict[str, list[tuple[dt.datetime, int]]] = defaultdict(list)
    rows = session.execute(
        select(_ph.c.sku, _ph.c.valid_from, _ph.c.price_cents)
        .where(_ph.c.sku.in_(skus), _ph.c.valid_from < horizon)
        .order_by(_ph.c.sku, _ph.c.valid_from)
    )
    for r in rows:
        history[r.sku].append((as_datetime(r.valid_from), int(r.price_cents)))
    prices: dict[tuple[str, dt.date], int] = {}
    for item in items:
        opened = dt.datetime.combine(item.sale_date, dt.time())
        price = item.list_price_cents
        for valid_from, cents in history.get(item.sku, []):
            if valid_from < opened:
                price = cents
        prices[(item.sku, item.sale_date)] = price
    return prices


def _counterfactuals(session: Session, items: list[PlanItemOutcome], notes: list[str]) -> int | None:
    """Fill counterfactual and incremental units of plan items from the stored demand model."""
    if not items:
        return None

    model = load_latest_demand_model(session)
    if model is None:
        notes.append(
            "Incremental units skipped: no demand model is stored; fit one first (python cli.py fit)."
        )
        return None
    prices = _everyday_prices(session, items)
    by_day: dict[dt.date, list[PlanItemOutcome]] = defaultdict(list)
    for item in items:
        by_day[item.sale_date].append(item)
    model_id: int | None = None
    for day, day_items in sorted(by_day.items()):
        skus = [i.sku for i in day_items]
        grid_prices = np.array([[prices[(i.sku, day)]] for i in day_items], dtype=np.int64)
        try:
            grid = model.forecast_grid(
                day, skus, grid_prices, featured=False, signals=active_signals(session, day)
            )
        except FlashSaleError as exc:
            notes.append(f"Incremental units skipped for {day}: {exc}")
            continue
        model_id = grid.model_id
        for item, expected in zip(day_items, grid.mean[:, 0], strict=True):
            item.counterfactual_units = float(expected)
            item.incremental_units = item.sold_units - float(expected)
    return model_id


# ---- the report -------------------------------------------------------------------------------------------


def _plan_scope(session: Session, plan_id: int) -> tuple[dt.date, list[str]]:
    plan = session.get(FlashSalePlan, plan_id)
    if plan is None:
        raise UnknownPlan(f"No flash-sale plan with id {plan_id}; list plans with `python cli.py plan list`.")
    skus = list(session.scalars(select(_pi.c.sku).where(_pi.c.plan_id == plan_id)))
    return plan.sale_date, skus


DEFAULT_PERIOD_DAYS = 30


def last_closed_plan(session: Session, before: dt.date) -> FlashSalePlan | None:
    """The closed plan with the newest sale date before ``before``."""
    return session.scalars(
        select(FlashSalePlan)
        .where(FlashSalePlan.status == PlanStatus.CLOSED, FlashSalePlan.sale_date < before)
        .order_by(FlashSalePlan.sale_date.desc(), FlashSalePlan.id.desc())
        .limit(1)
    ).first()


def default_period(session: Session, today: dt.date) -> tuple[dt.date, dt.date, str]:
    """The period of a report asked without dates: the last sale closed before ``today``, else the
    ``DEFAULT_PERIOD_DAYS`` days before ``today``; with a note that says which."""
    plan = last_closed_plan(session, today)
    if plan is not None:
        return (
            plan.sale_date,
            plan.sale_date,
            f"No period given: the last closed sale, plan {plan.id} on {plan.sale_date}.",
        )
    end = today - dt.timedelta(days=1)
    start = end - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    return (
        start,
        end,
        f"No period given and no closed sale: the last {DEFAULT_PERIOD_DAYS} days, {start} to {end}.",
    )


def kpi_report(
    session: Session,
    start: dt.date | None,
    end: dt.date | None,
    by: GroupBy | None = None,
    plan_id: int | None = None,
    *,
    counterfactual: bool = True,
) -> KpiReport:
    """KPIs of ``[start, end]`` (inclusive dates), optionally grouped ``by`` SKU, category or brand.

    With ``plan_id`` the report covers only that plan's SKUs, and the period defaults to the plan's sale
    date. ``counterfactual=False`` skips the demand-model counterfactual (incremental units). See the module
    docstring for the definition of every figure.
    """
    key = _key_column(by)
    skus: list[str] | None = None
    if plan_id is not None:
        sale_date, skus = _plan_scope(session, plan_id)
        start = start or sale_date
        end = end or sale_date
    if start is None or end is None:
        raise KpiInputError("Give both a start and an end date (or a plan id).")
    t0, t1 = period_bounds(start, end)

    if session.get_bind().dialect.name == "postgresql":
        _apply_postgres_settings(session)
    with _snapshot_twin(session) as twin, ThreadPoolExecutor(max_workers=1) as pool:
        # The buyers of the groups (of the total without groups), the report's heaviest aggregate, run on
        # the twin connection while the session computes everything else.
        side: Future[list[Any]] | None = None
        if twin is not None:
            side_query = _buyers_query(key, t0, t1, skus)
            side = pool.submit(lambda: list(twin.execute(side_query)))
        return _report(
            session,
            start=start,
            end=end,
            by=by,
            plan_id=plan_id,
            key=key,
            skus=skus,
            t0=t0,
            t1=t1,
            counterfactual=counterfactual,
            side=side,
        )


def _report(
    session: Session,
    *,
    start: dt.date,
    end: dt.date,
    by: GroupBy | None,
    plan_id: int | None,
    key: ColumnElement[Any] | None,
    skus: list[str] | None,
    t0: dt.datetime,
    t1: dt.datetime,
    counterfactual: bool,
    side: Future[list[Any]] | None,
) -> KpiReport:
    """The body of :func:`kpi_report`; ``side`` holds the rows of ``_buyers_query(key, ...)`` when they are
    being computed on a twin connection."""
    total = KpiFigures(key=None)
    groups: dict[str, KpiFigures] = {}
    # Money and units stay exact integers; only the discount-depth sums are floats.
    per_day: dict[dt.date, dict[str, float]] = defaultdict(lambda: defaultdict(int))
    # One pass for the daily series and the groups, except by SKU (too many SKU-days to fetch): there
    # PostgreSQL does it in one pass with two grouping sets, SQLite in two passes.
    combined = key is not None and by != "sku"
    grouping_sets = key is not None and not combined and session.get_bind().dialect.name == "postgresql"
    per_key: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(int))
    if grouping_sets and key is not None:
        money_rows = session.execute(_money_sets_query(key, t0, t1, skus))
    else:
        money_rows = session.execute(_money_query(key if combined else None, t0, t1, skus, by_day=True))
    for row in money_rows:
        if grouping_sets and row.is_group:
            _fill_money(groups.setdefault(str(row.k), KpiFigures(key=str(row.k))), row)
            continue
        for name in _MONEY_SUMS:
            raw = getattr(row, name) or 0
            value = float(raw) if name in _FLOAT_SUMS else int(raw)
            per_day[as_date(row.day)][name] += value
            if combined:
                per_key[str(row.k)][name] += value
    if key is not None and not combined and not grouping_sets:
        for row in session.execute(_money_query(key, t0, t1, skus, by_day=False)):
            _fill_money(groups.setdefault(str(row.k), KpiFigures(key=str(row.k))), row)
    for k, sums in per_key.items():
        _fill_money(groups.setdefault(k, KpiFigures(key=k)), _Row(**sums))
    daily = [
        DailyKpi(
            day=day,
            gmv_cents=round(sums["gmv"]),
            gross_profit_cents=round(sums["gmv"] - sums["cogs"]),
            units=round(sums["units"]),
        )
        for day, sums in sorted(per_day.items())
    ]
    totals: dict[str, float] = dict.fromkeys(_MONEY_SUMS, 0)
    for sums in per_day.values():
        for name in _MONEY_SUMS:
            totals[name] += sums[name]
    _fill_money(total, _Row(**totals))

    if key is None:
        _fill_buyers(total, _side_or_run(session, side, _buyers_query(None, t0, t1, skus))[0])
    else:
        _fill_buyers(total, session.execute(_buyers_query(None, t0, t1, skus)).one())
        for row in _side_or_run(session, side, _buyers_query(key, t0, t1, skus)):
            _fill_buyers(groups.setdefault(str(row.k), KpiFigures(key=str(row.k))), row)

    notes: list[str] = []
    items = _plan_items(session, by, start, end, plan_id)
    model_id = _counterfactuals(session, items, notes) if counterfactual else None
    if not items:
        notes.append("No approved, live or closed plan has a sale date in this period: no sell-through.")
    _fill_plan_figures(total, items)
    if key is not None:
        by_key: dict[str, list[PlanItemOutcome]] = defaultdict(list)
        for item in items:
            by_key[str(item.key)].append(item)
        for k, k_items in by_key.items():
            _fill_plan_figures(groups.setdefault(k, KpiFigures(key=k)), k_items)

    _fill_inventory(session, key=key, total=total, groups=groups, t0=t0, t1=t1, skus=skus)
    ordered = sorted(groups.values(), key=lambda g: (-g.gmv_cents, str(g.key)))
    return KpiReport(
        start=start,
        end=end,
        by=by,
        plan_id=plan_id,
        total=total,
        groups=ordered,
        daily=daily,
        plan_items=items,
        demand_model_id=model_id,
        notes=notes,
    )


def _side_or_run(session: Session, side: Future[list[Any]] | None, query: Select[Any]) -> list[Any]:
    """The rows computed on the twin connection, else those of ``query`` run in the session."""
    if side is not None:
        return side.result()
    return list(session.execute(query))


class _Row:
    def __init__(self, **values: float) -> None:
        self.__dict__.update(values)


def _fill_plan_figures(fig: KpiFigures, items: Iterable[PlanItemOutcome]) -> None:
    items = list(items)
    fig.plan_items = len(items)
    fig.allocated_units = sum(i.allocated_units for i in items)
    fig.sale_units = sum(i.sold_units for i in items)
    fig.sell_through = _ratio(fig.sale_units, fig.allocated_units)
    fig.stock_outs = sum(1 for i in items if i.stocked_out)
    with_cf = [i for i in items if i.counterfactual_units is not None]
    if items and len(with_cf) == len(items):
        fig.counterfactual_units = sum(float(i.counterfactual_units or 0.0) for i in with_cf)
        fig.incremental_units = fig.sale_units - fig.counterfactual_units


def _fill_inventory(
    session: Session,
    *,
    key: ColumnElement[Any] | None,
    total: KpiFigures,
    groups: dict[str, KpiFigures],
    t0: dt.datetime,
    t1: dt.datetime,
    skus: Sequence[str] | None,
) -> None:
    value = session.execute(_inventory_value_query(None, t0, t1, skus)).scalar()
    if value is None:
        return  # no snapshot at all: no inventory figures
    total.avg_inventory_value_cents = round(float(value))
    total.inventory_turnover = _ratio(total.cogs_cents, total.avg_inventory_value_cents)
    if key is None:
        return
    for row in session.execute(_inventory_value_query(key, t0, t1, skus)):
        fig = groups.get(str(row.k))
        if fig is None or row.value is None:
            continue  # stock but no sales and no plan item in the period: nothing to report for it
        fig.avg_inventory_value_cents = round(float(row.value))
        fig.inventory_turnover = _ratio(fig.cogs_cents, fig.avg_inventory_value_cents)
