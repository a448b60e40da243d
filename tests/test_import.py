"""CSV import: every kind loads on SQLite and PostgreSQL, UCI "Online Retail" files load with their quirks,
and every class of bad input stops the import with an error naming file, line, column and value while leaving
the database exactly as it was."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from cli import app
from db.engine import make_engine
from db.errors import CsvImportError
from db.importers import (
    KINDS,
    ImportOptions,
    ImportSummary,
    fields_of,
    import_file,
    load_mapping_file,
    parse_map_options,
)
from db.migrate import upgrade
from db.models import Base, ImportBatch, MarketNews, Order, OrderLine, Product, Review

CATALOG = """sku,title,category,brand,cost,list_price
A1,Noise-cancelling headphones,audio,Sony,120.00,249.99
A2,"Speaker, small",audio,JBL,10,25.5
B1,Kettle,kitchen,Bosch,15.10,39.90
"""

ORDERS = """order_id,customer_id,sku,description,qty,unit_price,ts,country
o-1,c-1,A1,Headphones,1,229.99,2024-03-01 10:00:00,DE
o-1,c-1,B1,Kettle,2,35.00,2024-03-01 10:00:00,DE
o-2,,A2,Speaker,3,25.50,2024-03-02T11:30:00,FR
o-3,c-2,A1,Headphones,1,249.99,2024-03-03 09:15,DE
"""

# UCI "Online Retail" shape, saved as latin-1: cancellations (C...), a missing CustomerID, customer ids
# written as floats, non-product codes (POST, M, B bad-debt adjustment with a negative price), a zero-priced
# line, a stock adjustment (negative quantity outside a cancellation), the same stock code twice in one
# invoice and month/day/year dates.
UCI = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,12/1/2010 8:26,2.55,17850.0,United Kingdom
536366,85123A,WHITE HANGING HEART T-LIGHT HOLDER,4,12/1/2010 8:28,2.95,13047,United Kingdom
536367,22960,JAM MAKING SET WITH JARS,3,12/1/2010 8:34,4.25,,France
536367,POST,POSTAGE,1,12/1/2010 8:34,18.00,,France
536368,22961,CAFÉ CRÈME JAR,12,12/1/2010 8:40,1.45,12583,France
C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,12/1/2010 9:41,2.55,17850.0,United Kingdom
C536380,M,Manual,-1,12/1/2010 9:45,27.50,14527,United Kingdom
536381,22139,RETROSPOT TEA SET,-5,12/1/2010 9:50,0,,United Kingdom
536382,22139,RETROSPOT TEA SET,1,12/1/2010 9:55,0,13047,United Kingdom
A563185,B,Adjust bad debt,1,8/12/2011 14:50,-11062.06,,United Kingdom
"""


def write(directory: Path, name: str, content: str, encoding: str = "utf-8") -> Path:
    path = directory / name
    path.write_bytes(content.encode(encoding))
    return path


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in Base.metadata.tables.items()
        }


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rows(engine: Engine, statement: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(statement))


@pytest.fixture
def catalog_engine(db_engine: Engine, tmp_path: Path) -> Engine:
    import_file(db_engine, "catalog", write(tmp_path, "catalog.csv", CATALOG))
    return db_engine


# ---- happy paths ----------------------------------------------------------------------------------------


def test_every_kind_loads(db_engine: Engine, tmp_path: Path) -> None:
    summary = import_file(db_engine, "catalog", write(tmp_path, "catalog.csv", CATALOG))
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (3, 3, 0)
    a2 = rows(db_engine, select(Product).where(Product.sku == "A2"))[0]
    assert (a2.title, a2.cost_cents, a2.list_price_cents, a2.brand, a2.is_product) == (
        "Speaker, small",
        1000,
        2550,
        "JBL",
        True,
    )

    inventory = "sku,on_hand,reserved,as_of\nA1,40,2,2024-03-01\nA2,0,,2024-03-01\nA1,38,0,2024-03-02\n"
    summary = import_file(db_engine, "inventory", write(tmp_path, "inventory.csv", inventory))
    assert summary.rows_loaded == 3
    assert scalar(db_engine, "SELECT SUM(on_hand) FROM inventory") == 78
    assert scalar(db_engine, "SELECT reserved FROM inventory WHERE sku = 'A2'") == 0

    summary = import_file(db_engine, "orders", write(tmp_path, "orders.csv", ORDERS))
    assert summary.rows_loaded == 4
    assert summary.created == {"customers": 2, "orders": 3}
    lines = rows(db_engine, select(OrderLine).order_by(OrderLine.id))
    assert [(line.order_id, line.sku, line.qty, line.unit_price_cents) for line in lines] == [
        ("o-1", "A1", 1, 22999),
        ("o-1", "B1", 2, 3500),
        ("o-2", "A2", 3, 2550),
        ("o-3", "A1", 1, 24999),
    ]
    # Lines carry their order's timestamp and customer.
    assert lines[2].ts == dt.datetime(2024, 3, 2, 11, 30) and lines[2].customer_id is None
    assert lines[3].ts == dt.datetime(2024, 3, 3, 9, 15) and lines[3].customer_id == "c-2"
    orders = {o.id: o for o in rows(db_engine, select(Order))}
    assert orders["o-1"].country == "DE" and not orders["o-1"].is_cancellation

    reviews = 'sku,rating,text,ts\nA1,5,"Great, quiet",2024-03-05\nB1,2,Leaks,2024-03-06 08:00\n'
    assert import_file(db_engine, "reviews", write(tmp_path, "reviews.csv", reviews)).rows_loaded == 2
    assert scalar(db_engine, "SELECT text FROM review WHERE sku = 'A1'") == "Great, quiet"

    news = (
        "title,body,published_at,url\n"
        '"Headphone tariff","Import duties on audio ""gear"" rise\nfrom May",2024-04-01T08:00:00Z,'
        "https://example.org/t\n"
        "Heatwave,,2024-06-01,\n"
    )
    summary = import_file(db_engine, "news", write(tmp_path, "news.csv", news))
    assert summary.rows_loaded == 2
    first = rows(db_engine, select(MarketNews).order_by(MarketNews.id))[0]
    assert first.body == 'Import duties on audio "gear" rise\nfrom May'
    assert first.source == "news.csv" and first.published_at == dt.datetime(2024, 4, 1, 8, 0)

    prices = "sku,competitor,price,seen_at\nA1,MegaStore,239.00,2024-03-01\nA1,ShopCo,244.50,2024-03-01\n"
    summary = import_file(db_engine, "competitor-prices", write(tmp_path, "competitors.csv", prices))
    assert summary.rows_loaded == 2
    assert scalar(db_engine, "SELECT SUM(price_cents) FROM competitor_price") == 23900 + 24450

    batches = rows(db_engine, select(ImportBatch.kind, ImportBatch.rows_loaded).order_by(ImportBatch.id))
    assert [tuple(b) for b in batches] == [
        ("catalog", 3),
        ("inventory", 3),
        ("orders", 4),
        ("reviews", 2),
        ("news", 2),
        ("competitor-prices", 2),
    ]


def test_uci_online_retail_file_with_its_quirks(db_engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "Online Retail.csv", UCI, encoding="latin-1")
    options = ImportOptions(preset="uci", create_products=True, encoding="latin-1", default_margin=0.4)
    summary = import_file(db_engine, "orders", path, options)

    # The zero-priced line and the stock adjustment (negative quantity outside a cancellation) are skipped
    # by the preset and counted; everything else loads.
    assert summary.rows_read == 12
    assert summary.skipped == {
        "zero unit prices": 1,
        "negative quantities outside cancellations (stock adjustments)": 1,
    }
    assert summary.rows_loaded == 10
    orders = {o.id: o for o in rows(db_engine, select(Order))}
    assert orders["C536379"].is_cancellation and orders["C536380"].is_cancellation
    assert not orders["536365"].is_cancellation
    assert orders["536367"].customer_id is None  # missing CustomerID
    assert orders["536365"].customer_id == "17850"  # "17850.0" normalised
    assert orders["536365"].ts == dt.datetime(2010, 12, 1, 8, 26)
    assert orders["A563185"].ts == dt.datetime(2011, 8, 12, 14, 50)
    cancelled = rows(db_engine, select(OrderLine.qty).where(OrderLine.order_id == "C536379"))
    assert [r.qty for r in cancelled] == [-2]
    # The same stock code twice in one invoice is two lines, not a duplicate.
    assert scalar(db_engine, "SELECT COUNT(*) FROM order_line WHERE order_id = '536365'") == 3

    products = {p.sku: p for p in rows(db_engine, select(Product))}
    assert {sku for sku, p in products.items() if not p.is_product} == {"POST", "M", "B"}
    assert products["22961"].title == "CAFÉ CRÈME JAR"  # latin-1 decoded
    heart = products["85123A"]
    assert heart.list_price_cents == 255  # the most common positive unit price (2.55 twice, 2.95 once)
    assert heart.cost_cents == 153  # 60 % of the list price at a 40 % margin
    assert heart.attributes["cost_estimated"] is True
    assert (heart.category, heart.brand) == ("uncategorised", "unknown")
    bad_debt = rows(db_engine, select(OrderLine.unit_price_cents).where(OrderLine.sku == "B"))
    assert [r.unit_price_cents for r in bad_debt] == [-1106206]
    assert scalar(db_engine, "SELECT COUNT(*) FROM customer") == 4


def test_uci_non_product_codes_can_be_skipped_and_uci2_columns(sqlite_engine: Engine, tmp_path: Path) -> None:
    uci2 = (
        UCI.replace("InvoiceNo", "Invoice").replace("UnitPrice", "Price").replace("CustomerID", "Customer ID")
    )
    path = write(tmp_path, "online_retail_II.csv", uci2, encoding="latin-1")
    options = ImportOptions(preset="uci2", create_products=True, encoding="latin-1", skip_non_products=True)
    summary = import_file(sqlite_engine, "orders", path, options)
    assert summary.skipped["non-product codes (postage, fees, adjustments)"] == 3
    assert summary.rows_loaded == 7
    assert scalar(sqlite_engine, "SELECT COUNT(*) FROM product WHERE NOT is_product") == 0


def test_columns_are_mapped_by_option_and_by_mapping_file(sqlite_engine: Engine, tmp_path: Path) -> None:
    catalog = "Code;Name;Dept;Maker;Buy;Sell\nX1;Lamp;home;Ikea;5,00;12\n".replace("5,00", "5.00")
    path = write(tmp_path, "products.csv", catalog)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[catalog]\nsku = "Code"\ntitle = "Name"\ncategory = "Dept"\nbrand = "Maker"\n')

    columns = load_mapping_file(mapping, "catalog") | parse_map_options(["cost=Buy", "list_price=Sell"])
    import_file(sqlite_engine, "catalog", path, ImportOptions(delimiter=";", mapping=columns))
    lamp = rows(sqlite_engine, select(Product))[0]
    assert (lamp.sku, lamp.title, lamp.category, lamp.brand, lamp.cost_cents, lamp.list_price_cents) == (
        "X1",
        "Lamp",
        "home",
        "Ikea",
        500,
        1200,
    )


def test_day_first_dates_with_date_format(catalog_engine: Engine, tmp_path: Path) -> None:
    orders = "order_id,sku,qty,unit_price,ts\nq1,A1,1,10,05/03/2024 17:45\n"
    options = ImportOptions(date_formats=("%d/%m/%Y %H:%M",))
    import_file(catalog_engine, "orders", write(tmp_path, "orders.csv", orders), options)
    assert rows(catalog_engine, select(Order.ts))[0].ts == dt.datetime(2024, 3, 5, 17, 45)


# ---- bad input: one error naming file, line, column and value; nothing written --------------------------


class Bad(NamedTuple):
    kind: str
    content: str
    options: ImportOptions
    line: int
    column: str | None
    value: str | None
    phrases: list[str]


BAD_INPUT = [
    pytest.param(
        Bad(
            "orders",
            "order_id,sku,amount,unit_price,ts\n",
            ImportOptions(),
            1,
            None,
            None,
            ["missing required column(s) for orders: qty", 'The header has: "order_id", "sku"'],
        ),
        id="missing-column",
    ),
    pytest.param(
        Bad(
            "orders",
            ORDERS.replace("o-3,c-2,A1,Headphones,1,", "o-3,c-2,A1,Headphones,abc,"),
            ImportOptions(),
            5,
            "qty",
            "abc",
            ['"abc" is not an integer'],
        ),
        id="bad-number",
    ),
    pytest.param(
        Bad(
            "orders",
            ORDERS.replace("2024-03-03 09:15", "2024-13-03 09:15"),
            ImportOptions(),
            5,
            "ts",
            "2024-13-03 09:15",
            ["is not a date/time in the expected format", "--date-format"],
        ),
        id="bad-date",
    ),
    pytest.param(
        Bad(
            "orders",
            ORDERS.replace("o-3,c-2,A1", "o-3,c-2,ZZ9"),
            ImportOptions(),
            5,
            "sku",
            "ZZ9",
            ["is not a SKU of the catalog", "--create-products"],
        ),
        id="unknown-sku",
    ),
    pytest.param(
        Bad(
            "inventory",
            "sku,on_hand,as_of\nA1,4,2024-03-01\nA2,5,2024-03-01\nB1,6,2024-03-01\nZZ9,1,2024-03-01\n",
            ImportOptions(),
            5,
            "sku",
            "ZZ9",
            ["is not a SKU of the catalog"],
        ),
        id="unknown-sku-inventory",
    ),
    pytest.param(
        Bad(
            "catalog",
            "sku,title,category,cost,list_price\nN1,a,x,1,2\nN2,b,x,1,2\nN3,c,x,1,2\nN2,d,x,1,2\n",
            ImportOptions(),
            5,
            "sku",
            "N2",
            ["duplicate SKU", "already on line 3"],
        ),
        id="duplicate-in-file",
    ),
    pytest.param(
        Bad(
            "catalog",
            "sku,title,category,cost,list_price\nN1,a,x,1,2\nN2,b,x,1,2\nN3,c,x,1,2\nB1,d,x,1,2\n",
            ImportOptions(),
            5,
            "sku",
            "B1",
            ["already in the catalog"],
        ),
        id="duplicate-in-database",
    ),
    pytest.param(
        Bad(
            "competitor-prices",
            "sku,competitor,price,seen_at\nA1,M,1,2024-01-01\nA2,M,1,2024-01-01\nB1,M,1,2024-01-01\n"
            "A1,M,2,2024-01-01 00:00\n",
            ImportOptions(),
            5,
            "sku",
            "A1",
            ["competitor M, seen_at 2024-01-01 00:00:00 is a duplicate", "already on line 2"],
        ),
        id="duplicate-competitor-key",
    ),
    pytest.param(
        Bad(
            "orders",
            ORDERS.replace("o-3,c-2,A1,Headphones,1", "o-3,c-2,A1,Caf\xe9,1"),
            ImportOptions(),
            5,
            "description",
            "Caf\\xe9",
            ["is not valid utf-8 text", "--encoding latin-1"],
        ),
        id="wrong-encoding",
    ),
    pytest.param(
        Bad(
            "orders",
            ORDERS.replace("229.99", "-229.99"),
            ImportOptions(),
            2,
            "unit_price",
            "-229.99",
            ["negative price"],
        ),
        id="negative-price-order",
    ),
    pytest.param(
        Bad(
            "catalog",
            "sku,title,category,cost,list_price\nN1,a,x,1,2\nN2,b,x,1,2\nN3,c,x,1,-2\n",
            ImportOptions(),
            4,
            "list_price",
            "-2",
            ["is negative; expected more than 0"],
        ),
        id="negative-price-catalog",
    ),
    pytest.param(
        Bad(
            "orders",
            ORDERS.replace("o-3,c-2,A1,Headphones,1,249.99,2024-03-03 09:15,DE", "o-3,c-2,A1,1,249.99"),
            ImportOptions(),
            5,
            None,
            None,
            ["has 5 fields but the header has 8"],
        ),
        id="wrong-field-count",
    ),
]


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_reported_and_nothing_is_written(
    catalog_engine: Engine, tmp_path: Path, case: Bad
) -> None:
    kind, content, options, line, column, value, phrases = case
    encoding = "latin-1" if "\xe9" in content else "utf-8"
    path = write(tmp_path, "input.csv", content, encoding=encoding)
    before = row_counts(catalog_engine)
    # Batches of two rows: earlier rows were already written when the bad one is found.
    options = dataclasses.replace(options, batch_size=2)
    with pytest.raises(CsvImportError) as caught:
        import_file(catalog_engine, kind, path, options)
    error = caught.value
    message = str(error)
    assert message.startswith("input.csv line ")
    assert error.file == "input.csv"
    if line is not None:
        assert error.line == line and f"input.csv line {line}" in message
    if column is not None:
        assert error.column == column and f'column "{column}"' in message
    if value is not None:
        assert error.value == value and f'"{value}"' in message
    for phrase in phrases:
        assert phrase in message
    assert row_counts(catalog_engine) == before


def test_reimporting_orders_is_a_duplicate_key_and_changes_nothing(
    catalog_engine: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, "orders.csv", ORDERS)
    import_file(catalog_engine, "orders", path)
    before = row_counts(catalog_engine)
    with pytest.raises(CsvImportError, match=r'orders.csv line 2, column "order_id": "o-1" is an order id'):
        import_file(catalog_engine, "orders", path)
    assert row_counts(catalog_engine) == before


def test_inventory_key_already_in_database(catalog_engine: Engine, tmp_path: Path) -> None:
    import_file(
        catalog_engine, "inventory", write(tmp_path, "inv1.csv", "sku,on_hand,as_of\nA1,4,2024-03-01\n")
    )
    before = row_counts(catalog_engine)
    again = "sku,on_hand,as_of\nA2,4,2024-03-01\nA1,7,2024-03-01 00:00:00\n"
    with pytest.raises(CsvImportError) as caught:
        import_file(catalog_engine, "inventory", write(tmp_path, "inv2.csv", again))
    assert str(caught.value) == (
        'inv2.csv line 3, column "sku": "A1" with as_of 2024-03-01 00:00:00 is already in the database'
    )
    assert row_counts(catalog_engine) == before


def test_cancellation_rules(catalog_engine: Engine, tmp_path: Path) -> None:
    positive = "order_id,sku,qty,unit_price,ts\nC1,A1,2,10,2024-01-01\n"
    with pytest.raises(CsvImportError, match="expected a negative quantity"):
        import_file(
            catalog_engine,
            "orders",
            write(tmp_path, "a.csv", positive),
            ImportOptions(cancellation_prefix="C"),
        )
    negative = "order_id,sku,qty,unit_price,ts\nR1,A1,-2,10,2024-01-01\n"
    with pytest.raises(CsvImportError, match=r"negative outside a cancellation.*--negative-qty"):
        import_file(catalog_engine, "orders", write(tmp_path, "b.csv", negative))
    summary = import_file(
        catalog_engine, "orders", write(tmp_path, "b.csv", negative), ImportOptions(negative_qty="keep")
    )
    assert summary.rows_loaded == 1


def test_skip_bad_rows_writes_rejects_and_loads_the_rest(catalog_engine: Engine, tmp_path: Path) -> None:
    content = (
        "order_id,customer_id,sku,description,qty,unit_price,ts,country\n"
        "o-1,c-1,A1,Headphones,1,229.99,2024-03-01 10:00:00,DE\n"
        "o-2,c-1,A1,Headphones,many,229.99,2024-03-01 10:00:00,DE\n"
        "o-3,c-1,NOPE,Unknown,1,1.00,2024-03-01 10:00:00,DE\n"
        "o-4,c-3,B1,Kettle,1,35.00,yesterday,DE\n"
        "o-5,c-3,B1,Kettle,1,35.00,2024-03-04,DE\n"
    )
    path = write(tmp_path, "orders.csv", content)
    summary = import_file(catalog_engine, "orders", path, ImportOptions(skip_bad_rows=True, batch_size=2))
    assert isinstance(summary, ImportSummary)
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (5, 2, 3)
    assert summary.rejects_path == tmp_path / "orders.rejects.csv"
    with summary.rejects_path.open(encoding="utf-8", newline="") as fh:
        rejects = list(csv.reader(fh))
    assert rejects[0] == [*content.splitlines()[0].split(","), "error"]
    assert len(rejects) == 4
    assert rejects[1][:5] == ["o-2", "c-1", "A1", "Headphones", "many"]
    assert rejects[1][-1] == 'orders.csv line 3, column "qty": "many" is not an integer'
    assert rejects[2][-1].startswith('orders.csv line 4, column "sku": "NOPE" is not a SKU of the catalog')
    assert rejects[3][-1].startswith('orders.csv line 5, column "ts": "yesterday" is not a date/time')
    assert sorted(r.id for r in rows(catalog_engine, select(Order.id))) == ["o-1", "o-5"]
    assert scalar(catalog_engine, "SELECT rows_rejected FROM import_batch WHERE kind = 'orders'") == 3


def test_skip_bad_rows_keeps_no_rejects_file_when_the_import_fails(
    catalog_engine: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, "orders.csv", "order_id,sku\nx,A1\n")
    with pytest.raises(CsvImportError, match="missing required column"):
        import_file(catalog_engine, "orders", path, ImportOptions(skip_bad_rows=True))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("orders.rejects")]


# ---- command line ---------------------------------------------------------------------------------------


def test_cli_imports_and_reports_errors_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    db_path = tmp_path / "cli.db"
    monkeypatch.setenv("FLASHSALE_DB_PATH", str(db_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    runner = CliRunner()
    path = write(tmp_path, "Online Retail.csv", UCI, encoding="latin-1")
    result = runner.invoke(app, ["import", "orders", str(path), "--preset", "uci", "--create-products"])
    assert result.exit_code == 1
    assert "line 8" in result.output and "--encoding latin-1" in result.output
    assert "Traceback" not in result.output
    assert row_counts(engine)["order_line"] == 0

    args = ["import", "orders", str(path), "--preset", "uci", "--create-products", "--encoding", "latin-1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Imported 10 order lines" in result.output
    assert "skipped: 1 rows with zero unit prices" in result.output
    assert scalar(engine, "SELECT COUNT(*) FROM orders WHERE is_cancellation") == 2
    engine.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_cli_help_names_every_field(kind: Any) -> None:

    result = CliRunner().invoke(app, ["import", kind, "--help"], terminal_width=400)
    assert result.exit_code == 0
    for name in fields_of(kind):
        assert name in result.output, f"`import {kind} --help` does not mention the field {name}"


def test_mapping_mistakes_are_reported(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "catalog.csv", CATALOG)
    with pytest.raises(CsvImportError, match=r"unknown field\(s\) skew .* catalog fields are: sku, title"):
        import_file(sqlite_engine, "catalog", path, ImportOptions(mapping={"skew": "Code"}))
    with pytest.raises(
        CsvImportError, match=r'line 1: missing required column\(s\) for catalog: sku \(column "Code"\)'
    ):
        import_file(sqlite_engine, "catalog", path, ImportOptions(mapping={"sku": "Code"}))
    bad_toml = tmp_path / "mapping.toml"
    bad_toml.write_text("[catalog]\nsku = 3\n")

    with pytest.raises(CsvImportError, match=r"\[catalog\] must map field names to column names"):
        load_mapping_file(bad_toml, "catalog")
    assert row_counts(sqlite_engine)["product"] == 0


def test_the_first_bad_row_is_the_one_reported(catalog_engine: Engine, tmp_path: Path) -> None:
    content = ORDERS.replace("o-2,,A2", "o-2,,NOPE").replace("o-3,c-2,A1,Headphones,1,", "o-3,c-2,A1,x,abc,")
    with pytest.raises(CsvImportError, match=r'orders.csv line 4, column "sku": "NOPE"'):
        import_file(catalog_engine, "orders", write(tmp_path, "orders.csv", content))


def test_reimporting_reviews_and_news_skips_what_is_already_there_and_says_so(
    catalog_engine: Engine, tmp_path: Path
) -> None:
    """Reviews and news carry no id of their own: the same file imported twice must not double every row.
    Each row's key is its content (a review: SKU, customer, rating, text, time; a news item: source, title,
    time, link); a row already in the database, or twice in one file, is skipped and counted, on both
    databases. A review that differs only in its text is another review."""
    reviews = (
        'sku,rating,text,ts,customer_id\nA1,5,"Great, quiet",2024-03-05,c-1\nB1,2,Leaks,2024-03-06 08:00,\n'
        "B1,2,Leaks,2024-03-06 08:00,\n"  # twice in the file
    )
    path = write(tmp_path, "reviews.csv", reviews)
    first = import_file(catalog_engine, "reviews", path)
    assert (first.rows_loaded, first.rows_skipped) == (2, 1)
    assert list(first.skipped.values()) == [1] and "twice in the file" in next(iter(first.skipped))
    again = import_file(catalog_engine, "reviews", path)
    assert (again.rows_loaded, again.rows_skipped) == (0, 3)
    assert any("already in the database" in reason for reason in again.skipped)
    assert scalar(catalog_engine, "SELECT COUNT(*) FROM review") == 2
    changed = write(tmp_path, "reviews2.csv", 'sku,rating,text,ts\nB1,2,"Leaks, badly",2024-03-06 08:00\n')
    assert import_file(catalog_engine, "reviews", changed).rows_loaded == 1

    news = "title,body,published_at,source,url\nHeatwave,Hot,2024-06-01,wire,\nTariffs,Up,2024-06-02,wire,\n"
    path = write(tmp_path, "news.csv", news)
    assert import_file(catalog_engine, "news", path).rows_loaded == 2
    again = import_file(catalog_engine, "news", path)
    assert (again.rows_loaded, again.rows_skipped) == (0, 2)
    assert scalar(catalog_engine, "SELECT COUNT(*) FROM market_news") == 2


def test_the_demo_shops_reviews_exported_and_imported_again_are_all_known(
    demo_shop_copy: Any, tmp_path: Path
) -> None:
    with demo_shop_copy.session_factory() as s:
        sample = s.scalars(select(Review).order_by(Review.id).limit(40)).all()
        lines = ["sku,rating,text,ts,customer_id"] + [
            f'{r.sku},{r.rating},"{r.text}",{r.ts:%Y-%m-%d %H:%M:%S},{r.customer_id or ""}' for r in sample
        ]
    summary = import_file(
        demo_shop_copy.engine, "reviews", write(tmp_path, "export.csv", "\n".join(lines) + "\n")
    )
    assert (summary.rows_loaded, summary.rows_skipped) == (0, 40)
