"""The base of the project's own chat models: answer a list of messages with one ``AIMessage``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable


def stopped_at_token_limit(message: AIMessage) -> bool:
    """Whether a reply was cut off at the token limit (``finish_reason`` of OpenAI's API and vLLM)."""
    return (message.response_metadata or {}).get("finish_reason") == "length"


class MessageChatModel(BaseChatModel):
    """A LangChain chat model that answers a list of messages with one ``AIMessage`` from :meth:`reply`.

    The in-process model (:class:`assistant.local_model.LocalChatModel`) and the scripted and stub models of
    the tests and evals subclass it and implement only ``reply`` (and ``_llm_type``). ``bind_tools`` returns
    the model unchanged; a model that shows the tools to its network overrides it (and ``reply_to``, which
    receives the call's keyword arguments, e.g. a binding's ``tools`` and ``tool_choice``). ``ainvoke`` and
    ``astream`` run these in a worker thread (``BaseChatModel``'s ``run_in_executor`` defaults).
    """

    def bind_tools(self, tools: Any, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        """The answer to ``messages``; generation stops at any of the ``stop`` strings."""
        raise NotImplementedError

    def reply_to(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> AIMessage:
        """:meth:`reply` with the call's keyword arguments (ignored unless a subclass overrides this)."""
        return self.reply(messages, stop)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply_to(messages, stop, **kwargs))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The reply as one chunk (these models generate it whole), so that ``stream()`` yields
        ``AIMessageChunk`` as streaming callers expect."""
        reply = self.reply_to(messages, stop, **kwargs)
        chunk = AIMessageChunk(
            content=reply.content,
            tool_call_chunks=[
                tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c.get("id"), index=i)
                for i, c in enumerate(reply.tool_calls)
            ],
            response_metadata=reply.response_metadata,
            usage_metadata=reply.usage_metadata,
            id=reply.id,
        )
        if run_manager is not None and isinstance(reply.content, str):
            run_manager.on_llm_new_token(reply.content, chunk=ChatGenerationChunk(message=chunk))
        yield ChatGenerationChunk(message=chunk)
