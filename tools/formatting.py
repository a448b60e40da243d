"""What every renderer shares: how numbers read, and Markdown and HTML tables.

One formatter per kind of number, so a plan, a KPI report, a Slack answer and a solver reason print the
same amount the same way. ``None`` (a figure that cannot be computed, e.g. a ratio over nothing) prints
as an en dash. The Markdown and HTML helpers escape every cell, so text from the data (titles, news) can
neither break a table nor inject markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

MISSING = "–"


def format_cents(cents: float | None) -> str:
    """Cents as a currency amount with two decimals and thousands separators: 1234567 -> '12,345.67'."""
    if cents is None:
        return MISSING
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) / 100:,.2f}"


SHORT_UNITS_NOTE = "k = thousand, M = million"


def short_number(value: float | None) -> str:
    """A figure in short units for a narrow table: 9,876 stays whole, 12,345 -> '12.3k', 1,234,567 ->
    '1.23M' (say so with ``SHORT_UNITS_NOTE``)."""
    if value is None:
        return MISSING
    sign, v = ("-", -value) if value < 0 else ("", value)
    if round(v) < 10_000:
        return f"{sign}{v:,.0f}"
    if round(v, -2) < 1_000_000:
        return f"{sign}{v / 1e3:.1f}k"
    return f"{sign}{v / 1e6:.2f}M"


def short_cents(cents: float | None) -> str:
    """Cents as a currency amount in short units: 1234567 -> '12.3k'."""
    return MISSING if cents is None else short_number(cents / 100)


def pct(fraction: float | None, digits: int = 1) -> str:
    """A fraction as a percentage, e.g. 0.4567 -> '45.7 %'."""
    return MISSING if fraction is None else f"{fraction * 100:.{digits}f} %"


def num(value: float | None, digits: int = 1) -> str:
    """A figure with thousands separators and ``digits`` decimals, e.g. 1234.5 -> '1,234.5'."""
    return MISSING if value is None else f"{value:,.{digits}f}"


# ---- Markdown --------------------------------------------------------------------------------------------


def md_escape(text: object) -> str:
    """``text`` safe in a Markdown table cell: pipes and backslashes escaped, angle brackets as entities."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], left_columns: int = 1) -> list[str]:
    """The lines of a Markdown table; the first ``left_columns`` columns align left, the rest right."""
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |"]
    lines.append("|" + "|".join(["---"] * left_columns + ["---:"] * (len(header) - left_columns)) + "|")
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return lines


# ---- HTML ------------------------------------------------------------------------------------------------


def html_escape(value: object) -> str:
    """``str(value)`` escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def html_head(title: str, css: str) -> list[str]:
    """The opening lines of a standalone HTML page up to its ``<h1>`` title, with the page's style sheet."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html_escape(title)}</title>",
        f"<style>{css}</style>",
        "</head>",
        "<body>",
        f"<h1>{html_escape(title)}</h1>",
    ]


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], total_last: bool = False) -> list[str]:
    """The lines of an HTML table; ``total_last`` marks the last row ``class="total"``."""
    out = [
        "<table>",
        "<thead><tr>" + "".join(f"<th>{html_escape(h)}</th>" for h in header) + "</tr></thead>",
        "<tbody>",
    ]
    for i, row in enumerate(rows):
        cls = ' class="total"' if total_last and i == len(rows) - 1 else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html_escape(c)}</td>" for c in row) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out
