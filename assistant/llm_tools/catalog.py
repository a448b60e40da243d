"""LLM tools over the catalogue: products, sales, stock, competitors, market signals and read-only SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from assistant.deps import Deps
from assistant.llm_tools.base import ToolArgs, ToolDate, llm_tool
from tools import catalog
from tools.data_check import DataCheck, check_data
from tools.readonly_sql import SqlResult, run_readonly_sql


class SearchProductsArgs(ToolArgs):
    query: str | None = Field(
        None, max_length=200, description="Words to find in the SKU or title, e.g. 'wireless headphones'."
    )
    category: str | None = Field(None, max_length=100, description="Exact category name (case-insensitive).")
    brand: str | None = Field(None, max_length=100, description="Exact brand name (case-insensitive).")
    limit: int = Field(20, ge=1, le=100, description="Most products to return.")


class SkuArgs(ToolArgs):
    sku: str = Field(max_length=64, description="The product's SKU, exactly as in the catalogue.")


class SalesHistoryArgs(ToolArgs):
    sku: str | None = Field(
        None, max_length=64, description="One SKU (give at most one of sku, category, brand)."
    )
    category: str | None = Field(None, max_length=100, description="A category name.")
    brand: str | None = Field(None, max_length=100, description="A brand name.")
    start: ToolDate | None = Field(None, description="First day (YYYY-MM-DD); default: `days` before end.")
    end: ToolDate | None = Field(None, description="Last day (YYYY-MM-DD), inclusive; default: yesterday.")
    days: int = Field(28, ge=1, le=366, description="Window length when start is not given.")

    @model_validator(mode="after")
    def _one_scope(self) -> SalesHistoryArgs:
        if sum(x is not None for x in (self.sku, self.category, self.brand)) > 1:
            raise ValueError("give at most one of sku, category, brand")
        return self


class InventoryArgs(ToolArgs):
    skus: list[str] | None = Field(None, max_length=100, description="SKUs to look up; omit for all.")
    category: str | None = Field(None, max_length=100, description="Only this category.")
    limit: int = Field(50, ge=1, le=200, description="Most rows to return.")


class CompetitorPricesArgs(ToolArgs):
    sku: str | None = Field(None, max_length=64, description="One SKU; omit for every SKU (or a category).")
    category: str | None = Field(None, max_length=100, description="Only this category.")
    days: int = Field(14, ge=1, le=180, description="Look back this many days for quotes.")
    limit: int = Field(50, ge=1, le=200, description="Most rows to return.")


class MarketSignalsArgs(ToolArgs):
    date: ToolDate | None = Field(None, description="Day the signals must be valid on; default: tomorrow.")
    scope_value: str | None = Field(
        None, max_length=100, description="Only signals about this SKU, category or brand."
    )


class NoArgs(ToolArgs):
    pass


class SqlArgs(ToolArgs):
    sql: str = Field(
        description="One read-only SELECT over the shop tables (product, inventory, price_history, orders, "
        "order_line, competitor_price, review, market_news, market_signal, flash_sale_plan, plan_item, "
        "customer). Money columns (named *_cents) are integer cents: divide by 100 for an amount.",
        max_length=5000,
    )
    max_rows: int = Field(100, ge=1, le=200, description="Most rows to return.")


@llm_tool(SearchProductsArgs)
def search_products(deps: Deps, session: Session, args: SearchProductsArgs) -> catalog.ProductSearchResult:
    """Find products by words in the SKU or title, by category or by brand. Use it to resolve a product
    name to its SKU before other tools."""
    return catalog.search_products(
        session, query=args.query, category=args.category, brand=args.brand, limit=args.limit
    )


@llm_tool(SkuArgs)
def get_product_details(deps: Deps, session: Session, args: SkuArgs) -> catalog.ProductDetails:
    """One SKU's title, category, brand, cost, list and current price, margin, stock, reviews, latest
    competitor prices and units sold in the last 28 days."""
    return catalog.product_details(session, args.sku, as_of=deps.now())


@llm_tool(SalesHistoryArgs)
def get_sales_history(deps: Deps, session: Session, args: SalesHistoryArgs) -> catalog.SalesHistory:
    """Units and revenue per day for a SKU, a category, a brand or the whole shop over a date window."""
    end = args.end or deps.today() - dt.timedelta(days=1)
    start = args.start or end - dt.timedelta(days=args.days - 1)
    return catalog.sales_history(
        session, start=start, end=end, sku=args.sku, category=args.category, brand=args.brand
    )


@llm_tool(InventoryArgs)
def get_inventory(deps: Deps, session: Session, args: InventoryArgs) -> catalog.InventoryResult:
    """Latest stock per SKU: on hand, reserved and available units."""
    return catalog.inventory(
        session, as_of=deps.now(), skus=args.skus, category=args.category, limit=args.limit
    )


@llm_tool(CompetitorPricesArgs)
def get_competitor_prices(
    deps: Deps, session: Session, args: CompetitorPricesArgs
) -> catalog.CompetitorPrices:
    """Latest competitor quotes per SKU and competitor, with the gap to our current price."""
    return catalog.competitor_prices(
        session, as_of=deps.now(), sku=args.sku, category=args.category, days=args.days, limit=args.limit
    )


@llm_tool(MarketSignalsArgs)
def get_market_signals(deps: Deps, session: Session, args: MarketSignalsArgs) -> catalog.MarketSignals:
    """Market signals (typed demand multipliers extracted from news and reviews, with their sources) valid
    on a date, and the titles of the week's news."""
    on = args.date or deps.today() + dt.timedelta(days=1)
    return catalog.market_signals(session, on=on, scope_value=args.scope_value)


@llm_tool(SqlArgs)
def run_sql(deps: Deps, session: Session, args: SqlArgs) -> SqlResult:
    """Run one read-only SELECT when no other tool answers the question. Cite the query in the answer."""
    bind: Any = session.get_bind()
    return run_readonly_sql(bind, args.sql, max_rows=args.max_rows)


@llm_tool(NoArgs)
def data_check(deps: Deps, session: Session, args: NoArgs) -> DataCheck:
    """What the shop's data support (forecast, elasticities, sale lift, plan, KPIs, pooling, signals,
    targeting): the verdict per capability, the counts behind it and what to import next. Use it before
    trusting a forecast of a newly imported shop."""
    return check_data(session)
