"""Everything the CLI offers is either something the assistant can do through a tool, or listed here with
the reason it has none. A new command must be added to this table: the test lists it until it is."""

from __future__ import annotations

from typing import Any

import typer.main

from assistant.llm_tools import TOOLS
from cli import app

A_PERSONS_ACT = "a person's act: the assistant proposes, a person approves, publishes, cancels or closes"
OPERATION = "an operation, not a question: it builds, imports, serves or schedules; nothing to answer"

#: CLI command -> the tools that answer the same question, or the reason there is none.
PARITY: dict[str, tuple[str, ...] | str] = {
    "plan": ("optimize_plan", "what_if", "pareto_frontier", "save_draft_plan"),
    "plan status": ("live_sale_status",),
    "plan replan": ("propose_replan",),
    "plan history": ("explain_plan",),
    "plan list": ("explain_plan",),
    "plan approve": A_PERSONS_ACT,
    "plan cancel": A_PERSONS_ACT,
    "plan publish": A_PERSONS_ACT,
    "plan close": A_PERSONS_ACT,
    "kpi": ("kpi_report",),
    "report": ("kpi_report", "sale_vs_plan"),  # the figures; the charts and files are for people
    "compare": ("compare_campaigns",),
    "data check": ("data_check",),
    "backtest": "it refits the demand model on held-out weeks (minutes of CPU on a big shop), past a tool "
    "call's time limit; forecast_error_trend answers 'is the forecast getting better' from closed sales",
    "fit": "it writes a new demand model (the daily job refits); the tools read the stored one",
    "extract-signals": "it writes market signals from untrusted news with the LLM itself; get_market_signals "
    "and get_reviews read them",
    "demo": OPERATION,
    "ask": OPERATION,
    "chat": OPERATION,
    "serve-llm": OPERATION,
    "slack": OPERATION,
    "draft": OPERATION,
    "schedule": OPERATION,
    "daily": OPERATION,
    "db upgrade": OPERATION,
    "db current": OPERATION,
    "sim play": "the simulator's, for the demo shop: it writes orders",
    **{
        f"import {kind}": OPERATION
        for kind in (
            "catalog",
            "sales",
            "promotions",
            "reviews",
            "news",
            "competitor-prices",
            "inventory",
            "orders",
        )
    },
}


def _commands(command: Any, prefix: tuple[str, ...] = ()) -> list[str]:
    subs = getattr(command, "commands", None)
    if not subs:
        return [" ".join(prefix)]
    own = [" ".join(prefix)] if prefix and getattr(command, "invoke_without_command", False) else []
    return own + [name for key, sub in subs.items() for name in _commands(sub, (*prefix, key))]


def test_every_cli_command_has_a_tool_or_the_reason_it_has_none() -> None:
    commands = set(_commands(typer.main.get_command(app)))
    assert commands - set(PARITY) == set(), "classify the new commands in PARITY"
    assert set(PARITY) - commands == set(), "PARITY names commands the CLI no longer has"
    for command, answer in PARITY.items():
        if isinstance(answer, tuple):
            assert answer and set(answer) <= set(TOOLS), (command, answer)
        else:
            assert len(answer) > 20, command  # a reason in words


def test_every_tool_answers_some_cli_question_or_is_the_assistants_own() -> None:
    """The other direction: the tools no CLI command has are the catalogue lookups the chat needs."""
    covered = {tool for answer in PARITY.values() if isinstance(answer, tuple) for tool in answer}
    own = {
        "search_products",
        "get_product_details",
        "get_sales_history",
        "get_inventory",
        "get_competitor_prices",
        "get_market_signals",
        "run_sql",
        "forecast_demand",
        "forecast_error_trend",
        "get_reviews",
    }
    assert set(TOOLS) - covered == own
