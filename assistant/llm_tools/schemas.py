"""The tool schemas the model is sent: every argument with its type, description, default and choices, and
nothing else.

Pydantic's JSON schemas carry titles, ``anyOf [X, null]`` for optional arguments and the bounds of every
field: about 6,000 tokens for the full tool set, most of a small model's context before the conversation
starts. The model reads the compact form (about a third of that); the full schema still validates every
call (:func:`assistant.llm_tools.base.run_tool`), and a bound that is broken comes back to the model as a
named error with a hint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

_KEEP = ("type", "description", "default", "enum", "items", "format", "additionalProperties")


def _compact(prop: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:  # Optional[X]: X (an argument left out takes its default)
        prop = {**options[0], **{k: v for k, v in prop.items() if k != "anyOf"}}
    out = {k: v for k, v in prop.items() if k in _KEEP and not (k == "default" and v in (None, [], {}))}
    if isinstance(out.get("items"), dict):
        out["items"] = _compact(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _compact(out["additionalProperties"])
    if "type" not in out and "enum" not in out and "anyOf" in prop:
        out["anyOf"] = [_compact(o) for o in prop["anyOf"]]
    return out


def model_schema(tool: BaseTool) -> dict[str, Any]:
    """``tool`` as an OpenAI tool definition with compact parameters."""
    full = convert_to_openai_tool(tool)["function"]
    params = full.get("parameters", {})
    compact: dict[str, Any] = {
        "type": "object",
        "properties": {name: _compact(p) for name, p in params.get("properties", {}).items()},
    }
    if params.get("required"):
        compact["required"] = list(params["required"])
    return {
        "type": "function",
        "function": {"name": full["name"], "description": full["description"], "parameters": compact},
    }


#: Shared arguments a later tool still shows; the others it takes as the first tool does, unshown.
ALWAYS_SHOWN = frozenset({"sale_date", "slots", "min_item_margin", "markdown_budget"})


def model_schemas(tools: Sequence[BaseTool]) -> list[dict[str, Any]]:
    """The compact schemas of ``tools``. An argument an earlier tool already describes the same way (the
    plan tools share a dozen) is shown once: later tools keep the everyday ones (``ALWAYS_SHOWN``) and say
    that they take the rest as the first tool does; validation still accepts every argument."""
    seen: dict[str, str] = {}
    out = []
    for tool in tools:
        schema = model_schema(tool)
        function = schema["function"]
        props = function["parameters"]["properties"]
        shared: dict[str, list[str]] = {}
        for name, prop in list(props.items()):
            key = json.dumps({"name": name, **prop}, sort_keys=True)
            first = seen.setdefault(key, function["name"])
            if first != function["name"] and name not in ALWAYS_SHOWN:
                del props[name]
                shared.setdefault(first, []).append(name)
        for first, names in shared.items():
            function["description"] += f" Also takes {first}'s arguments {', '.join(names)}."
        out.append(schema)
    return out


def schema_text(schemas: Sequence[dict[str, Any]]) -> str:
    """The schemas as the prompt carries them (to count their tokens)."""
    return "\n".join(json.dumps(s, separators=(",", ":"), ensure_ascii=False) for s in schemas)
