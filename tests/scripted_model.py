"""A scripted chat model for deterministic agent tests (LangChain's FakeToolCallingModel pattern).

``ScriptedChatModel(replies=[...])`` returns the queued AIMessages in order (a reply may also be a function of
the messages it receives, to answer from a tool result); ``bind_tools`` returns the model itself and records
the tools; every call's messages are kept in ``calls``. An exhausted script raises, so a test that expects
fewer model calls than happen fails.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from pydantic import Field

from assistant.message_model import MessageChatModel

Reply = AIMessage | Callable[[list[BaseMessage]], AIMessage]
_ids = itertools.count(1)


def call(name: str, **args: Any) -> dict[str, Any]:
    """A tool call dict for :func:`tool_calls`."""
    return dict(tool_call(name=name, args=args, id=f"call_{next(_ids)}"))


def tool_calls(*calls: dict[str, Any], content: str = "") -> AIMessage:
    return AIMessage(content=content, tool_calls=list(calls))


def say(text: str) -> AIMessage:
    return AIMessage(content=text)


def cents(amount: str) -> int:
    """The cents of an amount as tool results write it ("1234.56 EUR" -> 123456)."""
    return round(float(amount.split(maxsplit=1)[0]) * 100)


def last_tool_json(messages: list[BaseMessage]) -> Any:
    """The parsed JSON of the newest tool result in ``messages``."""
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            return json.loads(str(m.content))
    raise AssertionError("no tool result in the messages")


class ScriptedChatModel(MessageChatModel):
    replies: list[Any] = Field(default_factory=list)
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[Any] = Field(default_factory=list)
    model_name: str = "scripted"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        self.bound_tools = list(tools)
        return self

    def enqueue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        self.calls.append(list(messages))
        if not self.replies:
            raise AssertionError(f"scripted model: no reply left for call {len(self.calls)}")
        reply = self.replies.pop(0)
        return reply(list(messages)) if callable(reply) else reply
