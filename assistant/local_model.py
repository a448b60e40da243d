"""An in-process chat model on CPU with Hugging Face transformers, for laptops without a model server.

``LocalChatModel`` is a LangChain ``BaseChatModel`` like ``ChatOpenAI``, so the agent uses it unchanged:
``bind_tools`` binds the tools' JSON schemas (and ``tool_choice``) to the calls, the chat template renders
them, and tool calls are read back from the Hermes format that Qwen2.5 and most open instruction models emit:
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; a required or named ``tool_choice`` starts the
reply with that opening, so the model only writes the name and arguments. Tokenizers without a chat template
get a ChatML template with the same convention. Weights load from a local folder or the local Hugging Face
cache only (``local_files_only``); nothing is downloaded. Install with ``pip install -e ".[local]"``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any, cast

from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.runnables import RunnableBinding
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, model_validator

from assistant.message_model import MessageChatModel
from assistant.prompts import PROMPTS_DIR
from db.errors import FlashSaleError

LOCAL_INSTALL_HINT = 'the local backend needs transformers and torch: pip install -e ".[local]"'

#: ChatML with Hermes-style tool calls, for models whose own template has none or ignores ``tools`` (the
#: same file serves ``vllm serve --chat-template``).
TOOLS_TEMPLATE_PATH = PROMPTS_DIR / "chat_template_tools.jinja"
_PROBE_TOOL = {
    "type": "function",
    "function": {"name": "probe_tool_7f3a", "description": "", "parameters": {"type": "object"}},
}
_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)
_OPEN_CALL = '<tool_call>\n{"name": "'
#: How a forced call's text ends before the model goes on: arguments are an object, and a tool without
#: parameters gets the empty one.
_ARGS_OPENINGS = ('"arguments": {', '"arguments": {}}')


class LocalModelUnavailable(FlashSaleError):
    """transformers/torch are missing or the weights are not on this machine."""


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Split generated text into content, valid tool calls and invalid ones (Hermes format)."""
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for match in _TOOL_CALL.finditer(text):
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        try:
            data = json.loads(match.group(1))
            name = data["name"]
            args = data.get("arguments", data.get("parameters", {}))
            if isinstance(args, str):
                args = json.loads(args)
            if not isinstance(name, str) or not isinstance(args, dict):
                raise TypeError("name must be a string and arguments an object")
        except (ValueError, KeyError, TypeError) as exc:
            invalid.append(
                {
                    "name": None,
                    "args": match.group(1),
                    "id": call_id,
                    "error": str(exc),
                    "type": "invalid_tool_call",
                }
            )
            continue
        calls.append(dict(tool_call(name=name, args=args, id=call_id)))
    content = _TOOL_CALL.sub("", text).strip()
    return content, calls, invalid


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the role/content dicts that chat templates expect."""
    out: list[dict[str, Any]] = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else json.dumps(m.content)
        if isinstance(m, SystemMessage):
            out.append({"role": "system", "content": content})
        elif isinstance(m, HumanMessage):
            out.append({"role": "user", "content": content})
        elif isinstance(m, ToolMessage):
            out.append(
                {"role": "tool", "content": content, "name": m.name or "", "tool_call_id": m.tool_call_id}
            )
        elif isinstance(m, AIMessage):
            entry: dict[str, Any] = {"role": "assistant", "content": content}
            if m.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": c.get("id"),
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["args"]},
                    }
                    for c in m.tool_calls
                ]
            out.append(entry)
        else:
            out.append({"role": "user", "content": content})
    return out


def tool_choice_name(tool_choice: Any, tools: Sequence[dict[str, Any]]) -> str:
    """What ``tool_choice`` asks for: ``"none"``, ``"auto"``, ``"required"`` or the name of one tool.

    Takes the forms of OpenAI's API and LangChain's ``bind_tools``: ``"any"``/``True`` mean required, a name
    or ``{"type": "function", "function": {"name": ...}}`` names a tool; ``None`` is ``"auto"``.
    """
    if tool_choice is None or tool_choice is False or tool_choice == "auto":
        return "auto"
    if tool_choice in ("any", "required", True):
        return "required"
    if tool_choice == "none":
        return "none"
    name = tool_choice
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
    names = [t["function"]["name"] for t in tools]
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"tool_choice {tool_choice!r} names none of the bound tools {names}")
    return name


class LocalToolBinding(RunnableBinding[LanguageModelInput, AIMessage]):  # type: ignore[no-redef]
    """``LocalChatModel.bind_tools``'s result: a binding whose prompt and token count include its tools."""

    def render_prompt(self, messages: Sequence[BaseMessage]) -> str:
        return cast("LocalChatModel", self.bound).render_prompt(messages, **self.kwargs)

    def count_tokens(self, messages: Sequence[BaseMessage]) -> int:
        return cast("LocalChatModel", self.bound).count_tokens(messages, **self.kwargs)


class LocalChatModel(MessageChatModel):
    """A transformers causal LM behind the chat-model interface (greedy or sampled decoding on CPU).

    ``LocalChatModel(model_path=folder)`` loads the folder like :meth:`from_pretrained` (LangChain's standard
    tests build models from keyword arguments); ``max_tokens`` is accepted for ``max_new_tokens``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    model_name: str = Field(default="local", description="Name recorded in the audit log.")
    max_new_tokens: int = Field(
        default=512, gt=0, validation_alias=AliasChoices("max_new_tokens", "max_tokens")
    )
    temperature: float = Field(default=0.0, ge=0.0)
    stop: list[str] | None = Field(default=None, description="Strings that end every reply.")
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="Tools offered when a call binds none."
    )
    model_path: str | None = Field(default=None, description="A folder to load when no model is given.")
    hf_model: Any = Field(default=None, exclude=True)
    tokenizer: Any = Field(default=None, exclude=True)
    _template: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load_from_path(self) -> LocalChatModel:
        if self.hf_model is None and self.model_path is not None:
            loaded = type(self).from_pretrained(self.model_path)
            self.hf_model, self.tokenizer = loaded.hf_model, loaded.tokenizer
            if self.model_name == "local":
                self.model_name = self.model_path
        return self

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> LocalChatModel:
        """Load weights and tokenizer from a folder or the local cache (never from the network)."""
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415  (optional extra: local)
        except ImportError as exc:
            raise LocalModelUnavailable(LOCAL_INSTALL_HINT) from exc
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(name_or_path, local_files_only=True)
        except OSError as exc:
            raise LocalModelUnavailable(
                f"no local weights for {name_or_path!r}: download them once (e.g. `huggingface-cli download "
                f"{name_or_path}`) or pass a folder"
            ) from exc
        model.eval()
        return cls(model_name=str(name_or_path), hf_model=model, tokenizer=tokenizer, **kwargs)

    @property
    def _llm_type(self) -> str:
        return "transformers-local"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="transformers",
            ls_model_name=str(kwargs.get("model") or self.model_name),
            ls_model_type="chat",
            ls_temperature=self.temperature,
            ls_max_tokens=self.max_new_tokens,
        )
        if stop or self.stop:
            params["ls_stop"] = list(stop or self.stop or [])
        return params

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> LocalToolBinding:
        """This model with ``tools`` (LangChain tools, pydantic models, functions or dicts) and
        ``tool_choice`` bound to every call, as LangChain's own chat models do."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            tool_choice_name(tool_choice, formatted)  # an unknown tool fails here, not at the first call
            kwargs["tool_choice"] = tool_choice
        return LocalToolBinding(bound=self, kwargs={"tools": formatted, **kwargs}, config={})

    def render_prompt(
        self,
        messages: Sequence[BaseMessage],
        tools: Sequence[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> str:
        """The text the model sees: the tokenizer's chat template (or ChatML) with the tools' schemas, and the
        opening of a tool call when ``tool_choice`` requires one."""
        if self.tokenizer is None:
            raise LocalModelUnavailable("no tokenizer loaded")
        offered = list(self.tools if tools is None else tools)
        choice = tool_choice_name(tool_choice, offered) if offered else "auto"
        if choice == "none":
            offered = []
        own = bool(getattr(self.tokenizer, "chat_template", None))
        use_own = own and (not offered or self._own_template_shows_tools())
        template = None if use_own else TOOLS_TEMPLATE_PATH.read_text(encoding="utf-8")
        prompt = str(
            self.tokenizer.apply_chat_template(
                to_chat_dicts(messages),
                tools=offered or None,
                add_generation_prompt=True,
                tokenize=False,
                chat_template=template,
            )
        )
        if choice == "required":
            prompt += _OPEN_CALL
        elif choice not in ("auto", "none"):
            prompt += _call_opening(choice, offered)
        return prompt

    def _own_template_shows_tools(self) -> bool:
        """Whether the tokenizer's own chat template renders the tools it is given (SmolLM2's drops them)."""
        probe = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}],
            tools=[_PROBE_TOOL],
            add_generation_prompt=True,
            tokenize=False,
        )
        return "probe_tool_7f3a" in str(probe)

    def count_tokens(self, messages: Sequence[BaseMessage], **kwargs: Any) -> int:
        return len(self.tokenizer.encode(self.render_prompt(messages, **kwargs), add_special_tokens=False))

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        return self.reply_to(messages, stop)

    def _likeliest(self, prompt: str, names: Sequence[str]) -> str:
        """The name the model finds likeliest to follow ``prompt`` (the summed log-probabilities of its
        tokens), so that a required call names one of the bound tools."""
        if len(names) == 1:
            return names[0]
        import torch  # noqa: PLC0415  (optional extra: local)

        base = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        scores = []
        for name in names:
            ids = self.tokenizer(f'{prompt}{name}"', add_special_tokens=False)["input_ids"]
            start = next((i for i, (a, b) in enumerate(zip(base, ids, strict=False)) if a != b), len(base))
            with torch.no_grad():
                logits = self.hf_model(torch.tensor([ids])).logits[0]
            logprobs = torch.log_softmax(logits[start - 1 : -1], dim=-1)
            scores.append(float(logprobs.gather(1, torch.tensor(ids[start:]).unsqueeze(1)).sum()))
        return names[max(range(len(names)), key=scores.__getitem__)]

    def reply_to(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> AIMessage:
        """Generate the answer; ``kwargs`` may carry a binding's ``tools`` and ``tool_choice``."""
        import torch  # noqa: PLC0415  (optional extra: local)

        if self.hf_model is None or self.tokenizer is None:
            raise LocalModelUnavailable("no model loaded: use LocalChatModel.from_pretrained(path)")
        tools = list(self.tools if kwargs.get("tools") is None else kwargs["tools"])
        prompt = self.render_prompt(messages, tools=tools, tool_choice=kwargs.get("tool_choice"))
        if prompt.endswith(
            _OPEN_CALL
        ):  # a call is required: it names the bound tool the model finds likeliest
            name = self._likeliest(prompt, [t["function"]["name"] for t in tools])
            prompt = prompt.removesuffix(_OPEN_CALL) + _call_opening(name, tools)
        opened = prompt[prompt.rfind(_OPEN_CALL) :] if prompt.endswith(_ARGS_OPENINGS) else ""
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        pad = self.tokenizer.pad_token_id
        eos = self.tokenizer.eos_token_id
        max_new_tokens = int(kwargs.get("max_tokens") or self.max_new_tokens)
        generate_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": self.temperature > 0,
            "pad_token_id": pad if pad is not None else eos,
        }
        if self.temperature > 0:
            generate_kwargs["temperature"] = self.temperature
        with torch.no_grad():
            output = self.hf_model.generate(**inputs, **generate_kwargs)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        text = str(self.tokenizer.decode(new_tokens, skip_special_tokens=True))
        stopped = False
        for marker in [*(stop or self.stop or []), "<|im_end|>"]:
            if marker and marker in text:
                text, stopped = text.split(marker, maxsplit=1)[0], True
        if opened:
            content, calls, invalid = _forced_call(opened + text, opened.split('"', 4)[3])
        else:
            content, calls, invalid = parse_tool_calls(text)
        hit_limit = not stopped and len(new_tokens) >= max_new_tokens and int(new_tokens[-1]) != eos
        usage = {
            "input_tokens": int(inputs["input_ids"].shape[1]),
            "output_tokens": len(new_tokens),
            "total_tokens": int(inputs["input_ids"].shape[1]) + len(new_tokens),
        }
        return AIMessage(
            content=content,
            tool_calls=calls,
            invalid_tool_calls=invalid,
            usage_metadata=usage,
            response_metadata={
                "model_name": self.model_name,
                "finish_reason": "length" if hit_limit else ("tool_calls" if calls else "stop"),
            },
        )


def _call_opening(name: str, tools: Sequence[dict[str, Any]]) -> str:
    """The start of a call of ``name`` that the reply is given, up to the arguments the model writes."""
    tool = next(t for t in tools if t["function"]["name"] == name)
    no_params = not (tool["function"].get("parameters") or {}).get("properties")
    return f'{_OPEN_CALL}{name}", {_ARGS_OPENINGS[1] if no_params else _ARGS_OPENINGS[0]}'


def _forced_call(text: str, name: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """A forced call of ``name`` read from its text: the first JSON object after ``<tool_call>``, even where
    the model went on (or stopped) without ``</tool_call>``, with the name it was given (a second ``"name"``
    key does not rename it); an object cut off or malformed is an invalid tool call, not content."""
    start = text.index("<tool_call>") + len("<tool_call>")
    body = text[start:].lstrip()
    try:
        obj, end = json.JSONDecoder().raw_decode(body)
        args = obj["arguments"]
        if not isinstance(args, dict):
            raise TypeError("arguments must be an object")
    except (ValueError, KeyError, TypeError) as exc:
        raw = body.split("</tool_call>", maxsplit=1)[0]
        bad = {"name": name, "args": raw, "id": f"call_{uuid.uuid4().hex[:12]}", "error": str(exc)}
        return "", [], [{**bad, "type": "invalid_tool_call"}]
    content, calls, invalid = parse_tool_calls(body[end:].lstrip().removeprefix("</tool_call>"))
    call = dict(tool_call(name=name, args=args, id=f"call_{uuid.uuid4().hex[:12]}"))
    return content, [call, *calls], invalid
