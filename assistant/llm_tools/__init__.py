"""The tools the assistant's model may call."""

from assistant.llm_tools.registry import (
    FORBIDDEN_TOOL_WORDS,
    READ_ONLY_TOOLS,
    WRITING_TOOLS,
    SkuArgs,
    build_tools,
    error_json,
    is_error,
)

__all__ = ["FORBIDDEN_TOOL_WORDS", "READ_ONLY_TOOLS", "WRITING_TOOLS", "SkuArgs", "build_tools", "error_json", "is_error"]
