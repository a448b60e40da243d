"""The daily plan draft: refit when the data changed, plan the next sale with the plan service, save the plan
as a draft and write it up as Markdown, HTML and JSON with charts.

:func:`make_draft` is idempotent per sale date: a second run for a date whose ``draft.json`` exists reuses
it (``force=True`` writes a new one). Two concurrent runs for the same date never both write: the second
finds the draft's lock taken (an ``fcntl.flock`` on ``OUT/.draft-DATE.lock``, released by the kernel even
when a run dies) and raises :class:`DraftLocked`. The lock is local to one machine's file system; runs on
several machines need one shared scheduler.

The run holds no database transaction while the narrative model writes or the charts are drawn: the plan is
saved and committed first (a short write transaction), the facts are read in a read-only session, then the
model writes, the files are written and the audit rows go in a second short transaction. A run that fails
after the plan was committed leaves that draft plan; the next run for the date (without ``force``) takes
it up and completes the files instead of planning again.

Files, in ``OUT/DATE/``: ``draft.md``, ``draft.html``, ``draft.json``, ``plan.png`` and, when a sale was
closed before the date, the last sale's charts from :func:`tools.reports.make_charts`. ``draft.json`` is
written last, so its presence means the draft is complete.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from assistant.draft_render import plan_chart, render_html, render_markdown
from assistant.narrative import Narrative, NarrativeFacts, NarrativeLastSale, NarrativeSignal, write_narrative
from db.audit import record_audit
from db.engine import read_only_scope, session_scope
from db.errors import FlashSaleError
from db.files import output_folder, write_text
from db.job_lock import file_lock
from db.models import FlashSalePlan, MarketNews, MarketSignal, PlanStatus
from db.sqlvalues import utc_now
from tools.campaigns import sale_review
from tools.demand import refresh_demand_model
from tools.kpi import kpi_report, last_closed_plan
from tools.planning import PlanRequest, propose_plan, save_proposal
from tools.plans import StoredPlan, load_plan
from tools.reports import make_charts
from tools.signals import SignalEffect

DRAFT_FILES = ("draft.md", "draft.html", "draft.json")
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
    """Hold the exclusive lock of ``sale_date``'s draft; :class:`DraftLocked` when another run holds it."""
    output_folder(out_dir)
    path = lock_path(out_dir, sale_date)

    def refused(holder: str) -> DraftLocked:
        return DraftLocked(
            f"the draft for {sale_date} is being written by {holder}; this run was refused. "
            "Wait for it to finish (the result is reused) or try again later."
        )

    with file_lock(path, refused) as held:
        yield held


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
        plan_id=data.get("plan", {}).get("id"),
        reused=True,
        refitted=False,
        demand_model_id=data.get("demand_model", {}).get("id"),
        narrative_label=data.get("narrative", {}).get("label", ""),
        files=sorted(p for p in folder.iterdir() if p.is_file()),
        data=data,
    )


# ---- facts -------------------------------------------------------------------------------------------------


def _source_ref(source: Any) -> str:
    text = str(source)
    return text if ":" in text else f"news:{text}"


def _signal_rows(session: Session, plan: StoredPlan) -> list[dict[str, Any]]:
    """The stored signals that touched a planned SKU's forecast, with their sources and the SKUs touched."""
    touched: dict[int, list[str]] = {}
    for item in plan.items:
        for sid in item.signal_ids:
            touched.setdefault(int(sid), []).append(item.sku)
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
    plan = last_closed_plan(session, sale_date)
    if plan is None:
        return None, []
    report = kpi_report(session, None, None, plan_id=plan.id)
    pva, _ = sale_review(session, plan.id, today=sale_date)
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


def narrative_facts(data: dict[str, Any]) -> NarrativeFacts:
    """The narrative's facts from the draft's JSON data."""
    plan = StoredPlan.model_validate(data["plan"])
    items = sorted(plan.items, key=lambda i: -i.expected_profit_cents)
    last = data.get("last_sale")
    return NarrativeFacts(
        sale_date=dt.date.fromisoformat(data["sale_date"]),
        plan_id=plan.id,
        n_items=len(items),
        expected_revenue_cents=plan.expected_revenue_cents,
        expected_profit_cents=plan.expected_profit_cents,
        expected_units=round(plan.expected_units, 1),
        allocated_units=plan.allocated_units,
        markdown_cost_cents=plan.markdown_cost_cents,
        solver_status=plan.solver_status or "unknown",
        gap=plan.gap or 0.0,
        top_items=items[:5],
        categories=dict(Counter(i.category for i in items)),
        binding_constraints=[b["label"] for b in plan.binding],
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


# ---- the draft ---------------------------------------------------------------------------------------------


def make_draft(
    session_factory: sessionmaker[Session],
    sale_date: dt.date,
    chat_model: BaseChatModel | None,
    out_dir: Path,
    *,
    today: dt.date,
    force: bool = False,
    request: PlanRequest | None = None,
    actor: str = "daily-draft",
    currency: str = "EUR",
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> DraftResult:
    """Make (or reuse) the plan draft for ``sale_date`` in ``out_dir/DATE/``; see the module docstring.

    ``request`` is the plan asked for (default: the plan service's defaults) and ``today`` the shop's date.
    ``chat_model`` writes the narrative (None: the template). Raises :class:`DraftLocked` when another run
    holds the date's lock, and the plan service's errors (e.g. ``InfeasiblePlan``) unchanged.
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
            today=today,
            resume=not force,
            request=(request or PlanRequest()).model_copy(update={"sale_date": sale_date}),
            actor=actor,
            currency=currency,
            progress=progress,
            generated=now or utc_now(),
        )


def _unfinished_plan(session: Session, sale_date: dt.date, actor: str) -> int | None:
    """The newest draft plan this job saved for ``sale_date`` (a run that stopped before its files)."""
    return session.scalar(
        select(FlashSalePlan.id)
        .where(
            FlashSalePlan.sale_date == sale_date,
            FlashSalePlan.created_by == actor,
            FlashSalePlan.status == PlanStatus.DRAFT,
        )
        .order_by(FlashSalePlan.id.desc())
        .limit(1)
    )


def _save_plan(
    factory: sessionmaker[Session],
    sale_date: dt.date,
    *,
    today: dt.date,
    resume: bool,
    request: PlanRequest,
    actor: str,
    progress: Progress | None,
) -> tuple[int, int | None, bool, dict[str, Any]]:
    """Phase 1, one short write transaction: refit if needed, then plan and save (or take up the draft a
    stopped run saved). Returns (plan id, demand model id, refitted, the model's window)."""
    with session_scope(factory) as session:
        model, refitted = refresh_demand_model(session, progress=progress)
        window = {"window_start": model.window_start.isoformat(), "window_end": model.window_end.isoformat()}
        plan_id = _unfinished_plan(session, sale_date, actor) if resume else None
        if plan_id is None:
            if progress:
                progress("planning the sale")
            proposal = propose_plan(session, request, today=today)
            plan_id = save_proposal(session, proposal, created_by=actor)
        return plan_id, model.id, refitted, window


def _make(
    factory: sessionmaker[Session],
    sale_date: dt.date,
    chat_model: BaseChatModel | None,
    out_dir: Path,
    *,
    today: dt.date,
    resume: bool,
    request: PlanRequest,
    actor: str,
    currency: str,
    progress: Progress | None,
    generated: dt.datetime,
) -> DraftResult:
    started = time.perf_counter()
    folder = output_folder(draft_folder(out_dir, sale_date))
    plan_id, model_id, refitted, window = _save_plan(
        factory, sale_date, today=today, resume=resume, request=request, actor=actor, progress=progress
    )

    # Phase 2: the facts, read-only; the last sale's charts are drawn from them.
    if progress:
        progress("last sale's KPIs and charts")
    with read_only_scope(factory) as session:
        plan = load_plan(session, plan_id)
        last_sale, last_charts = _last_sale(session, sale_date, folder)
        signals = _signal_rows(session, plan)
    data: dict[str, Any] = {
        "sale_date": sale_date.isoformat(),
        "generated_at": f"{generated:%Y-%m-%d %H:%M} UTC",
        "demand_model": {"id": model_id, "refitted": refitted, **window},
        "plan": plan.model_dump(mode="json"),
        "last_sale": last_sale,
        "signals": signals,
    }

    # Phase 3: the narrative, with no transaction open (a slow model locks nothing).
    if progress:
        progress("writing the narrative" + (" with the model" if chat_model is not None else ""))
    exchanges: list[dict[str, Any]] = []
    narrative: Narrative = write_narrative(
        narrative_facts(data), chat_model, currency=currency, on_exchange=exchanges.append
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
    files.append(write_text(folder / "draft.md", render_markdown(data)))
    files.append(write_text(folder / "draft.html", render_html(data)))

    # Phase 4: the audit rows, one short write transaction.
    with session_scope(factory) as session:
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
                "demand_model_id": model_id,
                "narrative": narrative.label,
                "signals": [s["id"] for s in signals],
            },
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            session_id=f"draft:{sale_date}",
        )
    # Written last: its presence means the draft is complete.
    files.append(write_text(folder / "draft.json", json.dumps(data, indent=2, default=str)))
    return DraftResult(
        sale_date=sale_date,
        folder=folder,
        plan_id=plan_id,
        reused=False,
        refitted=refitted,
        demand_model_id=model_id,
        narrative_label=narrative.label,
        files=files,
        data=data,
    )
