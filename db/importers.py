"""Load a shop's own data from the files it exports: catalog, inventory, orders, reviews, news, competitor
prices, aggregated sales and the promotion calendar.

One import is one transaction: ``import_file(engine, kind, path, options)`` opens it, and any error rolls back
everything, so a failed import leaves the database as it was. Files are CSV (also ``.csv.gz``), Excel
(``.xlsx``) or Parquet, chosen by extension and read row by row (:mod:`db.import_sources`: a CSV file as a
stream of physical lines decoded one by one, so a bad byte is reported with its line), validated row by row
with the pydantic models of ``db.import_rows`` and written in batches with ``db.bulk.bulk_insert``.

Columns are found by name: each field accepts a few usual spellings (matched ignoring case, spaces and
underscores), a preset names them for a known file shape (``uci``, ``uci2``: the UCI "Online Retail" and
"Online Retail II" transaction logs), and ``ImportOptions.mapping`` (``--map field=Column`` on the command
line, or a TOML mapping file with one table per kind) overrides both.

A bad row stops the import with a ``CsvImportError`` naming the file, the physical line (the header is
line 1), the column, the value and what was expected. With ``skip_bad_rows`` the bad rows are written to a
rejects file (the original cells plus an ``error`` column) and the rest is loaded.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, Table, bindparam, insert, inspect, literal, select, update

from db.bulk import bulk_insert
from db.content_keys import news_key, review_key
from db.errors import CsvImportError, DatabaseNotReady
from db.files import replace_into, temporary_beside
from db.import_join import open_joined
from db.import_rows import (
    ISO,
    CatalogRow,
    CompetitorPriceRow,
    InventoryRow,
    NewsRow,
    OrderLineRow,
    PromotionRow,
    ReviewRow,
    SalesRow,
    error_phrase,
)
from db.migrate import upgrade
from db.models import (
    CompetitorPrice,
    Customer,
    ImportBatch,
    Inventory,
    MarketNews,
    Order,
    OrderLine,
    Product,
    Promotion,
    Review,
    SalesPeriod,
)
from db.sqlvalues import utc_now

__all__ = [
    "KINDS",
    "NON_PRODUCT_CODES_UCI",
    "PRESETS",
    "CsvImportError",
    "ImportKind",
    "ImportOptions",
    "ImportSummary",
    "Policy",
    "Preset",
    "RejectsFile",
    "default_rejects_path",
    "fields_of",
    "import_file",
    "import_file_on",
    "load_mapping_file",
    "parse_map_options",
]

ImportKind = Literal[
    "catalog", "inventory", "orders", "reviews", "news", "competitor-prices", "sales", "promotions"
]
MAX_WARNINGS = 20
KINDS: tuple[ImportKind, ...] = get_args(ImportKind)
Policy = Literal["keep", "skip", "error"]
ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_read, rows_read)`` after each batch."""

# Stock codes of the UCI "Online Retail" files that are not merchandise: postage, discounts, manual
# corrections, bank charges, marketplace fees, charity, samples, bad-debt adjustments, tests. Gift vouchers
# ("gift_0001_10", ...) are matched by their prefix.
NON_PRODUCT_CODES_UCI: frozenset[str] = frozenset(
    {
        "POST", "D", "M", "DOT", "BANK CHARGES", "AMAZONFEE", "CRUK", "C2", "PADS", "S", "B",
        "ADJUST", "ADJUST2", "TEST001", "TEST002", "GIFT",
    }
)  # fmt: skip
NON_PRODUCT_PREFIXES_UCI: tuple[str, ...] = ("GIFT_",)


@dataclass(frozen=True)
class Preset:
    """Column names and defaults of a well-known file shape (orders only)."""

    name: str
    description: str
    columns: Mapping[str, str]
    date_formats: tuple[str, ...]
    cancellation_prefix: str | None
    non_product_codes: frozenset[str]
    non_product_prefixes: tuple[str, ...]
    zero_price: Policy
    negative_qty: Policy


_UCI_DATES = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", ISO)
PRESETS: dict[str, Preset] = {
    "uci": Preset(
        name="uci",
        description='UCI "Online Retail" (InvoiceNo, StockCode, Description, Quantity, InvoiceDate, '
        "UnitPrice, CustomerID, Country)",
        columns={
            "order_id": "InvoiceNo",
            "sku": "StockCode",
            "description": "Description",
            "qty": "Quantity",
            "ts": "InvoiceDate",
            "unit_price": "UnitPrice",
            "customer_id": "CustomerID",
            "country": "Country",
        },
        date_formats=_UCI_DATES,
        cancellation_prefix="C",
        non_product_codes=NON_PRODUCT_CODES_UCI,
        non_product_prefixes=NON_PRODUCT_PREFIXES_UCI,
        zero_price="skip",
        negative_qty="skip",
    ),
    "uci2": Preset(
        name="uci2",
        description='UCI "Online Retail II" (Invoice, StockCode, Description, Quantity, InvoiceDate, Price, '
        '"Customer ID", Country)',
        columns={
            "order_id": "Invoice",
            "sku": "StockCode",
            "description": "Description",
            "qty": "Quantity",
            "ts": "InvoiceDate",
            "unit_price": "Price",
            "customer_id": "Customer ID",
            "country": "Country",
        },
        date_formats=_UCI_DATES,
        cancellation_prefix="C",
        non_product_codes=NON_PRODUCT_CODES_UCI,
        non_product_prefixes=NON_PRODUCT_PREFIXES_UCI,
        zero_price="skip",
        negative_qty="skip",
    ),
}

# Accepted header spellings per field, in order of preference; matched after _normalise().
_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "catalog": {
        "sku": ("sku", "stock_code", "product_id", "item_id", "upc", "upc_id"),
        "title": ("title", "name", "product_name", "description"),
        "category": ("category", "product_category"),
        "brand": ("brand", "manufacturer"),
        "cost": ("cost", "unit_cost", "cost_price"),
        "list_price": ("list_price", "price", "unit_price", "retail_price"),
        "department": ("department", "dept"),
        "sub_category": ("sub_category", "subcategory", "product_type"),
        "is_product": ("is_product",),
        "attributes": ("attributes", "attrs"),
    },
    "inventory": {
        "sku": ("sku", "stock_code", "product_id", "item_id"),
        "on_hand": ("on_hand", "stock", "quantity", "qty", "units"),
        "reserved": ("reserved", "allocated"),
        "as_of": ("as_of", "date", "snapshot_date", "timestamp", "ts"),
    },
    "orders": {
        "order_id": ("order_id", "invoice_no", "invoice", "order"),
        "customer_id": ("customer_id", "customer"),
        "sku": ("sku", "stock_code", "product_id", "item_id"),
        "description": ("description", "title", "product_name"),
        "qty": ("qty", "quantity", "units"),
        "unit_price": ("unit_price", "price"),
        "line_total": ("line_total", "sales_value", "amount", "line_amount"),
        "ts": (
            "ts",
            "timestamp",
            "invoice_date",
            "order_date",
            "date",
            "created_at",
            "transaction_timestamp",
        ),
        "country": ("country",),
    },
    "sales": {
        "sku": ("sku", "stock_code", "product_id", "item_id", "upc", "upc_id"),
        "period_start": ("period_start", "week_start", "week_start_date", "date", "day"),
        "period_end": ("period_end", "week_end", "week_end_date"),
        "units": ("units", "qty", "quantity", "units_sold"),
        "revenue": ("revenue", "sales", "spend", "sales_value", "amount"),
        "unit_price": ("unit_price", "price", "avg_price"),
        "base_price": ("base_price", "regular_price", "list_price"),
        "discounted": ("discounted", "tpr", "tpr_only", "price_reduction"),
        "featured": ("featured", "feature", "ad", "circular", "mailer"),
        "display": ("display", "on_display"),
        "promotion": ("promotion", "promo", "promotion_text"),
        "location": ("location", "store", "store_id", "channel"),
    },
    "promotions": {
        "sku": ("sku", "stock_code", "product_id", "item_id", "upc", "upc_id"),
        "category": ("category", "product_category"),
        "location": ("location", "store", "store_id", "channel"),
        "start": ("start", "start_date", "from", "valid_from"),
        "end": ("end", "end_date", "to", "valid_to"),
        "week": ("week", "week_no", "week_number"),
        "sale_price": ("sale_price", "promo_price", "price"),
        "discount": ("discount", "discount_pct", "percent_off"),
        "kind": ("kind", "type", "promotion_type", "mechanic"),
        "display": ("display", "display_location"),
        "mailer": ("mailer", "mailer_location", "feature"),
    },
    "reviews": {
        "sku": ("sku", "stock_code", "product_id", "item_id"),
        "rating": ("rating", "stars", "score"),
        "text": ("text", "review", "review_text", "body", "comment"),
        "ts": ("ts", "timestamp", "date", "created_at", "review_date"),
        "customer_id": ("customer_id", "customer", "reviewer_id"),
    },
    "news": {
        "title": ("title", "headline"),
        "body": ("body", "text", "content", "summary"),
        "published_at": ("published_at", "published", "date", "timestamp", "ts"),
        "source": ("source", "publisher"),
        "url": ("url", "link"),
    },
    "competitor-prices": {
        "sku": ("sku", "stock_code", "product_id", "item_id"),
        "competitor": ("competitor", "retailer", "shop", "store"),
        "price": ("price", "competitor_price", "unit_price"),
        "seen_at": ("seen_at", "date", "timestamp", "ts", "observed_at"),
    },
}

_MODELS: dict[str, type[BaseModel]] = {
    "sales": SalesRow,
    "promotions": PromotionRow,
    "catalog": CatalogRow,
    "inventory": InventoryRow,
    "orders": OrderLineRow,
    "reviews": ReviewRow,
    "news": NewsRow,
    "competitor-prices": CompetitorPriceRow,
}


def fields_of(kind: ImportKind) -> dict[str, bool]:
    """The fields of ``kind`` and whether each is required: what ``--map field=Column`` can name."""
    model = _MODELS[kind]
    return {name: info.is_required() for name, info in model.model_fields.items()}


@dataclass(frozen=True)
class ImportOptions:
    """How to read one file. ``None`` means "the preset's default, else the generic default"."""

    encoding: str = "utf-8"
    delimiter: str = ","
    sheet: str | None = None
    """The worksheet of an Excel file; default: the first."""
    join: tuple[tuple[Path, str], ...] = ()
    """Files whose columns complete each row, by a key column both have (see :mod:`db.import_join`)."""
    mapping: Mapping[str, str] = field(default_factory=dict)
    """field name -> CSV column name; overrides the preset and the usual spellings."""
    preset: str | None = None
    date_formats: tuple[str, ...] = ()
    """strptime formats tried in order; "iso" means ISO 8601. Default: the preset's, else ISO 8601."""
    skip_bad_rows: bool = False
    rejects_path: Path | None = None
    """Where rejected rows go with ``skip_bad_rows``; default ``<name>.rejects.csv`` next to the input."""
    batch_size: int = 10_000
    strict: bool = False
    """Refuse the file at the first row that would load with a warning."""
    # orders only
    create_products: bool = False
    default_margin: float = 0.4
    """Gross margin of estimated costs (catalog rows without a cost, products created from orders/sales)."""
    non_product_categories: tuple[str, ...] = ()
    """catalog: categories or departments (any case) whose items are imported with ``is_product = false``."""
    cancellation_prefix: str | None = None
    zero_price: Policy | None = None
    negative_qty: Policy | None = None
    non_product_codes: tuple[str, ...] = ()
    skip_non_products: bool = False
    # sales only
    period_days: int = 7
    """Length of each sales period: 7 (weekly exports) or 1 (daily)."""
    # promotions only
    week_origin: dt.date | None = None
    """First day of week 1, for promotion calendars that give week numbers instead of dates."""
    # inventory only
    as_of: dt.datetime | None = None
    """Snapshot time of inventory rows without an as_of cell; default: the time of the import (UTC)."""


@dataclass
class ImportSummary:
    """What an import did. ``rows_loaded`` counts rows of the kind's main table (order lines for orders)."""

    kind: str
    source: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rejects_path: Path | None = None
    import_batch_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


def default_rejects_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejects.csv")


def parse_map_options(items: Sequence[str]) -> dict[str, str]:
    """``["sku=StockCode", "qty=Quantity"]`` -> ``{"sku": "StockCode", "qty": "Quantity"}``."""
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise CsvImportError("--map", f'"{item}" is not of the form field=Column (e.g. sku=StockCode)')
        mapping[name.strip()] = column.strip()
    return mapping


def load_mapping_file(path: Path, kind: ImportKind) -> dict[str, str]:
    """Read the ``[kind]`` table of a TOML mapping file (``[orders]`` / ``sku = "StockCode"``)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CsvImportError(str(path), "mapping file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CsvImportError(str(path), f"is not a valid TOML mapping file: {exc}") from None
    section = data.get(kind, data.get(kind.replace("-", "_"), {}))
    if not isinstance(section, dict) or not all(isinstance(v, str) for v in section.values()):
        raise CsvImportError(str(path), f'[{kind}] must map field names to column names, e.g. sku = "Code"')
    return {str(k): v for k, v in section.items()}


def import_file(
    engine: Engine,
    kind: ImportKind,
    path: Path,
    options: ImportOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import one file of ``kind`` (CSV, gzip-compressed CSV, Excel or Parquet, by its extension) in one
    transaction; any error rolls back everything. An empty database gets the schema first."""
    options = options or ImportOptions()
    tables = inspect(engine).get_table_names()
    if not tables:
        upgrade(engine)
    elif ImportBatch.__tablename__ not in tables:
        raise DatabaseNotReady(
            f"the database at {engine.url.render_as_string()} holds other tables but not this project's "
            "schema; point DATABASE_URL at the shop's database, or run `python cli.py db upgrade`"
        )
    rejects = None
    if options.skip_bad_rows:
        rejects = RejectsFile(options.rejects_path or default_rejects_path(path), options.delimiter)
    try:
        with engine.begin() as conn:
            summary = import_file_on(conn, kind, path, options, progress=progress, rejects=rejects)
    except BaseException:
        if rejects is not None:
            rejects.discard()
        raise
    if rejects is not None:
        summary.rejects_path = rejects.commit()
    if kind == "orders" and engine.dialect.name == "postgresql":
        # Outside the transaction: set the visibility map of the new order lines (index-only period scans
        # in the KPI report) and refresh statistics. Pages already all-visible are skipped, so it is cheap.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE orders, order_line")
    return summary


def import_file_on(
    conn: Connection,
    kind: ImportKind,
    path: Path,
    options: ImportOptions,
    *,
    progress: ProgressCallback | None = None,
    rejects: RejectsFile | None = None,
) -> ImportSummary:
    """Import on an open connection inside the caller's transaction (nothing is committed here). With
    ``options.skip_bad_rows`` pass a ``RejectsFile`` and commit or discard it with the transaction."""
    if kind not in _HANDLERS:
        raise CsvImportError(str(path), f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    if options.preset is not None and options.preset not in PRESETS:
        raise CsvImportError(
            str(path), f"unknown preset {options.preset!r}; expected one of {', '.join(PRESETS)}"
        )
    if options.preset is not None and kind != "orders":
        raise CsvImportError(str(path), f"preset {options.preset!r} describes order files, not {kind}")
    if options.batch_size < 1:
        raise CsvImportError(str(path), "batch size must be at least 1")
    if options.skip_bad_rows and rejects is None:
        raise CsvImportError(str(path), "skip_bad_rows needs a rejects file; call import_file()")
    started = time.perf_counter()
    started_at = utc_now()
    preset = PRESETS[options.preset] if options.preset else None
    summary = ImportSummary(kind=kind, source=str(path))
    source = open_joined(
        path, options.join, encoding=options.encoding, delimiter=options.delimiter, sheet=options.sheet
    )
    with source:
        header = source.header()
        columns = _resolve_columns(kind, header, options.mapping, preset, source.label)
        ctx = _Context(conn, kind, source.label, path, options, preset, summary, started_at, columns, header)
        handler = _HANDLERS[kind](ctx)
        pending: list[_Pending] = []
        for line, cells, problem in source.records():
            summary.rows_read += 1
            try:
                if problem is not None:
                    _reject_or_raise(CsvImportError(ctx.label, problem, line=line), header, cells, rejects)
                    continue
                record = _validate(ctx, handler.model, line, cells, rejects)
            except CsvImportError:
                _flush(ctx, handler, pending, rejects)  # so that an earlier row's error is the one reported
                raise
            if record is not None:
                pending.append(_Pending(line, cells, record))
            if len(pending) >= options.batch_size:
                _flush(ctx, handler, pending, rejects)
                pending = []
                if progress is not None:
                    progress(source.bytes_read, summary.rows_read)
        _flush(ctx, handler, pending, rejects)
        handler.finish()
        if progress is not None:
            progress(source.bytes_read, summary.rows_read)
    summary.rows_rejected = rejects.count if rejects is not None else 0
    result = conn.execute(
        insert(_table(ImportBatch)).values(
            kind=kind,
            source=str(path)[:1000],
            rows_loaded=summary.rows_loaded,
            rows_rejected=summary.rows_rejected,
            started_at=started_at,
            finished_at=utc_now(),
        )
    )
    summary.import_batch_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    summary.seconds = time.perf_counter() - started
    return summary


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _resolve_columns(
    kind: ImportKind, header: list[str], mapping: Mapping[str, str], preset: Preset | None, label: str
) -> dict[str, int]:
    """field -> index in the header; reports every missing required column at once."""
    fields = fields_of(kind)
    unknown = [name for name in mapping if name not in fields]
    if unknown:
        raise CsvImportError(
            label,
            f"unknown field(s) {', '.join(unknown)} in the column mapping; {kind} fields are: "
            + ", ".join(fields),
        )
    exact: dict[str, int] = {}
    by_norm: dict[str, int] = {}
    for i, name in enumerate(header):
        exact.setdefault(name, i)
        by_norm.setdefault(_normalise(name), i)
    resolved: dict[str, int] = {}
    missing: list[str] = []
    for name, required in fields.items():
        explicit = mapping.get(name) or (preset.columns.get(name) if preset else None)
        if explicit is not None:
            index = exact.get(explicit, by_norm.get(_normalise(explicit)))
            if index is None:
                if required or name in mapping:
                    missing.append(f'{name} (column "{explicit}")')
                continue
            resolved[name] = index
            continue
        for alias in _ALIASES[kind][name]:
            index = by_norm.get(_normalise(alias))
            if index is not None:
                resolved[name] = index
                break
        else:
            if required:
                missing.append(f"{name} (looked for {', '.join(_ALIASES[kind][name])})")
    if missing:
        raise CsvImportError(
            label,
            f"missing required column(s) for {kind}: {'; '.join(missing)}. The header has: "
            + ", ".join(f'"{h}"' for h in header)
            + ". Name the columns with --map field=Column or --mapping-file.",
            line=1,
        )
    return resolved


# ---- validation and writing ----------------------------------------------------------------------------


class _RowError(Exception):
    """A row-level problem found after validation (unknown SKU, duplicate key, sign rules)."""

    def __init__(self, field_name: str | None, message: str, value: str | None = None) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message
        self.value = value


class _Skip(Exception):
    """The row is dropped on purpose by a policy (counted in ``ImportSummary.skipped``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Pending:
    line: int
    cells: list[str]
    record: Any


class RejectsFile:
    """The rejects CSV of ``skip_bad_rows``: the original cells of each bad row plus an ``error`` column.
    Written to a fresh temporary file beside it (never through a link); ``commit()`` after the transaction
    commits moves it into place (or removes it when nothing was rejected), ``discard()`` after a rollback
    deletes it."""

    def __init__(self, path: Path, delimiter: str = ",") -> None:
        self.path = path
        self.delimiter = delimiter
        self.partial: Path | None = None
        self.count = 0
        self._fh: IO[str] | None = None
        self._writer: Any = None

    def write(self, header: list[str], cells: list[str], error: str) -> None:
        if self._writer is None:
            self._fh, self.partial = temporary_beside(self.path, newline="")
            self._writer = csv.writer(self._fh, delimiter=self.delimiter)
            self._writer.writerow([*header, "error"])
        self._writer.writerow([*cells, error])
        self.count += 1

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def discard(self) -> None:
        self._close()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)

    def commit(self) -> Path | None:
        self._close()
        if self.count == 0 or self.partial is None:
            self.path.unlink(missing_ok=True)
            return None
        return replace_into(self.partial, self.path)


@dataclass
class _Context:
    conn: Connection
    kind: str
    label: str
    path: Path
    options: ImportOptions
    preset: Preset | None
    summary: ImportSummary
    started_at: dt.datetime
    columns: dict[str, int]
    header: list[str]
    validation_context: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        formats = self.options.date_formats or (self.preset.date_formats if self.preset else (ISO,))
        self.validation_context = {"date_formats": tuple(formats), "date_cache": {}}

    def error(self, line: int, field_name: str | None, message: str, value: str | None) -> CsvImportError:
        column = None
        if field_name is not None:
            index = self.columns.get(field_name)
            column = self.header[index] if index is not None else field_name
        return CsvImportError(self.label, message, line=line, column=column, value=value)

    def skip(self, reason: str) -> None:
        self.summary.skipped[reason] = self.summary.skipped.get(reason, 0) + 1

    def warn(self, line: int, message: str) -> None:
        """A row that loads but deserves a look; the first ``MAX_WARNINGS`` are kept, all are counted. Under
        ``strict`` it is an error that refuses the file."""
        if self.options.strict:
            raise CsvImportError(self.label, f"{message} (--strict refuses rows with warnings)", line=line)
        self.summary.warning_count += 1
        if len(self.summary.warnings) < MAX_WARNINGS:
            self.summary.warnings.append(f"{self.label} line {line}: {message}")


def _validate(
    ctx: _Context, model: type[BaseModel], line: int, cells: list[str], rejects: RejectsFile | None
) -> Any:
    data = {}
    for name, index in ctx.columns.items():
        value = cells[index].strip()
        if value:
            data[name] = value
    try:
        return model.model_validate(data, context=ctx.validation_context)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field_name = str(first["loc"][0]) if first["loc"] else None
        raw = data.get(field_name) if field_name is not None else None
        error = ctx.error(line, field_name, error_phrase(first), raw)
    _reject_or_raise(error, ctx.header, cells, rejects)
    return None


def _reject_or_raise(
    error: CsvImportError, header: list[str], cells: list[str], rejects: RejectsFile | None
) -> None:
    if rejects is None:
        raise error
    rejects.write(header, cells, str(error))


def _flush(ctx: _Context, handler: _Handler, pending: list[_Pending], rejects: RejectsFile | None) -> None:
    if pending:
        handler.prefetch(pending)
    for item in pending:
        try:
            handler.accept(item)
        except _Skip as skip:
            ctx.skip(skip.reason)
        except _RowError as exc:
            error = ctx.error(item.line, exc.field_name, exc.message, exc.value)
            _reject_or_raise(error, ctx.header, item.cells, rejects)
    handler.write()


def _chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _has_rows(conn: Connection, model: Any) -> bool:
    return conn.execute(select(literal(1)).select_from(_table(model)).limit(1)).first() is not None


def _known_products(conn: Connection) -> dict[str, bool]:
    table = _table(Product)
    return {sku: bool(flag) for sku, flag in conn.execute(select(table.c.sku, table.c.is_product))}


class _Handler:
    model: ClassVar[type[BaseModel]]

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.conn = ctx.conn

    def prefetch(self, pending: list[_Pending]) -> None:
        """Look up, in a few queries, what the rows of this batch need from the database."""

    def accept(self, item: _Pending) -> None:
        """Check one validated row against the file so far and the database; buffer what it writes."""
        raise NotImplementedError

    def write(self) -> None:
        """Write the buffered rows."""
        raise NotImplementedError

    def finish(self) -> None:
        """Work that needs the whole file (e.g. list prices of products created from order lines)."""

    def _unknown_sku(self, sku: str, hint: str = "import the catalog first") -> _RowError:
        return _RowError("sku", f"is not a SKU of the catalog; {hint}", sku)

    def _insert(self, model: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        written = bulk_insert(self.conn, _table(model), columns, rows)
        rows.clear()
        return written


#: Columns of the ``product`` rows written by the catalog import and by orders with ``create_products``.
PRODUCT_COLUMNS = (
    "sku",
    "title",
    "category",
    "brand",
    "cost_cents",
    "list_price_cents",
    "is_product",
    "attributes",
)


class _CatalogHandler(_Handler):
    model = CatalogRow
    columns = PRODUCT_COLUMNS

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.known = _known_products(self.conn)
        self.seen: dict[str, int] = {}
        self.rows: list[tuple[Any, ...]] = []
        self.non_product = {c.strip().casefold() for c in ctx.options.non_product_categories if c.strip()}

    def accept(self, item: _Pending) -> None:
        row: CatalogRow = item.record
        if row.sku in self.seen:
            raise _RowError("sku", f"is a duplicate SKU: it is already on line {self.seen[row.sku]}", row.sku)
        if row.sku in self.known:
            raise _RowError(
                "sku", "is already in the catalog (the database); each SKU is imported once", row.sku
            )
        self.seen[row.sku] = item.line
        attributes = dict(row.attributes)
        for name in ("department", "sub_category"):
            if getattr(row, name):
                attributes[name] = getattr(row, name)
        list_price, cost = row.list_price or 0, row.cost
        if row.list_price is None:
            attributes["list_price_estimated"] = True  # filled from the sales import (base price)
        if cost is None:
            cost = round(list_price * (1 - self.ctx.options.default_margin))
            attributes["cost_estimated"] = True
            attributes["default_margin"] = self.ctx.options.default_margin
        elif row.list_price is not None and cost > row.list_price:
            self.ctx.warn(
                item.line,
                f"cost {_cents_text(cost)} is above the list price {_cents_text(row.list_price)} of SKU "
                f"{row.sku}: every sale loses money",
            )
        self.rows.append(
            (
                row.sku,
                row.title or row.sku,
                row.category,
                row.brand,
                cost,
                list_price,
                row.is_product and not self._excluded(row),
                attributes,
            )
        )

    def _excluded(self, row: CatalogRow) -> bool:
        names = (row.category, row.department, row.sub_category)
        return any(name is not None and name.casefold() in self.non_product for name in names)

    def write(self) -> None:
        self.ctx.summary.rows_loaded += self._insert(Product, self.columns, self.rows)


class _KeyedHandler(_Handler):
    """Rows keyed by (sku, ..., timestamp) that must be unique in the file and in the database."""

    key_fields: ClassVar[tuple[str, ...]]
    table_model: ClassVar[Any]

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.known = _known_products(self.conn)
        self.check_db = _has_rows(self.conn, self.table_model)
        self.seen: dict[tuple[Any, ...], int] = {}
        self.in_db: set[tuple[Any, ...]] = set()
        self.rows: list[tuple[Any, ...]] = []

    def key(self, row: Any) -> tuple[Any, ...]:
        return tuple(getattr(row, name) for name in self.key_fields)

    def db_key_columns(self) -> list[Any]:
        table = _table(self.table_model)
        return [table.c[name] for name in self.key_fields]

    def prefetch(self, pending: list[_Pending]) -> None:
        if not self.check_db:
            return
        keys = {self.key(item.record) for item in pending}
        cols = self.db_key_columns()
        skus = sorted({k[0] for k in keys})
        for chunk in _chunks(skus):
            in_chunk = set(chunk)
            times = sorted({k[-1] for k in keys if k[0] in in_chunk})
            query = select(*cols).where(cols[0].in_(chunk), cols[-1].in_(times))
            self.in_db.update(tuple(r) for r in self.conn.execute(query) if tuple(r) in keys)

    def check(self, item: _Pending, row: Any) -> tuple[Any, ...]:
        if row.sku not in self.known:
            raise self._unknown_sku(row.sku)
        key = self.key(row)
        shown = ", ".join(f"{n} {v}" for n, v in zip(self.key_fields[1:], key[1:], strict=True))
        if key in self.seen:
            raise _RowError(
                "sku",
                f"with {shown} is a duplicate: the same key is already on line {self.seen[key]}",
                row.sku,
            )
        if key in self.in_db:
            raise _RowError("sku", f"with {shown} is already in the database", row.sku)
        self.seen[key] = item.line
        return key


class _InventoryHandler(_KeyedHandler):
    model = InventoryRow
    table_model = Inventory
    key_fields = ("sku", "as_of")

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.default_as_of = ctx.options.as_of or ctx.started_at.replace(microsecond=0)

    def key(self, row: Any) -> tuple[Any, ...]:
        return (row.sku, row.as_of or self.default_as_of)

    def accept(self, item: _Pending) -> None:
        row: InventoryRow = item.record
        sku, as_of = self.check(item, row)
        self.rows.append((sku, row.on_hand, row.reserved, as_of))

    def write(self) -> None:
        self.ctx.summary.rows_loaded += self._insert(
            Inventory, ("sku", "on_hand", "reserved", "as_of"), self.rows
        )


class _CompetitorHandler(_KeyedHandler):
    model = CompetitorPriceRow
    table_model = CompetitorPrice
    key_fields = ("sku", "competitor", "seen_at")

    def accept(self, item: _Pending) -> None:
        row: CompetitorPriceRow = item.record
        self.check(item, row)
        self.rows.append((row.sku, row.competitor, row.price, row.seen_at))

    def write(self) -> None:
        self.ctx.summary.rows_loaded += self._insert(
            CompetitorPrice, ("sku", "competitor", "price_cents", "seen_at"), self.rows
        )


class _ContentKeyed(_Handler):
    """Rows with no id of their own (reviews, news), keyed by their content (:mod:`db.content_keys`): a row
    already in the database, or twice in the file, is skipped and counted, so a file imported twice loads
    once."""

    table: ClassVar[Any]
    what: ClassVar[str]

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.rows: list[tuple[Any, ...]] = []
        self.seen: set[str] = set()
        self.in_db: set[str] = set()

    def content_key(self, record: Any) -> str:
        raise NotImplementedError

    def prefetch(self, pending: list[_Pending]) -> None:
        keys = sorted({self.content_key(item.record) for item in pending} - self.seen)
        column = _table(self.table).c.content_key
        for chunk in _chunks(keys):
            self.in_db.update(self.conn.scalars(select(column).where(column.in_(chunk))))

    def keep(self, record: Any) -> str | None:
        """The row's key, or None (skipped and counted) when it is a duplicate."""
        key = self.content_key(record)
        if key in self.in_db:
            self.ctx.skip(f"the same {self.what} already in the database (imported before)")
            return None
        if key in self.seen:
            self.ctx.skip(f"the same {self.what} twice in the file")
            return None
        self.seen.add(key)
        return key


class _ReviewHandler(_ContentKeyed):
    model = ReviewRow
    table = Review
    what = "review (SKU, customer, rating, text and time)"

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.known = _known_products(self.conn)

    def content_key(self, record: Any) -> str:
        row: ReviewRow = record
        return review_key(row.sku, row.customer_id, row.rating, row.text, row.ts)

    def accept(self, item: _Pending) -> None:
        row: ReviewRow = item.record
        if row.sku not in self.known:
            raise self._unknown_sku(row.sku)
        key = self.keep(row)
        if key is not None:
            self.rows.append((row.sku, row.customer_id, row.rating, row.text, row.ts, key))

    def write(self) -> None:
        self.ctx.summary.rows_loaded += self._insert(
            Review, ("sku", "customer_id", "rating", "text", "ts", "content_key"), self.rows
        )


class _NewsHandler(_ContentKeyed):
    model = NewsRow
    table = MarketNews
    what = "news item (source, title, time and link)"

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.default_source = ctx.path.name[:200]

    def content_key(self, record: Any) -> str:
        row: NewsRow = record
        return news_key(row.source or self.default_source, row.title, row.published_at, row.url)

    def accept(self, item: _Pending) -> None:
        row: NewsRow = item.record
        key = self.keep(row)
        if key is not None:
            source = row.source or self.default_source
            self.rows.append((row.title, row.body, row.published_at, source, row.url, key))

    def write(self) -> None:
        self.ctx.summary.rows_loaded += self._insert(
            MarketNews, ("title", "body", "published_at", "source", "url", "content_key"), self.rows
        )


@dataclass
class _NewProduct:
    line: int
    is_product: bool
    titles: Counter[str] = field(default_factory=Counter)
    prices: Counter[int] = field(default_factory=Counter)


class _OrdersHandler(_Handler):
    """Order lines -> ``orders`` (one row per order id) + ``order_line`` + new ``customer`` rows, and with
    ``create_products`` new ``product`` rows for unknown SKUs.

    An order takes customer, timestamp and country from its first line; its lines repeat that timestamp and
    customer (a later line naming another customer is an error). Every order id of the file is remembered
    (id, customer, timestamp, line), so memory grows with the number of orders, not of lines."""

    model = OrderLineRow
    product_columns = PRODUCT_COLUMNS

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        options, preset = ctx.options, ctx.preset
        self.known = _known_products(self.conn)
        self.prefix = options.cancellation_prefix
        if self.prefix is None and preset is not None:
            self.prefix = preset.cancellation_prefix
        self.zero_price: Policy = options.zero_price or (preset.zero_price if preset else "keep")
        self.negative_qty: Policy = options.negative_qty or (preset.negative_qty if preset else "error")
        codes = set(preset.non_product_codes) if preset else set()
        codes.update(code.strip().upper() for code in options.non_product_codes if code.strip())
        self.non_product_codes = frozenset(codes)
        self.non_product_prefixes = preset.non_product_prefixes if preset else ()
        self.create = options.create_products
        self.known_prices: dict[str, Counter[int]] = {}  # unit prices of catalogue products, for list prices
        self.margin = options.default_margin
        if not 0 <= self.margin < 1:
            raise CsvImportError(ctx.label, f"the default margin must be in [0, 1), got {self.margin}")
        self.check_orders = _has_rows(self.conn, Order)
        self.check_customers = _has_rows(self.conn, Customer)
        # order id -> (customer id, timestamp, first line); kept for the whole file to catch re-used ids.
        self.orders: dict[str, tuple[str | None, dt.datetime, int]] = {}
        self.orders_in_db: set[str] = set()
        self.customers: set[str] = set()
        self.created: dict[str, _NewProduct] = {}
        self.new_products: list[tuple[Any, ...]] = []
        self.new_customers: list[tuple[Any, ...]] = []
        self.new_orders: list[tuple[Any, ...]] = []
        self.lines: list[tuple[Any, ...]] = []

    def is_non_product(self, sku: str) -> bool:
        if sku in self.known:
            return not self.known[sku]
        if sku in self.created:
            return not self.created[sku].is_product
        upper = sku.upper()
        return upper in self.non_product_codes or upper.startswith(self.non_product_prefixes)

    def prefetch(self, pending: list[_Pending]) -> None:
        if self.check_orders:
            ids = sorted({p.record.order_id for p in pending} - self.orders.keys() - self.orders_in_db)
            table = _table(Order)
            for chunk in _chunks(ids):
                self.orders_in_db.update(self.conn.scalars(select(table.c.id).where(table.c.id.in_(chunk))))
        if self.check_customers:
            ids = sorted({p.record.customer_id for p in pending if p.record.customer_id} - self.customers)
            table = _table(Customer)
            for chunk in _chunks(ids):
                self.customers.update(self.conn.scalars(select(table.c.id).where(table.c.id.in_(chunk))))

    def accept(self, item: _Pending) -> None:
        row: OrderLineRow = item.record
        non_product = self.is_non_product(row.sku)
        if non_product and self.ctx.options.skip_non_products:
            raise _Skip("non-product codes (postage, fees, adjustments)")
        cancellation = bool(self.prefix) and row.order_id.startswith(self.prefix)  # type: ignore[arg-type]
        if row.qty == 0:
            raise _RowError("qty", "is zero; an order line needs a quantity", str(row.qty))
        if cancellation and row.qty > 0:
            raise _RowError(
                "qty",
                f'is positive, but order "{row.order_id}" is a cancellation (its id starts with '
                f'"{self.prefix}"); expected a negative quantity',
                str(row.qty),
            )
        if not cancellation and row.qty < 0:
            if self.negative_qty == "skip":
                raise _Skip("negative quantities outside cancellations (stock adjustments)")
            if self.negative_qty == "error":
                hint = (
                    f'(order ids starting with "{self.prefix}" are cancellations)'
                    if self.prefix
                    else "(use --cancellation-prefix if cancelled orders have an id prefix)"
                )
                raise _RowError(
                    "qty",
                    f"is negative outside a cancellation {hint}; "
                    "choose --negative-qty keep or --negative-qty skip to accept or drop such lines",
                    str(row.qty),
                )
        price = row.price_cents
        if price < 0 and not non_product:
            raise _RowError(
                "unit_price" if row.unit_price is not None else "line_total",
                "is a negative price; only non-product codes (fees, adjustments) may have one",
                _cents_text(price),
            )
        if price == 0:
            if self.zero_price == "skip":
                raise _Skip("zero unit prices")
            if self.zero_price == "error":
                raise _RowError(
                    "unit_price",
                    "is a zero price; choose --zero-price keep or --zero-price skip to accept or drop "
                    "such lines",
                    "0",
                )
        if row.sku not in self.known and row.sku not in self.created and not self.create:
            raise self._unknown_sku(row.sku, "import the catalog first or use --create-products")
        order = self.orders.get(row.order_id)
        if order is None and row.order_id in self.orders_in_db:
            raise _RowError(
                "order_id", "is an order id already in the database (imported before)", row.order_id
            )
        if order is not None and order[0] != row.customer_id:
            raise _RowError(
                "customer_id",
                f'differs from the customer "{order[0] or ""}" of the same order "{row.order_id}" '
                f"on line {order[2]}",
                row.customer_id or "",
            )
        # Accepted: update the state and buffer the writes.
        if row.sku not in self.known and row.sku not in self.created:
            self.created[row.sku] = _NewProduct(item.line, is_product=not non_product)
            self.new_products.append(
                (
                    row.sku,
                    (row.description or row.sku)[:300],
                    "uncategorised",
                    "unknown",
                    0,
                    0,
                    not non_product,
                    {},
                )
            )
        if row.sku in self.created:
            new = self.created[row.sku]
            if row.description:
                new.titles[row.description] += 1
            if row.qty > 0 and row.price_cents > 0:
                new.prices[row.price_cents] += 1
        elif row.qty > 0 and row.price_cents > 0 and not cancellation:
            self.known_prices.setdefault(row.sku, Counter())[row.price_cents] += 1
        customer = row.customer_id
        if customer is not None and customer not in self.customers:
            self.customers.add(customer)
            self.new_customers.append((customer, None, {"country": row.country} if row.country else {}))
        if order is None:
            order = (customer, row.ts, item.line)
            self.orders[row.order_id] = order
            self.new_orders.append((row.order_id, customer, row.ts, row.country, cancellation))
        # Lines repeat their order's timestamp and customer (see OrderLine).
        self.lines.append((row.order_id, row.sku, customer, row.qty, row.price_cents, order[1]))

    def write(self) -> None:
        created = self.ctx.summary.created
        for name, model, columns, rows in (
            ("products", Product, self.product_columns, self.new_products),
            ("customers", Customer, ("id", "segment", "attributes"), self.new_customers),
            ("orders", Order, ("id", "customer_id", "ts", "country", "is_cancellation"), self.new_orders),
        ):
            written = self._insert(model, columns, rows)
            if written:
                created[name] = created.get(name, 0) + written
        self.ctx.summary.rows_loaded += self._insert(
            OrderLine, ("order_id", "sku", "customer_id", "qty", "unit_price_cents", "ts"), self.lines
        )

    def finish(self) -> None:
        """Give products created from order lines their most common title and price and an estimated cost,
        and catalogue products without a list price their most common unit price."""
        fill_missing_list_prices(
            self.conn, self.known_prices, self.margin, "most common unit price of the orders"
        )
        if not self.created:
            return
        table = _table(Product)
        statement = (
            update(table)
            .where(table.c.sku == bindparam("b_sku"))
            .values(
                title=bindparam("b_title"),
                list_price_cents=bindparam("b_list"),
                cost_cents=bindparam("b_cost"),
                attributes=bindparam("b_attributes", type_=table.c.attributes.type),
            )
        )
        params = []
        for sku, new in self.created.items():
            title = new.titles.most_common(1)[0][0] if new.titles else sku
            list_price = new.prices.most_common(1)[0][0] if new.prices else 0
            params.append(
                {
                    "b_sku": sku,
                    "b_title": title[:300],
                    "b_list": list_price,
                    "b_cost": round(list_price * (1 - self.margin)),
                    "b_attributes": {
                        "created_by": "orders import",
                        "list_price_from": "most common unit price" if new.prices else "no priced sale",
                        "cost_estimated": True,
                        "default_margin": self.margin,
                        "first_line": new.line,
                    },
                }
            )
        for chunk in _chunks(params, 5_000):
            self.conn.execute(statement, list(chunk))


class _SalesHandler(_KeyedHandler):
    """Aggregated sales -> ``sales_period``; unique per (SKU, location, period start) in the file and the
    database. With ``create_products`` unknown SKUs become products; afterwards every product without a list
    price gets its most common base price (else its highest unit price) and an estimated cost."""

    model = SalesRow
    table_model = SalesPeriod
    key_fields = ("sku", "location", "period_start")
    columns = (
        "sku",
        "location",
        "period_start",
        "period_days",
        "units",
        "revenue_cents",
        "base_price_cents",
        "discounted",
        "featured",
        "display",
        "promotion",
    )

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.days = ctx.options.period_days
        if self.days not in (1, 7):
            raise CsvImportError(
                ctx.label, f"the sales period must be 1 (daily) or 7 (weekly) days, got {self.days}"
            )
        self.new_products: list[tuple[Any, ...]] = []
        self.prices: dict[str, Counter[int]] = {}

    def key(self, row: Any) -> tuple[Any, ...]:
        start = row.period_start or row.period_end - dt.timedelta(days=self.days - 1)
        return (row.sku, row.location or "", start)

    def accept(self, item: _Pending) -> None:
        row: SalesRow = item.record
        if row.sku not in self.known and self.ctx.options.create_products:
            self.known[row.sku] = True
            self.new_products.append(
                (row.sku, row.sku, "uncategorised", "unknown", 0, 0, True, {"created_by": "sales import"})
            )
        sku, location, start = self.check(item, row)
        if row.period_start is not None and row.period_end is not None:
            days = (row.period_end - row.period_start).days + 1
            if days != self.days:
                raise _RowError(
                    "period_end",
                    f"makes a period of {days} days, not {self.days}; check --period",
                    str(row.period_end),
                )
        price = row.base_price or (round(row.revenue_cents / row.units) if row.units > 0 else 0)
        if price > 0:
            self.prices.setdefault(sku, Counter())[price] += 1
        self.rows.append(
            (
                sku,
                location,
                start,
                self.days,
                row.units,
                row.revenue_cents,
                row.base_price,
                row.discounted,
                row.featured,
                row.display,
                row.promotion,
            )
        )

    def write(self) -> None:
        created = self._insert(Product, PRODUCT_COLUMNS, self.new_products)
        if created:
            self.ctx.summary.created["products"] = self.ctx.summary.created.get("products", 0) + created
        self.ctx.summary.rows_loaded += self._insert(SalesPeriod, self.columns, self.rows)

    def finish(self) -> None:
        fill_missing_list_prices(
            self.conn,
            self.prices,
            self.ctx.options.default_margin,
            "most common base price of the sales import",
        )


def fill_missing_list_prices(
    conn: Connection, prices: Mapping[str, Counter[int]], margin: float, source: str
) -> None:
    """Give every product without a list price that ``prices`` has a price for its most common one (marked
    as estimated, from ``source``) and a cost at ``margin``."""
    table = _table(Product)
    missing = {
        str(sku): (dict(attrs or {}), int(cost or 0))
        for sku, attrs, cost in conn.execute(
            select(table.c.sku, table.c.attributes, table.c.cost_cents).where(table.c.list_price_cents == 0)
        )
        if sku in prices
    }
    if not missing:
        return
    statement = (
        update(table)
        .where(table.c.sku == bindparam("b_sku"))
        .values(
            list_price_cents=bindparam("b_list"),
            cost_cents=bindparam("b_cost"),
            attributes=bindparam("b_attributes", type_=table.c.attributes.type),
        )
    )
    params = []
    for sku, (attrs, imported_cost) in missing.items():
        list_price = prices[sku].most_common(1)[0][0]
        attrs.update({"list_price_estimated": True, "list_price_from": source})
        cost = imported_cost
        if imported_cost == 0 or attrs.get("cost_estimated"):
            cost = round(list_price * (1 - margin))
            attrs.update({"cost_estimated": True, "default_margin": margin})
        params.append(
            {
                "b_sku": sku,
                "b_list": list_price,
                "b_cost": cost,
                "b_attributes": attrs,
            }
        )
    for chunk in _chunks(params, 5_000):
        conn.execute(statement, list(chunk))


class _PromotionsHandler(_Handler):
    """The promotion calendar -> ``promotion``: a SKU or a category (both must exist), its dates (a week
    number becomes the 7 days from ``week_origin + 7 (week - 1)``), its price or discount and its kind; a
    row whose display and mailer markers are both off is no promotion and is skipped."""

    model = PromotionRow

    def __init__(self, ctx: _Context) -> None:
        super().__init__(ctx)
        self.known = _known_products(self.conn)
        table = _table(Product)
        self.categories = {str(c).lower() for c in self.conn.scalars(select(table.c.category).distinct())}
        self.rows: list[tuple[Any, ...]] = []
        self.source = ctx.path.name[:200]

    def accept(self, item: _Pending) -> None:
        row: PromotionRow = item.record
        if row.sku is not None and row.sku not in self.known:
            raise self._unknown_sku(row.sku)
        if row.sku is None and (row.category or "").lower() not in self.categories:
            raise _RowError("category", "is not a category of the catalog", row.category)
        markers = [name for name in ("display", "mailer") if getattr(row, name)]
        if not markers and (row.display is not None or row.mailer is not None) and row.kind is None:
            raise _Skip("no promotion (display and mailer markers off)")
        if row.start is not None:
            start, end = row.start, row.end or row.start
        else:
            origin = self.ctx.options.week_origin
            if origin is None:
                raise _RowError(
                    "week", "is a week number; give --week-origin (the first day of week 1)", str(row.week)
                )
            start = origin + dt.timedelta(days=7 * ((row.week or 1) - 1))
            end = start + dt.timedelta(days=6)
        if end < start:
            raise _RowError("end", f"is before the start {start}", str(end))
        kind = row.kind or ("+".join(markers) if markers else "promotion")
        self.rows.append(
            (
                row.sku,
                row.category,
                row.location or "",
                start,
                end,
                row.sale_price,
                row.discount,
                kind,
                self.source,
            )
        )

    def write(self) -> None:
        self.ctx.summary.rows_loaded += self._insert(
            Promotion,
            ("sku", "category", "location", "start", "end", "sale_price_cents", "discount", "kind", "source"),
            self.rows,
        )


def _cents_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


_HANDLERS: dict[str, type[_Handler]] = {
    "catalog": _CatalogHandler,
    "inventory": _InventoryHandler,
    "orders": _OrdersHandler,
    "reviews": _ReviewHandler,
    "news": _NewsHandler,
    "competitor-prices": _CompetitorHandler,
    "sales": _SalesHandler,
    "promotions": _PromotionsHandler,
}
