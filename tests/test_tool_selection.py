"""In a small context a turn is sent only the tools its question is about: every tool must be reachable by
the words a merchandiser uses for it, or the model could never call it there."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from assistant.deps import make_deps
from assistant.llm_tools import TOOLS, build_tools
from assistant.llm_tools.selection import CORE, EVERYDAY, TOPICS, choose_tools
from assistant.settings import Settings
from db.engine import make_session_factory


def test_every_tool_is_reachable_by_some_topic() -> None:
    reachable = set(CORE) | set(EVERYDAY) | {name for _, names in TOPICS for name in names}
    assert set(TOOLS) - reachable == set()


@pytest.mark.parametrize(
    ("question", "tool"),
    [
        (
            "Which earned more profit per slot, plan 12 or plan 14, and is the difference significant?",
            "compare_campaigns",
        ),
        ("Compare last week with the week before", "compare_campaigns"),
        ("Which categories sold through worst in the last sale, and why?", "sale_vs_plan"),
        ("Why did the last sale under-perform?", "sale_vs_plan"),
        (
            "What was the forecast error of the last three sales, and is it getting better?",
            "forecast_error_trend",
        ),
        ("What do customers say about HP-100 in their reviews?", "get_reviews"),
        ("Are the ratings of Torly falling?", "get_reviews"),
        ("How is today's live sale going?", "live_sale_status"),
        ("Re-plan the rest of the day", "propose_replan"),
        ("A competitor is dumping prices on audio: what changes tomorrow?", "what_if"),
        ("Put HP-100 at 40% off: what happens to the margin?", "what_if"),
    ],
)
def test_a_question_gets_the_tool_it_is_about(question: str, tool: str, sqlite_engine: Engine) -> None:
    tools = build_tools(make_deps(Settings(), make_session_factory(sqlite_engine), actor="a", channel="cli"))
    choice = choose_tools(question, tools, schema_tokens=3300, context_tokens=8192)
    assert tool in choice.names, (question, choice.names)
