"""The daily draft as people read it: Markdown, HTML and the plan chart, from the draft's data (the stored
plan, the last sale's KPIs, the signals and the narrative). Text from the data is escaped in every format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from db.files import save_figure
from tools.forecast_guard import ForecastEvidence
from tools.formatting import format_cents, html_head, html_table, md_escape, md_table, pct
from tools.formatting import html_escape as _h


def binding_text(b: dict[str, Any]) -> str:
    """A binding constraint and what relaxing it is worth, e.g. '20 sale slots (one more sale slot:
    +137.14)'."""
    worth = b.get("marginal_value_cents")
    if worth is None:
        return str(b["label"])
    return f"{b['label']} ({b.get('marginal_unit') or 'one unit more'}: +{format_cents(worth)})"


PLAN_COLUMNS = ("SKU", "Title", "Category", "Off", "List", "Sale", "Alloc.", "Units~", "Revenue~", "Profit~")
PLAN_LEGEND = (
    "Off: discount; List, Sale: list and sale price; Alloc.: units set aside; Units~, Revenue~, Profit~: "
    "expected units sold within the allocation, revenue and gross profit."
)


def _flagged(item: dict[str, Any]) -> bool:
    return bool((item.get("evidence") or {}).get("flagged"))


def guard_lines(data: dict[str, Any]) -> list[str]:
    """The planned items forecast beyond the forecast guard's bound, each with its evidence."""
    return [
        ForecastEvidence.model_validate(i["evidence"]).summary() for i in data["plan"]["items"] if _flagged(i)
    ]


def plan_rows(data: dict[str, Any]) -> list[list[str]]:
    return [
        [
            i["sku"] + (" (!)" if _flagged(i) else ""),
            i["title"],
            i["category"],
            pct(i["discount"], 0),
            format_cents(i["list_price_cents"]),
            format_cents(i["sale_price_cents"]),
            f"{i['allocated_units']:,}",
            f"{i['expected_units']:,.1f}",
            format_cents(i["expected_revenue_cents"]),
            format_cents(i["expected_profit_cents"]),
        ]
        for i in sorted(data["plan"]["items"], key=lambda i: -i["expected_profit_cents"])
    ]


def kpi_rows(last: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("GMV", format_cents(last["gmv_cents"])),
        ("Gross profit", format_cents(last["gross_profit_cents"])),
        ("Margin", pct(last["margin"])),
        ("Units", f"{last['units']:,}"),
        ("Orders", "–" if last["orders"] is None else f"{last['orders']:,}"),
        ("Unique buyers", f"{last['unique_buyers']:,}"),
        ("Average discount depth", pct(last["avg_discount_depth"])),
        ("Allocated units", f"{last['allocated_units']:,}"),
        ("Sell-through", pct(last["sell_through"])),
        ("Stock-outs", str(last["stock_outs"])),
        (
            "Incremental units",
            "–" if last["incremental_units"] is None else f"{last['incremental_units']:,.1f}",
        ),
        ("Forecast WAPE", pct(last["forecast_wape"])),
        ("Forecast bias", pct(last["forecast_bias"])),
    ]


def _signal_line(s: dict[str, Any]) -> str:
    sources = ", ".join(src["ref"] + (f" ({src['title']})" if src["title"] else "") for src in s["sources"])
    return (
        f"signal {s['id']}: {s['direction']} on {s['scope']} {s['scope_value']}, "
        f"multiplier x{s['multiplier']:.2f} "
        f"(confidence {s['confidence']:.2f}, {s['valid_from']} to {s['valid_to']}, by {s['extracted_by']}); "
        f"planned SKUs touched: {', '.join(s['plan_skus'])}; sources: {sources or 'none recorded'}"
    )


def render_markdown(data: dict[str, Any]) -> str:
    plan = data["plan"]
    out = [f"# Flash-sale plan draft for {data['sale_date']}", ""]
    out.append(
        f"Generated {data['generated_at']} · draft plan {plan['id']} "
        "(status draft: a person approves it) · "
        f"demand model {data['demand_model']['id']}"
        + (" (refitted for this draft)" if data["demand_model"]["refitted"] else "")
    )
    out += ["", "## Summary", ""]
    out.append(
        f"{len(plan['items'])} SKUs, {plan['allocated_units']:,} units allocated; expected "
        f"{plan['expected_units']:,.1f} units, revenue {format_cents(plan['expected_revenue_cents'])}, "
        "gross profit "
        f"{format_cents(plan['expected_profit_cents'])}, "
        f"markdown cost {format_cents(plan['markdown_cost_cents'])}. "
        f"Solver: {plan['solver_status']}, gap {pct(plan['gap'], 2)} to the LP bound."
    )
    narrative = data["narrative"]["text"].replace("<", "&lt;").replace(">", "&gt;")  # model text: no raw HTML
    out += ["", "## Narrative", "", f"*{md_escape(data['narrative']['label'])}*", "", narrative, ""]
    out += ["## Plan", ""]
    if plan["items"]:
        out += [*md_table(PLAN_COLUMNS, plan_rows(data), left_columns=3), "", PLAN_LEGEND]
    else:
        out.append("No SKU was selected.")
    if plan["binding"]:
        out += ["", "Binding constraints: " + "; ".join(binding_text(b) for b in plan["binding"])]
    flagged = guard_lines(data)
    if flagged:
        out += ["", "(!) Forecast above the forecast guard's bound (check before approving):", ""]
        out += [f"- {md_escape(line)}" for line in flagged]
    out += ["", "## Last sale", ""]
    last = data["last_sale"]
    if last is None:
        out.append(f"No sale was closed before {data['sale_date']}.")
    else:
        out.append(f"KPIs of plan {last['plan_id']} on {last['sale_date']}:")
        out.append("")
        out += ["| KPI | Value |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in kpi_rows(last)]
        out += [f"> {md_escape(n)}" for n in last["notes"]]
    out += ["", "## Market signals behind the plan", ""]
    if data["signals"]:
        out += [f"- {md_escape(_signal_line(s))}" for s in data["signals"]]
    else:
        out.append("No stored market signal touched the forecast of a planned SKU.")
    out += ["", "## Charts", ""]
    for name, filename in data["charts"].items():
        out += [f"![{name}]({filename})", ""]
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 75em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:nth-child(-n+3), td:nth-child(-n+3) { text-align: left; }
.label { color: #555; font-style: italic; }
img { max-width: 100%; }
"""


def render_html(data: dict[str, Any]) -> str:
    plan = data["plan"]
    title = f"Flash-sale plan draft for {data['sale_date']}"
    out = [
        *html_head(title, _CSS),
        f'<p class="label">Generated {_h(data["generated_at"])} · draft plan {_h(plan["id"])} (a person '
        f"approves it) · demand model {_h(data['demand_model']['id'])}</p>",
        "<h2>Summary</h2>",
        f"<p>{_h(len(plan['items']))} SKUs, {_h(format(plan['allocated_units'], ','))} units allocated; "
        "expected "
        f"revenue {_h(format_cents(plan['expected_revenue_cents']))}, gross profit "
        f"{_h(format_cents(plan['expected_profit_cents']))}. Solver: {_h(plan['solver_status'])}.</p>",
        "<h2>Narrative</h2>",
        f'<p class="label">{_h(data["narrative"]["label"])}</p>',
        f"<p>{_h(data['narrative']['text'])}</p>",
        "<h2>Plan</h2>",
    ]
    if plan["items"]:
        out += [*html_table(PLAN_COLUMNS, plan_rows(data)), f'<p class="note">{_h(PLAN_LEGEND)}</p>']
    else:
        out.append("<p>No SKU was selected.</p>")
    flagged = guard_lines(data)
    if flagged:
        out.append("<p>(!) Forecast above the forecast guard's bound (check before approving):</p>")
        out += ["<ul>", *(f"<li>{_h(line)}</li>" for line in flagged), "</ul>"]
    out.append("<h2>Last sale</h2>")
    last = data["last_sale"]
    if last is None:
        out.append(f"<p>No sale was closed before {_h(data['sale_date'])}.</p>")
    else:
        out.append(f"<p>KPIs of plan {_h(last['plan_id'])} on {_h(last['sale_date'])}:</p>")
        out += html_table(["KPI", "Value"], [[k, v] for k, v in kpi_rows(last)])
    out.append("<h2>Market signals behind the plan</h2>")
    if data["signals"]:
        out += ["<ul>", *(f"<li>{_h(_signal_line(s))}</li>" for s in data["signals"]), "</ul>"]
    else:
        out.append("<p>No stored market signal touched the forecast of a planned SKU.</p>")
    out.append("<h2>Charts</h2>")
    for name, filename in data["charts"].items():
        out.append(
            f'<figure><img src="{_h(filename)}" alt="{_h(name)}"><figcaption>{_h(name)}</figcaption></figure>'
        )
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def plan_chart(data: dict[str, Any], path: Path) -> Path:
    """Bar chart of the planned SKUs' expected profit, labelled with their discounts."""
    items = sorted(data["plan"]["items"], key=lambda i: -i["expected_profit_cents"])
    fig = Figure(figsize=(9, max(3.0, 0.3 * len(items) + 1.2)), dpi=100)
    ax = fig.add_subplot()
    if items:
        y = np.arange(len(items))
        ax.barh(y, [i["expected_profit_cents"] / 100 for i in items], color="#3b7dd8")
        ax.set_yticks(y, [f"{i['sku']} (-{i['discount'] * 100:.0f} %)" for i in items], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("Expected gross profit")
    else:
        ax.text(0.5, 0.5, "No SKU selected", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Draft plan for {data['sale_date']}: expected profit per SKU")
    fig.tight_layout()
    return save_figure(fig, path)
