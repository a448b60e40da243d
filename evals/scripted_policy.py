"""Deterministic stand-ins for the LLM in evals: a policy that calls a case's expected tools and reports its
facts, and one that makes a known mistake.

The correct policy makes the eval harness runnable in CI without a model: tool names and arguments of every
case are checked against the real tool schemas, facts are read from real tool results, and the grounding
check and timings run as with a real model. It scores the harness and the tools, not a model's judgement.
The mistaken policy proves the harness can tell: each kind of mistake must lower its own score.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call

from assistant.message_model import MessageChatModel
from tools.outside_text import unfence

_ids = itertools.count(1)


def value_at(data: Any, path: str) -> Any:
    """``data`` followed along a dotted path of keys and list indexes (``groups.0.gmv_cents``)."""
    for part in path.split(".") if path else []:
        if isinstance(data, list):
            data = data[int(part)]
        elif isinstance(data, dict):
            data = data[part]
        else:
            raise KeyError(path)
    return data


#: Keys of a result row that name what the row is about (a number there is stated only beside it).
ENTITY_KEYS = ("sku", "category", "brand", "competitor", "group", "scope_value", "name")


def fact_entity(data: Any, path: str) -> str | None:
    """What the row holding the fact at ``path`` is about (its SKU, category, ...), if the row says."""
    parts = path.split(".")
    if len(parts) < 2:
        return None
    try:
        row = value_at(data, ".".join(parts[:-1]))
    except (KeyError, IndexError, ValueError):
        return None
    if not isinstance(row, dict) or parts[-1] in ENTITY_KEYS:
        return None
    for key in ENTITY_KEYS:
        if isinstance(row.get(key), str) and row[key].strip():
            return unfence(row[key])
    return None


class ScriptedPolicyModel(MessageChatModel):
    """Calls ``expected_tools`` (resolved) on the first turn, then states ``facts`` from the results."""

    expected_tools: list[dict[str, Any]]
    facts: list[dict[str, str]]
    model_name: str = "scripted-policy"

    @property
    def _llm_type(self) -> str:
        return "scripted-policy"

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        results = {m.name: str(m.content) for m in messages if isinstance(m, ToolMessage) and m.name}
        if not results:
            calls = [
                tool_call(name=t["name"], args=t["args"], id=f"policy_{next(_ids)}")
                for t in self.expected_tools
            ]
            return AIMessage(content="", tool_calls=calls)
        lines = []
        for fact in self.facts:
            try:
                data = json.loads(results[fact["tool"]])
                value = value_at(data, fact["path"])
            except (KeyError, IndexError, ValueError, TypeError):
                lines.append(f"{fact['path']}: not available")
                continue
            entity = fact_entity(data, fact["path"])  # the row's SKU or category, stated beside its figure
            lines.append(f"{entity + ' ' if entity else ''}{fact['path']}: {value}")
        text = "\n".join(lines) or "Answered from: " + ", ".join(sorted(results))
        return AIMessage(content=text)


Mistake = Literal["wrong_tool", "bad_argument", "invented_number"]
MISTAKES: tuple[Mistake, ...] = ("wrong_tool", "bad_argument", "invented_number")
#: The tool the ``wrong_tool`` mistake calls instead of the expected ones, and the number it invents.
WRONG_TOOL = "get_market_signals"
INVENTED_NUMBER = "987,654.32"


class MistakenPolicyModel(ScriptedPolicyModel):
    """The scripted policy with one known mistake in every case.

    - ``wrong_tool``: calls :data:`WRONG_TOOL` instead of the expected tools (tool choice and facts drop);
    - ``bad_argument``: calls the expected tools with an argument their schemas do not have (argument
      validity drops, and the facts with it);
    - ``invented_number``: answers as the correct policy plus a figure no tool gave (grounding drops).
    """

    mistake: Mistake
    model_name: str = "mistaken-policy"

    @property
    def _llm_type(self) -> str:
        return "mistaken-policy"

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        first = not any(isinstance(m, ToolMessage) for m in messages)
        if first and self.mistake == "wrong_tool":
            return AIMessage(
                content="", tool_calls=[tool_call(name=WRONG_TOOL, args={}, id=f"policy_{next(_ids)}")]
            )
        if first and self.mistake == "bad_argument":
            calls = [
                tool_call(name=t["name"], args={**t["args"], "bogus_argument": 1}, id=f"policy_{next(_ids)}")
                for t in self.expected_tools
            ]
            return AIMessage(content="", tool_calls=calls)
        answer = super().reply(messages, stop)
        if not first and self.mistake == "invented_number":
            return AIMessage(content=f"{answer.content}\nAlso expect {INVENTED_NUMBER} in extra revenue.")
        return answer


_REF = re.compile(r"^@(\w+)\.(.+)$")


def resolve_refs(call: dict[str, Any], earlier: dict[str, str]) -> dict[str, Any]:
    """``call`` with each argument ``@TOOL.PATH`` replaced by the value at PATH of TOOL's last output in
    ``earlier`` (a follow-up's "that one"); left as it is when that output is missing."""
    args = {}
    for key, value in call["args"].items():
        args[key] = value
        match = _REF.match(value) if isinstance(value, str) else None
        if match and match.group(1) in earlier:
            with contextlib.suppress(KeyError, IndexError, ValueError, TypeError):
                args[key] = value_at(json.loads(earlier[match.group(1)]), match.group(2))
    return {**call, "args": args}


class ConversationPolicyModel(MessageChatModel):
    """The scripted policy over the turns of a conversation: turn ``current`` (set by the harness before
    each question) calls its expected tools and states its facts, from that turn's tool results only; with
    ``mistake`` it makes that mistake in every turn."""

    turns: list[dict[str, Any]]
    current: int = 0
    mistake: Mistake | None = None
    model_name: str = "scripted-policy"

    @property
    def _llm_type(self) -> str:
        return "scripted-conversation-policy"

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        turn = self.turns[self.current]
        start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=0)
        policy: ScriptedPolicyModel = (
            ScriptedPolicyModel(expected_tools=turn["expected_tools"], facts=turn["facts"])
            if self.mistake is None
            else MistakenPolicyModel(
                expected_tools=turn["expected_tools"], facts=turn["facts"], mistake=self.mistake
            )
        )
        return policy.reply(messages[start:], stop)
