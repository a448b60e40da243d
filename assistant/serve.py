"""Start a local vLLM server for the assistant, with the tool-call parser that fits the model family."""

from __future__ import annotations

import importlib.util
import re
import shutil

from db.errors import FlashSaleError

INSTALL_HINT = (
    'vLLM is not installed: pip install -e ".[vllm]" (needs a CUDA GPU; see the README for CPU options)'
)

# Model family (matched on the lower-cased model name) -> vLLM --tool-call-parser. Order matters.
TOOL_PARSERS: list[tuple[str, str]] = [
    (r"qwen3.*coder", "qwen3_coder"),
    (r"qwq|qwen", "hermes"),
    (r"hermes", "hermes"),
    (r"llama-?4", "llama4_pythonic"),
    (r"llama-?3\.2.*(1b|3b)", "pythonic"),
    (r"llama-?3", "llama3_json"),
    (r"mistral|mixtral|ministral|codestral", "mistral"),
    (r"granite", "granite"),
    (r"internlm", "internlm"),
    (r"jamba", "jamba"),
    (r"deepseek-?v3|deepseek-?r1", "deepseek_v3"),
    (r"phi-?4", "phi4_mini_json"),
    (r"gpt-oss", "openai"),
    (r"glm-?4", "glm45"),
    (r"kimi", "kimi_k2"),
    (r"smollm", "hermes"),  # with the project's Hermes tool template (prompts/chat_template_tools.jinja)
]


class VllmNotInstalled(FlashSaleError):
    """vllm is an optional extra."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


class UnknownModelFamily(FlashSaleError):
    """No tool-call parser is known for the model's family."""


def tool_parser_for(model: str) -> str:
    """The vLLM ``--tool-call-parser`` for ``model`` (e.g. Qwen2.5 -> hermes, Llama-3.1 -> llama3_json)."""
    name = model.lower()
    for pattern, parser in TOOL_PARSERS:
        if re.search(pattern, name):
            return parser
    families = ", ".join(sorted({p for _, p in TOOL_PARSERS}))
    raise UnknownModelFamily(
        f"no tool-call parser known for {model!r}: pass --parser (one of vLLM's, e.g. {families})"
    )


def vllm_command(
    model: str,
    *,
    parser: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_model_len: int | None = None,
    served_model_name: str | None = None,
    chat_template: str | None = None,
    python: str | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """The ``vllm serve`` command line with automatic tool choice and the fitting parser. ``python``: the
    interpreter of a virtual environment that has vLLM (e.g. its CPU build, kept apart from the project's
    packages), run as ``python -m vllm.entrypoints.openai.api_server``."""
    start = [python, "-m", "vllm.entrypoints.openai.api_server", "--model"] if python else ["vllm", "serve"]
    cmd = [
        *start,
        model,
        "--host",
        host,
        "--port",
        str(port),
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        parser or tool_parser_for(model),
    ]
    if max_model_len:
        cmd += ["--max-model-len", str(max_model_len)]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    if chat_template:
        cmd += ["--chat-template", chat_template]
    return cmd + list(extra or [])


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None and shutil.which("vllm") is not None
