"""Renderers for KPI results: rich terminal tables, Markdown and HTML reports, and matplotlib charts.

Numbers come from :mod:`tools.kpi` and :mod:`tools.campaigns` (typed results); this module only formats
them. HTML escapes every value; charts are PNG files written next to the report (Agg rendering through
``matplotlib.figure.Figure``, no GUI backend and no global pyplot state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from rich import box
from rich.table import Table

from db.files import output_folder, save_figure, write_text
from db.sqlvalues import utc_now
from tools.campaigns import Comparison, PlanVsActual
from tools.data_check import DataCheck
from tools.formatting import (
    format_cents,
    html_escape,
    html_head,
    html_table,
    md_escape,
    md_table,
    num,
    pct,
    short_cents,
    short_number,
)
from tools.kpi import KpiFigures, KpiInputError, KpiReport
from tools.table_fit import FitColumn, FitRows, fit_table

REPORT_FORMATS = ("md", "html")
CHART_FILES = {
    "gmv_profit": "gmv_profit.png",
    "discount_sell_through": "discount_sell_through.png",
    "forecast_actual": "forecast_actual.png",
}
CHART_TITLES = {
    "gmv_profit": "GMV and gross profit per day",
    "discount_sell_through": "Discount depth against sell-through (plan items)",
    "forecast_actual": "Forecast against actual units (plan items)",
}


@dataclass(frozen=True)
class _Kpi:
    label: str  # the header in reports and the figure's name in the totals list
    short: str  # the header in a terminal table
    legend: str | None = None  # what the short header means
    drop_order: int | None = None  # left out of a narrow terminal table, lowest first; None: always shown


KPIS = (
    _Kpi("GMV", "GMV"),
    _Kpi("Gross profit", "Profit"),
    _Kpi("Margin", "Margin", drop_order=8),
    _Kpi("Units", "Units"),
    _Kpi("Avg discount", "Disc.", "Disc.: average discount", drop_order=6),
    _Kpi("Orders", "Orders", drop_order=4),
    _Kpi("Buyers", "Buyers", drop_order=5),
    _Kpi("Repeat-buyer share", "Repeat", "Repeat: repeat-buyer share", drop_order=3),
    _Kpi("Sell-through", "Sell-thr.", "Sell-thr.: sale units / allocated", drop_order=9),
    _Kpi("Stock-outs", "Out", "Out: plan items sold out / planned", drop_order=7),
    _Kpi("Turnover", "Turn", "Turn: inventory turnover", drop_order=1),
    _Kpi("Incremental units", "Incr.", "Incr.: incremental units", drop_order=2),
)
KPI_COLUMNS = [k.label for k in KPIS]


def kpi_cells(fig: KpiFigures) -> list[str]:
    """The formatted KPI values of one row, in the order of ``KPIS``."""
    return [
        format_cents(fig.gmv_cents),
        format_cents(fig.gross_profit_cents),
        pct(fig.margin),
        f"{fig.units:,}",
        pct(fig.avg_discount_depth),
        "–" if fig.orders is None else f"{fig.orders:,}",
        f"{fig.unique_buyers:,}",
        pct(fig.repeat_buyer_share),
        (
            f"{pct(fig.sell_through)} ({fig.sale_units:,}/{fig.allocated_units:,})"
            if fig.allocated_units
            else "–"
        ),
        f"{fig.stock_outs}/{fig.plan_items}" if fig.plan_items else "–",
        num(fig.inventory_turnover, 2),
        num(fig.incremental_units),
    ]


def kpi_short_cells(fig: KpiFigures) -> list[str]:
    """The same values in short units (12.3k), for a narrow terminal."""
    full = kpi_cells(fig)
    short = {
        0: short_cents(fig.gmv_cents),
        1: short_cents(fig.gross_profit_cents),
        3: short_number(fig.units),
        5: short_number(fig.orders),
        6: short_number(fig.unique_buyers),
        8: pct(fig.sell_through) if fig.allocated_units else "–",
        11: short_number(fig.incremental_units),
    }
    return [short.get(i, cell) for i, cell in enumerate(full)]


def report_title(report: KpiReport) -> str:
    scope = f"plan {report.plan_id}, " if report.plan_id is not None else ""
    period = str(report.start) if report.start == report.end else f"{report.start} to {report.end}"
    return f"KPIs, {scope}{period}"


def _rows(
    report: KpiReport, cells: Callable[[KpiFigures], list[str]] = kpi_cells
) -> list[tuple[str, list[str]]]:
    rows = [(str(g.key), cells(g)) for g in report.groups]
    rows.append(("Total", cells(report.total)))
    return rows


STOCK_OUT_COLUMNS = ("Plan", "Sale date", "SKU", "Allocated", "Sold", "Sold out at", "Minutes to sell out")
STOCK_OUT_SHORT_COLUMNS = ("Plan", "Sale date", "SKU", "Alloc.", "Sold", "Out at", "Minutes")


def stock_out_rows(report: KpiReport) -> list[list[str]]:
    """The formatted cells of each stock-out, soonest sold out first, in the order of
    ``STOCK_OUT_COLUMNS``."""
    items = sorted(
        report.stock_outs,
        key=lambda i: (i.minutes_to_sell_out is None, i.minutes_to_sell_out or 0.0, i.sale_date, i.sku),
    )
    return [
        [
            str(i.plan_id),
            str(i.sale_date),
            i.sku,
            str(i.allocated_units),
            str(i.sold_units),
            f"{i.sold_out_at:%H:%M}" if i.sold_out_at else "–",
            num(i.minutes_to_sell_out, 0),
        ]
        for i in items
    ]


PLAN_VS_ACTUAL_COLUMNS = (
    "SKU",
    "Forecast",
    "Sold",
    "Allocated",
    "Planned price",
    "Avg price",
    "Profit",
    "Driver",
    "Why",
)


def _plan_vs_actual_rows(pva: PlanVsActual) -> list[list[str]]:
    """The formatted cells of each item and a total row, in the order of ``PLAN_VS_ACTUAL_COLUMNS``."""
    rows = [
        [
            i.sku,
            num(i.forecast_units),
            str(i.sold_units),
            str(i.allocated_units),
            format_cents(i.planned_price_cents),
            format_cents(i.realised_avg_price_cents),
            format_cents(i.profit_cents),
            i.driver,
            i.explanation,
        ]
        for i in pva.items
    ]
    total = ["Total", num(pva.forecast_units), str(pva.sold_units), "", "", ""]
    return [*rows, [*total, format_cents(pva.profit_cents), "", ""]]


def _plan_vs_actual_summary(pva: PlanVsActual) -> str:
    return (
        f"Forecast {num(pva.forecast_units)} units, sold {pva.sold_units}: WAPE {pct(pva.wape)}, "
        f"bias {pct(pva.bias)} (positive = over-forecast). "
        f"Profit {format_cents(pva.profit_cents)} against "
        f"{format_cents(pva.expected_profit_cents)} expected."
    )


# ---- terminal -------------------------------------------------------------------------------------------


def kpi_table(report: KpiReport, *, width: int | None = None) -> Table:
    """One row per group and a total row, no wider than ``width`` (None: every column, full figures);
    totals only (no grouping) as a figure/value list."""
    caption = " ".join(report.notes)
    if report.by is None:
        table = Table(
            title=report_title(report), header_style="bold", caption=caption or None, caption_justify="left"
        )
        table.add_column("Figure")
        table.add_column("Value", justify="right")
        for kpi, cell in zip(KPIS, kpi_cells(report.total), strict=True):
            table.add_row(kpi.label, cell)
        return table
    full, short = _rows(report), _rows(report, kpi_short_cells)
    columns = [FitColumn(report.by.capitalize(), [name for name, _ in full], left=True)]
    columns += [
        FitColumn(
            kpi.short,
            [cells[k] for _, cells in full],
            short=[cells[k] for _, cells in short],
            legend=kpi.legend,
            drop_order=kpi.drop_order,
        )
        for k, kpi in enumerate(KPIS)
    ]
    n = len(full)
    rows = FitRows(styles=[None] * (n - 1) + ["bold"], end_section=[i == n - 2 for i in range(n)])
    return fit_table(report_title(report), columns, width=width, caption=caption, rows=rows)


STOCK_OUTS_SHOWN = 10


def stock_out_table(report: KpiReport, *, limit: int | None = STOCK_OUTS_SHOWN) -> Table | None:
    """The stock-outs, soonest sold out first; at most ``limit`` rows (None: all), the caption says how
    many there are and how to see every one."""
    if not report.stock_outs:
        return None
    rows = stock_out_rows(report)
    total = len(rows)
    shown = rows if limit is None else rows[:limit]
    caption = "Minutes: from the sale's start to selling out."
    if len(shown) < total:
        caption += (
            f" {len(shown)} of {total:,} stock-outs shown, soonest sold out first; --all lists every one, "
            "--json gives them as data."
        )
    table = Table(
        title=f"Stock-outs ({total:,})",
        header_style="bold",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for col in STOCK_OUT_SHORT_COLUMNS:
        table.add_column(col, justify="left" if col in ("SKU", "Sale date") else "right", no_wrap=True)
    for row in shown:
        table.add_row(*row)
    return table


def plan_vs_actual_table(pva: PlanVsActual, *, width: int | None = None) -> Table:
    """Each plan item's forecast against what sold and why it missed, no wider than ``width``; the
    explanation wraps at word boundaries."""
    cells = _plan_vs_actual_rows(pva)
    drop = {"Avg price": 1, "Planned price": 2, "Allocated": 3, "Driver": 4}
    columns = [
        FitColumn(
            header,
            [row[k] for row in cells],
            left=header in ("SKU", "Driver", "Why"),
            drop_order=drop.get(header),
            wrap=header == "Why",
        )
        for k, header in enumerate(PLAN_VS_ACTUAL_COLUMNS)
    ]
    n = len(cells)
    rows = FitRows(styles=[None] * (n - 1) + ["bold"], end_section=[i == n - 2 for i in range(n)])
    caption = f"WAPE {pct(pva.wape)}, bias {pct(pva.bias)} (positive = over-forecast)"
    title = f"Plan {pva.plan_id} ({pva.sale_date}): forecast against actual"
    return fit_table(title, columns, width=width, caption=caption, rows=rows)


def comparison_table(c: Comparison) -> Table:
    money_metric = c.metric != "units"
    fmt = format_cents if money_metric else (lambda v: num(v, 2))
    table = Table(title=f"{c.label_b} against {c.label_a}: {c.metric} per {c.unit}", caption=c.verdict)
    table.add_column("Figure")
    table.add_column("Value", justify="right")
    level = f"{c.confidence * 100:.0f} %"
    rows = [
        (f"Mean, {c.label_a} (n={c.n_a})", fmt(c.mean_a)),
        (f"Mean, {c.label_b} (n={c.n_b})", fmt(c.mean_b)),
        ("Difference (B - A)", fmt(c.difference)),
        (f"{level} CI ({c.ci_method})", f"{fmt(c.ci_low)} to {fmt(c.ci_high)}"),
        ("Relative difference", pct(c.relative_difference)),
        (f"{level} CI (relative)", f"{pct(c.relative_ci_low)} to {pct(c.relative_ci_high)}"),
        ("Welch t / p", f"{num(c.welch_t, 2)} / {num(c.welch_p, 3)}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def data_check_table(check: DataCheck) -> Table:
    """What the data support: one row per capability, the verdict, the evidence and the next step."""
    c = check.counts
    span = f"{c.first_day} to {c.last_day}" if c.first_day else "no history"
    table = Table(
        title=f"Data check: {c.products:,} products, {span}",
        header_style="bold",
        show_lines=True,
    )
    table.add_column("capability")
    table.add_column("status")
    table.add_column("evidence", ratio=3)
    table.add_column("next step", ratio=2)
    colour = {"ok": "green", "limited": "yellow", "missing": "red"}
    for cap in check.capabilities:
        table.add_row(cap.name, f"[{colour[cap.status]}]{cap.status}[/]", cap.evidence, cap.next_step or "")
    return table


# ---- charts ---------------------------------------------------------------------------------------------


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _scatter_by_stock(
    ax: Axes, in_stock: list[tuple[float, float]], sold_out: list[tuple[float, float]], sold_out_label: str
) -> None:
    """(x, y) points of items that stayed in stock as dots, of items that sold out as red crosses."""
    ax.scatter([x for x, _ in in_stock], [y for _, y in in_stock], label="in stock")
    ax.scatter(
        [x for x, _ in sold_out], [y for _, y in sold_out], marker="x", color="red", label=sold_out_label
    )


def _save_chart(fig: Figure, ax: Axes, name: str, path: Path) -> None:
    ax.set_title(CHART_TITLES[name])
    fig.tight_layout()
    save_figure(fig, path)


def make_charts(
    report: KpiReport, out_dir: Path, plan_vs_actual: PlanVsActual | None = None
) -> dict[str, Path]:
    """Write the report's PNG charts into ``out_dir``; returns chart name -> path."""
    output_folder(out_dir)
    paths = {name: out_dir / filename for name, filename in CHART_FILES.items()}

    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.add_subplot()
    if report.daily:
        days = np.array([d.day for d in report.daily], dtype="datetime64[D]")
        ax.plot(days, [d.gmv_cents / 100 for d in report.daily], marker="o", label="GMV")
        ax.plot(days, [d.gross_profit_cents / 100 for d in report.daily], marker="o", label="Gross profit")
        ax.set_ylabel("Amount")
        ax.legend()
        fig.autofmt_xdate()
    else:
        _empty(ax, "No sales in this period")
    _save_chart(fig, ax, "gmv_profit", paths["gmv_profit"])

    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    items = [i for i in report.plan_items if i.sell_through is not None]
    if items:
        out = [i for i in items if i.stocked_out]
        ok = [i for i in items if not i.stocked_out]
        _scatter_by_stock(
            ax,
            [(i.discount_pct, (i.sell_through or 0) * 100) for i in ok],
            [(i.discount_pct, (i.sell_through or 0) * 100) for i in out],
            "sold out",
        )
        ax.set_xlabel("Discount (%)")
        ax.set_ylabel("Sell-through (%)")
        ax.legend()
    else:
        _empty(ax, "No plan items in this period")
    _save_chart(fig, ax, "discount_sell_through", paths["discount_sell_through"])

    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    if plan_vs_actual is not None and plan_vs_actual.items:
        pairs = [(i.forecast_units, float(i.sold_units), i.stocked_out) for i in plan_vs_actual.items]
    else:
        pairs = [(i.forecast_units, float(i.sold_units), i.stocked_out) for i in report.plan_items]
    if pairs:
        top = max(max(f, s) for f, s, _ in pairs) * 1.05 or 1.0
        ax.plot([0, top], [0, top], color="grey", linestyle="--", label="forecast = actual")
        _scatter_by_stock(
            ax,
            [(f, s) for f, s, o in pairs if not o],
            [(f, s) for f, s, o in pairs if o],
            "sold out (censored)",
        )
        ax.set_xlabel("Forecast units")
        ax.set_ylabel("Sold units")
        ax.legend()
    else:
        _empty(ax, "No plan items in this period")
    _save_chart(fig, ax, "forecast_actual", paths["forecast_actual"])
    return paths


# ---- Markdown ---------------------------------------------------------------------------------------------


def render_markdown(
    report: KpiReport,
    charts: dict[str, Path] | None = None,
    plan_vs_actual: PlanVsActual | None = None,
    comparison: Comparison | None = None,
) -> str:
    """The report as Markdown; charts are referenced by file name (they sit next to the report)."""
    out = [f"# {md_escape(report_title(report))}", ""]
    out += [
        f"Generated {utc_now():%Y-%m-%d %H:%M} UTC. Money in currency units; cancellations excluded.",
        "",
    ]
    out += md_table(
        [(report.by or "scope").capitalize(), *KPI_COLUMNS],
        [[n, *c] for n, c in _rows(report)],
    )
    out.append("")
    for note in report.notes:
        out.append(f"> {md_escape(note)}")
    if report.notes:
        out.append("")
    if report.stock_outs:
        out += ["## Stock-outs", ""]
        out += md_table(
            STOCK_OUT_COLUMNS,
            stock_out_rows(report),
        )
        out.append("")
    if plan_vs_actual is not None:
        pva = plan_vs_actual
        out += [f"## Plan {pva.plan_id} against actual ({pva.sale_date})", ""]
        out.append(_plan_vs_actual_summary(pva))
        out.append("")
        out += md_table(
            PLAN_VS_ACTUAL_COLUMNS,
            _plan_vs_actual_rows(pva),
        )
        out.append("")
    if comparison is not None:
        out += ["## Comparison", "", md_escape(comparison.verdict), ""]
    for name, path in (charts or {}).items():
        out += [f"## {CHART_TITLES[name]}", "", f"![{CHART_TITLES[name]}]({path.name})", ""]
    return "\n".join(out)


# ---- HTML -------------------------------------------------------------------------------------------------


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: bold; }
.note { color: #555; font-style: italic; }
img { max-width: 100%; }
"""


def render_html(
    report: KpiReport,
    charts: dict[str, Path] | None = None,
    plan_vs_actual: PlanVsActual | None = None,
    comparison: Comparison | None = None,
) -> str:
    """The report as a standalone HTML page; every value is escaped, charts are linked by file name."""
    out = [
        *html_head(report_title(report), _CSS),
        f'<p class="note">Generated {html_escape(f"{utc_now():%Y-%m-%d %H:%M}")} UTC. '
        "Money in currency units; "
        "cancellations excluded.</p>",
    ]
    out += html_table(
        [(report.by or "scope").capitalize(), *KPI_COLUMNS],
        [[n, *c] for n, c in _rows(report)],
        total_last=True,
    )
    out += [f'<p class="note">{html_escape(note)}</p>' for note in report.notes]
    if report.stock_outs:
        out.append("<h2>Stock-outs</h2>")
        out += html_table(
            STOCK_OUT_COLUMNS,
            stock_out_rows(report),
        )
    if plan_vs_actual is not None:
        pva = plan_vs_actual
        out.append(f"<h2>{html_escape(f'Plan {pva.plan_id} against actual ({pva.sale_date})')}</h2>")
        out.append(f"<p>{html_escape(_plan_vs_actual_summary(pva))}</p>")
        out += html_table(PLAN_VS_ACTUAL_COLUMNS, _plan_vs_actual_rows(pva), total_last=True)
    if comparison is not None:
        out += ["<h2>Comparison</h2>", f"<p>{html_escape(comparison.verdict)}</p>"]
    for name, path in (charts or {}).items():
        out.append(f"<h2>{html_escape(CHART_TITLES[name])}</h2>")
        out.append(f'<img src="{html_escape(path.name)}" alt="{html_escape(CHART_TITLES[name])}">')
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def write_report(
    report: KpiReport,
    out_dir: Path,
    *,
    formats: Sequence[str] = REPORT_FORMATS,
    plan_vs_actual: PlanVsActual | None = None,
    comparison: Comparison | None = None,
) -> list[Path]:
    """Write report.md / report.html and the PNG charts into ``out_dir``; returns every file written."""
    unknown = sorted(set(formats) - set(REPORT_FORMATS))
    if unknown:
        raise KpiInputError(f"Unknown report format(s) {', '.join(unknown)}: use md and/or html.")
    charts = make_charts(report, out_dir, plan_vs_actual)
    written = list(charts.values())
    if "md" in formats:
        path = out_dir / "report.md"
        written.append(write_text(path, render_markdown(report, charts, plan_vs_actual, comparison)))
    if "html" in formats:
        path = out_dir / "report.html"
        written.append(write_text(path, render_html(report, charts, plan_vs_actual, comparison)))
    return written
