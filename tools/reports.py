"""Renderers for KPI results: rich terminal tables, Markdown and HTML reports, and matplotlib charts.

Numbers come from :mod:`tools.kpi` and :mod:`tools.campaigns` (typed results); this module only formats
them. HTML escapes every value; charts are PNG files written next to the report (Agg rendering through
``matplotlib.figure.Figure``, no GUI backend and no global pyplot state).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from rich.table import Table

from db.sqlvalues import utc_now
from tools.campaigns import Comparison, PlanVsActual
from tools.data_check import DataCheck
from tools.formatting import format_cents, html_escape, html_head, html_table, md_escape, md_table, num, pct
from tools.kpi import KpiFigures, KpiInputError, KpiReport

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


KPI_COLUMNS: list[tuple[str, str]] = [
    ("GMV", "gmv"),
    ("Gross profit", "profit"),
    ("Margin", "margin"),
    ("Units", "units"),
    ("Avg discount", "depth"),
    ("Orders", "orders"),
    ("Buyers", "buyers"),
    ("Repeat-buyer share", "repeat"),
    ("Sell-through", "sell_through"),
    ("Stock-outs", "stock_outs"),
    ("Turnover", "turnover"),
    ("Incremental units", "incremental"),
]


def kpi_cells(fig: KpiFigures) -> list[str]:
    """The formatted KPI values of one row, in the order of ``KPI_COLUMNS``."""
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


def report_title(report: KpiReport) -> str:
    scope = f"plan {report.plan_id}, " if report.plan_id is not None else ""
    period = str(report.start) if report.start == report.end else f"{report.start} to {report.end}"
    return f"KPIs, {scope}{period}"


def _rows(report: KpiReport) -> list[tuple[str, list[str]]]:
    rows = [(str(g.key), kpi_cells(g)) for g in report.groups]
    rows.append(("Total", kpi_cells(report.total)))
    return rows


STOCK_OUT_COLUMNS = ("Plan", "Sale date", "SKU", "Allocated", "Sold", "Sold out at", "Minutes to sell out")


def stock_out_rows(report: KpiReport) -> list[list[str]]:
    """The formatted cells of each stock-out, in the order of ``STOCK_OUT_COLUMNS``."""
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
        for i in report.stock_outs
    ]


PLAN_VS_ACTUAL_COLUMNS = (
    "SKU",
    "Forecast",
    "Sold",
    "Allocated",
    "Planned price",
    "Avg price",
    "Driver",
    "Why",
)


def _plan_vs_actual_rows(pva: PlanVsActual) -> list[list[str]]:
    return [
        [
            i.sku,
            num(i.forecast_units),
            str(i.sold_units),
            str(i.allocated_units),
            format_cents(i.planned_price_cents),
            format_cents(i.realised_avg_price_cents),
            i.driver,
            i.explanation,
        ]
        for i in pva.items
    ]


def _plan_vs_actual_summary(pva: PlanVsActual) -> str:
    return (
        f"Forecast {num(pva.forecast_units)} units, sold {pva.sold_units}: WAPE {pct(pva.wape)}, "
        f"bias {pct(pva.bias)} (positive = over-forecast). "
        f"Profit {format_cents(pva.profit_cents)} against "
        f"{format_cents(pva.expected_profit_cents)} expected."
    )


# ---- terminal -------------------------------------------------------------------------------------------


def kpi_table(report: KpiReport) -> Table:
    """A rich table: one row per group and a total row; totals only (no grouping) as a figure/value list."""
    table = Table(title=report_title(report), header_style="bold")
    if report.by is None:
        table.add_column("Figure")
        table.add_column("Value", justify="right")
        for (label, _), cell in zip(KPI_COLUMNS, kpi_cells(report.total), strict=True):
            table.add_row(label, cell)
    else:
        table.add_column(report.by.capitalize())
        for label, _ in KPI_COLUMNS:
            table.add_column(label, justify="right")
        rows = _rows(report)
        for i, (name, cells) in enumerate(rows):
            is_total = i == len(rows) - 1
            table.add_row(name, *cells, style="bold" if is_total else None, end_section=i == len(rows) - 2)
    if report.notes:
        table.caption = " ".join(report.notes)
    return table


def stock_out_table(report: KpiReport) -> Table | None:
    if not report.stock_outs:
        return None
    table = Table(title="Stock-outs", header_style="bold")
    for col in STOCK_OUT_COLUMNS:
        table.add_column(col, justify="left" if col in ("SKU", "Sale date") else "right")
    for row in stock_out_rows(report):
        table.add_row(*row)
    return table


def plan_vs_actual_table(pva: PlanVsActual) -> Table:
    table = Table(
        title=f"Plan {pva.plan_id} ({pva.sale_date}): forecast against actual",
        caption=f"WAPE {pct(pva.wape)}, bias {pct(pva.bias)} (positive = over-forecast)",
        header_style="bold",
    )
    for col in (
        "SKU",
        "Forecast",
        "Sold",
        "Allocated",
        "Planned price",
        "Avg price",
        "Profit",
        "Driver",
        "Why",
    ):
        table.add_column(col, justify="left" if col in ("SKU", "Driver", "Why") else "right")
    for item in pva.items:
        table.add_row(
            item.sku,
            num(item.forecast_units),
            str(item.sold_units),
            str(item.allocated_units),
            format_cents(item.planned_price_cents),
            format_cents(item.realised_avg_price_cents),
            format_cents(item.profit_cents),
            item.driver,
            item.explanation,
        )
    table.add_row(
        "Total",
        num(pva.forecast_units),
        str(pva.sold_units),
        "",
        "",
        "",
        format_cents(pva.profit_cents),
        "",
        "",
        style="bold",
    )
    return table


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
    fig.savefig(path, format="png")


def make_charts(
    report: KpiReport, out_dir: Path, plan_vs_actual: PlanVsActual | None = None
) -> dict[str, Path]:
    """Write the report's PNG charts into ``out_dir``; returns chart name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
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
        [(report.by or "scope").capitalize()] + [c for c, _ in KPI_COLUMNS],
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
        [(report.by or "scope").capitalize()] + [c for c, _ in KPI_COLUMNS],
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
        out += html_table(
            PLAN_VS_ACTUAL_COLUMNS,
            _plan_vs_actual_rows(pva),
        )
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
        path.write_text(render_markdown(report, charts, plan_vs_actual, comparison), encoding="utf-8")
        written.append(path)
    if "html" in formats:
        path = out_dir / "report.html"
        path.write_text(render_html(report, charts, plan_vs_actual, comparison), encoding="utf-8")
        written.append(path)
    return written
