"""Build the demo shop: migrate the database and fill it from the market simulator in one transaction.

``python cli.py demo`` calls :func:`build_demo`; tests and benchmarks call it directly with a small or a
scaled :class:`~tools.simulator.SimConfig`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, Table, func, insert, select, text

from db import models as m
from db.bulk import bulk_insert
from db.content_keys import news_key, review_key
from db.errors import FlashSaleError
from db.migrate import upgrade
from tools.simulator.history import SalesChunk, inventory_snapshot, iter_sales
from tools.simulator.world import COMPETITORS, COUNTRIES, SimConfig, World, build_world

# Share of the progress bar given to the static tables before the sales history, and to the sales.
_STATIC_SHARE = 0.12
_SALES_SHARE = 0.83


class ShopNotEmpty(FlashSaleError):
    """The target database already holds a shop."""


@dataclass(frozen=True)
class DemoProgress:
    """One progress report: the table being written, rows written to it so far, overall fraction done."""

    table: str
    rows: int
    fraction: float


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`build_demo` wrote."""

    config: SimConfig
    sim_run_id: int
    counts: dict[str, int]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())


ProgressFn = Callable[[DemoProgress], None]


def _t(model: type[m.Base]) -> Table:
    return cast(Table, model.__table__)


def _datetimes(values: NDArray[np.datetime64]) -> list[dt.datetime]:
    return cast(list[dt.datetime], values.astype("datetime64[us]").tolist())


def _empty_all(conn: Connection) -> None:
    tables = list(reversed(m.Base.metadata.sorted_tables))
    if conn.dialect.name == "postgresql":
        names = ", ".join(conn.dialect.identifier_preparer.quote(t.name) for t in tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    for table in tables:
        conn.execute(table.delete())


def _sync_sequence(conn: Connection, table: Table) -> None:
    """After inserting explicit ids on PostgreSQL, move the id sequence past them."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
            f"(SELECT MAX(id) FROM {conn.dialect.identifier_preparer.quote(table.name)}))"
        )
    )


class _Writer:
    def __init__(self, conn: Connection, progress: ProgressFn | None) -> None:
        self.conn = conn
        self.progress = progress
        self.counts: dict[str, int] = {}
        self.fraction = 0.0

    def write(self, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        written = bulk_insert(self.conn, table, columns, rows)
        self.counts[table.name] = self.counts.get(table.name, 0) + written
        self.report(table.name)
        return written

    def report(self, table: str, fraction: float | None = None) -> None:
        if fraction is not None:
            self.fraction = max(self.fraction, min(1.0, fraction))
        if self.progress is not None:
            self.progress(DemoProgress(table, self.counts.get(table, 0), self.fraction))


def build_demo(
    engine: Engine,
    config: SimConfig | None = None,
    *,
    replace: bool = False,
    progress: ProgressFn | None = None,
    chunk_days: int = 30,
) -> DemoSummary:
    """Create the schema and fill it with a simulated shop (one transaction).

    Refuses to touch a database that already has products unless ``replace`` is true, in which case every
    table is emptied first. ``progress`` is called after each batch of rows.
    """
    started = time.perf_counter()
    config = config or SimConfig()
    upgrade(engine)
    with engine.begin() as conn:
        existing = conn.execute(select(func.count()).select_from(_t(m.Product))).scalar_one()
        if existing and not replace:
            raise ShopNotEmpty(
                f"the database already holds a shop ({existing:,} products); rebuild it with --replace "
                "(this deletes every row) or point FLASHSALE_DB_PATH / DATABASE_URL elsewhere"
            )
        if replace:
            _empty_all(conn)
        writer = _Writer(conn, progress)
        world = build_world(config)
        writer.report("world", 0.02)
        sim_run_id = _write_static(writer, world)
        _write_sales(writer, world, chunk_days)
        _write_inventory(writer, world)
        _write_truth(writer, world)
        writer.report("commit", 0.97)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        # VACUUM (outside any transaction) sets the visibility map of the freshly written tables, so that
        # period scans (the KPI report) run as index-only scans; ANALYZE refreshes the planner's statistics.
        tables = ", ".join(f'"{table.name}"' for table in m.Base.metadata.sorted_tables)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM ANALYZE {tables}")
    writer.report("done", 1.0)
    return DemoSummary(config, sim_run_id, dict(writer.counts), time.perf_counter() - started)


def _write_static(w: _Writer, world: World) -> int:
    cfg = world.config
    conn = w.conn
    now = dt.datetime.combine(cfg.end_date, dt.time(23, 59, 59))
    result = conn.execute(
        insert(_t(m.SimRun)).values(created_at=now, config=cfg.model_dump(mode="json"), truth=world.truth())
    )
    sim_run_id = int(cast(Any, result.inserted_primary_key)[0])
    w.counts["sim_run"] = 1
    cats, brands = world.category_names, world.brand_names
    w.write(
        _t(m.Product),
        ["sku", "title", "category", "brand", "cost_cents", "list_price_cents", "is_product", "attributes"],
        zip(
            world.sku_ids,
            world.titles,
            [cats[c] for c in world.category.tolist()],
            [brands[b] for b in world.brand.tolist()],
            world.cost_cents.tolist(),
            world.list_price_cents.tolist(),
            [True] * world.n_skus,
            world.attributes,
            strict=True,
        ),
    )
    w.report("product", 0.04)
    segs = world.segment_names
    w.write(
        _t(m.Customer),
        ["id", "segment", "attributes"],
        (
            (cid, segs[s], {"country": COUNTRIES[c]})
            for cid, s, c in zip(
                world.customer_ids,
                world.customer_segment.tolist(),
                world.customer_country.tolist(),
                strict=True,
            )
        ),
    )
    w.report("customer", 0.06)
    w.write(
        _t(m.MarketNews),
        ["id", "title", "body", "published_at", "source", "url", "content_key"],
        (
            (
                n.id,
                n.title,
                n.body,
                n.published_at,
                n.source,
                n.url,
                news_key(n.source, n.title, n.published_at, n.url),
            )
            for n in world.news
        ),
    )
    _sync_sequence(conn, _t(m.MarketNews))
    _write_plans(w, world)
    sku_obj = np.array(world.sku_ids, dtype=object)
    epoch = np.datetime64(cfg.start_date.isoformat(), "s")
    w.write(
        _t(m.PriceHistory),
        ["sku", "price_cents", "valid_from"],
        zip(
            sku_obj[world.price_change_sku].tolist(),
            world.price_change_cents.tolist(),
            _datetimes(epoch + (world.price_change_day * 86_400).astype("timedelta64[s]")),
            strict=True,
        ),
    )
    w.report("price_history", 0.09)
    comp_obj = np.array(COMPETITORS, dtype=object)
    w.write(
        _t(m.CompetitorPrice),
        ["sku", "competitor", "price_cents", "seen_at"],
        zip(
            sku_obj[world.competitor_sku].tolist(),
            comp_obj[world.competitor_name].tolist(),
            world.competitor_price_cents.tolist(),
            _datetimes(epoch + (world.competitor_day * 86_400 + 9 * 3600).astype("timedelta64[s]")),
            strict=True,
        ),
    )
    w.report("competitor_price", _STATIC_SHARE)
    return sim_run_id


def _write_plans(w: _Writer, world: World) -> None:
    plan_rows: list[tuple[Any, ...]] = []
    item_rows: list[tuple[Any, ...]] = []
    for sale in world.flash_sales:
        date = world.date_of(sale.day)
        created = dt.datetime.combine(date - dt.timedelta(days=1), dt.time(17, 0))
        plan_rows.append(
            (
                sale.plan_id,
                date,
                m.PlanStatus.CLOSED.value,
                {"kind": "manual", "description": "historical flash sale picked by the merchandising team"},
                {"slots": int(sale.sku_idx.size)},
                {},
                "merchandising-team",
                created,
                "merchandising-team",
                created + dt.timedelta(hours=1),
                "Historical flash sale (simulated).",
            )
        )
        cost = world.cost_cents[sale.sku_idx]
        expected = np.minimum(sale.forecast_units, sale.allocated_units)
        revenue = np.round(expected * sale.sale_price_cents).astype(np.int64)
        profit = np.round(expected * (sale.sale_price_cents - cost)).astype(np.int64)
        for k, i in enumerate(sale.sku_idx.tolist()):
            item_rows.append(
                (
                    sale.plan_id,
                    world.sku_ids[i],
                    Decimal(int(sale.discount_pct[k])),
                    int(sale.sale_price_cents[k]),
                    int(sale.allocated_units[k]),
                    round(float(sale.forecast_units[k]), 3),
                    int(revenue[k]),
                    int(profit[k]),
                    None,
                )
            )
    w.write(
        _t(m.FlashSalePlan),
        [
            "id",
            "sale_date",
            "status",
            "objective",
            "constraints",
            "solver_stats",
            "created_by",
            "created_at",
            "approved_by",
            "approved_at",
            "notes",
        ],
        plan_rows,
    )
    _sync_sequence(w.conn, _t(m.FlashSalePlan))
    w.write(
        _t(m.PlanItem),
        [
            "plan_id",
            "sku",
            "discount_pct",
            "sale_price_cents",
            "allocated_units",
            "forecast_units",
            "expected_revenue_cents",
            "expected_profit_cents",
            "reason",
        ],
        item_rows,
    )


def _write_sales(w: _Writer, world: World, chunk_days: int) -> None:
    sku_obj = np.array(world.sku_ids, dtype=object)
    cust_obj = np.array(world.customer_ids, dtype=object)
    country_obj = np.array(COUNTRIES, dtype=object)[world.customer_country]
    n_days = world.config.n_days
    for chunk in iter_sales(world, chunk_days):
        _write_chunk(w, chunk, sku_obj, cust_obj, country_obj)
        done = (chunk.last_day + 1) / n_days
        w.report("order_line", _STATIC_SHARE + _SALES_SHARE * done)


def _write_chunk(
    w: _Writer,
    chunk: SalesChunk,
    sku_obj: NDArray[Any],
    cust_obj: NDArray[Any],
    country_obj: NDArray[Any],
) -> None:
    order_ts = _datetimes(chunk.order_ts)
    plan = [p or None for p in chunk.order_plan_id.tolist()]
    w.write(
        _t(m.Order),
        ["id", "customer_id", "ts", "country", "is_cancellation", "flash_sale_plan_id"],
        zip(
            chunk.order_ids,
            cust_obj[chunk.order_customer].tolist(),
            order_ts,
            country_obj[chunk.order_customer].tolist(),
            [False] * len(order_ts),
            plan,
            strict=True,
        ),
    )
    order_id_obj = np.array(chunk.order_ids, dtype=object)
    w.write(
        _t(m.OrderLine),
        ["order_id", "sku", "customer_id", "qty", "unit_price_cents", "ts"],
        zip(
            order_id_obj[chunk.line_order].tolist(),
            sku_obj[chunk.line_sku].tolist(),
            cust_obj[chunk.line_customer].tolist(),
            chunk.line_qty.tolist(),
            chunk.line_price_cents.tolist(),
            _datetimes(chunk.line_ts),
            strict=True,
        ),
    )
    w.write(
        _t(m.Review),
        ["sku", "customer_id", "rating", "text", "ts", "content_key"],
        (
            (*row, review_key(*row))
            for row in zip(
                sku_obj[chunk.review_sku].tolist(),
                cust_obj[chunk.review_customer].tolist(),
                chunk.review_rating.tolist(),
                chunk.review_text,
                _datetimes(chunk.review_ts),
                strict=True,
            )
        ),
    )


def _write_inventory(w: _Writer, world: World) -> None:
    snap = inventory_snapshot(world)
    w.write(
        _t(m.Inventory),
        ["sku", "on_hand", "reserved", "as_of"],
        zip(
            [world.sku_ids[i] for i in snap.sku.tolist()],
            snap.on_hand.tolist(),
            snap.reserved.tolist(),
            [snap.as_of] * snap.sku.size,
            strict=True,
        ),
    )


def _write_truth(w: _Writer, world: World) -> None:
    current = world.quality_at(world.config.n_days - 1)
    w.write(
        _t(m.SimSkuTruth),
        ["sku", "base_rate", "elasticity", "trend_per_year", "quality", "flash_lift", "ref_price_cents"],
        zip(
            world.sku_ids,
            world.base_rate.tolist(),
            world.elasticity.tolist(),
            world.trend_per_year.tolist(),
            current.tolist(),
            world.flash_lift.tolist(),
            world.list_price_cents.tolist(),
            strict=True,
        ),
    )
    rows: list[tuple[Any, ...]] = []
    for n in world.news:
        s = n.shock
        if s is None:
            rows.append((n.id, n.kind, None, None, 1.0, None, None))
        else:
            rows.append(
                (
                    n.id,
                    s.kind,
                    s.scope,
                    s.scope_value,
                    s.multiplier,
                    world.date_of(s.start_day),
                    world.date_of(s.end_day),
                )
            )
    w.write(
        _t(m.SimNewsTruth),
        ["news_id", "kind", "scope", "scope_value", "multiplier", "start_date", "end_date"],
        rows,
    )
