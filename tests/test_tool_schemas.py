"""What the model is sent about the tools fits a small model's context: compact schemas with every
argument, counted in the context budget."""

from __future__ import annotations

from langchain_core.utils.function_calling import convert_to_openai_tool

from assistant.deps import Deps
from assistant.llm_tools import build_tools
from assistant.llm_tools.schemas import model_schema, model_schemas, schema_text
from tests.assistant_shop import NOW

#: The compact schemas cost at most this share of pydantic's (measured with SmolLM2's tokenizer: 3,254
#: tokens instead of 5,975 for the 15 tools).
COMPACT_SHARE = 0.70


def _tools() -> list:  # type: ignore[type-arg]
    return build_tools(Deps(session_factory=None, clock=lambda: NOW))  # type: ignore[arg-type]


def test_the_tool_set_costs_far_less_than_pydantic_s_schemas() -> None:
    tools = _tools()
    compact = schema_text(model_schemas(tools))
    full = schema_text([convert_to_openai_tool(t) for t in tools])
    assert len(compact) <= COMPACT_SHARE * len(full), (len(compact), len(full))


def test_compact_schemas_keep_every_argument_its_type_and_what_is_required() -> None:
    tools = _tools()
    for tool, sent in zip(tools, model_schemas(tools), strict=True):
        full = tool.args_schema.model_json_schema()  # type: ignore[union-attr]
        compact = model_schema(tool)["function"]
        params = compact["parameters"]
        assert compact["name"] == tool.name and compact["description"]
        assert set(params["properties"]) == set(full.get("properties", {})), tool.name
        shown = sent["function"]
        for name in set(params["properties"]) - set(shown["parameters"]["properties"]):
            assert name in shown["description"], (tool.name, name)  # left out of the schema, named
        assert set(params.get("required", [])) == set(full.get("required", [])), tool.name
        for name, prop in params["properties"].items():
            assert "type" in prop or "enum" in prop, (tool.name, name, prop)
        assert all("title" not in p for p in params["properties"].values())
