"""The formats and shapes shops export: Excel, Parquet and gzip-compressed CSV with the same validation and
atomicity as CSV; aggregated sales per period and the promotion calendar; a new database gets its schema."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, select, text

from db.engine import make_engine, make_session_factory
from db.errors import CsvImportError
from db.importers import ImportOptions, import_file
from db.models import OrderLine, Product, Promotion, SalesPeriod
from tests.test_import import CATALOG, ORDERS, row_counts, rows, write
from tools.clock import next_sale_date, shop_clock
from tools.data_check import check_data

SALES = """week_end_date,store_id,upc_id,units,spend,price,base_price,feature,display,tpr_only
2026-01-07,S1,A1,10,2000.00,200.00,249.99,0,0,1
2026-01-14,S1,A1,4,999.96,249.99,249.99,0,0,0
2026-01-07,S2,A1,3,749.97,249.99,249.99,1,1,0
2026-01-07,S1,B1,7,279.30,39.90,39.90,0,0,0
"""


@pytest.fixture
def catalog_engine(db_engine: Engine, tmp_path: Path) -> Engine:
    """A database with the catalog of ``CATALOG`` (A1, A2, B1)."""
    import_file(db_engine, "catalog", write(tmp_path, "catalog.csv", CATALOG))
    return db_engine


def _sheet(path: Path, header: list[str], data: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in data:
        sheet.append(row)
    book.save(path)
    return path


def test_excel_parquet_and_gzip_load_like_csv(db_engine: Engine, tmp_path: Path) -> None:
    import_file(db_engine, "catalog", write(tmp_path, "catalog.csv", CATALOG))
    xlsx = _sheet(
        tmp_path / "orders.xlsx",
        ["InvoiceNo", "StockCode", "Quantity", "UnitPrice", "InvoiceDate"],
        [
            ["o-1", "A1", 1, 229.99, dt.datetime(2024, 3, 1, 10, 0)],
            ["o-2", "B1", 2.0, 35, dt.datetime(2024, 3, 2)],
        ],
    )
    options = ImportOptions(mapping={"order_id": "InvoiceNo", "sku": "StockCode"})
    assert import_file(db_engine, "orders", xlsx, options).rows_loaded == 2
    table = pa.table(
        {
            "order_id": ["o-3"],
            "sku": ["A2"],
            "qty": [3],
            "line_total": [76.5],
            "ts": [dt.datetime(2024, 3, 4, 9)],
        }
    )
    pq.write_table(table, tmp_path / "orders.parquet")
    assert import_file(db_engine, "orders", tmp_path / "orders.parquet").rows_loaded == 1
    gz = tmp_path / "more.csv.gz"
    gz.write_bytes(gzip.compress(ORDERS.replace("o-", "g-").encode()))
    assert import_file(db_engine, "orders", gz).rows_loaded == 4
    lines = {(r.order_id, r.sku): (r.qty, r.unit_price_cents) for r in rows(db_engine, select(OrderLine))}
    assert lines[("o-1", "A1")] == (1, 22_999) and lines[("o-2", "B1")] == (2, 3_500)
    assert lines[("o-3", "A2")] == (3, 2_550)  # the unit price from the line's amount
    assert lines[("g-1", "A1")] == (1, 22_999)


def test_bad_cells_in_a_workbook_name_the_row_and_column_and_write_nothing(
    catalog_engine: Engine, tmp_path: Path
) -> None:
    xlsx = _sheet(
        tmp_path / "orders.xlsx",
        ["order_id", "sku", "qty", "unit_price", "ts"],
        [["o-1", "A1", 1, 229.99, "2024-03-01 10:00"], ["o-2", "B1", "two", 35, "2024-03-02 10:00"]],
    )
    before = row_counts(catalog_engine)
    with pytest.raises(CsvImportError, match=r'orders.xlsx line 3, column "qty": "two" is not an integer'):
        import_file(catalog_engine, "orders", xlsx)
    assert row_counts(catalog_engine) == before
    pq.write_table(pa.table({"sku": ["Z9"], "title": ["Lamp"], "list_price": [-1.0]}), tmp_path / "c.parquet")
    with pytest.raises(CsvImportError, match=r'c.parquet line 2, column "list_price": "-1" is negative'):
        import_file(catalog_engine, "catalog", tmp_path / "c.parquet")
    assert row_counts(catalog_engine) == before
    with pytest.raises(CsvImportError, match=r"extension the importer does not read; it reads \.csv"):
        import_file(catalog_engine, "orders", write(tmp_path, "orders.json", "[]"))
    broken = write(tmp_path, "broken.xlsx", "not a zip file")
    with pytest.raises(CsvImportError, match="is not a readable Excel workbook"):
        import_file(catalog_engine, "orders", broken)


def test_import_creates_the_schema_of_a_new_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'shop.db'}")
    summary = import_file(engine, "catalog", write(tmp_path, "catalog.csv", CATALOG))
    assert summary.rows_loaded == 3
    engine.dispose()


def test_weekly_sales_with_stores_and_promotion_markers(db_engine: Engine, tmp_path: Path) -> None:
    catalog = "sku,title,category\nA1,Headphones,audio\nB1,Kettle,kitchen\n"
    summary = import_file(db_engine, "catalog", write(tmp_path, "catalog.csv", catalog))
    assert summary.rows_loaded == 2
    summary = import_file(db_engine, "sales", write(tmp_path, "sales.csv", SALES))
    assert summary.rows_loaded == 4
    periods = {(r.sku, r.location, r.period_start): r for r in rows(db_engine, select(SalesPeriod))}
    first = periods[("A1", "S1", dt.date(2026, 1, 1))]  # the week ending 01-07 starts 01-01
    assert first.period_days == 7 and first.units == 10 and first.revenue_cents == 200_000
    assert first.base_price_cents == 24_999 and first.discounted and not first.featured
    promoted = periods[("A1", "S2", dt.date(2026, 1, 1))]
    assert promoted.featured and promoted.display and not promoted.discounted
    products = {p.sku: p for p in rows(db_engine, select(Product))}
    # no list price in the catalog: the most common base price, marked as estimated (so is the cost)
    assert products["A1"].list_price_cents == 24_999 and products["A1"].attributes["list_price_estimated"]
    assert products["A1"].cost_cents == round(24_999 * 0.6) and products["A1"].attributes["cost_estimated"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "2026-01-07,S1,A1,10,",
            r'sales.csv line 6, column "upc_id": "A1" with location S1, period_start 2026-01-01 is a '
            "duplicate",
        ),
        ("2026-01-21,S1,A1,-2,", r'line 6, column "units": "-2" is negative'),
        ("2026-01-21,S1,Z9,2,", r'line 6, column "upc_id": "Z9" is not a SKU of the catalog'),
        ("2026-01-21,S1,A1,,", r'line 6, column "units": is empty'),
    ],
)
def test_bad_sales_rows_are_named_and_nothing_is_written(
    catalog_engine: Engine, tmp_path: Path, change: str, message: str
) -> None:
    bad = SALES + change + "1.00,1.00,1.00,0,0,0\n"
    before = row_counts(catalog_engine)
    with pytest.raises(CsvImportError, match=message):
        import_file(catalog_engine, "sales", write(tmp_path, "sales.csv", bad))
    assert row_counts(catalog_engine) == before


def test_a_promotion_calendar_by_week_number(catalog_engine: Engine, tmp_path: Path) -> None:
    calendar = (
        "product_id,store_id,display_location,mailer_location,week\nA1,S1,3,0,1\nB1,S1,0,A,2\nA2,S2,0,0,2\n"
    )
    path = write(tmp_path, "promotions.csv", calendar)
    before = row_counts(catalog_engine)
    with pytest.raises(
        CsvImportError, match=r'line 2, column "week": "1" is a week number; give --week-origin'
    ):
        import_file(catalog_engine, "promotions", path)
    assert row_counts(catalog_engine) == before
    summary = import_file(catalog_engine, "promotions", path, ImportOptions(week_origin=dt.date(2026, 1, 5)))
    assert summary.rows_loaded == 2 and sum(summary.skipped.values()) == 1  # both markers off: no promotion
    found = {(p.sku, p.kind, p.start, p.end, p.location) for p in rows(catalog_engine, select(Promotion))}
    assert found == {
        ("A1", "display", dt.date(2026, 1, 5), dt.date(2026, 1, 11), "S1"),
        ("B1", "mailer", dt.date(2026, 1, 12), dt.date(2026, 1, 18), "S1"),
    }
    dated = (
        "sku,start,end,discount,kind\nB1,2026-02-01,2026-02-03,25 %,tpr\nB1,2026-03-05,2026-03-01,0.2,tpr\n"
    )
    with pytest.raises(
        CsvImportError, match=r'line 3, column "end": "2026-03-01" is before the start 2026-03-05'
    ):
        import_file(catalog_engine, "promotions", write(tmp_path, "dated.csv", dated))


def test_a_cost_above_the_list_price_is_flagged_with_its_line(db_engine: Engine, tmp_path: Path) -> None:
    catalog = CATALOG + "C1,Loss leader,kitchen,Bosch,50.00,40.00\n"
    summary = import_file(db_engine, "catalog", write(tmp_path, "catalog.csv", catalog))
    assert summary.rows_loaded == 4 and summary.warning_count == 1
    assert summary.warnings == [
        "catalog.csv line 5: cost 50.00 is above the list price 40.00 of SKU C1: every sale loses money"
    ]


def test_strict_refuses_a_file_with_a_row_that_loads_with_a_warning(
    db_engine: Engine, tmp_path: Path
) -> None:
    catalog = CATALOG + "C1,Loss leader,kitchen,Bosch,50.00,40.00\n"
    with pytest.raises(CsvImportError, match=r"line 5: cost 50.00 is above the list price 40.00 .*--strict"):
        import_file(db_engine, "catalog", write(tmp_path, "catalog.csv", catalog), ImportOptions(strict=True))
    with db_engine.connect() as conn:  # nothing of the file was written
        assert conn.execute(text("SELECT COUNT(*) FROM product")).scalar_one() == 0


def test_data_check_says_what_the_data_support_and_what_to_import(db_engine: Engine, tmp_path: Path) -> None:
    factory = make_session_factory(db_engine)
    with factory() as s:
        empty = check_data(s)
    assert empty.status("forecast") == "missing" and "import orders" in (
        empty.capabilities[0].next_step or ""
    )
    import_file(
        db_engine,
        "catalog",
        write(tmp_path, "catalog.csv", "sku,title,category\nA1,Headphones,audio\nB1,Kettle,kitchen\n"),
    )
    import_file(db_engine, "sales", write(tmp_path, "sales.csv", SALES))
    with factory() as s:
        check = check_data(s)
    c = check.counts
    assert (c.products, c.products_with_sales, c.sales_periods, c.period) == (2, 2, 4, "week")
    assert (c.first_day, c.last_day) == (dt.date(2026, 1, 1), dt.date(2026, 1, 14))
    assert c.zero_share == pytest.approx(1 - 3 / 4)  # A1 sold in 2 of its 2 weeks, B1 in 1 of 2
    assert c.promotion_periods == 2 and c.costs_estimated == 2 and c.list_prices_estimated == 2
    assert check.status("forecast") == "limited"  # 14 days of history
    assert check.status("plan") == "missing" and "--assume-stock" in (check.capabilities[3].next_step or "")
    assert check.status("KPIs") == "limited" and check.status("targeting") == "missing"


ORDER_HEADERS = """order_id,purchased_at,buyer,status
o-1,2024-03-01 10:00:00,c-1,delivered
o-2,2024-03-02 11:30:00,c-2,delivered
"""
ORDER_ITEMS = """order_id,item,product_id,quantity,price,status
o-1,1,A1,1,229.99,ok
o-1,2,B1,2,35.00,ok
o-2,1,A2,3,25.50,ok
"""
ITEMS_MAPPING = {
    "sku": "product_id",
    "qty": "quantity",
    "unit_price": "price",
    "ts": "purchased_at",
    "customer_id": "buyer",
}


def test_an_items_export_joined_with_its_order_headers(catalog_engine: Engine, tmp_path: Path) -> None:
    headers = write(tmp_path, "orders.csv", ORDER_HEADERS)
    items = write(tmp_path, "order_items.csv", ORDER_ITEMS)
    options = ImportOptions(mapping=ITEMS_MAPPING, join=((headers, "order_id"),))
    summary = import_file(catalog_engine, "orders", items, options)
    assert summary.rows_loaded == 3
    got = rows(
        catalog_engine,
        select(OrderLine.order_id, OrderLine.sku, OrderLine.qty, OrderLine.unit_price_cents, OrderLine.ts),
    )
    assert sorted(got) == [
        ("o-1", "A1", 1, 22999, dt.datetime(2024, 3, 1, 10, 0)),
        ("o-1", "B1", 2, 3500, dt.datetime(2024, 3, 1, 10, 0)),
        ("o-2", "A2", 3, 2550, dt.datetime(2024, 3, 2, 11, 30)),
    ]


@pytest.mark.parametrize(
    ("headers", "items", "message"),
    [
        (
            ORDER_HEADERS,
            ORDER_ITEMS + "o-9,1,A1,1,229.99,ok\n",
            r"order_items\.csv.* line 5.*'o-9' is not in orders\.csv",
        ),
        (
            ORDER_HEADERS + "o-1,2024-03-05 09:00:00,c-3,delivered\n",
            ORDER_ITEMS,
            r"'o-1' appears on lines 2 and 4",
        ),
        ("id,purchased_at\no-1,2024-03-01\n", ORDER_ITEMS, r"orders\.csv.*no column 'order_id' to join on"),
    ],
    ids=["item without header", "header twice", "no key column"],
)
def test_a_bad_join_is_named_and_nothing_is_written(
    catalog_engine: Engine, tmp_path: Path, headers: str, items: str, message: str
) -> None:
    options = ImportOptions(
        mapping=ITEMS_MAPPING, join=((write(tmp_path, "orders.csv", headers), "order_id"),)
    )
    before = row_counts(catalog_engine)
    with pytest.raises(CsvImportError, match=message):
        import_file(catalog_engine, "orders", write(tmp_path, "order_items.csv", items), options)
    assert row_counts(catalog_engine) == before


def test_non_merchandise_categories_are_imported_as_non_products(db_engine: Engine, tmp_path: Path) -> None:
    catalog = (
        "sku,title,category,department\n"
        "G1,Unleaded,COUPON/MISC ITEMS,FUEL\nG2,Diesel,Gas,fuel\nA1,Kettle,Kitchen,HOME\n"
    )
    options = ImportOptions(non_product_categories=("coupon/misc items", "FUEL"))
    import_file(db_engine, "catalog", write(tmp_path, "products.csv", catalog), options)
    got = dict(rows(db_engine, select(Product.sku, Product.is_product)))
    assert got == {"G1": False, "G2": False, "A1": True}


def test_orders_give_a_catalogue_without_prices_its_most_common_unit_prices(
    db_engine: Engine, tmp_path: Path
) -> None:
    catalog = "sku,title,category,cost\nA1,Headphones,audio,\nB1,Kettle,kitchen,12.00\n"
    import_file(db_engine, "catalog", write(tmp_path, "catalog.csv", catalog))
    orders = (
        "order_id,sku,qty,unit_price,ts\n"
        "o-1,A1,1,229.99,2024-03-01 10:00\no-2,A1,1,199.99,2024-03-02 10:00\n"
        "o-3,A1,2,229.99,2024-03-03 10:00\n"
        "o-4,B1,1,35.00,2024-03-03 11:00\n"
    )
    import_file(db_engine, "orders", write(tmp_path, "orders.csv", orders))
    got = {
        sku: (price, cost, attrs.get("list_price_from"), bool(attrs.get("cost_estimated")))
        for sku, price, cost, attrs in rows(
            db_engine, select(Product.sku, Product.list_price_cents, Product.cost_cents, Product.attributes)
        )
    }
    assert got == {
        "A1": (22999, round(22999 * 0.6), "most common unit price of the orders", True),
        "B1": (3500, 1200, "most common unit price of the orders", False),  # its imported cost is kept
    }


def test_a_shop_whose_weekly_sales_end_in_the_past_lives_the_day_after_them(
    catalog_engine: Engine, tmp_path: Path
) -> None:
    import_file(catalog_engine, "sales", write(tmp_path, "sales.csv", SALES))
    clock = shop_clock(make_session_factory(catalog_engine))
    assert clock().date() == dt.date(2026, 1, 15)  # the last week ends on 2026-01-14
    assert next_sale_date(clock) == dt.date(2026, 1, 16)
