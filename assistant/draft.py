"""The daily plan draft: refit when the data changed, optimise the next sale, save the plan as a draft and
write it up as Markdown, HTML and JSON with charts.

:func:`make_draft` is idempotent per sale date: a second run for a date whose ``draft.json`` exists reuses
it (``force=True`` writes a new one). Two concurrent runs for the same date never both write: the second
finds the draft's lock taken (an ``fcntl.flock`` on ``OUT/.draft-DATE.lock``, released by the kernel even
when a run dies) and raises :class:`DraftLocked`. The lock is local to one machine's file system; runs on
several machines need one shared scheduler.

Files, in ``OUT/DATE/``: ``draft.md``, ``draft.html``, ``draft.json``, ``plan.png`` and, when a sale was
closed before the date, the last sale's charts from :func:`tools.reports.make_charts`. ``draft.json`` is
written last, so its presence means the draft is complete.

Sections: the plan table; the KPIs of the last closed sale; the market signals that touched the planned
SKUs' forecasts, with their sources; a narrative written by the LLM when one is reachable (numbers checked
against the facts) or from a template otherwise, labelled either way; the charts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from matplotlib.figure import Figure
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from assistant.narrative import Narrative, NarrativeFacts, NarrativeItem, NarrativeLastSale, NarrativeSignal
from assistant.narrative import write_narrative as _write_narrative
from db.audit import record_audit
from db.engine import session_scope
from db.errors import FlashSaleError
from db.models import FlashSalePlan, MarketNews, MarketSignal, Order, PlanStatus, Product
from tools.demand import (
    DemandModel,
    fit_demand_model,
    last_sales_date,
    load_latest_demand_model,
    save_demand_model,
)
from tools.formatting import format_cents, html_head, html_table, md_escape, md_table, pct
from tools.formatting import html_escape as _h
from tools.optimizer import ObjectiveWeights, PlanConstraints, PlanResult, SolverOptions, optimize_plan

DRAFT_FILES = ("draft.md", "draft.html", "draft.json")
FINGERPRINT_KEY = "data_fingerprint"
AUDIT_CHANNEL = "draft"
Progress = Callable[[str], None]


class DraftError(FlashSaleError):
    """The daily draft cannot be made as asked."""


class DraftLocked(DraftError):
    """Another run is writing the draft of the same date right now."""


# ---- lock --------------------------------------------------------------------------------------------------


def lock_path(out_dir: Path, sale_date: dt.date) -> Path:
    return out_dir / f".draft-{sale_date.isoformat()}.lock"


@contextmanager
def draft_lock(out_dir: Path, sale_date: dt.date) -> Iterator[Path]:
    """Hold the exclusive lock of ``sale_date``'s draft; :class:`DraftLocked` when another run holds it.

    ``flock`` locks belong to an open file description, so two runs (processes or threads) conflict and a
    crashed run's lock disappears with it. The lock file is never deleted: deleting it would let a third run
    lock a new file while a second still waits on the old one.
    """
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(out_dir, sale_date)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = path.read_text(encoding="utf-8").strip() or "another run"
            raise DraftLocked(
                f"the draft for {sale_date} is being written by {holder}; this run was refused. "
                "Wait for it to finish (the result is reused) or try again later."
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC".encode())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ---- result ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftResult:
    """What :func:`make_draft` produced (or found, when ``reused``)."""

    sale_date: dt.date
    folder: Path
    plan_id: int | None
    reused: bool
    refitted: bool
    demand_model_id: int | None
    narrative_label: str
    files: list[Path]
    data: dict[str, Any] = field(repr=False)

    @property
    def markdown_path(self) -> Path:
        return self.folder / "draft.md"

    @property
    def json_path(self) -> Path:
        return self.folder / "draft.json"


def draft_folder(out_dir: Path, sale_date: dt.date) -> Path:
    return out_dir / sale_date.isoformat()


def existing_draft(out_dir: Path, sale_date: dt.date) -> DraftResult | None:
    """The finished draft of ``sale_date`` in ``out_dir``, or None."""
    folder = draft_folder(out_dir, sale_date)
    path = folder / "draft.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return DraftResult(
        sale_date=sale_date,
        folder=folder,
        plan_id=data.get("plan", {}).get("plan_id"),
        reused=True,
        refitted=False,
        demand_model_id=data.get("demand_model", {}).get("id"),
        narrative_label=data.get("narrative", {}).get("label", ""),
        files=sorted(p for p in folder.iterdir() if p.is_file()),
        data=data,
    )


# ---- refit -------------------------------------------------------------------------------------------------


def data_fingerprint(session: Session) -> dict[str, Any]:
    """Number of orders and the newest order time: changes whenever orders are added or removed."""
    count, newest = session.execute(select(func.count(Order.id), func.max(Order.ts))).one()
    newest_text = None if newest is None else str(newest)[:19]
    return {"orders": int(count or 0), "newest_order": newest_text}


def _fit_stage(stage: str, done: int, total: int) -> str:
    return f"fitting: {stage} ({done:,}/{total:,})" if total else f"fitting: {stage}"


def fresh_demand_model(session: Session, *, progress: Progress | None = None) -> tuple[DemandModel, bool]:
    """The latest stored demand model when the order data have not changed since it was fitted, else a new
    fit on the current data (stored, with the data's fingerprint). Returns the model and whether it is new.

    A model fitted by this function carries the fingerprint and is reused while it matches; a model fitted
    elsewhere (``python cli.py fit``) is reused when no order is newer than its window's end.
    """
    model = load_latest_demand_model(session)
    fingerprint = data_fingerprint(session)
    if model is not None:
        stored = model.metrics.get(FINGERPRINT_KEY)
        if stored == fingerprint:
            return model, False
        if stored is None:
            newest = last_sales_date(session)
            if newest is not None and newest <= model.window_end:
                return model, False
    if progress:
        progress("refitting the demand model (order data changed)" if model else "fitting the demand model")
    fitted = fit_demand_model(
        session,
        progress=None
        if progress is None
        else lambda stage, done, total: progress(_fit_stage(stage, done, total)),
    )
    fitted.metrics[FINGERPRINT_KEY] = fingerprint
    save_demand_model(session, fitted)
    return fitted, True


# ---- facts -------------------------------------------------------------------------------------------------


def last_closed_plan(session: Session, before: dt.date) -> FlashSalePlan | None:
    """The closed plan with the newest sale date before ``before``."""
    return session.scalars(
        select(FlashSalePlan)
        .where(FlashSalePlan.status == PlanStatus.CLOSED, FlashSalePlan.sale_date < before)
        .order_by(FlashSalePlan.sale_date.desc(), FlashSalePlan.id.desc())
        .limit(1)
    ).first()


def _source_ref(source: Any) -> str:
    text = str(source)
    return text if ":" in text else f"news:{text}"


def _signal_rows(
    session: Session, plan_skus: list[str], candidate_skus: list[str], signal_ids: list[list[int]]
) -> list[dict[str, Any]]:
    """The stored signals that touched a planned SKU's forecast, with their sources and the SKUs touched."""
    in_plan = set(plan_skus)
    touched: dict[int, list[str]] = {}
    for sku, ids in zip(candidate_skus, signal_ids, strict=True):
        if sku in in_plan:
            for sid in ids:
                touched.setdefault(int(sid), []).append(sku)
    if not touched:
        return []
    rows = session.scalars(select(MarketSignal).where(MarketSignal.id.in_(list(touched)))).all()
    news_ids = {
        int(ref.split(":", 1)[1])
        for row in rows
        for ref in map(_source_ref, row.source_ids or [])
        if ref.startswith("news:") and ref.split(":", 1)[1].isdigit()
    }
    titles = {
        int(r[0]): str(r[1])
        for r in session.execute(select(MarketNews.id, MarketNews.title).where(MarketNews.id.in_(news_ids)))
    }
    from tools.signals import SignalEffect

    out: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: r.id):
        try:
            effect = SignalEffect.from_row(row).effective_multiplier()
        except ValueError:
            continue
        sources = []
        for ref in map(_source_ref, row.source_ids or []):
            kind, _, ident = ref.partition(":")
            title = titles.get(int(ident)) if kind == "news" and ident.isdigit() else None
            sources.append({"ref": ref, "title": title})
        out.append(
            {
                "id": row.id,
                "scope": str(getattr(row.scope, "value", row.scope)),
                "scope_value": row.scope_value,
                "direction": str(getattr(row.direction, "value", row.direction)),
                "multiplier": round(effect, 3),
                "confidence": row.confidence,
                "valid_from": row.valid_from.isoformat(),
                "valid_to": row.valid_to.isoformat(),
                "evidence": row.evidence,
                "extracted_by": row.extracted_by,
                "plan_skus": sorted(touched[row.id]),
                "sources": sources,
            }
        )
    return out


def _last_sale(
    session: Session, sale_date: dt.date, folder: Path
) -> tuple[dict[str, Any] | None, list[Path]]:
    from tools.campaigns import plan_vs_actual
    from tools.kpi import kpi_report
    from tools.reports import make_charts

    plan = last_closed_plan(session, sale_date)
    if plan is None:
        return None, []
    report = kpi_report(session, None, None, plan_id=plan.id)
    try:
        pva = plan_vs_actual(session, plan.id, today=sale_date)
    except FlashSaleError:
        pva = None
    charts = make_charts(report, folder, pva)
    t = report.total
    data = {
        "plan_id": plan.id,
        "sale_date": plan.sale_date.isoformat(),
        "gmv_cents": t.gmv_cents,
        "gross_profit_cents": t.gross_profit_cents,
        "margin": t.margin,
        "units": t.units,
        "orders": t.orders,
        "unique_buyers": t.unique_buyers,
        "avg_discount_depth": t.avg_discount_depth,
        "allocated_units": t.allocated_units,
        "sale_units": t.sale_units,
        "sell_through": t.sell_through,
        "stock_outs": t.stock_outs,
        "incremental_units": t.incremental_units,
        "forecast_wape": None if pva is None else pva.wape,
        "forecast_bias": None if pva is None else pva.bias,
        "notes": list(report.notes),
        "charts": {name: path.name for name, path in charts.items()},
    }
    return data, list(charts.values())


def _plan_data(session: Session, result: PlanResult, plan_id: int | None) -> dict[str, Any]:
    skus = [it.sku for it in result.items]
    titles = {
        str(r[0]): str(r[1])
        for r in session.execute(select(Product.sku, Product.title).where(Product.sku.in_(skus)))
    }
    return {
        "plan_id": plan_id,
        "status": result.status,
        "objective": result.objective,
        "gap": result.gap,
        **result.expected_totals(),
        "constraints": result.constraints.model_dump(mode="json"),
        "weights": result.weights.model_dump(mode="json"),
        "binding": [{"label": b.label, "dual": b.dual, "slack": b.slack} for b in result.binding],
        "items": [
            {
                "sku": it.sku,
                "title": titles.get(it.sku, ""),
                "category": it.category,
                "brand": it.brand,
                "discount": it.discount,
                "list_price_cents": it.list_price_cents,
                "sale_price_cents": it.sale_price_cents,
                "allocated_units": it.allocated_units,
                "forecast_units": it.forecast_units,
                "expected_units": it.expected_units,
                "expected_revenue_cents": it.expected_revenue_cents,
                "expected_profit_cents": it.expected_profit_cents,
                "margin": it.margin,
                "reason": it.reason,
            }
            for it in result.items
        ],
    }


def narrative_facts(data: dict[str, Any]) -> NarrativeFacts:
    """The narrative's facts from the draft's JSON data."""
    plan = data["plan"]
    items = sorted(plan["items"], key=lambda i: -i["expected_profit_cents"])
    last = data.get("last_sale")
    return NarrativeFacts(
        sale_date=dt.date.fromisoformat(data["sale_date"]),
        plan_id=plan["plan_id"],
        n_items=len(items),
        expected_revenue_cents=plan["expected_revenue_cents"],
        expected_profit_cents=plan["expected_profit_cents"],
        expected_units=round(plan["expected_units"], 1),
        allocated_units=plan["allocated_units"],
        markdown_cost_cents=plan["markdown_cost_cents"],
        solver_status=plan["status"],
        gap=plan["gap"],
        top_items=[
            NarrativeItem(
                sku=i["sku"],
                title=i["title"],
                category=i["category"],
                discount=i["discount"],
                sale_price_cents=i["sale_price_cents"],
                allocated_units=i["allocated_units"],
                expected_units=round(i["expected_units"], 1),
                expected_profit_cents=i["expected_profit_cents"],
            )
            for i in items[:5]
        ],
        categories=dict(Counter(i["category"] for i in items)),
        binding_constraints=[b["label"] for b in plan["binding"]],
        last_sale=None
        if last is None
        else NarrativeLastSale(
            plan_id=last["plan_id"],
            sale_date=dt.date.fromisoformat(last["sale_date"]),
            gmv_cents=last["gmv_cents"],
            gross_profit_cents=last["gross_profit_cents"],
            units=last["units"],
            sell_through=last["sell_through"],
            stock_outs=last["stock_outs"],
        ),
        signals=[
            NarrativeSignal(
                id=s["id"],
                scope=s["scope"],
                scope_value=s["scope_value"],
                direction=s["direction"],
                multiplier=s["multiplier"],
                plan_skus=s["plan_skus"],
                source_ids=[src["ref"] for src in s["sources"]],
            )
            for s in data["signals"]
        ],
        demand_model_id=data["demand_model"]["id"],
        refitted=data["demand_model"]["refitted"],
    )


# ---- rendering ---------------------------------------------------------------------------------------------


PLAN_COLUMNS = (
    "SKU",
    "Title",
    "Category",
    "Discount",
    "List price",
    "Sale price",
    "Allocated",
    "Expected units",
    "Expected revenue",
    "Expected profit",
)


def plan_rows(data: dict[str, Any]) -> list[list[str]]:
    return [
        [
            i["sku"],
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
        f"Generated {data['generated_at']} · draft plan {plan['plan_id']} "
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
        f"Solver: {plan['status']}, gap {pct(plan['gap'], 2)} to the LP bound."
    )
    narrative = data["narrative"]["text"].replace("<", "&lt;").replace(">", "&gt;")  # model text: no raw HTML
    out += ["", "## Narrative", "", f"*{md_escape(data['narrative']['label'])}*", "", narrative, ""]
    out += ["## Plan", ""]
    out += (
        md_table(PLAN_COLUMNS, plan_rows(data), left_columns=3) if plan["items"] else ["No SKU was selected."]
    )
    if plan["binding"]:
        out += [
            "",
            "Binding constraints: "
            + "; ".join(f"{b['label']} (LP dual {b['dual']:,.2f})" for b in plan["binding"]),
        ]
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
        f'<p class="label">Generated {_h(data["generated_at"])} · draft plan {_h(plan["plan_id"])} (a person '
        f"approves it) · demand model {_h(data['demand_model']['id'])}</p>",
        "<h2>Summary</h2>",
        f"<p>{_h(len(plan['items']))} SKUs, {_h(format(plan['allocated_units'], ','))} units allocated; "
        "expected "
        f"revenue {_h(format_cents(plan['expected_revenue_cents']))}, gross profit "
        f"{_h(format_cents(plan['expected_profit_cents']))}. Solver: {_h(plan['status'])}.</p>",
        "<h2>Narrative</h2>",
        f'<p class="label">{_h(data["narrative"]["label"])}</p>',
        f"<p>{_h(data['narrative']['text'])}</p>",
        "<h2>Plan</h2>",
    ]
    out += html_table(PLAN_COLUMNS, plan_rows(data)) if plan["items"] else ["<p>No SKU was selected.</p>"]
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
    fig.savefig(path, format="png")
    return path


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# ---- the draft ---------------------------------------------------------------------------------------------


def make_draft(
    session_factory: sessionmaker[Session],
    sale_date: dt.date,
    chat_model: BaseChatModel | None,
    out_dir: Path,
    *,
    force: bool = False,
    constraints: PlanConstraints | None = None,
    objective: ObjectiveWeights | None = None,
    solver_options: SolverOptions | None = None,
    actor: str = "daily-draft",
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> DraftResult:
    """Make (or reuse) the plan draft for ``sale_date`` in ``out_dir/DATE/``; see the module docstring.

    ``chat_model`` writes the narrative (None: the template). Raises :class:`DraftLocked` when another run
    holds the date's lock, and the optimiser's errors (e.g. ``InfeasiblePlan``) unchanged.
    """
    out_dir = Path(out_dir)
    with draft_lock(out_dir, sale_date):
        if not force:
            found = existing_draft(out_dir, sale_date)
            if found is not None:
                return found
        return _make(
            session_factory,
            sale_date,
            chat_model,
            out_dir,
            constraints=constraints,
            objective=objective,
            solver_options=solver_options,
            actor=actor,
            progress=progress,
            now=now,
        )


def _make(
    factory: sessionmaker[Session],
    sale_date: dt.date,
    chat_model: BaseChatModel | None,
    out_dir: Path,
    *,
    constraints: PlanConstraints | None,
    objective: ObjectiveWeights | None,
    solver_options: SolverOptions | None,
    actor: str,
    progress: Progress | None,
    now: dt.datetime | None,
) -> DraftResult:
    from tools.plans import build_candidates, save_draft_plan

    started = time.perf_counter()
    folder = draft_folder(out_dir, sale_date)
    folder.mkdir(parents=True, exist_ok=True)
    generated = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    exchanges: list[dict[str, Any]] = []

    with session_scope(factory) as session:
        model, refitted = fresh_demand_model(session, progress=progress)
        if progress:
            progress("building candidates")
        candidates = build_candidates(session, sale_date, model)
        if progress:
            progress(f"optimising {candidates.n} candidates")
        options = solver_options or SolverOptions(deterministic=True, time_limit_s=60.0)
        result = optimize_plan(candidates, constraints, objective, options)
        plan_id = save_draft_plan(session, result, candidates, sale_date=sale_date, created_by=actor)
        if progress:
            progress("last sale's KPIs and charts")
        last_sale, last_charts = _last_sale(session, sale_date, folder)
        signals = _signal_rows(session, result.skus, candidates.skus, candidates.grid.signal_ids)
        data: dict[str, Any] = {
            "sale_date": sale_date.isoformat(),
            "generated_at": f"{generated:%Y-%m-%d %H:%M} UTC",
            "demand_model": {
                "id": model.id,
                "refitted": refitted,
                "window_start": model.window_start.isoformat(),
                "window_end": model.window_end.isoformat(),
            },
            "plan": _plan_data(session, result, plan_id),
            "last_sale": last_sale,
            "signals": signals,
        }
        # The narrative sees the facts only; the model exchange is audited with the draft.
        if progress:
            progress("writing the narrative" + (" with the model" if chat_model is not None else ""))
        narrative: Narrative = _write_narrative(
            narrative_facts(data), chat_model, on_exchange=exchanges.append
        )
        data["narrative"] = {
            "label": narrative.label,
            "author": narrative.author,
            "text": narrative.text,
            "prompt_version": narrative.prompt_version,
            "rejected_numbers": list(narrative.rejected_numbers),
        }
        charts = {"plan": plan_chart(data, folder / "plan.png").name}
        charts.update({p.stem: p.name for p in last_charts})
        data["charts"] = charts
        files = [folder / name for name in charts.values()]
        files.append(_write_text(folder / "draft.md", render_markdown(data)))
        files.append(_write_text(folder / "draft.html", render_html(data)))
        for ex in exchanges:
            record_audit(
                session,
                actor=actor,
                channel=AUDIT_CHANNEL,
                kind="llm",
                name=ex["name"],
                inputs=ex["inputs"],
                outputs=ex["outputs"],
                latency_ms=round(ex["latency_ms"], 3),
                session_id=f"draft:{sale_date}",
                error=ex["error"],
            )
        record_audit(
            session,
            actor=actor,
            channel=AUDIT_CHANNEL,
            kind="draft",
            name="make_draft",
            inputs={"sale_date": sale_date, "out_dir": str(out_dir)},
            outputs={
                "plan_id": plan_id,
                "folder": str(folder),
                "refitted": refitted,
                "demand_model_id": model.id,
                "narrative": narrative.label,
                "signals": [s["id"] for s in signals],
            },
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            session_id=f"draft:{sale_date}",
        )
    # Written after the commit: its presence means the draft (and its plan) is complete.
    files.append(_write_text(folder / "draft.json", json.dumps(data, indent=2, default=str)))
    return DraftResult(
        sale_date=sale_date,
        folder=folder,
        plan_id=plan_id,
        reused=False,
        refitted=refitted,
        demand_model_id=model.id,
        narrative_label=narrative.label,
        files=files,
        data=data,
    )
