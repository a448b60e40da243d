"""The LLM client: a LangChain chat model for any OpenAI-compatible endpoint, and a reachability probe.

vLLM (`vllm serve MODEL --enable-auto-tool-choice --tool-call-parser ...`) is the default server; llama.cpp's
``llama-server`` and Ollama's ``/v1`` speak the same API and work unchanged: set ``FLASHSALE_LLM_BASE_URL``
and ``FLASHSALE_LLM_MODEL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import httpx
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from assistant.settings import Settings
from db.errors import FlashSaleError

START_HINT = (
    "start one with `python cli.py serve-llm` "
    "(or point FLASHSALE_LLM_BASE_URL at any OpenAI-compatible server)"
)


class ModelUnavailable(FlashSaleError):
    """No chat model answers at the configured URL."""

    def __init__(self, base_url: str, detail: str = "") -> None:
        self.base_url = base_url
        self.detail = detail
        super().__init__(unavailable_message(base_url))


def unavailable_message(base_url: str) -> str:
    """The one line shown when no model answers: where we looked and how to start one."""
    return f"The model is unavailable at {base_url}: {START_HINT}"


def make_chat_model(settings: Settings, *, streaming: bool = False) -> ChatOpenAI:
    """A ``ChatOpenAI`` client for ``settings.llm_base_url``/``llm_model`` with timeouts and retries."""
    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=SecretStr(settings.llm_api_key),
        timeout=httpx.Timeout(settings.llm_timeout_s, connect=settings.llm_connect_timeout_s),
        max_retries=settings.llm_max_retries,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        streaming=streaming,
        stream_usage=True,
    )


@dataclass(frozen=True)
class ProbeResult:
    """What GET {base_url}/models said: whether the server answers and which models it serves."""

    ok: bool
    base_url: str
    models: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def message(self) -> str:
        if self.ok:
            return f"Model server at {self.base_url} serves: {', '.join(self.models) or '(no models listed)'}"
        return unavailable_message(self.base_url)

    def serves(self, model: str) -> bool:
        return not self.models or model in self.models


def probe_llm(settings: Settings, *, timeout_s: float | None = None) -> ProbeResult:
    """GET ``/models`` with a short timeout; never raises for network errors."""
    base = settings.llm_base_url.rstrip("/")
    timeout = timeout_s if timeout_s is not None else settings.llm_connect_timeout_s
    try:
        response = httpx.get(
            f"{base}/models",
            headers={"Authorization": f"Bearer {settings.llm_api_key}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        return ProbeResult(ok=False, base_url=base, detail=f"{type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return ProbeResult(ok=False, base_url=base, detail=f"HTTP {response.status_code}")
    try:
        data = response.json().get("data", [])
        models = [str(m.get("id")) for m in data if isinstance(m, dict)]
    except (ValueError, AttributeError):
        return ProbeResult(ok=False, base_url=base, detail="the server did not answer with JSON")
    return ProbeResult(ok=True, base_url=base, models=models)


def require_llm(settings: Settings) -> ChatOpenAI:
    """A chat model if the server answers, else :class:`ModelUnavailable` (one line, with the fix)."""
    probe = probe_llm(settings)
    if not probe.ok:
        raise ModelUnavailable(probe.base_url, probe.detail)
    return make_chat_model(settings, streaming=True)


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
