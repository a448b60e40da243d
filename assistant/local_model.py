"""An in-process chat model on CPU with Hugging Face transformers, for laptops without a model server.

``LocalChatModel`` is a LangChain ``BaseChatModel`` like ``ChatOpenAI``, so the agent uses it unchanged:
``bind_tools`` passes the tools' JSON schemas to the tokenizer's chat template, and tool calls are read back
from the Hermes format that Qwen2.5 and most open instruction models emit:
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. Tokenizers without a chat template get a
ChatML template with the same convention. Weights load from a local folder or the local Hugging Face cache
only (``local_files_only``); nothing is downloaded. Install with ``pip install -e ".[local]"``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

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


class LocalChatModel(MessageChatModel):
    """A transformers causal LM behind the chat-model interface (greedy or sampled decoding on CPU)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str = Field(default="local", description="Name recorded in the audit log.")
    max_new_tokens: int = Field(default=512, gt=0)
    temperature: float = Field(default=0.0, ge=0.0)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    hf_model: Any = Field(default=None, exclude=True)
    tokenizer: Any = Field(default=None, exclude=True)
    _template: str | None = PrivateAttr(default=None)

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

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> LocalChatModel:
        """A copy of this model that offers ``tools`` (LangChain tools, pydantic models or dicts)."""
        bound = self.model_copy(update={"tools": [convert_to_openai_tool(t) for t in tools]})
        bound.hf_model, bound.tokenizer = self.hf_model, self.tokenizer
        return bound

    def render_prompt(self, messages: Sequence[BaseMessage]) -> str:
        """The text the model sees: the tokenizer's chat template (or ChatML) with the tools' schemas."""
        if self.tokenizer is None:
            raise LocalModelUnavailable("no tokenizer loaded")
        own = bool(getattr(self.tokenizer, "chat_template", None))
        use_own = own and (not self.tools or self._own_template_shows_tools())
        template = None if use_own else TOOLS_TEMPLATE_PATH.read_text(encoding="utf-8")
        return str(
            self.tokenizer.apply_chat_template(
                to_chat_dicts(messages),
                tools=self.tools or None,
                add_generation_prompt=True,
                tokenize=False,
                chat_template=template,
            )
        )

    def _own_template_shows_tools(self) -> bool:
        """Whether the tokenizer's own chat template renders the tools it is given (SmolLM2's drops them)."""
        probe = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}],
            tools=[_PROBE_TOOL],
            add_generation_prompt=True,
            tokenize=False,
        )
        return "probe_tool_7f3a" in str(probe)

    def count_tokens(self, messages: Sequence[BaseMessage]) -> int:
        return len(self.tokenizer.encode(self.render_prompt(messages), add_special_tokens=False))

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        import torch  # noqa: PLC0415  (optional extra: local)

        if self.hf_model is None or self.tokenizer is None:
            raise LocalModelUnavailable("no model loaded: use LocalChatModel.from_pretrained(path)")
        prompt = self.render_prompt(messages)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        pad = self.tokenizer.pad_token_id
        eos = self.tokenizer.eos_token_id
        generate_kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.temperature > 0,
            "pad_token_id": pad if pad is not None else eos,
        }
        if self.temperature > 0:
            generate_kwargs["temperature"] = self.temperature
        with torch.no_grad():
            output = self.hf_model.generate(**inputs, **generate_kwargs)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        text = str(self.tokenizer.decode(new_tokens, skip_special_tokens=True))
        for marker in [*(stop or []), "<|im_end|>"]:
            text = text.split(marker, maxsplit=1)[0]
        content, calls, invalid = parse_tool_calls(text)
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
        )
