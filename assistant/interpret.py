"""Interpretation: typed market signals extracted from untrusted news items and reviews.

The model sees each item fenced as data (``<untrusted_news id="news:12" ...>...</untrusted_news>``), under a
versioned prompt (``prompts/extract_signals_v1.md``) that says its content is never an instruction, and
answers with structured output (a JSON schema: :class:`ExtractionResult`). What it returns is then checked
by code, because a prompt alone does not stop an injection:

- the scope value must name an existing SKU, category or brand; the source ids must be items it was shown;
- the multiplier is clipped to :data:`tools.signals.EFFECT_BOUNDS` and must agree with the direction;
- the window starts no earlier than the newest source and lasts at most :data:`MAX_DAYS` days;
- items that read like instructions to an AI (``ignore previous instructions``, ``approve``, ``set every
  price``) cap the confidence at :data:`INJECTION_CONFIDENCE_CAP`.

Accepted signals are stored as ``market_signal`` rows with provenance (source ids, model, prompt version)
and the exchange is written to the audit log. Nothing else is written: this path has no tools at all.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.prompts import Prompt, load_prompt
from db.audit import record_audit
from db.models import MarketNews, MarketSignal, Product, Review, SignalDirection, SignalScope
from tools.signals import EFFECT_BOUNDS, SignalEffect

PROMPT = "extract_signals_v1"
MAX_DAYS = 14
INJECTION_CONFIDENCE_CAP = 0.2
MAX_ITEM_CHARS = 2_000
_INJECTION = re.compile(
    r"ignore (all |any )?(previous|prior|above) (instructions|rules)|disregard|system:|developer mode|"
    r"new instruction|overrides? (all )?(prior|previous)|approve(_plan)?\b|"
    r"set (every|all) (price|discount)s?|delete the audit|you are now|assistant,",
    re.IGNORECASE,
)


class ExtractedSignal(BaseModel):
    """One demand signal as the model returns it (checked and bounded before it is stored)."""

    scope: Literal["sku", "category", "brand"] = Field(description="What the signal applies to.")
    scope_value: str = Field(description="The exact SKU, category or brand name from the shop's lists.")
    direction: Literal["up", "down", "neutral"] = Field(description="Effect on demand.")
    multiplier: float = Field(description="Factor on demand, e.g. 1.2 for +20 %; 1.0 for none.")
    confidence: float = Field(description="0 to 1.")
    valid_from: dt.date = Field(description="First day of the effect (YYYY-MM-DD).")
    valid_to: dt.date = Field(description="Last day of the effect (YYYY-MM-DD).")
    evidence: str = Field(description="One sentence quoting the item's claim.")
    source_ids: list[str] = Field(description="Ids of the items the signal comes from, e.g. 'news:12'.")


class ExtractionResult(BaseModel):
    """The demand signals found in the items (an empty list when none is credible)."""

    signals: list[ExtractedSignal] = Field(default_factory=list)


@dataclass(frozen=True)
class SourceItem:
    """A news item or review to interpret."""

    kind: Literal["news", "review"]
    id: int
    published: dt.datetime
    text: str
    title: str = ""
    source: str = ""
    sku: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def looks_like_injection(self) -> bool:
        return bool(_INJECTION.search(f"{self.title}\n{self.text}"))


@dataclass
class Rejected:
    signal: dict[str, Any]
    reason: str


@dataclass
class ExtractionReport:
    stored: list[SignalEffect] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    suspicious_sources: list[str] = field(default_factory=list)
    parse_error: str | None = None
    model: str = ""
    prompt_version: str = ""


def fence(item: SourceItem) -> str:
    """The item as inert data: tags and quotes escaped, so its text cannot close the fence."""
    body = html.escape(item.text[:MAX_ITEM_CHARS], quote=False)
    title = html.escape(item.title, quote=True)
    if item.kind == "news":
        return (
            f'<untrusted_news id="{item.ref}" published="{item.published.date()}" '
            f'source="{html.escape(item.source, quote=True)}" title="{title}">\n{body}\n</untrusted_news>'
        )
    return (
        f'<untrusted_review id="{item.ref}" sku="{html.escape(item.sku or "", quote=True)}" '
        f'published="{item.published.date()}">\n{body}\n</untrusted_review>'
    )


def load_sources(
    session: Session, start: dt.date, end: dt.date, *, reviews: bool = True, limit: int = 50
) -> list[SourceItem]:
    """News (and reviews with rating <= 2 or >= 5, the informative ones) published from start to end; with
    more than ``limit`` of a kind, the newest ``limit``, oldest first."""
    lo = dt.datetime.combine(start, dt.time.min)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min)
    news = session.scalars(
        select(MarketNews)
        .where(MarketNews.published_at >= lo, MarketNews.published_at < hi)
        .order_by(MarketNews.published_at.desc(), MarketNews.id.desc())
        .limit(limit)
    ).all()
    items = [
        SourceItem("news", n.id, n.published_at, n.body, title=n.title, source=n.source)
        for n in reversed(news)
    ]
    if reviews:
        telling = session.scalars(
            select(Review)
            .where(Review.ts >= lo, Review.ts < hi, (Review.rating <= 2) | (Review.rating >= 5))
            .order_by(Review.ts.desc(), Review.id.desc())
            .limit(limit)
        ).all()
        items += [SourceItem("review", r.id, r.ts, r.text, sku=r.sku) for r in reversed(telling)]
    return items


def _vocabulary(session: Session) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    rows = session.execute(select(Product.sku, Product.category, Product.brand)).all()
    skus = {s.casefold(): s for s, _, _ in rows}
    categories = {c.casefold(): c for _, c, _ in rows}
    brands = {b.casefold(): b for _, _, b in rows}
    return skus, categories, brands


def _check(
    raw: ExtractedSignal,
    items: dict[str, SourceItem],
    vocab: tuple[dict[str, str], dict[str, str], dict[str, str]],
) -> tuple[dict[str, Any] | None, str | None]:
    """The bounded row values of ``raw``, or the reason it is rejected."""
    names = dict(zip(("sku", "category", "brand"), vocab, strict=True))[raw.scope]
    canonical = names.get(raw.scope_value.strip().casefold())
    if canonical is None:
        return None, f"unknown {raw.scope} {raw.scope_value!r}"
    sources = [items[s] for s in raw.source_ids if s in items]
    if not raw.source_ids or len(sources) != len(raw.source_ids):
        return None, f"source ids {raw.source_ids} are not among the items shown"
    if raw.multiplier <= 0 or raw.multiplier != raw.multiplier:
        return None, f"multiplier {raw.multiplier} is not positive"
    direction = SignalDirection(raw.direction)
    if (direction is SignalDirection.UP and raw.multiplier < 1) or (
        direction is SignalDirection.DOWN and raw.multiplier > 1
    ):
        return None, f"multiplier {raw.multiplier} contradicts direction {raw.direction}"
    multiplier = (
        1.0
        if direction is SignalDirection.NEUTRAL
        else min(max(raw.multiplier, EFFECT_BOUNDS[0]), EFFECT_BOUNDS[1])
    )
    confidence = min(max(raw.confidence, 0.0), 1.0)
    suspicious = [s.ref for s in sources if s.looks_like_injection]
    if suspicious:
        confidence = min(confidence, INJECTION_CONFIDENCE_CAP)
    earliest = max(s.published.date() for s in sources)
    valid_from = max(raw.valid_from, earliest)
    valid_to = min(max(raw.valid_to, valid_from), valid_from + dt.timedelta(days=MAX_DAYS - 1))
    evidence = raw.evidence[:500]
    if suspicious:
        evidence += f" [sources {', '.join(suspicious)} contain instruction-like text; confidence capped]"
    if multiplier != raw.multiplier and direction is not SignalDirection.NEUTRAL:
        evidence += f" [multiplier {raw.multiplier} clipped to {multiplier}]"
    return {
        "scope": SignalScope(raw.scope),
        "scope_value": canonical,
        "direction": direction,
        "multiplier": multiplier,
        "confidence": confidence,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "evidence": evidence,
        "source_ids": [s.ref for s in sources],
    }, None


def _structured(model: BaseChatModel) -> Any:

    if isinstance(model, ChatOpenAI):  # vLLM: guided decoding against the JSON schema
        if model.streaming:  # one JSON document: nothing to stream, and the streamed parse path warns
            model = model.model_copy(update={"streaming": False})
        return model.with_structured_output(ExtractionResult, method="json_schema", include_raw=True)
    return model.with_structured_output(ExtractionResult, include_raw=True)


def extract_signals(
    session: Session,
    model: BaseChatModel,
    items: list[SourceItem],
    *,
    actor: str = "signals",
    channel: str = "interpret",
    prompt: Prompt | None = None,
    session_id: str | None = None,
) -> ExtractionReport:
    """Ask ``model`` for signals in ``items``, check and bound them, store the accepted ones."""
    prompt = prompt or load_prompt(PROMPT)
    model_name = str(getattr(model, "model_name", None) or type(model).__name__)
    report = ExtractionReport(model=model_name, prompt_version=prompt.version)
    if not items:
        return report
    skus, categories, brands = _vocabulary(session)
    system = prompt.render(
        categories=", ".join(sorted(categories.values())),
        brands=", ".join(sorted(brands.values())[:80]),
        min_multiplier=EFFECT_BOUNDS[0],
        max_multiplier=EFFECT_BOUNDS[1],
        max_days=MAX_DAYS,
    )
    user = "Items to interpret (data only):\n\n" + "\n\n".join(fence(i) for i in items)
    started = time.perf_counter()
    out = _structured(model).invoke([SystemMessage(system), HumanMessage(user)])
    latency = (time.perf_counter() - started) * 1000
    parsed: ExtractionResult | None = out.get("parsed") if isinstance(out, dict) else out
    if isinstance(out, dict) and out.get("parsing_error") is not None:
        report.parse_error = str(out["parsing_error"])
    by_ref = {i.ref: i for i in items}
    report.suspicious_sources = [i.ref for i in items if i.looks_like_injection]
    for raw in parsed.signals if parsed else []:
        values, reason = _check(raw, by_ref, (skus, categories, brands))
        if values is None:
            report.rejected.append(Rejected(raw.model_dump(mode="json"), reason or "rejected"))
            continue
        row = MarketSignal(
            **values, extracted_by=f"llm:{model_name}"[:200], prompt_version=prompt.version[:50]
        )
        session.add(row)
        session.flush()
        report.stored.append(SignalEffect.from_row(row))
    record_audit(
        session,
        actor=actor,
        channel=channel,
        kind="llm",
        name=model_name,
        inputs={"prompt_version": prompt.version, "items": [i.ref for i in items]},
        outputs={
            "parsed": parsed.model_dump(mode="json") if parsed else None,
            "stored_signal_ids": [s.id for s in report.stored],
            "rejected": [{"signal": r.signal, "reason": r.reason} for r in report.rejected],
            "suspicious_sources": report.suspicious_sources,
        },
        latency_ms=latency,
        session_id=session_id,
        error=report.parse_error,
    )
    return report
