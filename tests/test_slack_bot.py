"""The Slack bot over its real HTTP endpoint on 127.0.0.1: request signatures, answers in threads with a
scripted model, the per-user rate limit and plan approval by approvers only. The Slack Web API client is a
recording fake (no network)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from assistant.ratelimit import RateLimiter
from assistant.settings import Settings
from db.engine import make_session_factory
from db.models import AuditLog, FlashSalePlan, PlanItem, PlanStatus
from tests.assistant_shop import TODAY, build_assistant_shop
from tests.scripted_model import ScriptedChatModel, call, last_tool_json, say, tool_calls

pytest.importorskip("slack_bolt", reason="slack-bolt is not installed (pip install -e '.[slack]')")

from typer.testing import CliRunner

from assistant.agent import AgentAnswer, ToolCallRecord
from assistant.draft import DraftResult
from assistant.slack import (
    APPROVE_ACTION,
    FlashSaleBot,
    SlackConfigError,
    SlackCredentials,
    approval_blocks,
    build_app,
    make_http_server,
    post_draft,
    saved_plan_id,
    strip_mentions,
    to_mrkdwn,
)
from cli import app
from evals.slack_stub import BOT_USER, FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

APPROVER = "UBOSS"


def blocks_of(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Bot:
    url: str
    slack: FakeSlack
    model: ScriptedChatModel
    factory: sessionmaker[Session]
    bot: FlashSaleBot

    def post(
        self, body: bytes, content_type: str, *, secret: str | None = SECRET, ts: int | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": content_type}
        if secret is not None:
            stamp = str(int(time.time()) if ts is None else ts)
            base = f"v0:{stamp}:".encode() + body
            headers["X-Slack-Request-Timestamp"] = stamp
            headers["X-Slack-Signature"] = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
        with httpx.Client(trust_env=False, timeout=10) as client:
            return client.post(self.url, content=body, headers=headers)

    def audit(self) -> list[AuditLog]:
        with self.factory() as s:
            return list(s.scalars(select(AuditLog).order_by(AuditLog.id)))


_TRIGGERS = itertools.count(1)


def command_body(text: str, user: str = "U1", channel: str = "C1", trigger_id: str | None = None) -> bytes:
    """A slash command's form body; every call is a new invocation (its own trigger_id) unless given one."""
    return urllib.parse.urlencode(
        {
            "token": "legacy",
            "team_id": "T1",
            "channel_id": channel,
            "user_id": user,
            "command": "/flashsale",
            "text": text,
            "response_url": "https://hooks.slack.com/commands/T1/1/x",
            "trigger_id": trigger_id or f"1.2.{next(_TRIGGERS)}",
        }
    ).encode()


def event_body(event: dict[str, Any], event_id: str = "Ev1") -> bytes:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": 1,
            "authorizations": [{"user_id": BOT_USER, "team_id": "T1", "is_bot": True}],
            "event": event,
        }
    ).encode()


def approve_body(user: str, plan_id: int, channel: str = "C1") -> bytes:
    """A click on the approve button; every call is a new click (its own trigger_id and action_ts)."""
    click = next(_TRIGGERS)
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": f"1.2.{click}",
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": channel},
        "message": {"ts": "1700000000.000001", "text": "plan", "blocks": []},
        "actions": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "block_id": f"approve_{plan_id}",
                "value": str(plan_id),
                "action_ts": f"1700000001.{click}",
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def make_bot(
    engine: Engine,
    model: ScriptedChatModel,
    slack: FakeSlack,
    workers: int = 4,
    limits: Any = None,
    **settings: Any,
) -> Iterator[Bot]:
    factory = make_session_factory(engine)
    cfg = Settings(today=TODAY, slack_approvers=f"{APPROVER}, U2", **settings)
    bot = FlashSaleBot(cfg, factory, model=model, workers=workers)
    app = build_app(bot, SlackCredentials("xoxb-test", SECRET), client=slack.client, token_verification=False)
    server = make_http_server(app, "127.0.0.1", 0, **({} if limits is None else {"limits": limits}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Bot(f"http://127.0.0.1:{server.server_port}/slack/events", slack, model, factory, bot)
    finally:
        server.shutdown()
        server.server_close()
        bot.close()


@pytest.fixture
def shop(sqlite_engine: Engine) -> Engine:
    build_assistant_shop(make_session_factory(sqlite_engine))
    return sqlite_engine


@pytest.fixture
def bot(shop: Engine, fake_slack: FakeSlack) -> Iterator[Bot]:
    yield from make_bot(shop, ScriptedChatModel(), fake_slack)


def stock_answer(messages: list[BaseMessage]) -> AIMessage:
    row = last_tool_json(messages)["rows"][0]
    return say(f"{row['sku']} has {row['available']} units available.")


# ---- signatures ------------------------------------------------------------------------------------------


def test_signed_slash_command_is_acknowledged_at_once_and_answered_in_a_thread(bot: Bot) -> None:
    acknowledged = threading.Event()

    def answer_after_ack(messages: list[BaseMessage]) -> AIMessage:
        # The model is only asked after Slack got its HTTP response: the answer comes later, in a thread.
        assert acknowledged.wait(10), "the command was not acknowledged before the model ran"
        return tool_calls(call("get_inventory", skus=["HP-100"]))

    bot.model.enqueue(answer_after_ack, stock_answer)
    response = bot.post(command_body("how many HP-100 can we sell?"), "application/x-www-form-urlencoded")
    acknowledged.set()
    assert response.status_code == 200
    assert "thread" in response.text

    wait_for(lambda: len(bot.slack.called("chat.postMessage")) == 2, "the answer in the thread")
    root, answer = bot.slack.called("chat.postMessage")
    assert root["channel"] == "C1" and "how many HP-100" in root["text"] and "<@U1>" in root["text"]
    root_ts = "1700000000.000001"
    assert answer["thread_ts"] == root_ts and answer["channel"] == "C1"
    assert answer["text"] == "HP-100 has 90 units available."
    assert any(b["type"] == "context" and "get_inventory" in json.dumps(b) for b in blocks_of(answer))

    wait_for(lambda: any(r.kind == "slack" for r in bot.audit()), "the audit row of the exchange")
    rows = bot.audit()
    assert [r.kind for r in rows] == ["llm", "tool", "llm", "answer", "slack"]
    assert {r.channel for r in rows} == {"slack"} and {r.actor for r in rows} == {"U1"}
    assert {r.session_id for r in rows} == {f"slack:C1:{root_ts}"}
    assert rows[-1].name == "command" and rows[-1].outputs["reply"] == answer["text"]


def test_commands_are_acknowledged_while_every_worker_is_busy(shop: Engine, fake_slack: FakeSlack) -> None:
    release = threading.Event()

    def slow(messages: list[BaseMessage]) -> AIMessage:
        assert release.wait(20)
        return say("First answer.")

    for b in make_bot(shop, ScriptedChatModel(), fake_slack, workers=1):
        b.model.enqueue(slow, say("Second answer."))
        assert (
            b.post(command_body("first?", user="U1"), "application/x-www-form-urlencoded").status_code == 200
        )
        wait_for(lambda b=b: len(b.model.calls) == 1, "the first question to reach the model")
        # the only worker is busy with the first question; the second is still acknowledged at once
        second = b.post(command_body("second?", user="U2"), "application/x-www-form-urlencoded")
        assert second.status_code == 200 and "On it" in second.text
        release.set()
        wait_for(lambda b=b: len(b.slack.called("chat.postMessage")) == 4, "both answers")
        answers = [m["text"] for m in b.slack.called("chat.postMessage") if m.get("thread_ts")]
        assert answers == ["First answer.", "Second answer."]


@pytest.mark.parametrize(
    "case",
    ["unsigned", "wrong secret", "stale timestamp", "tampered body"],
)
def test_forged_requests_get_401_and_cause_no_work(bot: Bot, case: str) -> None:
    body = command_body("how many HP-100 can we sell?")
    kinds = {
        "unsigned": lambda: bot.post(body, "application/x-www-form-urlencoded", secret=None),
        "wrong secret": lambda: bot.post(body, "application/x-www-form-urlencoded", secret="not-the-secret"),
        "stale timestamp": lambda: bot.post(
            body, "application/x-www-form-urlencoded", ts=int(time.time()) - 10 * 60
        ),
    }
    if case == "tampered body":
        # A correctly signed request whose body was changed afterwards (here: the approver's id swapped in).
        stamp = str(int(time.time()))
        original = approve_body("U9", 1)
        sig = (
            "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + original, hashlib.sha256).hexdigest()
        )
        with httpx.Client(trust_env=False) as client:
            response = client.post(
                bot.url,
                content=approve_body(APPROVER, 1),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": sig,
                },
            )
    else:
        response = kinds[case]()
    assert response.status_code == 401
    mention = event_body(
        {"type": "app_mention", "user": "U1", "text": f"<@{BOT_USER}> hi", "ts": "5.0", "channel": "C1"}
    )
    assert bot.post(mention, "application/json", secret="not-the-secret").status_code == 401
    with httpx.Client(trust_env=False) as client:  # the health check needs no signature and does no work
        health = client.get(bot.url.replace("/slack/events", "/healthz"))
    assert health.status_code == 200 and health.text == "ok"
    time.sleep(0.2)  # give a wrongly started worker the chance to show itself
    assert bot.model.calls == []
    assert bot.slack.calls == []  # not even auth.test: verification runs before anything else
    assert bot.audit() == []


# ---- events ------------------------------------------------------------------------------------------------


def test_app_mention_is_answered_in_the_message_thread(bot: Bot) -> None:
    bot.model.enqueue(tool_calls(call("get_inventory", skus=["HP-100"])), stock_answer)
    event = {
        "type": "app_mention",
        "user": "U1",
        "text": f"<@{BOT_USER}> stock of HP-100?",
        "ts": "1699999999.000100",
        "channel": "C7",
        "event_ts": "1699999999.000100",
    }
    assert bot.post(event_body(event), "application/json").status_code == 200
    wait_for(lambda: bool(bot.slack.called("chat.postMessage")), "the answer")
    (posted,) = bot.slack.called("chat.postMessage")
    assert posted["channel"] == "C7" and posted["thread_ts"] == "1699999999.000100"
    assert posted["text"] == "HP-100 has 90 units available."
    # the mention itself is not part of the question the model saw
    assert "stock of HP-100?" in str(bot.model.calls[0][-1].content)
    assert BOT_USER not in str(bot.model.calls[0][-1].content)


def test_direct_message_is_answered_and_the_thread_keeps_the_conversation(bot: Bot) -> None:
    bot.model.enqueue(
        tool_calls(call("get_inventory", skus=["HP-100"])), stock_answer, say("Still 90 units.")
    )
    first = {
        "type": "message",
        "channel_type": "im",
        "user": "U1",
        "text": "stock of HP-100?",
        "ts": "10.0",
        "channel": "D1",
    }
    assert bot.post(event_body(first, "Ev1"), "application/json").status_code == 200
    wait_for(lambda: len(bot.slack.called("chat.postMessage")) == 1, "the first answer")
    follow_up = {**first, "text": "and now?", "ts": "11.0", "thread_ts": "10.0"}
    assert bot.post(event_body(follow_up, "Ev2"), "application/json").status_code == 200
    wait_for(lambda: len(bot.slack.called("chat.postMessage")) == 2, "the follow-up answer")
    second = bot.slack.called("chat.postMessage")[1]
    assert second["thread_ts"] == "10.0" and second["text"] == "Still 90 units."
    # the follow-up's context holds the first turn's tool result: one conversation per thread
    assert any("available" in str(m.content) for m in bot.model.calls[-1])
    # a bot's own message (or an edit) is not a question
    own = {**first, "ts": "12.0", "bot_id": "B1"}
    assert bot.post(event_body(own, "Ev3"), "application/json").status_code == 200
    time.sleep(0.2)
    assert len(bot.slack.called("chat.postMessage")) == 2


def test_model_unavailable_is_said_in_the_thread(shop: Engine, fake_slack: FakeSlack) -> None:
    factory = make_session_factory(shop)
    cfg = Settings(today=TODAY, llm_connect_timeout_s=0.5)
    bot = FlashSaleBot(cfg, factory)  # no model: the configured server (a closed port in tests) is probed
    slack = fake_slack
    bot.respond_in_thread(
        slack.client, source="app_mention", user="U1", channel="C1", thread_ts="1.0", question="hi?"
    )
    (posted,) = slack.called("chat.postMessage")
    assert posted["thread_ts"] == "1.0" and "model is unavailable" in posted["text"]
    assert "serve-llm" in posted["text"]


# ---- rate limit ------------------------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=6, burst=2, clock=lambda: now[0])
    assert limiter.acquire("u") == 0 and limiter.acquire("u") == 0
    wait = limiter.acquire("u")
    assert wait == pytest.approx(10.0)  # 6 a minute: one token every 10 s
    assert limiter.acquire("other") == 0  # buckets are per user
    now[0] = 9.0
    assert limiter.acquire("u") == pytest.approx(1.0)
    now[0] = 10.0
    assert limiter.acquire("u") == 0
    now[0] = 1_000.0
    assert limiter.available("u") == 2  # never more than the burst


def test_a_user_over_the_rate_is_refused_without_a_model_call(shop: Engine, fake_slack: FakeSlack) -> None:
    model = ScriptedChatModel()
    now = [0.0]
    factory = make_session_factory(shop)
    cfg = Settings(today=TODAY, slack_rate_per_minute=1, slack_rate_burst=1)
    bot = FlashSaleBot(cfg, factory, model=model, clock=lambda: now[0])
    slack = fake_slack
    model.enqueue(say("Hello."))
    assert (
        bot.respond_in_thread(
            slack.client, source="app_mention", user="U1", channel="C1", thread_ts="1.0", question="hello?"
        )
        is not None
    )
    refused = bot.respond_in_thread(
        slack.client, source="app_mention", user="U1", channel="C1", thread_ts="2.0", question="again?"
    )
    assert refused is None and len(model.calls) == 1
    (notice,) = slack.called("chat.postEphemeral")
    assert notice["user"] == "U1" and "try again in 60 s" in notice["text"]
    with factory() as s:
        last = s.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert last is not None and last.error == "rate limited" and last.actor == "U1"
    model.enqueue(say("Hi there."))
    assert (
        bot.respond_in_thread(
            slack.client, source="app_mention", user="U2", channel="C1", thread_ts="3.0", question="hello?"
        )
        is not None
    )


def test_slash_command_over_the_rate_is_refused_in_the_ack(shop: Engine, fake_slack: FakeSlack) -> None:
    for b in make_bot(shop, ScriptedChatModel(), fake_slack, slack_rate_per_minute=1, slack_rate_burst=1):
        b.model.enqueue(say("Hello."))
        assert b.post(command_body("hello?"), "application/x-www-form-urlencoded").status_code == 200
        second = b.post(command_body("again?"), "application/x-www-form-urlencoded")
        assert second.status_code == 200 and "faster than" in second.text
        wait_for(lambda b=b: len(b.slack.called("chat.postMessage")) == 2, "the first answer")
        assert len(b.model.calls) == 1


# ---- approval --------------------------------------------------------------------------------------------


@pytest.fixture
def draft_plan(shop: Engine) -> int:
    with make_session_factory(shop).begin() as s:
        plan = FlashSalePlan(
            sale_date=TODAY + dt.timedelta(days=1),
            status=PlanStatus.DRAFT,
            objective={"profit": 1.0},
            constraints={"slots": 1},
            created_by="daily-draft",
        )
        plan.items.append(
            PlanItem(
                sku="HP-100",
                discount_pct=20,
                sale_price_cents=7_920,
                allocated_units=30,
                forecast_units=25.0,
                expected_revenue_cents=198_000,
                expected_profit_cents=98_000,
            )
        )
        s.add(plan)
        s.flush()
        return plan.id


def _plan(bot: Bot, plan_id: int) -> FlashSalePlan:
    with bot.factory() as s:
        plan = s.get(FlashSalePlan, plan_id)
        assert plan is not None
        return plan


def test_a_non_approver_cannot_approve_and_an_approver_can(bot: Bot, draft_plan: int) -> None:
    response = bot.post(approve_body("U9", draft_plan), "application/x-www-form-urlencoded")
    assert response.status_code == 200
    wait_for(lambda: bool(bot.slack.called("chat.postEphemeral")), "the refusal")
    (refusal,) = bot.slack.called("chat.postEphemeral")
    assert refusal["user"] == "U9" and "Only the configured approvers" in refusal["text"]
    plan = _plan(bot, draft_plan)
    assert plan.status is PlanStatus.DRAFT and plan.approved_by is None
    rows = [r for r in bot.audit() if r.kind == "approval"]
    assert len(rows) == 1 and rows[0].actor == "slack:U9" and rows[0].error == "not an approver"
    assert rows[0].inputs["plan_id"] == draft_plan and rows[0].outputs == {"approved": False}

    response = bot.post(approve_body(APPROVER, draft_plan), "application/x-www-form-urlencoded")
    assert response.status_code == 200
    wait_for(lambda: _plan(bot, draft_plan).status is PlanStatus.APPROVED, "the approval")
    plan = _plan(bot, draft_plan)
    assert plan.approved_by == f"slack:{APPROVER}" and plan.approved_at is not None
    wait_for(lambda: bool(bot.slack.called("chat.update")), "the message update")
    (update,) = bot.slack.called("chat.update")
    assert "approved by <@UBOSS>" in update["text"] and "actions" not in json.dumps(blocks_of(update))
    rows = [r for r in bot.audit() if r.kind == "approval"]
    assert [(r.actor, r.channel) for r in rows] == [("slack:U9", "slack"), ("slack:UBOSS", "slack")]
    assert rows[1].error is None and rows[1].inputs == {"plan_id": draft_plan, "revision": 1}

    # a second click finds the plan approved already: refused with the reason, audited, nothing changes
    response = bot.post(approve_body(APPROVER, draft_plan), "application/x-www-form-urlencoded")
    wait_for(lambda: len(bot.slack.called("chat.postEphemeral")) == 2, "the second refusal")
    assert f"already approved by slack:{APPROVER}" in bot.slack.called("chat.postEphemeral")[1]["text"]
    rows = [r for r in bot.audit() if r.kind == "approval"]
    assert len(rows) == 3 and "already approved" in (rows[2].error or "")


def test_approve_subcommand_shows_the_plan_with_its_button(bot: Bot, draft_plan: int) -> None:
    response = bot.post(command_body(f"approve {draft_plan}"), "application/x-www-form-urlencoded")
    assert response.status_code == 200
    wait_for(lambda: bool(bot.slack.called("chat.postMessage")), "the plan message")
    (posted,) = bot.slack.called("chat.postMessage")
    assert f"Plan {draft_plan}" in posted["text"] and "1 SKUs" in posted["text"]
    button = blocks_of(posted)[-1]["elements"][0]
    assert button["action_id"] == APPROVE_ACTION and button["value"] == str(draft_plan)
    unknown = bot.post(command_body("approve 999"), "application/x-www-form-urlencoded")
    assert "Usage" in unknown.text
    assert bot.model.calls == []


# ---- small parts ---------------------------------------------------------------------------------------


def test_credentials_come_from_the_environment_and_http_mode_needs_a_secret() -> None:
    with pytest.raises(SlackConfigError, match="SLACK_SIGNING_SECRET"):
        SlackCredentials.from_env(socket_mode=False, environ={"SLACK_BOT_TOKEN": "xoxb-1"})
    with pytest.raises(SlackConfigError, match="SLACK_APP_TOKEN"):
        SlackCredentials.from_env(socket_mode=True, environ={"SLACK_BOT_TOKEN": "xoxb-1"})
    creds = SlackCredentials.from_env(
        socket_mode=False, environ={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    )
    assert creds.bot_token == "xoxb-1" and creds.signing_secret == "s"


def test_mentions_and_markdown_for_slack() -> None:
    assert strip_mentions("<@UBOT> what about <@U7>?", "UBOT") == "what about <@U7>?"
    assert (
        to_mrkdwn("**GMV** is <high> & [docs](https://x.org/a)")
        == "*GMV* is &lt;high&gt; &amp; <https://x.org/a|docs>"
    )


def test_an_answer_that_saved_a_draft_plan_carries_the_approve_button() -> None:

    answer = AgentAnswer(text="Saved plan 7.", session_id="s")
    assert saved_plan_id(answer) is None
    answer.tool_calls.append(
        ToolCallRecord("save_draft_plan", {}, json.dumps({"plan_id": 7, "status": "draft"}), False, 1.0)
    )
    assert saved_plan_id(answer) == 7
    failed = AgentAnswer(text="x", session_id="s")
    failed.tool_calls.append(ToolCallRecord("save_draft_plan", {}, '{"error": "no", "hint": "h"}', True, 1.0))
    assert saved_plan_id(failed) is None
    (actions,) = approval_blocks(7)
    assert actions["elements"][0]["value"] == "7" and "confirm" in actions["elements"][0]


def test_post_draft_sends_the_summary_and_the_approve_button(fake_slack: FakeSlack, tmp_path: Any) -> None:

    item = {
        "sku": "PET-1",
        "title": "Cat tree <!channel>",
        "discount": 0.2,
        "sale_price_cents": 7_999,
        "allocated_units": 25,
        "expected_profit_cents": 30_000,
    }
    data = {
        "plan": {
            "id": 12,
            "items": [item],
            "allocated_units": 25,
            "expected_revenue_cents": 150_000,
            "expected_profit_cents": 30_000,
        },
        "last_sale": None,
        "signals": [{"id": 4, "direction": "up", "scope_value": "pet"}],
        "narrative": {"label": "Narrative: template (no model reachable)", "text": "The draft plan 12 ..."},
    }
    result = DraftResult(dt.date(2026, 7, 1), tmp_path, 12, False, True, 3, "", [], data)
    ts = post_draft(fake_slack.client, "C9", result)
    (posted,) = fake_slack.called("chat.postMessage")
    assert ts == "1700000000.000001" and posted["channel"] == "C9"
    assert "Flash-sale plan draft for 2026-07-01" in posted["text"]
    assert "PET-1 Cat tree &lt;!channel&gt;: -20 %" in posted["text"]  # data is escaped, never a ping
    assert "Narrative: template (no model reachable)" in posted["text"] and "4 (up pet)" in posted["text"]
    assert blocks_of(posted)[-1]["elements"][0]["value"] == "12"


def test_cli_slack_needs_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:

    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["slack", "--port", "0"])
    assert (
        result.exit_code == 1
        and "SLACK_BOT_TOKEN" in result.output
        and "SLACK_SIGNING_SECRET" in result.output
    )


# ---- hardening: limits of the HTTP endpoint, malformed and replayed requests, escaping, start-up --------


def signed_headers(body: bytes, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    sig = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={sig}",
    }


def post_raw(bot: Bot, body: bytes, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.post(bot.url, content=body, headers=headers)


def _address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def raw_exchange(url: str, data: bytes, timeout: float = 5.0) -> tuple[bytes, float]:
    """Send ``data`` on a fresh connection and read until the server closes it (or ``timeout``)."""
    with socket.create_connection(_address(url), timeout=timeout) as sock:
        started = time.perf_counter()
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return received, time.perf_counter() - started


def _head(content_length: int) -> bytes:
    stamp = str(int(time.time()))
    return (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {content_length}\r\n"
        f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: v0=00\r\n\r\n"
    ).encode()


def assert_no_work(bot: Bot) -> None:
    time.sleep(0.2)  # give a wrongly started worker the chance to show itself
    assert bot.model.calls == []
    assert bot.slack.calls == []
    assert bot.audit() == []


@pytest.mark.parametrize(
    ("claimed", "sent"),
    [(64 * 1024 * 1024, 65_536), (1_000_000_000, 3)],
    ids=["64 MB body", "Content-Length 1e9 with 3 bytes"],
)
def test_a_body_over_the_limit_gets_413_at_once_unread(bot: Bot, claimed: int, sent: int) -> None:
    answer, elapsed = raw_exchange(bot.url, _head(claimed) + b"x" * sent)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert elapsed < 2.0
    assert_no_work(bot)


def _slow_bot(shop: Engine, fake_slack: FakeSlack) -> Iterator[Bot]:
    from assistant.slack.server import HttpLimits  # noqa: PLC0415  (the limits are part of the fix)

    limits = HttpLimits(read_timeout_s=1.0, request_timeout_s=2.0, cleanup_interval_s=0.2)
    yield from make_bot(shop, ScriptedChatModel(), fake_slack, limits=limits)


def test_a_client_that_stops_sending_is_dropped_after_the_read_timeout(
    shop: Engine, fake_slack: FakeSlack
) -> None:
    for b in _slow_bot(shop, fake_slack):
        # headers cut short, then silence: the connection is closed, not held for ever
        answer, elapsed = raw_exchange(b.url, b"POST /slack/events HTTP/1.1\r\nHost: x\r\n", timeout=8)
        assert answer == b"" and elapsed < 5.0
        # the whole body announced, three bytes sent, then silence
        answer, elapsed = raw_exchange(b.url, _head(100)[:-4] + b"\r\n\r\nabc", timeout=8)
        assert elapsed < 5.0
        assert_no_work(b)


def test_a_slowloris_client_is_dropped_after_the_request_timeout(shop: Engine, fake_slack: FakeSlack) -> None:
    for b in _slow_bot(shop, fake_slack):
        head = _head(10)
        with socket.create_connection(_address(b.url), timeout=1) as sock:
            started = time.perf_counter()
            closed_after = None
            for byte in head:  # one byte every 0.2 s: never idle for the read timeout, never done
                try:
                    sock.sendall(bytes([byte]))
                    sock.settimeout(0.2)
                    if sock.recv(1) == b"":
                        closed_after = time.perf_counter() - started
                        break
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.perf_counter() - started
                    break
            assert closed_after is not None and closed_after < 6.0
        assert_no_work(b)


@pytest.mark.parametrize("stamp", ["abc", "1e9", "", "1700000000.5"])
def test_a_non_numeric_timestamp_gets_401_and_causes_no_work(bot: Bot, stamp: str) -> None:
    body = command_body("how many HP-100 can we sell?")
    headers = signed_headers(body) | {"X-Slack-Request-Timestamp": stamp}
    response = post_raw(bot, body, headers)
    assert response.status_code == 401
    assert "Traceback" not in response.text
    assert_no_work(bot)


def test_a_body_that_is_not_utf8_gets_400_and_causes_no_work(bot: Bot) -> None:
    body = b"text=\xff\xfe&user_id=U1"
    response = post_raw(bot, body, signed_headers(body))
    assert response.status_code == 400
    assert_no_work(bot)


@pytest.mark.parametrize("trigger", ["with trigger_id", "without trigger_id"])
def test_a_replayed_command_is_acknowledged_and_runs_nothing(bot: Bot, trigger: str) -> None:
    bot.model.enqueue(say("Noted."))
    body = command_body("how many HP-100 can we sell?")
    if trigger == "without trigger_id":
        fields = dict(urllib.parse.parse_qsl(body.decode()))
        del fields["trigger_id"]
        body = urllib.parse.urlencode(fields).encode()
    headers = signed_headers(body)
    assert post_raw(bot, body, headers).status_code == 200
    replay = post_raw(bot, body, headers)  # the same signed request again, within bolt's 5 minutes
    assert replay.status_code == 200
    wait_for(lambda: len(bot.slack.called("chat.postMessage")) == 2, "the answer in the thread")
    time.sleep(0.3)
    assert len(bot.model.calls) == 1
    assert len(bot.slack.called("chat.postMessage")) == 2
    assert [r.name for r in bot.audit() if r.kind == "slack"] == ["command"]


def test_a_replayed_approval_click_is_handled_once(bot: Bot, draft_plan: int) -> None:
    body = approve_body(APPROVER, draft_plan)
    headers = signed_headers(body)
    assert post_raw(bot, body, headers).status_code == 200
    assert post_raw(bot, body, headers).status_code == 200
    wait_for(lambda: bool(bot.slack.called("chat.postMessage")), "the approval notice")
    time.sleep(0.3)
    assert _plan(bot, draft_plan).status is PlanStatus.APPROVED
    assert len(bot.slack.called("chat.postMessage")) == 1 and len(bot.slack.called("chat.update")) == 1
    assert bot.slack.called("chat.postEphemeral") == []
    assert len([r for r in bot.audit() if r.kind == "approval"]) == 1


def test_the_question_echoed_in_the_channel_cannot_ping(bot: Bot) -> None:
    bot.model.enqueue(say("Noted."))
    text = "<!channel> <!here> ask <@U123> about A&B <b>"
    assert bot.post(command_body(text), "application/x-www-form-urlencoded").status_code == 200
    wait_for(lambda: len(bot.slack.called("chat.postMessage")) == 2, "the answer in the thread")
    root = bot.slack.called("chat.postMessage")[0]
    assert root["text"] == (
        "<@U1> asked: &lt;!channel&gt; &lt;!here&gt; ask &lt;@U123&gt; about A&amp;B &lt;b&gt;"
    )
    assert "&lt;!channel&gt;" in str(bot.model.calls[0][-1].content) or "<!channel>" in str(
        bot.model.calls[0][-1].content
    )


def _bound_tool_names(model: ScriptedChatModel) -> set[str]:
    return {str(t["function"]["name"]) for t in model.bound_tools}


def test_only_drafters_get_the_tool_that_saves_a_draft(shop: Engine) -> None:
    factory = make_session_factory(shop)
    model = ScriptedChatModel()
    bot = FlashSaleBot(Settings(today=TODAY, slack_drafters="UBOSS, U2"), factory, model=model)
    try:
        model.enqueue(tool_calls(call("save_draft_plan", notes="from Slack")), say("Done."))
        reply = bot.answer("Plan tomorrow and save it.", user="U9", session_id="slack:C1:1")
        assert "save_draft_plan" not in _bound_tool_names(model) and "get_inventory" in _bound_tool_names(
            model
        )
        assert reply.plan_id is None
        with factory() as s:
            assert s.scalars(select(FlashSalePlan)).first() is None  # nothing was saved
        model.enqueue(say("Sure."))
        bot.answer("Plan tomorrow.", user="UBOSS", session_id="slack:C1:2")
        assert "save_draft_plan" in _bound_tool_names(model)
    finally:
        bot.close()
    everyone = FlashSaleBot(Settings(today=TODAY), factory, model=model)  # unset: everyone may draft
    try:
        model.enqueue(say("Sure."))
        everyone.answer("Plan tomorrow.", user="U9", session_id="slack:C1:3")
        assert "save_draft_plan" in _bound_tool_names(model)
    finally:
        everyone.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli_slack(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, api_url: str) -> Any:
    from assistant.slack import server  # noqa: PLC0415
    from db.engine import make_engine  # noqa: PLC0415
    from db.migrate import upgrade  # noqa: PLC0415

    engine = make_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setattr(server, "SLACK_API_URL", api_url)
    return CliRunner().invoke(app, ["slack", "--port", "0"])


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_cli_slack_without_network_fails_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    result = _cli_slack(monkeypatch, tmp_path, f"http://127.0.0.1:{_closed_port()}/api/")
    assert result.exit_code == 1
    line = _one_line(result.output)
    assert "cannot reach Slack to check SLACK_BOT_TOKEN (auth.test)" in line
    assert "api.slack.com/apps" in line


def test_cli_slack_with_an_invalid_token_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    class RefusingSlack(FakeSlack):
        def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
            if method == "auth.test":
                return {"ok": False, "error": "invalid_auth"}
            return super().answer(method, args)

    refusing = RefusingSlack()
    try:
        result = _cli_slack(monkeypatch, tmp_path, refusing.client.base_url)
    finally:
        refusing.close()
    assert result.exit_code == 1
    line = _one_line(result.output)
    assert "invalid_auth" in line and "SLACK_BOT_TOKEN" in line and "api.slack.com/apps" in line
