"""The in-process transformers backend: a tiny random model and a tokenizer trained here (no download)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from sqlalchemy import Engine, select

from assistant.agent import Agent
from assistant.deps import Deps
from assistant.llm_tools import build_tools
from assistant.llm_tools.catalog import SkuArgs
from assistant.local_model import LocalChatModel, parse_tool_calls
from assistant.tokens import TokenCounter, hub_cache_has
from db.engine import make_session_factory
from db.models import AuditLog
from tests.assistant_shop import NOW, build_assistant_shop

SPECIAL = ["<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<pad>"]


def test_hermes_tool_calls_are_parsed_and_bad_ones_kept_as_invalid() -> None:
    text = (
        'Let me look.<tool_call>{"name": "get_inventory", "arguments": {"skus": ["HP-100"]}}</tool_call>'
        '<tool_call>{"name": "search_products", "arguments": "{\\"query\\": \\"kettle\\"}"}</tool_call>'
        "<tool_call>{not json}</tool_call>"
    )
    content, calls, invalid = parse_tool_calls(text)
    assert content == "Let me look."
    assert [(c["name"], c["args"]) for c in calls] == [
        ("get_inventory", {"skus": ["HP-100"]}),
        ("search_products", {"query": "kettle"}),
    ]
    assert len(invalid) == 1 and invalid[0]["args"] == "{not json}"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch", reason="the local backend needs torch (pip install -e '.[local]')")
    transformers = pytest.importorskip("transformers", reason="the local backend needs transformers")
    tokenizers = pytest.importorskip("tokenizers")

    corpus = [
        "You are the flash-sale merchandising assistant. Stock of HP-100? 90 units available.",
        '{"type": "function", "function": {"name": "get_inventory", "parameters": {"skus": []}}}',
        '<tool_call>{"name": "search_products", "arguments": {"query": "aurora"}}</tool_call>',
    ] * 20
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=SPECIAL)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<pad>", bos_token="<|im_start|>"
    )
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=8192, n_embd=32, n_layer=1, n_head=2,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = transformers.GPT2LMHeadModel(config)
    path = tmp_path_factory.mktemp("tiny-chat")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_prompt_carries_the_tools_and_counts_tokens_with_the_real_tokenizer(tiny_model_dir: Path) -> None:

    model = LocalChatModel.from_pretrained(str(tiny_model_dir), max_new_tokens=4)
    bound = model.bind_tools([SkuArgs])
    messages = [SystemMessage("Be brief."), HumanMessage("Details of HP-100?")]
    prompt = bound.render_prompt(messages)
    assert "<tools>" in prompt and '"SkuArgs"' in prompt and "Be brief." in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "<tools>" not in model.render_prompt(messages)  # the unbound model offers no tools
    counter = TokenCounter.for_model(str(tiny_model_dir))
    assert counter.exact
    assert counter.count("Stock of HP-100?") == len(bound.tokenizer.encode("Stock of HP-100?"))


#: SmolLM2-135M-Instruct's own chat template: it never renders the tools it is given.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face'"
    " + '<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_a_model_whose_template_drops_tools_still_sees_them(tiny_model_dir: Path) -> None:
    model = LocalChatModel.from_pretrained(str(tiny_model_dir), max_new_tokens=4)
    model.tokenizer.chat_template = SMOLLM2_TEMPLATE
    messages = [SystemMessage("Be brief."), HumanMessage("Details of HP-100?")]
    prompt = model.bind_tools([SkuArgs]).render_prompt(messages)
    assert "<tools>" in prompt and '"SkuArgs"' in prompt and "Be brief." in prompt
    plain = model.render_prompt(messages)  # no tools bound: the model's own template, as it ships
    assert "<tools>" not in plain and plain.startswith("<|im_start|>system\nBe brief.")


def test_an_agent_turn_runs_on_the_local_model(tiny_model_dir: Path, sqlite_engine: Engine) -> None:
    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    model = LocalChatModel.from_pretrained(str(tiny_model_dir), max_new_tokens=6)
    deps = Deps(session_factory=factory, clock=lambda: NOW)
    tools = [t for t in build_tools(deps) if t.name in ("get_inventory", "search_products")]  # a short prompt
    agent = Agent(model, deps, tools=tools, max_steps=2)
    answer = agent.ask("How many HP-100 do we have?")
    assert answer.model_calls >= 1 and isinstance(answer.text, str)
    with factory() as s:
        llm = s.scalars(select(AuditLog).where(AuditLog.kind == "llm")).first()
    assert llm is not None and llm.name == str(tiny_model_dir)
    usage: dict[str, Any] = llm.outputs["usage"]
    assert usage["output_tokens"] <= 6 and usage["input_tokens"] > 100  # the prompt includes the tool schemas


@pytest.mark.skipif(
    not os.environ.get("FLASHSALE_LOCAL_MODEL_PATH"),
    reason="opt-in: set FLASHSALE_LOCAL_MODEL_PATH to a local instruction model (e.g. Qwen2.5-0.5B-Instruct)",
)
def test_smoke_a_real_small_model_calls_a_tool(sqlite_engine: Engine) -> None:
    factory = make_session_factory(sqlite_engine)
    build_assistant_shop(factory)
    model = LocalChatModel.from_pretrained(os.environ["FLASHSALE_LOCAL_MODEL_PATH"], max_new_tokens=256)
    agent = Agent(model, Deps(session_factory=factory, clock=lambda: NOW), max_steps=3)
    answer = agent.ask("How many units of SKU HP-100 are available in stock? Use the get_inventory tool.")
    assert "get_inventory" in [c.name for c in answer.tool_calls], json.dumps(answer.text)


def test_hub_cache_lookup_needs_no_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert not hub_cache_has("Qwen/Qwen2.5-7B-Instruct")
    (tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots").mkdir(parents=True)
    assert hub_cache_has("Qwen/Qwen2.5-7B-Instruct")
    assert hub_cache_has(str(tmp_path)) and not hub_cache_has(str(tmp_path / "missing"))
