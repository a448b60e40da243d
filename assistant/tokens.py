"""Count tokens to budget the context window: the served model's tokenizer when it is available locally,
else an estimate of four characters per token."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4


def load_local_tokenizer(name_or_path: str) -> Any | None:
    """The Hugging Face tokenizer of ``name_or_path`` from a local folder or cache; never downloads."""
    try:
        from transformers import AutoTokenizer  # noqa: PLC0415  (optional extra: local)
    except ImportError:
        return None
    try:
        return AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    except (OSError, ValueError) as exc:
        log.debug("no local tokenizer for %s: %s", name_or_path, exc)
        return None


def hub_cache_has(name: str) -> bool:
    """Whether the Hugging Face cache holds files of the hub model ``name`` (checked without importing
    transformers, which costs seconds)."""
    if "/" not in name or os.path.isabs(name):
        return Path(name).is_dir()
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub"
    )
    return (Path(hub) / f"models--{name.replace('/', '--')}" / "snapshots").is_dir()


class TokenCounter:
    """Tokens of text and of chat messages."""

    def __init__(self, tokenizer: Any | None = None) -> None:
        self.tokenizer = tokenizer
        self.exact = tokenizer is not None

    @classmethod
    def for_model(cls, name_or_path: str | None) -> TokenCounter:
        return cls(load_local_tokenizer(name_or_path) if name_or_path else None)

    def count(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer.encode(text, add_special_tokens=False))
        return max(1, len(text) // CHARS_PER_TOKEN) if text else 0

    def count_message(self, message: BaseMessage) -> int:
        content = message.content if isinstance(message.content, str) else str(message.content)
        calls = getattr(message, "tool_calls", None) or []
        return 4 + self.count(content) + sum(self.count(str(c.get("args", ""))) + 8 for c in calls)

    def count_messages(self, messages: Sequence[BaseMessage]) -> int:
        return sum(self.count_message(m) for m in messages)


def trim_history(
    messages: list[BaseMessage],
    budget: int,
    count: Callable[[Sequence[BaseMessage]], int],
    is_turn_start: Callable[[BaseMessage], bool],
) -> list[BaseMessage]:
    """Drop the oldest whole turns (from a turn start to the next) until ``messages`` fit ``budget``.

    The system message (if first) and the newest turn are always kept.
    """
    head = [messages[0]] if messages and isinstance(messages[0], SystemMessage) else []
    body = messages[len(head) :]
    while body and count(head + body) > budget:
        starts = [i for i, m in enumerate(body) if is_turn_start(m)]
        if len(starts) < 2:
            break
        body = body[starts[1] :]
    return head + body
