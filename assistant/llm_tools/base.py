"""How an LLM tool is made and run.

A tool is a module-level function ``tool(deps, session, args) -> result``: ``args`` is a pydantic model (the
JSON schema the model sees, a description per field), the function's docstring is the tool's description,
and its dependencies come in explicitly (:class:`~assistant.deps.Deps`, a database session). The
:func:`llm_tool` decorator registers it with what it may write; :func:`build_tools` turns the registry into
LangChain tools for one caller.

Running a tool (:func:`run_tool`): the arguments are validated; a read-only tool runs in a session the
database itself refuses to write through (:func:`db.engine.read_only_scope`), a writing tool in one
transaction, each under a time limit (:mod:`assistant.llm_tools.time_limit`); the typed result becomes
the JSON the model reads (:func:`model_view`: money in major units
with the currency); bad arguments and domain errors come back as ``{"error": ..., "hint": ...}`` so the
model can correct itself instead of the turn failing. A tool may return :class:`WithArtifact` to hand the
agent something beside the text the model sees (a plan proposal that a later ``save_draft_plan`` saves).
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.tools import StructuredTool
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from sqlalchemy.orm import Session

from assistant.deps import Deps
from assistant.llm_tools.time_limit import ToolTimedOut, call_with_time_limit
from assistant.model_json import model_view
from db.errors import FlashSaleError

MAX_TOOL_OUTPUT_CHARS = 12_000
#: No shop's data or plan lies outside these days: a date beyond them is a mistake (or an attack), refused
#: before any query or model runs.
EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


def _date_in_range(value: dt.date) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(
            f"{value} is outside {EARLIEST_DATE} to {LATEST_DATE}: give a day of the shop's data"
        )
    return value


def _clean_text(value: str) -> str:
    """Free text without control characters (NUL, escape sequences), keeping line breaks and tabs."""
    return "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc")


ToolDate = Annotated[dt.date, AfterValidator(_date_in_range)]
"""A date argument: refused outside the years any shop's data can hold."""
ToolText = Annotated[str, AfterValidator(_clean_text)]
"""A free-text argument that may be stored: control characters removed."""


class ToolError(BaseModel):
    """What a tool returns instead of a result: what went wrong and what to try next."""

    error: str
    hint: str


class ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class WithArtifact:
    """A tool result for the model plus an artifact for the agent (never shown to the model)."""

    result: Any
    artifact: dict[str, Any]


ToolFunction = Callable[[Deps, Session, Any], Any]


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool: its name, description (the function's docstring), arguments and what it writes."""

    name: str
    description: str
    args: type[BaseModel]
    run: ToolFunction
    writes: str | None = None

    @property
    def read_only(self) -> bool:
        return self.writes is None


TOOLS: dict[str, ToolSpec] = {}


def llm_tool(args: type[BaseModel], *, writes: str | None = None) -> Callable[[ToolFunction], ToolFunction]:
    """Register the decorated function as a tool the model may call.

    ``writes`` says what the tool may write (None: nothing, and it runs in a read-only session).
    """

    def register(func: ToolFunction) -> ToolFunction:
        description = inspect.getdoc(func)
        if not description:
            raise ValueError(f"tool {func.__name__} needs a docstring: it is the model's description")
        if func.__name__ in TOOLS:
            raise ValueError(f"tool {func.__name__} is registered twice")
        TOOLS[func.__name__] = ToolSpec(func.__name__, " ".join(description.split()), args, func, writes)
        return func

    return register


def to_json(value: Any, currency: str) -> str:
    text = json.dumps(model_view(value, currency), ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_TOOL_OUTPUT_CHARS:
        return error_json(
            f"result too large ({len(text)} characters)",
            "narrow the question: fewer SKUs, a shorter window, a smaller limit",
        )
    return text


def error_json(error: str, hint: str) -> str:
    return ToolError(error=error, hint=hint).model_dump_json()


def is_error(output: str) -> bool:
    """Whether a tool's output is a :class:`ToolError`."""
    try:
        data = json.loads(output)
    except (TypeError, ValueError):
        return False
    return isinstance(data, dict) and set(data) == {"error", "hint"}


def validation_hint(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "arguments"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


# ---- running ---------------------------------------------------------------------------------------------


def run_tool(spec: ToolSpec, deps: Deps, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """Validate, run and render one call: (the JSON the model reads, the artifact or None)."""
    try:
        args = spec.args.model_validate(kwargs)
    except ValidationError as exc:
        return error_json(f"invalid arguments for {spec.name}", validation_hint(exc)), None
    try:
        result = call_with_time_limit(
            spec.name,
            lambda session: spec.run(deps, session, args),
            deps.session_factory,
            read_only=spec.read_only,
            limit_s=deps.settings.tool_time_limit_s,
        )
    except ToolTimedOut as exc:
        return error_json(
            str(exc), "narrow the question: fewer SKUs, a shorter window, a smaller limit"
        ), None
    except FlashSaleError as exc:
        return error_json(str(exc), "fix the arguments named in the error and call the tool again"), None
    except (ValueError, LookupError, ArithmeticError) as exc:
        return error_json(f"{type(exc).__name__}: {exc}", "check the arguments against the tool schema"), None
    if isinstance(result, WithArtifact):
        return to_json(result.result, deps.currency), result.artifact
    return to_json(result, deps.currency), None


def as_langchain_tool(spec: ToolSpec, deps: Deps) -> StructuredTool:
    """``spec`` bound to ``deps`` as a LangChain tool (content and artifact)."""

    def call(**kwargs: Any) -> tuple[str, dict[str, Any] | None]:
        return run_tool(spec, deps, kwargs)

    def on_validation_error(exc: Exception) -> str:
        hint = validation_hint(exc) if isinstance(exc, ValidationError) else str(exc)
        return error_json(f"invalid arguments for {spec.name}", hint)

    return StructuredTool.from_function(
        func=call,
        name=spec.name,
        description=spec.description,
        args_schema=spec.args,
        response_format="content_and_artifact",
        handle_validation_error=on_validation_error,
    )
