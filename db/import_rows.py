"""Pydantic models of one CSV row per import kind, and the parsers of their cell values.

Cells arrive as stripped strings; empty cells are left out of the dict, so a required field with an empty cell
fails as ``missing``. Money is parsed as ``Decimal`` and converted to integer cents (half-up rounding), never
float. Dates are parsed with the formats in the validation context (``date_formats``; ``"iso"`` means
ISO 8601) and cached per distinct string, because order lines of one order share their timestamp.

Every parser raises ``PydanticCustomError`` whose message completes the sentence ``"<value>" ...``, e.g.
``"abc" is not an integer``; the importer adds the file, line and column.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from db.models import SKU_LEN

ISO = "iso"
_CENT = Decimal("0.01")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_DATE_CACHE_LIMIT = 200_000


def parse_int(value: Any) -> int:
    """A whole number: ``"6"``, ``"-3"``, also ``"6.0"`` as written by spreadsheet exports."""
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PydanticCustomError("integer", "is not an integer") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise PydanticCustomError("integer", "is not a whole number") from None
    return int(number)


def parse_cents(value: Any) -> int:
    """A money amount in major units (``"12.50"``) as integer cents (``1250``), rounded half-up."""
    if isinstance(value, int):
        return value * 100
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        hint = (
            " (write it without thousands separators or currency signs)"
            if any(ch in str(value) for ch in ",$£€ ")
            else ""
        )
        raise PydanticCustomError("money", "is not a number, expected an amount like 12.50" + hint) from None
    if not amount.is_finite():
        raise PydanticCustomError("money", "is not a finite amount")
    return int((amount / _CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PydanticCustomError("boolean", "is not true or false (expected true/false, yes/no or 1/0)")


def parse_json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        raise PydanticCustomError("json_object", 'is not a JSON object such as {"color": "red"}')
    return parsed


def parse_datetime_text(text: str, formats: tuple[str, ...]) -> dt.datetime:
    """Parse with the first of ``formats`` that fits; aware times become naive UTC. Raises ValueError."""
    for fmt in formats:
        try:
            parsed = dt.datetime.fromisoformat(text) if fmt == ISO else dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed
    raise ValueError(text)


def describe_formats(formats: tuple[str, ...]) -> str:
    return " or ".join("ISO 8601 (e.g. 2024-05-31 14:30:00)" if f == ISO else f'"{f}"' for f in formats)


def parse_datetime(value: Any, info: ValidationInfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    context = info.context or {}
    formats: tuple[str, ...] = context.get("date_formats") or (ISO,)
    cache: dict[str, dt.datetime] | None = context.get("date_cache")
    if cache is not None:
        hit = cache.get(value)
        if hit is not None:
            return hit
    try:
        parsed = parse_datetime_text(str(value), formats)
    except ValueError:
        raise PydanticCustomError(
            "datetime",
            "is not a date/time in the expected format {formats}; give the file's format with --date-format",
            {"formats": describe_formats(formats)},
        ) from None
    if cache is not None:
        if len(cache) >= _DATE_CACHE_LIMIT:
            cache.clear()
        cache[value] = parsed
    return parsed


def parse_quantity(value: Any) -> float:
    """A quantity that may have decimals (weighed goods in scanner data): ``"3"``, ``"2.5"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PydanticCustomError("quantity", "is not a number") from None
    if not number.is_finite():
        raise PydanticCustomError("quantity", "is not a finite number")
    return float(number)


def parse_marker(value: Any) -> bool:
    """A promotion marker: true/false words, 1/0, or a code where empty, "0" and "none" mean no promotion
    (the display and mailer location codes of grocery panels)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return text not in _FALSE and text not in {"", "none", "no promotion", "nan"}


def parse_fraction(value: Any) -> float:
    """A discount as a fraction of the regular price: ``"0.25"``, or a percentage ``"25 %"``/``"25"``."""
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        number = float(Decimal(text.rstrip("%").strip()))
    except InvalidOperation:
        raise PydanticCustomError("fraction", "is not a discount (write 0.25 or 25 %)") from None
    if percent or number > 1:
        number /= 100
    if not 0 < number < 1:
        raise PydanticCustomError("fraction", "is not a discount between 0 and 100 %")
    return number


def parse_date(value: Any, info: ValidationInfo) -> dt.date:
    """A calendar day in the file's date format (a time of day, if any, is dropped)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return parse_datetime(value, info).date()


def normalise_customer_id(value: str | None) -> str | None:
    """Spreadsheet exports write numeric ids as floats (``17850.0``); store them as ``17850``."""
    if value is not None and value.endswith(".0") and value[:-2].isdigit():
        return value[:-2]
    return value


Int = Annotated[int, BeforeValidator(parse_int)]
Quantity = Annotated[float, BeforeValidator(parse_quantity)]
Marker = Annotated[bool, BeforeValidator(parse_marker)]
Fraction = Annotated[float, BeforeValidator(parse_fraction)]
Day = Annotated[dt.date, BeforeValidator(parse_date)]
Cents = Annotated[int, BeforeValidator(parse_cents)]
Timestamp = Annotated[dt.datetime, BeforeValidator(parse_datetime)]
Bool = Annotated[bool, BeforeValidator(parse_bool)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(parse_json_object)]
Sku = Annotated[str, Field(max_length=SKU_LEN)]
CustomerId = Annotated[str | None, Field(max_length=64), AfterValidator(normalise_customer_id)]


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=False)


class CatalogRow(_Row):
    """A product. Cost and list price may be missing in real exports: the importer then estimates them
    (from the sales it is given later, or ``--default-margin``) and marks them as estimated."""

    sku: Sku
    title: Annotated[str | None, Field(max_length=300)] = None
    category: Annotated[str, Field(max_length=100)] = "uncategorised"
    brand: Annotated[str, Field(max_length=100)] = "unknown"
    cost: Annotated[Cents | None, Field(ge=0)] = None
    list_price: Annotated[Cents | None, Field(gt=0)] = None
    department: Annotated[str | None, Field(max_length=100)] = None
    sub_category: Annotated[str | None, Field(max_length=100)] = None
    is_product: Bool = True
    attributes: JsonObject = Field(default_factory=dict)


class InventoryRow(_Row):
    sku: Sku
    on_hand: Annotated[Int, Field(ge=0)]
    reserved: Annotated[Int, Field(ge=0)] = 0
    as_of: Timestamp | None = None


class OrderLineRow(_Row):
    """One order line as found in transaction logs (UCI "Online Retail" shape). Signs of quantity and price
    are checked by the importer, which knows whether the order is a cancellation and the SKU a product."""

    order_id: Annotated[str, Field(max_length=64)]
    customer_id: CustomerId = None
    sku: Sku
    description: str | None = None
    qty: Int
    unit_price: Cents | None = None
    line_total: Cents | None = None
    ts: Timestamp
    country: Annotated[str | None, Field(max_length=60)] = None

    @model_validator(mode="after")
    def _a_price(self) -> OrderLineRow:
        if self.unit_price is None and self.line_total is None:
            raise PydanticCustomError(
                "missing", "is empty; give unit_price or line_total (the line's amount)"
            )
        return self

    @property
    def price_cents(self) -> int:
        """The unit price: as given, else the line's amount over its quantity."""
        if self.unit_price is not None:
            return self.unit_price
        assert self.line_total is not None
        return round(self.line_total / self.qty) if self.qty else 0


class ReviewRow(_Row):
    sku: Sku
    rating: Annotated[Int, Field(ge=1, le=5)]
    text: str = ""
    ts: Timestamp
    customer_id: CustomerId = None


class NewsRow(_Row):
    title: Annotated[str, Field(max_length=500)]
    body: str = ""
    published_at: Timestamp
    source: Annotated[str | None, Field(max_length=200)] = None
    url: Annotated[str | None, Field(max_length=1000)] = None


class CompetitorPriceRow(_Row):
    sku: Sku
    competitor: Annotated[str, Field(max_length=100)]
    price: Annotated[Cents, Field(gt=0)]
    seen_at: Timestamp


class SalesRow(_Row):
    """Aggregated sales of a product in a period (``period_start`` or ``period_end`` names the period),
    optionally at a location, with the period's prices and promotion markers."""

    sku: Sku
    period_start: Day | None = None
    period_end: Day | None = None
    units: Annotated[Quantity, Field(ge=0)]
    revenue: Cents | None = None
    unit_price: Annotated[Cents | None, Field(gt=0)] = None
    base_price: Annotated[Cents | None, Field(gt=0)] = None
    discounted: Marker = False
    featured: Marker = False
    display: Marker = False
    promotion: Annotated[str | None, Field(max_length=200)] = None
    location: Annotated[str | None, Field(max_length=64)] = None

    @model_validator(mode="after")
    def _complete(self) -> SalesRow:
        if self.period_start is None and self.period_end is None:
            raise PydanticCustomError(
                "missing", "is empty; give period_start or period_end (the period's date)"
            )
        if self.revenue is None and self.unit_price is None:
            raise PydanticCustomError("incomplete", "needs revenue or unit_price")
        return self

    @property
    def revenue_cents(self) -> int:
        return self.revenue if self.revenue is not None else round((self.unit_price or 0) * self.units)


class PromotionRow(_Row):
    """One promotion of the calendar: a SKU or a category, its dates (or a week number with
    ``--week-origin``), its price or discount, and its kind (or display/mailer markers)."""

    sku: Annotated[Sku | None, Field()] = None
    category: Annotated[str | None, Field(max_length=100)] = None
    location: Annotated[str | None, Field(max_length=64)] = None
    start: Day | None = None
    end: Day | None = None
    week: Annotated[Int | None, Field(ge=0, le=10_000)] = None
    sale_price: Annotated[Cents | None, Field(gt=0)] = None
    discount: Fraction | None = None
    kind: Annotated[str | None, Field(max_length=50)] = None
    display: Marker | None = None
    mailer: Marker | None = None

    @model_validator(mode="after")
    def _complete(self) -> PromotionRow:
        if self.sku is None and self.category is None:
            raise PydanticCustomError("incomplete", "needs a sku or a category")
        if self.start is None and self.week is None:
            raise PydanticCustomError("incomplete", "needs start (and end) or week (with --week-origin)")
        return self


def error_phrase(error: Any) -> str:
    """Turn one pydantic error into the end of the sentence ``"<value>" ...``."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is empty; a value is required"
    if kind == "greater_than_equal":
        return (
            "is negative; expected 0 or more" if ctx.get("ge") == 0 else f"is below the minimum {ctx['ge']}"
        )
    if kind == "greater_than":
        if ctx.get("gt") == 0:
            negative = str(error.get("input", "")).lstrip().startswith("-")
            return f"is {'negative' if negative else 'zero'}; expected more than 0"
        return f"must be greater than {ctx['gt']}"
    if kind == "less_than_equal":
        return f"is above the maximum {ctx['le']}"
    if kind == "string_too_long":
        return f"is longer than {ctx['max_length']} characters"
    message: str = error["msg"]
    return message
