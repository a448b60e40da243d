"""The real client path end to end: ChatOpenAI -> HTTP -> a local server that answers like vLLM."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from assistant.agent import Agent
from assistant.deps import Deps
from assistant.llm import make_chat_model, probe_llm, unavailable_message
from assistant.serve import UnknownModelFamily, tool_parser_for, vllm_command
from assistant.settings import Settings
from cli import app
from db.engine import make_engine, make_session_factory
from db.models import AuditLog
from tests.assistant_shop import NOW
from tests.fake_vllm import FakeVllm, Reply, text, tools


@pytest.fixture
def server() -> Iterator[FakeVllm]:
    with FakeVllm() as fake:
        yield fake


def _settings(server: FakeVllm) -> Settings:
    return Settings(llm_base_url=server.base_url, llm_max_retries=0, llm_timeout_s=10)


def _agent(server: FakeVllm, shop_url: str, *, streaming: bool) -> Agent:
    cfg = _settings(server)
    deps = Deps(session_factory=make_session_factory(make_engine(shop_url)), settings=cfg, clock=lambda: NOW)
    return Agent(make_chat_model(cfg, streaming=streaming), deps, session_id="http")


def test_probe_lists_served_models_and_explains_when_none_answers(server: FakeVllm) -> None:
    ok = probe_llm(_settings(server))
    assert ok.ok and ok.models == ["Qwen/Qwen2.5-7B-Instruct"]
    down = probe_llm(Settings(llm_base_url="http://127.0.0.1:9/v1"))
    assert not down.ok
    assert down.message == unavailable_message("http://127.0.0.1:9/v1")
    assert "python cli.py serve-llm" in down.message and "\n" not in down.message
    secret = probe_llm(Settings(llm_base_url="http://ana:hunter2@127.0.0.1:9/v1?api_key=k3y"))
    assert "hunter2" not in secret.message and "k3y" not in secret.message
    assert "127.0.0.1:9" in secret.message
    assert "hunter2" not in unavailable_message("https://ana:hunter2@llm.example/v1")


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
def test_tool_call_round_trip_over_http(server: FakeVllm, shop_url: str, streaming: bool) -> None:
    server.enqueue(
        tools(("search_products", {"query": "aurora", "limit": 5})),
        text("Two Aurora products: HP-100 at 9900 cents list price and HP-200."),
    )
    tokens: list[str] = []
    answer = _agent(server, shop_url, streaming=streaming).ask(
        "Which Aurora products do we sell?", on_token=tokens.append if streaming else None
    )
    assert answer.text == "Two Aurora products: HP-100 at 9900 cents list price and HP-200."
    assert answer.grounded and [c.name for c in answer.tool_calls] == ["search_products"]
    assert answer.tool_calls[0].args == {"query": "aurora", "limit": 5}
    if streaming:
        assert "".join(tokens) == answer.text and len(tokens) > 3

    first, second = server.chat_requests
    assert first["model"] == "Qwen/Qwen2.5-7B-Instruct" and bool(first.get("stream")) == streaming
    schemas = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert {"search_products", "get_sales_history", "run_sql", "kpi_report"} <= set(schemas)
    query = schemas["search_products"]["parameters"]["properties"]["query"]
    assert "title" in query["description"]
    assert first["messages"][0]["role"] == "system" and first["messages"][-1]["role"] == "user"
    # the second request carries the assistant's tool call and the tool's JSON result
    call_msg, tool_msg = second["messages"][-2:]
    assert call_msg["role"] == "assistant"
    call_id = call_msg["tool_calls"][0]["id"]
    assert call_id.startswith("chatcmpl-tool-")
    assert json.loads(call_msg["tool_calls"][0]["function"]["arguments"]) == {"query": "aurora", "limit": 5}
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == call_id
    assert [p["sku"] for p in json.loads(tool_msg["content"])["items"]] == ["HP-100", "HP-200"]


def test_a_context_length_400_trims_the_history_and_asks_once_more(server: FakeVllm, shop_url: str) -> None:
    agent = _agent(server, shop_url, streaming=True)
    for i in range(4):  # a conversation with history
        server.enqueue(text(f"Answer {i}."))
        agent.ask(f"question {i} " + "about the sale " * 40)
    too_long = (
        "This model's maximum context length is 8192 tokens. However, you requested 9500 tokens "
        "(9436 in the messages, 64 in the completion). Please reduce the length of the messages or "
        "completion."
    )
    server.enqueue(Reply(status=400, message=too_long), text("Still here."))
    answer = agent.ask("and now?")
    assert answer.text == "Still here."
    refused, retried = server.chat_requests[-2:]
    assert len(retried["messages"]) < len(refused["messages"])  # older turns dropped
    assert retried["messages"][-1]["content"] == "and now?" and retried["messages"][0]["role"] == "system"
    before = len(server.chat_requests)
    server.enqueue(Reply(status=400, message=too_long), Reply(status=400, message=too_long))
    with pytest.raises(openai.BadRequestError):  # trimmed and asked once more, then the error is said
        agent.ask("and then?")
    assert len(server.chat_requests) == before + 2


def test_usage_is_audited(server: FakeVllm, shop_url: str) -> None:
    server.enqueue(text("Hello."))
    agent = _agent(server, shop_url, streaming=True)
    agent.ask("hi")
    with agent.deps.session_factory() as s:
        llm = s.scalars(select(AuditLog).where(AuditLog.kind == "llm")).one()
    assert llm.outputs["usage"]["total_tokens"] > 0 and llm.name == "Qwen/Qwen2.5-7B-Instruct"


def _env(server_url: str, shop_url: str) -> dict[str, str]:
    return {
        "FLASHSALE_LLM_BASE_URL": server_url,
        "FLASHSALE_LLM_MAX_RETRIES": "0",
        "DATABASE_URL": shop_url,
        "FLASHSALE_TODAY": "2026-11-24",
    }


def test_cli_ask_answers_through_the_server(server: FakeVllm, shop_url: str) -> None:
    server.enqueue(
        tools(("get_inventory", {"skus": ["HP-100"]})),
        text("HP-100 has 90 units available (100 on hand, 10 reserved)."),
    )
    result = CliRunner().invoke(
        app, ["ask", "How many HP-100 can we sell?"], env=_env(server.base_url, shop_url)
    )
    assert result.exit_code == 0, result.output
    assert "HP-100 has 90 units available (100 on hand, 10 reserved)." in result.output
    assert "grounded" in result.output


def test_cli_ask_json(server: FakeVllm, shop_url: str) -> None:
    server.enqueue(text("Hello."))
    result = CliRunner().invoke(app, ["ask", "--json", "hi"], env=_env(server.base_url, shop_url))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] == "Hello." and data["grounded"] is True


def test_cli_without_a_model_says_so_in_one_line(shop_url: str) -> None:
    result = CliRunner().invoke(app, ["ask", "hi"], env=_env("http://127.0.0.1:9/v1", shop_url))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [unavailable_message("http://127.0.0.1:9/v1")]


def test_cli_reports_a_failing_server_in_one_line(server: FakeVllm, shop_url: str) -> None:
    server.enqueue(Reply(status=500))
    result = CliRunner().invoke(app, ["ask", "hi"], env=_env(server.base_url, shop_url))
    assert result.exit_code == 1
    assert "The model server failed" in result.output


@pytest.mark.parametrize(
    "model,parser",
    [
        ("Qwen/Qwen2.5-7B-Instruct", "hermes"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3_json"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral"),
        ("ibm-granite/granite-3.1-8b-instruct", "granite"),
        ("NousResearch/Hermes-3-Llama-3.1-8B", "hermes"),
    ],
)
def test_serve_llm_picks_the_tool_parser_of_the_family(model: str, parser: str) -> None:
    assert tool_parser_for(model) == parser
    cmd = vllm_command(model, port=8123)
    assert cmd[:3] == ["vllm", "serve", model]
    assert "--enable-auto-tool-choice" in cmd and cmd[cmd.index("--tool-call-parser") + 1] == parser


def test_serve_llm_dry_run_and_unknown_family() -> None:
    result = CliRunner().invoke(app, ["serve-llm", "--dry-run", "--model", "Qwen/Qwen2.5-3B-Instruct"])
    assert result.exit_code == 0
    assert "--tool-call-parser hermes" in result.output
    with pytest.raises(UnknownModelFamily, match="--parser"):
        tool_parser_for("acme/unknown-7b")


def test_cli_chat_streams_answers_and_runs_slash_commands(server: FakeVllm, shop_url: str) -> None:
    server.enqueue(
        tools(("get_inventory", {"skus": ["HP-100"]})),
        text("HP-100 has 90 units available."),
        text("Sure."),
    )
    keys = "/help\nHow many HP-100 are in stock?\n/history\n/reset\nthanks\n/quit\n"
    result = CliRunner().invoke(app, ["chat"], input=keys, env=_env(server.base_url, shop_url))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "/plan" in out and "/kpi" in out  # the help
    assert "HP-100 has 90 units available." in out and "calling get_inventory" in out
    assert "1. How many HP-100 are in stock?" in out and "Conversation forgotten." in out
    # after /reset the model no longer sees the first exchange
    last = server.chat_requests[-1]["messages"]
    assert [m["role"] for m in last] == ["system", "user"] and last[-1]["content"] == "thanks"


def test_cli_extract_signals_stores_bounded_signals(server: FakeVllm, shop_url: str) -> None:
    signal = {
        "scope": "category",
        "scope_value": "kitchen",
        "direction": "up",
        "multiplier": 1.25,
        "confidence": 0.6,
        "valid_from": "2026-11-22",
        "valid_to": "2026-11-29",
        "evidence": "analysts expect strong demand",
        "source_ids": ["news:1"],
    }
    injected = dict(signal, scope_value="Headphones", multiplier=50, source_ids=["news:2"])
    server.enqueue(text(json.dumps({"signals": [signal, injected]})))
    result = CliRunner().invoke(app, ["extract-signals", "--days", "30"], env=_env(server.base_url, shop_url))
    assert result.exit_code == 0, result.output
    assert "category Kitchen up x1.25" in result.output
    assert "category Headphones up x2.00 (confidence 0.20" in result.output  # clipped, capped
    assert "news:2" in result.output.split("instruction-like text")[1]
    user = server.chat_requests[0]["messages"][-1]["content"]
    assert '<untrusted_news id="news:2"' in user and user.count("<untrusted_review") == 1  # the 5-star one


def test_a_streamed_tool_call_cut_off_at_the_token_limit_is_not_run(server: FakeVllm, shop_url: str) -> None:
    server.enqueue(Reply(tool_calls=[("get_inventory", {"skus": ["HP-100", "HP-200"]})], cut_off=True))
    answer = _agent(server, shop_url, streaming=True).ask("Stock?", on_token=lambda _t: None)
    assert answer.tool_calls == [] and answer.stopped == "length"
    assert "cut off" in answer.text and len(server.chat_requests) == 1


def test_the_chat_goes_on_after_the_server_refuses_a_turn(server: FakeVllm, shop_url: str) -> None:
    server.enqueue(Reply(status=400), text("All good."))
    keys = "first question\nsecond question\n/quit\n"
    result = CliRunner().invoke(app, ["chat"], input=keys, env=_env(server.base_url, shop_url))
    assert result.exit_code == 0, result.output
    assert "All good." in result.output and "Traceback" not in result.output
    assert "the chat goes on" in " ".join(result.output.split())


def test_a_model_name_the_server_does_not_serve_is_named_at_start(server: FakeVllm, shop_url: str) -> None:
    env = _env(server.base_url, shop_url) | {"FLASHSALE_LLM_MODEL": "smollm3"}
    result = CliRunner().invoke(app, ["ask", "Stock?"], env=env)
    assert result.exit_code == 2
    words = " ".join(result.output.split())
    assert "does not serve smollm3" in words and "Qwen/Qwen2.5-7B-Instruct" in words
    assert server.chat_requests == []  # found before the first question is sent


def test_serve_llm_runs_vllm_from_its_own_environment_with_a_template() -> None:
    cmd = vllm_command(
        "/models/smollm2",
        python="/opt/vllm/bin/python",
        served_model_name="smollm2",
        chat_template="prompts/chat_template_tools.jinja",
    )
    assert cmd[:5] == [
        "/opt/vllm/bin/python",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        "/models/smollm2",
    ]
    assert cmd[cmd.index("--tool-call-parser") + 1] == "hermes"
    assert cmd[cmd.index("--served-model-name") + 1] == "smollm2"
    assert cmd[cmd.index("--chat-template") + 1] == "prompts/chat_template_tools.jinja"
