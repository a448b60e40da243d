"""A deterministic stand-in for the LLM in evals: it calls a case's expected tools and reports its facts.

It makes the eval harness runnable in CI without a model: tool names and arguments of every case are
checked against the real tool schemas, facts are read from real tool results, and the grounding check and
timings run as with a real model. It scores the harness and the tools, not a model's judgement.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import tool_call

from assistant.message_model import MessageChatModel

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
                value = value_at(json.loads(results[fact["tool"]]), fact["path"])
            except (KeyError, IndexError, ValueError, TypeError):
                lines.append(f"{fact['path']}: not available")
                continue
            lines.append(f"{fact['path']}: {value}")
        text = "\n".join(lines) or "Answered from: " + ", ".join(sorted(results))
        return AIMessage(content=text)
