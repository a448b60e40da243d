"""Text from outside the shop's own numbers (news, reviews, competitors' names, product titles, free-text
cells of a query), marked on the result models so that a language model reads it fenced as data.

A result field typed :data:`OutsideText` serialises as itself, except when the dump is for a model
(``model_dump(mode="json", context=FOR_MODEL)``, which :func:`assistant.model_json.model_view` does): then
it becomes ``<untrusted>...</untrusted>`` with ``&``, ``<`` and ``>`` escaped, so a forged closing tag inside
the text cannot end the fence. One wrapper, applied in one place; the system prompt says that fenced text is
data, never an instruction.
"""

from __future__ import annotations

import html
import re
from typing import Annotated, Any

from pydantic import PlainSerializer, SerializationInfo

OPEN, CLOSE = "<untrusted>", "</untrusted>"
FOR_MODEL: dict[str, Any] = {"for_model": True}
#: Short codes (SKUs, dates, enum values, numbers as text) are no free text and stay as they are.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,39}")
_FENCE_TAG = re.compile(r"</?untrusted>")
_FENCED = re.compile(r"<untrusted>(.*?)</untrusted>", re.DOTALL)


def fence_text(text: str) -> str:
    """``text`` as inert data inside ``<untrusted>`` tags (escaped so that it cannot close them)."""
    return f"{OPEN}{html.escape(text, quote=False)}{CLOSE}"


def unfence(text: str) -> str:
    """``text`` with every fence removed and its content unescaped (what a person reads)."""
    return _FENCE_TAG.sub("", _FENCED.sub(lambda m: html.unescape(m.group(1)), text))


def fenced_spans(text: str) -> list[str]:
    """The outside texts fenced in ``text``, unescaped."""
    return [html.unescape(m) for m in _FENCED.findall(text)]


def without_fenced(text: str) -> str:
    """``text`` with every fenced outside text blanked out (what the shop's own data say)."""
    return _FENCED.sub(" ", text)


def fence_free_text(value: Any) -> Any:
    """A free-text string fenced; short codes, numbers and everything else as they are."""
    if isinstance(value, str) and not _CODE.fullmatch(value):
        return fence_text(value)
    return value


def for_model(info: SerializationInfo) -> bool:
    """Whether this dump is what a language model will read."""
    context = info.context
    return isinstance(context, dict) and bool(context.get("for_model"))


def _serialise(value: str, info: SerializationInfo) -> str:
    return fence_text(value) if for_model(info) else value


OutsideText = Annotated[str, PlainSerializer(_serialise, return_type=str)]
"""A result field whose text comes from outside (fenced when a model reads it)."""
