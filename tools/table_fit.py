"""Terminal tables that fit the terminal without cutting a figure or a name.

A table is given as columns of already formatted cells. When it is wider than the terminal, first the
columns that have a short form switch to it (money and counts in k/M, stated in the caption), then the
least important columns are left out, in order, until the rest fits whole; the caption names what was left
out and that ``--wide`` shows everything. Cells never wrap and never end in an ellipsis: text columns that
may wrap (a sentence of explanation) say so and wrap at word boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Console
from rich.table import Table

from tools.formatting import SHORT_UNITS_NOTE


@dataclass(frozen=True)
class FitColumn:
    header: str
    cells: Sequence[str]
    short: Sequence[str] | None = None  # the same values in short units, used when the full ones do not fit
    left: bool = False
    drop_order: int | None = None  # None: always shown; lower numbers are left out first
    wrap: bool = False  # a text column that may wrap at word boundaries (never a figure or a name)
    legend: str | None = None  # what a short header means, for the caption


@dataclass(frozen=True)
class FitRows:
    """Per-row presentation: a style (e.g. bold for a total) and a section line after the row."""

    styles: Sequence[str | None] = field(default_factory=tuple)
    end_section: Sequence[bool] = field(default_factory=tuple)


def natural_width(table: Table) -> int:
    """How wide ``table`` is when nothing is squeezed."""
    return Console(width=10_000).measure(table).maximum


def _longest_word(cells: Sequence[str]) -> str:
    return max((w for cell in cells for w in cell.split()), key=len, default="")


def _values(column: FitColumn, use_short: bool) -> Sequence[str]:
    return column.short if use_short and column.short is not None else column.cells


def _build(
    title: str,
    columns: Sequence[FitColumn],
    rows: FitRows,
    caption: str,
    *,
    use_short: bool,
    narrowest: bool = False,
) -> Table:
    """The rich table; ``narrowest``: wrapping columns hold only their longest word (to measure the
    narrowest the table can be without cutting anything)."""
    table = Table(
        title=title, caption=caption or None, caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for c in columns:
        table.add_column(
            c.header,
            justify="left" if c.left else "right",
            no_wrap=not c.wrap,
            overflow="fold",
            min_width=len(_longest_word(c.cells)) or None if c.wrap else None,
        )
    n = len(columns[0].cells) if columns else 0
    for i in range(n):
        cells = [
            _longest_word(c.cells)
            if narrowest and c.wrap
            else (c.short if use_short and c.short else c.cells)[i]
            for c in columns
        ]
        style = rows.styles[i] if i < len(rows.styles) else None
        end = rows.end_section[i] if i < len(rows.end_section) else False
        table.add_row(*cells, style=style, end_section=end)
    return table


def _caption(base: str, columns: Sequence[FitColumn], use_short: bool, dropped: list[str]) -> str:
    parts = [base] if base else []
    legends = [c.legend for c in columns if c.legend]
    if legends:
        parts.append("; ".join(legends))
    if use_short and any(cell.endswith(("k", "M")) for c in columns for cell in c.short or ()):
        parts.append(SHORT_UNITS_NOTE)
    if dropped:
        parts.append(f"Left out at this width: {', '.join(dropped)} (--wide shows them)")
    return " ".join(p if p.endswith(".") else p + "." for p in parts)


def fit_table(
    title: str,
    columns: Sequence[FitColumn],
    *,
    width: int | None,
    caption: str = "",
    rows: FitRows | None = None,
) -> Table:
    """The table no wider than ``width`` (None: every column, full figures)."""
    rows = rows or FitRows()
    shown = list(columns)
    dropped: list[str] = []
    use_short = False

    def build(narrowest: bool = False) -> Table:
        text = _caption(caption, shown, use_short, dropped)
        return _build(title, shown, rows, text, use_short=use_short, narrowest=narrowest)

    def too_wide() -> bool:
        return width is not None and natural_width(build(narrowest=True)) > width

    if too_wide() and any(c.short is not None for c in shown):
        use_short = True
    droppable = sorted((c for c in shown if c.drop_order is not None), key=lambda c: c.drop_order or 0)
    while droppable and too_wide():
        column = droppable.pop(0)
        shown.remove(column)
        dropped.append(column.header)
    return build()
