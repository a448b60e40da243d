"""The base of the project's own chat models: answer a list of messages with one ``AIMessage``."""

from __future__ import annotations

from typing import Any, Self

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult


class MessageChatModel(BaseChatModel):
    """A LangChain chat model that answers a list of messages with one ``AIMessage`` from :meth:`reply`.

    The in-process model (:class:`assistant.local_model.LocalChatModel`) and the scripted and stub models of
    the tests and evals subclass it and implement only ``reply`` (and ``_llm_type``). ``bind_tools`` returns
    the model unchanged; a model that shows the tools to its network overrides it.
    """

    def bind_tools(self, tools: Any, **kwargs: Any) -> Self:
        return self

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        """The answer to ``messages``; generation stops at any of the ``stop`` strings."""
        raise NotImplementedError

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages, stop))])
