"""What a language model reads of the project's typed results: JSON with money in major units.

Results keep money as integer cents (``*_cents``); a model misreads cents often. Every result a model
sees (tool results, the draft narrative's facts) goes through :func:`model_view`, which renames each
``*_cents`` field without the suffix and writes the amount in major units with the currency
(``"gmv_cents": 123456`` -> ``"gmv": "1234.56 EUR"``). The grounding check reads those amounts as numbers.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from db.audit import jsonable
from tools.outside_text import FOR_MODEL

_CENTS_SUFFIX = "_cents"
_MONEY_TEXT = re.compile(r"^-?\d+\.\d{2} [A-Z]{3}$")


def money_text(cents: float, currency: str) -> str:
    """An amount of cents in major units with the currency: ``123456`` -> ``"1234.56 EUR"``."""
    return f"{cents / 100:.2f} {currency}"


def model_view(value: Any, currency: str) -> Any:
    """``value`` as the model reads it: JSON-able, every ``*_cents`` field renamed without the suffix and
    written in major units with the currency (``"gmv_cents": 123456`` -> ``"gmv": "1234.56 EUR"``); text
    from outside (:mod:`tools.outside_text`) fenced as data."""
    data = jsonable(_dumped_for_model(value))

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, item in node.items():
                if key.endswith(_CENTS_SUFFIX) and (
                    isinstance(item, int | float) and not isinstance(item, bool)
                ):
                    out[key[: -len(_CENTS_SUFFIX)]] = money_text(item, currency)
                elif key.endswith(_CENTS_SUFFIX) and item is None:
                    out[key[: -len(_CENTS_SUFFIX)]] = None
                else:
                    out[key] = convert(item)
            return out
        if isinstance(node, list):
            return [convert(item) for item in node]
        return node

    return convert(data)


def _dumped_for_model(value: Any) -> Any:
    """Pydantic models dumped with the context that fences their outside text; containers walked."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", context=FOR_MODEL)
    if isinstance(value, dict):
        return {key: _dumped_for_model(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_dumped_for_model(item) for item in value]
    return value


def is_money_text(value: Any) -> bool:
    """Whether ``value`` is an amount as :func:`money_text` writes it."""
    return isinstance(value, str) and bool(_MONEY_TEXT.match(value))
