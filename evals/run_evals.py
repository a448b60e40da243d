"""Evaluate the assistant on merchandiser questions: tool choice, argument validity, grounding, latency.

Cases live in ``evals/questions.json``: a question (with placeholders such as ``{top_sku}`` filled from the
shop), the tool calls a good answer makes, and facts (paths into those tools' results) the answer must state.
Expected facts are computed by running the expected tool calls directly, so the cases fit any shop.

    python -m evals.run_evals --scripted                      # CI: deterministic policy, no model
    python -m evals.run_evals --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct

Scores per case: ``tools`` (every expected tool was called), ``args`` (share of the model's calls whose
arguments validated), ``match`` (share of expected calls made with the expected arguments), ``grounded``
(every number in the answer traced to a tool result), ``facts`` (share of expected facts stated) and the
turn's latency split into model time and the agent's own overhead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from rich.console import Console
from rich.table import Table
from sqlalchemy import desc, func, select
from sqlalchemy.orm import Session, sessionmaker

from assistant.agent import Agent
from assistant.deps import Deps
from assistant.grounding import answer_numbers
from assistant.llm import make_chat_model, probe_llm
from assistant.llm_tools import WRITING_TOOLS, build_tools
from assistant.model_json import is_money_text
from assistant.settings import Settings
from db.engine import make_engine, make_session_factory
from db.models import CompetitorPrice, FlashSalePlan, MarketNews, OrderLine, PlanStatus, Product
from evals.scripted_policy import (
    MISTAKES,
    ConversationPolicyModel,
    Mistake,
    MistakenPolicyModel,
    ScriptedPolicyModel,
    fact_entity,
    resolve_refs,
    value_at,
)
from tools.clock import shop_clock
from tools.outside_text import unfence

QUESTIONS = Path(__file__).with_name("questions.json")
_FROM_AGENT = object()  # a fact read from the agent's own call of a writing tool
_MISSING = object()  # the agent never produced it


@dataclass
class CaseResult:
    id: str
    category: str
    question: str
    status: str  # ok | skipped | error
    tools_ok: bool = False
    arg_valid: float | None = None
    arg_match: float = 0.0
    grounded: bool = False
    grounding_rate: float = 0.0
    facts: float | None = None
    turn_ms: float = 0.0
    model_ms: float = 0.0
    overhead_ms: float = 0.0
    tool_ms: float = 0.0
    called: list[str] = field(default_factory=list)
    answer: str = ""
    note: str = ""


def load_cases(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    cases: list[dict[str, Any]] = data["cases"]
    ids = [c["id"] for c in cases]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate case ids in questions.json")
    return cases


def shop_values(session: Session, today: dt.date) -> dict[str, Any]:
    """Values for the cases' placeholders, chosen from the shop's own data (plan ids as numbers)."""
    last_day = today - dt.timedelta(days=1)
    since = dt.datetime.combine(today - dt.timedelta(days=28), dt.time.min)
    units = func.sum(OrderLine.qty)
    top: list[tuple[str, Any]] = [
        (str(sku), n)
        for sku, n in session.execute(
            select(OrderLine.sku, units)
            .where(OrderLine.ts >= since)
            .group_by(OrderLine.sku)
            .order_by(desc(units))
            .limit(2)
        )
    ]
    if len(top) < 2:
        top = [(s, 0) for s in session.scalars(select(Product.sku).order_by(Product.sku).limit(2))]
    top_sku, second_sku = top[0][0], top[1][0]
    product = session.get(Product, top_sku)
    n = func.count()
    category = session.execute(
        select(Product.category, n).group_by(Product.category).order_by(desc(n))
    ).first()
    brand = session.execute(select(Product.brand, n).group_by(Product.brand).order_by(desc(n))).first()
    comp_sku = (
        session.scalar(select(CompetitorPrice.sku).order_by(CompetitorPrice.seen_at.desc()).limit(1))
        or top_sku
    )
    comp_product = session.get(Product, comp_sku)
    sale = session.scalar(
        select(func.max(FlashSalePlan.sale_date)).where(
            FlashSalePlan.status.in_([PlanStatus.APPROVED, PlanStatus.LIVE, PlanStatus.CLOSED]),
            FlashSalePlan.sale_date <= last_day,
        )
    )
    news = session.scalars(select(MarketNews).order_by(MarketNews.published_at.desc()).limit(1)).first()
    closed = list(
        session.scalars(
            select(FlashSalePlan.id)
            .where(FlashSalePlan.status == PlanStatus.CLOSED, FlashSalePlan.sale_date <= last_day)
            .order_by(FlashSalePlan.sale_date.desc(), FlashSalePlan.id.desc())
        )
    )
    return {
        "closed_sales": len(closed),
        "last_sale_id": closed[0] if closed else 0,
        "prev_sale_id": closed[1] if len(closed) > 1 else 0,
        "top_sku": top_sku,
        "top_title": product.title if product else top_sku,
        "second_sku": second_sku,
        "top_category": category[0] if category else "",
        "top_brand": brand[0] if brand else "",
        "comp_sku": comp_sku,
        "comp_category": comp_product.category if comp_product else "",
        "last_day": last_day.isoformat(),
        "week_start": (last_day - dt.timedelta(days=6)).isoformat(),
        "prev_week_start": (last_day - dt.timedelta(days=13)).isoformat(),
        "prev_week_end": (last_day - dt.timedelta(days=7)).isoformat(),
        "day_after_last": today.isoformat(),
        "last_sale_date": (sale or last_day).isoformat(),
        "news_title": news.title if news else "market update",
        "news_date": (news.published_at.date() if news else last_day).isoformat(),
    }


#: Closed sales a case of ``requires_data: ["closed_sales"]`` needs (a trend needs three).
MIN_CLOSED_SALES = 3


def fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole and isinstance(values.get(whole.group(1)), int):  # a number stays a number
            return values[whole.group(1)]
        return value.format_map(values)
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def fact_stated(answer: str, expected: Any, entity: str | None = None) -> bool:
    """Whether ``answer`` states ``expected``: text by substring, numbers (and amounts such as
    "1234.56 EUR") rounded or converted (fractions as %) on token boundaries; a small integer only as a
    number of its own, never as a digit inside another token (``rows.0.sku`` does not state 0). With
    ``entity`` (the SKU or category the fact is about) the number must be in a sentence that names it: a
    figure stated of another row does not count."""
    if entity is not None and not isinstance(expected, str):
        sentences = [s for s in _SENTENCE_END.split(answer) if entity.casefold() in s.casefold()]
        return any(fact_stated(s, expected) for s in sentences)
    amount = is_money_text(expected)
    if amount:
        expected = float(expected.split()[0])
    if isinstance(expected, str):  # outside text as a person reads it, without the model's fence
        return unfence(expected).casefold() in answer.casefold()
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        return json.dumps(expected) in answer
    target = abs(float(expected))
    if target <= 10 and float(target).is_integer() and not amount:
        return re.search(rf"(?<![\w.,-]){int(target)}(?![\w.,]\d|\w)", answer) is not None
    numbers, _ = answer_numbers(answer)
    for number in numbers:
        for scale in (1.0, 100.0):
            if round(target * scale, max(number.decimals, 0)) == round(number.value, max(number.decimals, 0)):
                return True
    return False


def _args_match(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    def norm(v: Any) -> Any:
        return v.casefold().strip() if isinstance(v, str) else v

    for key, value in expected.items():
        if key == "sql":
            continue  # any SQL that answers is fine
        got = actual.get(key)
        if isinstance(value, list) and isinstance(got, list):
            if sorted(map(str, map(norm, value))) != sorted(map(str, map(norm, got))):
                return False
        elif norm(got) != norm(value):
            return False
    return True


def policy_model(case: dict[str, Any], mistake: Mistake | None = None) -> BaseChatModel:
    """The scripted policy for ``case`` (with one known ``mistake`` when given)."""
    if mistake is None:
        return ScriptedPolicyModel(expected_tools=case["expected_tools"], facts=case["facts"])
    return MistakenPolicyModel(expected_tools=case["expected_tools"], facts=case["facts"], mistake=mistake)


def _oracle(case: dict[str, Any], tools: dict[str, Any]) -> tuple[list[Any], list[str | None]]:
    """The facts a correct answer states, from the expected calls run directly (a writing tool's from the
    agent's own result, later), and the entity (SKU, category) each is about."""
    expected_facts: list[Any] = []
    entities: list[str | None] = []
    for fact in case["facts"]:
        if fact["tool"] in WRITING_TOOLS:  # never run a write as an oracle: read the agent's own result later
            expected_facts.append(_FROM_AGENT)
            entities.append(None)
            continue
        call = next(t for t in case["expected_tools"] if t["name"] == fact["tool"])
        data = json.loads(tools[fact["tool"]].invoke(call["args"]))
        entities.append(fact_entity(data, fact["path"]))
        try:
            expected_facts.append(value_at(data, fact["path"]))
        except (KeyError, IndexError, ValueError):
            expected_facts.append(None)
    return expected_facts, entities


def _score(
    result: CaseResult,
    case: dict[str, Any],
    answer: Any,
    oracle: tuple[list[Any], list[str | None]],
    tools: dict[str, Any],
) -> CaseResult:
    expected_facts, entities = oracle
    result.answer = answer.text
    result.called = [c.name for c in answer.tool_calls]
    result.tools_ok = all(t["name"] in result.called for t in case["expected_tools"])
    invalid = [
        c
        for c in answer.tool_calls
        if c.error and ("invalid arguments" in c.output or "unknown tool" in c.output or c.name not in tools)
    ]
    result.arg_valid = 1 - len(invalid) / len(answer.tool_calls) if answer.tool_calls else None
    matched = sum(
        any(
            c.name == t["name"] and c not in invalid and _args_match(t["args"], c.args)
            for c in answer.tool_calls
        )
        for t in case["expected_tools"]
    )
    result.arg_match = matched / len(case["expected_tools"]) if case["expected_tools"] else 1.0
    result.grounded, result.grounding_rate = answer.grounded, answer.grounding_rate
    numbers_asked = any(not isinstance(f, str) and f is not None for f in expected_facts)
    if numbers_asked and not re.search(r"\d", answer.text):  # nothing stated is not the same as grounded
        result.grounded, result.grounding_rate = False, 0.0
    for i, fact in enumerate(case["facts"]):
        if expected_facts[i] is _FROM_AGENT:
            outputs = [c.output for c in answer.tool_calls if c.name == fact["tool"] and not c.error]
            try:
                expected_facts[i] = value_at(json.loads(outputs[-1]), fact["path"]) if outputs else _MISSING
            except (KeyError, IndexError, ValueError):
                expected_facts[i] = _MISSING
    scored = [(f, e) for f, e in zip(expected_facts, entities, strict=True) if f is not None]
    if scored:  # a fact the oracle could not compute is left out
        stated = [f is not _MISSING and fact_stated(answer.text, f, e) for f, e in scored]
        result.facts = sum(stated) / len(stated)
    result.turn_ms, result.model_ms, result.overhead_ms = answer.turn_ms, answer.model_ms, answer.overhead_ms
    result.tool_ms = answer.tool_ms
    return result


def _skip_reason(case: dict[str, Any], values: dict[str, Any], tool_names: set[str]) -> str | None:
    missing = [t for t in case.get("requires", []) if t not in tool_names]
    if missing:
        return f"tools not available: {', '.join(missing)}"
    if "closed_sales" in case.get("requires_data", []) and values["closed_sales"] < MIN_CLOSED_SALES:
        return f"data not available: {values['closed_sales']} closed sales ({MIN_CLOSED_SALES} needed)"
    return None


def run_case(
    case: dict[str, Any],
    deps: Deps,
    model: BaseChatModel | None,
    values: dict[str, Any],
    tool_names: set[str],
    *,
    mistake: Mistake | None = None,
) -> list[CaseResult]:
    """A case's result; a conversation's (``turns``), one result per turn, each scored like a case."""
    if "turns" in case:
        return run_conversation(case, deps, model, values, tool_names, mistake=mistake)
    result = CaseResult(id=case["id"], category=case["category"], question="", status="ok")
    skip = _skip_reason(case, values, tool_names)
    case = fill(case, values)
    result.question = case["question"]
    if skip:
        result.status, result.note = "skipped", skip
        return [result]
    tools = {t.name: t for t in build_tools(deps)}
    oracle = _oracle(case, tools)
    chat_model = model or policy_model(case, mistake)
    agent = Agent(chat_model, deps, session_id=f"eval-{case['id']}-{uuid.uuid4().hex[:8]}")
    try:
        answer = agent.ask(case["question"])
    except Exception as exc:
        result.status, result.note = "error", f"{type(exc).__name__}: {exc}"[:200]
        return [result]
    return [_score(result, case, answer, oracle, tools)]


def run_conversation(
    case: dict[str, Any],
    deps: Deps,
    model: BaseChatModel | None,
    values: dict[str, Any],
    tool_names: set[str],
    *,
    mistake: Mistake | None = None,
) -> list[CaseResult]:
    """The turns of one conversation asked of one agent in order: a follow-up refers to what came before
    ("and if we drop audio?", "save that one"). An expected argument ``@TOOL.PATH`` is the value at PATH
    of the last result of TOOL earlier in the conversation (the proposal the user means by "that one")."""
    turns = [fill(t, values) for t in case["turns"]]
    results = [
        CaseResult(id=f"{case['id']}#{k + 1}", category=case["category"], question=t["question"], status="ok")
        for k, t in enumerate(turns)
    ]
    skip = _skip_reason(case, values, tool_names)
    if skip:
        for r in results:
            r.status, r.note = "skipped", skip
        return results
    tools = {t.name: t for t in build_tools(deps)}
    policy = ConversationPolicyModel(turns=turns, mistake=mistake)
    agent = Agent(model or policy, deps, session_id=f"eval-{case['id']}-{uuid.uuid4().hex[:8]}")
    earlier: dict[str, str] = {}  # tool name -> its last output in the conversation
    for k, (scripted, result) in enumerate(zip(turns, results, strict=True)):
        turn = {**scripted, "expected_tools": [resolve_refs(t, earlier) for t in scripted["expected_tools"]]}
        policy.turns[k] = turn
        policy.current = k
        oracle = _oracle(turn, tools)
        try:
            answer = agent.ask(turn["question"])
        except Exception as exc:
            result.status, result.note = "error", f"{type(exc).__name__}: {exc}"[:200]
            continue
        _score(result, turn, answer, oracle, tools)
        earlier.update({c.name: c.output for c in answer.tool_calls if not c.error})
    return results


def run(
    factory: sessionmaker[Session],
    *,
    today: dt.date,
    model: BaseChatModel | None = None,
    settings: Settings | None = None,
    cases: list[dict[str, Any]] | None = None,
    only: str | None = None,
    mistake: Mistake | None = None,
) -> list[CaseResult]:
    """Run every case (``model`` None: the scripted policy, with ``mistake`` the mistaken one) and return
    the per-case scores."""
    cases = cases if cases is not None else load_cases()
    if only:
        cases = [c for c in cases if only in c["id"] or only == c["category"]]
    now = dt.datetime.combine(today, dt.time(9, 0))
    deps = Deps(
        session_factory=factory,
        settings=settings or Settings(),
        chat_model=model,
        clock=lambda: now,
        actor="evals",
        channel="eval",
    )
    with factory() as session:
        values = shop_values(session, today)
    tool_names = {t.name for t in build_tools(deps)}
    return [r for case in cases for r in run_case(case, deps, model, values, tool_names, mistake=mistake)]


@dataclass
class Summary:
    cases: int
    skipped: int
    errors: int
    tool_choice: float
    arg_validity: float
    arg_match: float
    grounded: float
    grounding_rate: float
    facts: float
    median_turn_ms: float
    median_overhead_ms: float
    p95_turn_ms: float


def summarise(results: list[CaseResult]) -> Summary:
    done = [r for r in results if r.status == "ok"]

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else 0.0

    turns = sorted(r.turn_ms for r in done) or [0.0]
    return Summary(
        cases=len(results),
        skipped=sum(r.status == "skipped" for r in results),
        errors=sum(r.status == "error" for r in results),
        tool_choice=mean([float(r.tools_ok) for r in done]),
        arg_validity=mean([r.arg_valid for r in done if r.arg_valid is not None]),
        arg_match=mean([r.arg_match for r in done]),
        grounded=mean([float(r.grounded) for r in done]),
        grounding_rate=mean([r.grounding_rate for r in done]),
        facts=mean([r.facts for r in done if r.facts is not None])
        if any(r.facts is not None for r in done)
        else 1.0,
        median_turn_ms=statistics.median(turns),
        median_overhead_ms=statistics.median([r.overhead_ms for r in done] or [0.0]),
        p95_turn_ms=turns[min(len(turns) - 1, int(0.95 * len(turns)))],
    )


def render(results: list[CaseResult], summary: Summary, console: Console, title: str) -> None:
    table = Table(title=title, show_lines=False)
    for col in (
        "case",
        "category",
        "status",
        "tools",
        "args",
        "match",
        "grounded",
        "facts",
        "turn ms",
        "overhead ms",
    ):
        table.add_column(col, justify="right" if col.endswith("ms") else "left")
    for r in results:
        if r.status != "ok":
            table.add_row(r.id, r.category, f"[yellow]{r.status}[/]", "", "", "", "", "", "", r.note[:40])
            continue
        table.add_row(
            r.id,
            r.category,
            "ok",
            "✓" if r.tools_ok else "[red]✗[/] " + ",".join(r.called),
            "-" if r.arg_valid is None else f"{r.arg_valid:.0%}",
            f"{r.arg_match:.0%}",
            "✓" if r.grounded else "[red]✗[/]",
            "-" if r.facts is None else f"{r.facts:.0%}",
            f"{r.turn_ms:.0f}",
            f"{r.overhead_ms:.0f}",
        )
    console.print(table)
    s = summary
    console.print(
        f"cases {s.cases} (skipped {s.skipped}, errors {s.errors}) · tool choice {s.tool_choice:.0%} · "
        f"argument validity {s.arg_validity:.0%} · argument match {s.arg_match:.0%} · grounded "
        f"{s.grounded:.0%} (number-level {s.grounding_rate:.0%}) · facts {s.facts:.0%} · turn median "
        f"{s.median_turn_ms:.0f} ms, p95 {s.p95_turn_ms:.0f} ms · agent overhead median "
        f"{s.median_overhead_ms:.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scripted", action="store_true", help="Use the deterministic policy (no model).")
    parser.add_argument(
        "--mistakes",
        choices=MISTAKES,
        help="With --scripted: a policy that makes this mistake in every case (its score must drop).",
    )
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint; default FLASHSALE_LLM_BASE_URL.")
    parser.add_argument("--model", help="Model name; default FLASHSALE_LLM_MODEL.")
    parser.add_argument("--api-key", help="API key; default FLASHSALE_LLM_API_KEY.")
    parser.add_argument("--db-url", help="Shop database URL; default DATABASE_URL / FLASHSALE_DB_PATH.")
    parser.add_argument(
        "--today", help="The shop's today (YYYY-MM-DD); default: the day after its newest order."
    )
    parser.add_argument("--only", help="Run cases whose id contains this, or of this category.")
    parser.add_argument("--json-out", type=Path, help="Write per-case results and the summary as JSON.")
    parser.add_argument(
        "--fail-under", type=float, default=0.0, help="Exit 1 when tool choice is below this."
    )
    args = parser.parse_args(argv)

    overrides = {
        k: v
        for k, v in {
            "llm_base_url": args.base_url,
            "llm_model": args.model,
            "llm_api_key": args.api_key,
        }.items()
        if v
    }
    settings = Settings(**overrides)
    engine = make_engine(args.db_url or settings.resolved_database_url())
    factory = make_session_factory(engine)
    today = shop_clock(factory, dt.date.fromisoformat(args.today) if args.today else None)().date()
    model: BaseChatModel | None = None
    if not args.scripted:
        probe = probe_llm(settings)
        if not probe.ok:
            print(probe.message, file=sys.stderr)
            return 2
        model = make_chat_model(settings)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    results = run(factory, today=today, model=model, settings=settings, only=args.only, mistake=args.mistakes)
    summary = summarise(results)
    policy = f"mistaken policy ({args.mistakes})" if args.mistakes else "scripted policy"
    title = f"Assistant evals · {policy if model is None else settings.llm_model} · today {today}"
    render(results, summary, console, title)
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {"summary": asdict(summary), "cases": [asdict(r) for r in results]}, indent=1, default=str
            )
        )
    return 1 if summary.tool_choice < args.fail_under or summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
