"""The eval harness in scripted mode (what CI runs): every case's tools and arguments fit the real tool
schemas, its facts come out of real tool results, and the answers pass the grounding check."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from sqlalchemy import Engine, select

from assistant.message_model import MessageChatModel
from db.engine import make_session_factory
from db.models import FlashSalePlan, PlanStatus
from evals.run_evals import fact_stated, load_cases, main, run, summarise
from evals.scripted_policy import WRONG_TOOL
from tests.assistant_shop import TODAY, build_assistant_shop
from tools.demand import fit_demand_model, save_demand_model


def test_there_are_at_least_40_cases_covering_the_questions_merchandisers_ask() -> None:
    cases = load_cases()
    assert len(cases) >= 40
    categories = {c["category"] for c in cases}
    assert {"catalog", "sales", "signals", "kpi", "what-if", "plan"} <= categories
    for case in cases:
        for turn in case.get("turns", [case]):
            assert turn["question"].strip() and turn["expected_tools"], case["id"]
    conversations = [c for c in cases if "turns" in c]
    assert len(conversations) >= 10 and all(len(c["turns"]) >= 2 for c in conversations)


def test_a_follow_up_acts_on_what_the_previous_turn_showed(sqlite_engine: Engine) -> None:
    """ "What should we put on sale tomorrow?" then "Save that one.": the second turn saves the proposal the
    first one showed (its proposal_id, read from the conversation), and both turns score in full."""
    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    with factory.begin() as s:
        save_demand_model(s, fit_demand_model(s))
    results = run(factory, today=TODAY, only="conv-plan-then-save")
    assert [r.id for r in results] == ["conv-plan-then-save#1", "conv-plan-then-save#2"]
    first, second = results
    assert first.called == ["optimize_plan"] and second.called == ["save_draft_plan"]
    assert second.tools_ok and second.arg_match == 1.0 and second.facts == 1.0, second
    with factory() as s:
        saved = s.scalar(select(FlashSalePlan).order_by(FlashSalePlan.id.desc()).limit(1))
    assert saved is not None and saved.status == PlanStatus.DRAFT
    assert f"plan_id: {saved.id}" in second.answer


def test_scripted_run_scores_every_available_case(sqlite_engine: Engine) -> None:
    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    with factory.begin() as s:
        save_demand_model(s, fit_demand_model(s))
    results = run(factory, today=TODAY)
    summary = summarise(results)
    done = [r for r in results if r.status == "ok"]
    assert summary.errors == 0 and len(done) >= 40
    failed = [
        (r.id, r.called, r.arg_match, r.facts, r.answer) for r in done if not (r.tools_ok and r.grounded)
    ]
    assert not failed
    assert summary.tool_choice == 1.0 and summary.arg_validity == 1.0 and summary.arg_match == 1.0
    assert summary.facts == 1.0
    skipped = {r.id for r in results if r.status == "skipped"}
    assert all(
        r.note.startswith(("tools not available", "data not available")) for r in results if r.id in skipped
    )


def test_facts_are_recognised_in_their_usual_spellings() -> None:
    assert fact_stated("GMV was $12,345.67 yesterday", "12345.67 EUR")
    assert fact_stated("GMV was 12,345.67 EUR yesterday", "12345.67 EUR")
    assert fact_stated("margin 27.7 %", 0.2765)
    assert fact_stated("best category: Audio", "audio")
    assert not fact_stated("GMV was $12,000", "12345.67 EUR")


def test_a_figure_counts_only_beside_the_entity_it_is_about() -> None:
    answer = "HP-100 sold 42 units. HP-200 sold 17 units; KT-100 none."
    assert fact_stated(answer, 17, "HP-200") and fact_stated(answer, 42, "HP-100")
    assert not fact_stated(answer, 17, "HP-100")  # stated, but of another SKU


class _Scripted(MessageChatModel):
    """Calls the tools it is given on the first turn, then says ``answer``."""

    calls: list[dict[str, Any]]
    answer: str

    @property
    def _llm_type(self) -> str:
        return "scripted-for-eval"

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        if not any(isinstance(m, ToolMessage) for m in messages):
            return AIMessage(
                "", tool_calls=[{**c, "id": f"c{i}", "type": "tool_call"} for i, c in enumerate(self.calls)]
            )
        return AIMessage(self.answer)


def test_unknown_tools_are_invalid_calls_and_a_numberless_answer_is_not_grounded(
    sqlite_engine: Engine,
) -> None:
    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    (case,) = [c for c in load_cases() if c["id"] == "stock-sku"]
    model = _Scripted(calls=[{"name": "lookup_everything", "args": {}}], answer="Plenty in stock.")
    (result,) = run(factory, today=TODAY, model=model, cases=[case])
    assert result.status == "ok" and result.arg_valid == 0.0  # a call to no tool is no valid call
    assert not result.grounded and result.facts == 0.0  # numbers were asked for and none was given


def test_cli_entry_point_needs_a_model_unless_scripted(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(sqlite_engine.url)
    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    assert main(["--db-url", url, "--today", "2026-11-24", "--only", "sales"]) == 2  # no model server
    assert "python cli.py serve-llm" in capsys.readouterr().err
    assert main(["--scripted", "--db-url", url, "--today", str(TODAY), "--only", "sales"]) == 0
    out = capsys.readouterr().out
    assert "sales-sku-28d" in out and "tool choice 100%" in out


@pytest.mark.parametrize(
    ("mistake", "drops", "holds"),
    [
        ("wrong_tool", ("tool_choice", "facts"), ("arg_validity",)),
        ("bad_argument", ("arg_validity", "facts"), ("tool_choice",)),
        ("invented_number", ("grounded",), ("tool_choice", "arg_validity", "facts")),
    ],
)
def test_a_policy_with_a_known_mistake_scores_lower_where_it_should(
    sqlite_engine: Engine, mistake: str, drops: tuple[str, ...], holds: tuple[str, ...]
) -> None:
    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    with factory.begin() as s:
        save_demand_model(s, fit_demand_model(s))
    cases = [c for c in load_cases() if c["category"] in ("catalog", "sales", "kpi")]
    cases = [c for c in cases if all(t["name"] != WRONG_TOOL for t in c["expected_tools"])]
    assert len(cases) >= 8
    right = summarise(run(factory, today=TODAY, cases=cases))
    wrong = summarise(run(factory, today=TODAY, cases=cases, mistake=mistake))  # type: ignore[arg-type]
    assert right.errors == wrong.errors == 0
    for score in drops:
        assert getattr(right, score) == 1.0 and getattr(wrong, score) == 0.0, score
    for score in holds:
        assert getattr(wrong, score) == getattr(right, score) == 1.0, score


def test_the_attack_replay_holds_for_tool_arguments_and_injected_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from evals.replay_attacks import main as replay  # noqa: PLC0415  (builds its own small demo shop)

    assert replay(["--only", "tools", "--only", "injection"]) == 0
    out = capsys.readouterr().out
    assert out.count("held ") == 11 and "broken" not in out and "all held" in out


def test_the_cases_about_past_sales_score_on_a_shop_that_has_them(demo_shop_copy: Any) -> None:
    """The assistant shop has no closed sale, so its run skips these with the reason; the demo shop has
    eight, and there the comparison, the sale review and the error trend score in full."""
    cases = [c for c in load_cases() if c["category"] in {"compare", "sale review"}]  # read-only tools
    assert len(cases) >= 5
    results = run(demo_shop_copy.session_factory, today=dt.date(2026, 7, 1), cases=cases)  # the agent audits
    assert [r.status for r in results] == ["ok"] * len(cases), [(r.id, r.note) for r in results]
    for r in results:
        assert r.tools_ok and r.arg_match == 1.0 and r.grounded and r.facts == 1.0, (r.id, r.answer)
