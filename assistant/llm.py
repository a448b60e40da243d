"""The LLM client: a LangChain chat model for any OpenAI-compatible endpoint, a reachability probe, and the
one choice every front end makes between the in-process model and the server (:func:`open_chat_model`).

vLLM (`vllm serve MODEL --enable-auto-tool-choice --tool-call-parser ...`) is the default server; llama.cpp's
``llama-server`` and Ollama's ``/v1`` speak the same API and work unchanged: set ``FLASHSALE_LLM_BASE_URL``
and ``FLASHSALE_LLM_MODEL``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, overload
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from assistant.local_model import LocalChatModel
from assistant.settings import Settings
from db.errors import FlashSaleError

log = logging.getLogger(__name__)

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


class ModelNotServed(ModelUnavailable):
    """The server answers but does not serve the configured model name."""

    def __init__(self, base_url: str, model: str, served: list[str]) -> None:
        FlashSaleError.__init__(
            self,
            f"The model server at {redact_url(base_url)} answers but does not serve {model} "
            f"(FLASHSALE_LLM_MODEL); it serves {', '.join(served)}: set FLASHSALE_LLM_MODEL to one of those",
        )
        self.base_url, self.detail = base_url, f"not served: {model}"


def redact_url(url: str) -> str:
    """``url`` safe to print: a user name, password or query (where API keys hide) replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def unavailable_message(base_url: str) -> str:
    """The one line shown when no model answers: where we looked (credentials redacted) and how to start
    one."""
    return f"The model is unavailable at {redact_url(base_url)}: {START_HINT}"


def make_chat_model(settings: Settings, *, streaming: bool = False) -> ChatOpenAI:
    """A ``ChatOpenAI`` client for ``settings.llm_base_url``/``llm_model`` with timeouts and retries."""
    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=SecretStr(settings.llm_api_key),
        # the openai package's own Timeout: its HTTP library changed (httpx, then httpx2) across versions
        timeout=openai.Timeout(settings.llm_timeout_s, connect=settings.llm_connect_timeout_s),
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
            served = ", ".join(self.models) or "(no models listed)"
            return f"Model server at {redact_url(self.base_url)} serves: {served}"
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


@overload
def open_chat_model(settings: Settings, *, required: Literal[True] = ...) -> BaseChatModel: ...
@overload
def open_chat_model(settings: Settings, *, required: Literal[False]) -> BaseChatModel | None: ...
def open_chat_model(settings: Settings, *, required: bool = True) -> BaseChatModel | None:
    """The chat model the settings name, for every front end: the in-process transformers model when
    ``FLASHSALE_LLM_LOCAL_MODEL`` is set, else the model server when it answers. When none answers:
    :class:`ModelUnavailable` if ``required``, else None (the caller falls back, e.g. to a template)."""
    if settings.llm_local_model:
        return LocalChatModel.from_pretrained(
            settings.llm_local_model, max_new_tokens=settings.llm_max_tokens
        )
    probe = probe_llm(settings)
    if probe.ok and not probe.serves(settings.llm_model):
        raise ModelNotServed(probe.base_url, settings.llm_model, probe.models)
    if probe.ok:
        return make_chat_model(settings, streaming=True)
    if required:
        raise ModelUnavailable(probe.base_url, probe.detail)
    log.info("no model answers: %s (%s)", probe.message, probe.detail)
    return None
