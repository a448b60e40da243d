"""LangChain's standard chat-model suites (``langchain-tests``) against the in-process backend on SmolLM2.

``ChatModelUnitTests`` and ``ChatModelIntegrationTests`` are the yardstick LangChain's own integrations are
held to: construction from keyword arguments, ``bind_tools`` returning a binding that carries ``tools`` and
``tool_choice``, sync and async invoke/stream/batch, usage metadata, stop sequences, tool-message histories.
The tests that need the model to write a correct tool call or a schema's object are expected to fail at 135M
parameters (``xfail``, not strict: a bigger model in ``model_path`` passes them). The module is in the
``real_model`` stage (``pytest -m real_model``) and skips with the reason where the folder cannot be built.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from assistant.local_model import LocalChatModel
from evals.smollm2_folder import ModelFolderUnavailable, model_folder

pytestmark = [pytest.mark.real_model, pytest.mark.timeout(900)]

#: Enough for a short answer or a forced call's arguments; longer only costs CPU time.
MAX_NEW_TOKENS = 24

TOOL_CALL = "135M model: it does not write a correct tool call (it copies the tool's schema as the arguments)"
STRUCTURED = (
    "135M model: it does not fill a structured-output schema (the forced call's arguments are not the object)"
)
both_outputs = pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
schema_types = pytest.mark.parametrize("schema_type", ["pydantic", "typeddict", "json_schema"])


def _folder() -> str:
    pytest.importorskip("torch", reason="the real model needs torch and transformers (the local extra)")
    try:
        return str(model_folder())
    except ModelFolderUnavailable as exc:
        pytest.skip(f"no SmolLM2 folder: {exc}")


class _LocalModel:
    @property
    def chat_model_class(self) -> type[LocalChatModel]:
        return LocalChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_path": _folder(), "max_new_tokens": MAX_NEW_TOKENS}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True  # "any"/"required" and a tool's name start the reply with that call

    @property
    def has_structured_output(self) -> bool:
        return True  # BaseChatModel's default: a forced call of the schema as a tool

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False  # a text-only model


class TestLocalChatModelUnit(_LocalModel, ChatModelUnitTests):
    pass


class TestLocalChatModelIntegration(_LocalModel, ChatModelIntegrationTests):
    @both_outputs
    @pytest.mark.xfail(reason=TOOL_CALL, strict=False)
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(reason=TOOL_CALL, strict=False)
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(reason=TOOL_CALL, strict=False)
    def test_bind_runnables_as_tools(self, model: BaseChatModel) -> None:
        super().test_bind_runnables_as_tools(model)

    @pytest.mark.xfail(reason=TOOL_CALL, strict=False)
    def test_tool_choice(self, model: BaseChatModel) -> None:
        super().test_tool_choice(model)

    @pytest.mark.xfail(reason=TOOL_CALL, strict=False)
    def test_unicode_tool_call_integration(
        self, model: BaseChatModel, *, tool_choice: str | None = None, force_tool_call: bool = True
    ) -> None:
        super().test_unicode_tool_call_integration(
            model, tool_choice=tool_choice, force_tool_call=force_tool_call
        )

    @both_outputs
    @pytest.mark.xfail(reason=TOOL_CALL, strict=False)
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @schema_types
    @pytest.mark.xfail(reason=STRUCTURED, strict=False)
    def test_structured_output(
        self, model: BaseChatModel, schema_type: Literal["pydantic", "typeddict", "json_schema"]
    ) -> None:
        super().test_structured_output(model, schema_type)

    @schema_types
    @pytest.mark.xfail(reason=STRUCTURED, strict=False)
    async def test_structured_output_async(
        self, model: BaseChatModel, schema_type: Literal["pydantic", "typeddict", "json_schema"]
    ) -> None:
        await super().test_structured_output_async(model, schema_type)

    @pytest.mark.xfail(reason=STRUCTURED, strict=False)
    def test_structured_output_pydantic_2_v1(self, model: BaseChatModel) -> None:
        super().test_structured_output_pydantic_2_v1(model)

    @pytest.mark.xfail(reason=STRUCTURED, strict=False)
    def test_structured_output_optional_param(self, model: BaseChatModel) -> None:
        super().test_structured_output_optional_param(model)
