"""The tools the assistant's model may call, each a module-level function (see :mod:`.base`).

No tool writes prices or approves plans: the only write is ``save_draft_plan`` (a draft a person must
approve); every other tool runs in a session the database refuses to write through.
"""

from __future__ import annotations

from langchain_core.tools import StructuredTool

from assistant.deps import Deps
from assistant.llm_tools import analysis, catalog, kpi, live, planning, reviews  # noqa: F401  (registers the tools)
from assistant.llm_tools.base import TOOLS, ToolSpec, as_langchain_tool, error_json, is_error
from assistant.model_json import model_view

#: The tools that only read, and those that write (with what they may write).
READ_ONLY_TOOLS = frozenset(name for name, spec in TOOLS.items() if spec.read_only)
WRITING_TOOLS: dict[str, str] = {name: spec.writes for name, spec in TOOLS.items() if spec.writes is not None}
FORBIDDEN_TOOL_WORDS = ("approve", "set_price", "update_price", "write_price", "publish", "delete")


def build_tools(deps: Deps) -> list[StructuredTool]:
    """Every tool the assistant's model may call, bound to ``deps``."""
    return [as_langchain_tool(spec, deps) for spec in TOOLS.values()]


__all__ = [
    "FORBIDDEN_TOOL_WORDS",
    "READ_ONLY_TOOLS",
    "TOOLS",
    "WRITING_TOOLS",
    "ToolSpec",
    "build_tools",
    "error_json",
    "is_error",
    "model_view",
]
