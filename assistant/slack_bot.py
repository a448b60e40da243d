"""The Slack front end: app mentions, direct messages and ``/flashsale`` answered by the same assistant as the
terminal chat, and plan approval through a button limited to the configured approvers.

How a question flows: Slack's request is verified (HTTP mode: bolt's ``RequestVerification`` checks the
``X-Slack-Signature`` HMAC and a timestamp younger than five minutes; a forged, unsigned or stale request gets
401 before any listener runs), acknowledged at once (events automatically, the slash command by ``ack()``
first), and answered from a worker thread of bolt's listener executor in the message's thread. Each Slack
thread is one conversation of the agent (session id ``slack:CHANNEL:THREAD_TS``). A per-user token bucket
(``FLASHSALE_SLACK_RATE_PER_MINUTE``, ``FLASHSALE_SLACK_RATE_BURST``) refuses questions that come too fast.

Approval: the "Approve plan N" button calls :func:`tools.plans.approve_plan` only for a user listed in
``FLASHSALE_SLACK_APPROVERS``; anybody else gets an ephemeral refusal and the plan stays as it is. Every
attempt, approved or refused, is written to the audit log (kind ``approval``) through
:func:`assistant.audit.record_audit`, like every Slack exchange (kind ``slack``).

Credentials come from the environment only: ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET`` (HTTP mode) and
``SLACK_APP_TOKEN`` (Socket Mode).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from langchain_core.language_models import BaseChatModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from assistant.agent import AgentAnswer, SessionMemory
from assistant.audit import record_audit
from assistant.chat import SLASH_QUESTIONS, answer_footer, open_assistant
from assistant.llm import ModelUnavailable, unavailable_message
from assistant.ratelimit import RateLimiter
from assistant.settings import Settings
from db.engine import session_scope
from db.errors import FlashSaleError
from db.models import FlashSalePlan, PlanItem
from tools.formatting import format_cents, pct

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from tools.draft import DraftResult

log = logging.getLogger(__name__)

CHANNEL = "slack"
APPROVE_ACTION = "approve_plan"
COMMAND = "/flashsale"
EVENTS_PATH = "/slack/events"
SECTION_CHARS = 2900  # Slack caps a section's text at 3,000 characters
MAX_SECTIONS = 12
SEEN_MESSAGES = 2_000
MAX_CONVERSATIONS = 500  # threads whose history is kept in memory; the oldest are forgotten first

HELP_TEXT = (
    "*Flash-sale assistant*\n"
    "• Mention me in a channel or write to me directly; I answer in the thread, and a thread is one "
    "conversation.\n"
    f"• `{COMMAND} QUESTION` asks a question; `{COMMAND} plan` proposes tomorrow's plan; "
    f"`{COMMAND} kpi` reports the last sale day; `{COMMAND} approve PLAN_ID` shows a plan with its "
    "approval button; `{COMMAND} help` shows this.\n"
    "• Only the configured approvers can approve a plan; every approval is audited."
).replace("{COMMAND}", COMMAND)


class SlackConfigError(FlashSaleError):
    """The Slack credentials or options are missing or inconsistent."""


class SlackUnavailable(FlashSaleError):
    """slack-bolt is not installed."""


def require_slack_bolt() -> None:
    """Raise :class:`SlackUnavailable` with the install command when slack-bolt is missing."""
    try:
        import slack_bolt  # noqa: F401
    except ImportError as exc:
        raise SlackUnavailable(
            "the Slack bot needs slack-bolt: pip install -e '.[slack]' (or pip install slack-bolt)"
        ) from exc


@dataclass(frozen=True)
class SlackCredentials:
    """Tokens and the signing secret, read from the environment only (never from files or options)."""

    bot_token: str
    signing_secret: str
    app_token: str | None = None

    @classmethod
    def from_env(cls, *, socket_mode: bool, environ: Mapping[str, str] | None = None) -> SlackCredentials:
        env = os.environ if environ is None else environ
        bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
        secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        app_token = env.get("SLACK_APP_TOKEN", "").strip() or None
        missing = [] if bot_token else ["SLACK_BOT_TOKEN (xoxb-..., OAuth & Permissions)"]
        if socket_mode and not app_token:
            missing.append(
                "SLACK_APP_TOKEN (xapp-..., Basic Information > App-Level Tokens, connections:write)"
            )
        if not socket_mode and not secret:
            # An empty secret would make every HMAC forgeable: HTTP mode refuses to start without one.
            missing.append("SLACK_SIGNING_SECRET (Basic Information > App Credentials)")
        if missing:
            raise SlackConfigError("Set " + "; ".join(missing) + " in the environment.")
        return cls(bot_token=bot_token, signing_secret=secret, app_token=app_token)


# ---- rendering ---------------------------------------------------------------------------------------------


def to_mrkdwn(text: str) -> str:
    """Markdown from the model as Slack mrkdwn: escape ``& < >``, ``**b**`` -> ``*b*``, links, headings."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)
    text = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", text)
    text = re.sub(r"^#{1,6}\s+(.+)$", r"*\1*", text, flags=re.MULTILINE)
    return text


def _chunks(text: str, size: int) -> Iterator[str]:
    """``text`` in pieces of at most ``size`` characters, cut at line ends where possible."""
    while len(text) > size:
        cut = text.rfind("\n", 0, size)
        cut = cut if cut > size // 2 else size
        yield text[:cut]
        text = text[cut:].lstrip("\n")
    if text:
        yield text


def text_blocks(text: str, *, converted: bool = False) -> list[dict[str, Any]]:
    """Section blocks of ``text`` (Markdown -> mrkdwn unless ``converted``), split to Slack's limits."""
    sections = list(_chunks(text if converted else to_mrkdwn(text), SECTION_CHARS))[:MAX_SECTIONS]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections]


def approval_blocks(plan_id: int, summary: str | None = None) -> list[dict[str, Any]]:
    """An "Approve plan N" button (with a confirmation dialog) and an optional summary above it."""
    blocks: list[dict[str, Any]] = []
    if summary:
        blocks += text_blocks(summary)
    blocks.append(
        {
            "type": "actions",
            "block_id": f"approve_{plan_id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "text": {"type": "plain_text", "text": f"Approve plan {plan_id}"},
                    "style": "primary",
                    "value": str(plan_id),
                    "confirm": {
                        "title": {"type": "plain_text", "text": f"Approve plan {plan_id}?"},
                        "text": {
                            "type": "mrkdwn",
                            "text": "Its prices go live on the sale date. Only approvers can do this.",
                        },
                        "confirm": {"type": "plain_text", "text": "Approve"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            ],
        }
    )
    return blocks


def saved_plan_id(answer: AgentAnswer) -> int | None:
    """The id of the draft plan a turn saved (from the ``save_draft_plan`` tool result), if any."""
    for call in reversed(answer.tool_calls):
        if call.name != "save_draft_plan" or call.error:
            continue
        try:
            data = json.loads(call.output)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("plan_id"), int):
            return int(data["plan_id"])
    return None


def plan_summary(session: Session, plan_id: int) -> str | None:
    """One paragraph about a stored plan (date, status, items, expected money), or None if unknown."""
    plan = session.get(FlashSalePlan, plan_id)
    if plan is None:
        return None
    n, revenue, profit, units = session.execute(
        select(
            func.count(PlanItem.id),
            func.coalesce(func.sum(PlanItem.expected_revenue_cents), 0),
            func.coalesce(func.sum(PlanItem.expected_profit_cents), 0),
            func.coalesce(func.sum(PlanItem.allocated_units), 0),
        ).where(PlanItem.plan_id == plan_id)
    ).one()
    status = getattr(plan.status, "value", plan.status)
    text = (
        f"*Plan {plan_id}* for {plan.sale_date} ({status}): {n} SKUs, {int(units):,} units allocated, "
        f"expected revenue {format_cents(int(revenue))}, expected gross profit {format_cents(int(profit))}."
    )
    if plan.approved_by:
        text += f" Approved by {plan.approved_by}."
    return text


# ---- the bot -----------------------------------------------------------------------------------------------


@dataclass
class BotReply:
    """What the bot answers to one question."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    plan_id: int | None = None
    error: str | None = None
    answer: AgentAnswer | None = None


@dataclass(frozen=True)
class ApprovalOutcome:
    approved: bool
    plan_id: int
    message: str


class FlashSaleBot:
    """The Slack-independent core: questions through the agent, the rate limit, approvals and the audit.

    ``model`` is the chat model (a scripted one in tests); ``None`` means the configured model server (or
    in-process model), probed at every question so that a server started later is picked up.
    """

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        model: BaseChatModel | None = None,
        clock: Callable[[], float] = time.monotonic,
        workers: int = 4,
    ) -> None:
        self.settings = settings
        self.factory = session_factory
        self.model = model
        self.memory = SessionMemory()
        self.limiter = RateLimiter(settings.slack_rate_per_minute, settings.slack_rate_burst, clock=clock)
        self.approvers = settings.slack_approver_ids()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flashsale-answer")

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` on the bot's worker pool; an exception is logged, never lost."""
        future = self.executor.submit(fn, *args)
        future.add_done_callback(_log_failure)
        return future

    def close(self) -> None:
        """Finish the questions in progress and stop the workers."""
        self.executor.shutdown(wait=True)

    def _chat_model(self) -> BaseChatModel | None:
        """The injected model, else the in-process model (loaded once), else None (the server)."""
        if self.model is None and self.settings.llm_local_model:
            with self._guard:
                if self.model is None:
                    from assistant.local_model import LocalChatModel

                    self.model = LocalChatModel.from_pretrained(
                        self.settings.llm_local_model, max_new_tokens=self.settings.llm_max_tokens
                    )
        return self.model

    # -- bookkeeping --

    def _forget_old_conversations(self) -> None:
        sessions = self.memory.sessions()
        for old in sessions[: max(0, len(sessions) - MAX_CONVERSATIONS)]:
            self.memory.reset(old)  # its lock stays: a few bytes, and never two locks for one thread

    @contextmanager
    def _conversation(self, session_id: str) -> Iterator[None]:
        """Turns of one thread run one at a time (the agent's memory of a thread is not shared-safe)."""
        with self._guard:
            lock = self._locks.setdefault(session_id, threading.Lock())
        with lock:
            yield

    def first_time(self, channel: str, ts: str) -> bool:
        """True the first time a message is seen (a DM mention can arrive as two events)."""
        key = (channel, ts)
        with self._guard:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > SEEN_MESSAGES:
                self._seen.popitem(last=False)
            return True

    def rate_limited(self, user: str) -> str | None:
        """None when ``user`` may ask now, else the message to show them."""
        wait = self.limiter.acquire(user)
        if wait <= 0:
            return None
        return (
            f"You are asking faster than {self.limiter.per_minute:g} questions a minute; "
            f"try again in {math.ceil(wait)} s."
        )

    def audit(
        self,
        *,
        user: str,
        name: str,
        inputs: Any,
        outputs: Any,
        started: float,
        session_id: str | None = None,
        error: str | None = None,
        kind: str = "slack",
    ) -> None:
        with session_scope(self.factory) as session:
            record_audit(
                session,
                actor=user,
                channel=CHANNEL,
                kind=kind,
                name=name,
                inputs=inputs,
                outputs=outputs,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                session_id=session_id,
                error=error,
            )

    # -- questions --

    def answer(self, question: str, *, user: str, session_id: str) -> BotReply:
        """One agent turn in conversation ``session_id``; failures become a reply, never an exception."""
        with self._conversation(session_id):
            try:
                agent = open_assistant(
                    self.settings,
                    self.factory,
                    channel=CHANNEL,
                    actor=user,
                    model=self._chat_model(),
                    memory=self.memory,
                    session_id=session_id,
                )
                answer = agent.ask(question)
                self._forget_old_conversations()
            except ModelUnavailable as exc:
                return BotReply(text=str(exc), error="model unavailable")
            except FlashSaleError as exc:
                return BotReply(text=f"Error: {exc}", error=str(exc))
            except Exception as exc:  # a failing turn must still get a reply in Slack
                if _is_connection_error(exc):
                    return BotReply(text=unavailable_message(self.settings.llm_base_url), error=str(exc))
                log.exception("assistant turn failed")
                return BotReply(
                    text=f"Sorry, the assistant failed: {type(exc).__name__}: {exc}", error=repr(exc)
                )
        plan_id = saved_plan_id(answer)
        blocks = text_blocks(answer.text)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": answer_footer(answer)}]})
        if plan_id is not None:
            blocks += approval_blocks(plan_id)
        return BotReply(text=answer.text, blocks=blocks, plan_id=plan_id, answer=answer)

    def respond_in_thread(
        self,
        client: WebClient,
        *,
        source: str,
        user: str,
        channel: str,
        thread_ts: str,
        question: str,
    ) -> BotReply | None:
        """Rate-check, answer ``question`` and post the answer in the thread; audited. None if refused."""
        started = time.perf_counter()
        session_id = f"slack:{channel}:{thread_ts}"
        refusal = self.rate_limited(user)
        if refusal is not None:
            _ephemeral(client, channel, user, refusal, thread_ts)
            self.audit(
                user=user,
                name=source,
                inputs={"channel": channel, "thread_ts": thread_ts, "text": question},
                outputs={"reply": refusal},
                started=started,
                session_id=session_id,
                error="rate limited",
            )
            return None
        reply = self.answer(question, user=user, session_id=session_id)
        posted = client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=to_mrkdwn(reply.text), blocks=reply.blocks or None
        )
        self.audit(
            user=user,
            name=source,
            inputs={"channel": channel, "thread_ts": thread_ts, "text": question},
            outputs={"reply": reply.text, "ts": posted.get("ts"), "plan_id": reply.plan_id},
            started=started,
            session_id=session_id,
            error=reply.error,
        )
        return reply

    # -- approvals --

    def approve(self, *, user: str, plan_id: int) -> ApprovalOutcome:
        """Approve plan ``plan_id`` for Slack user ``user`` if they are an approver; audited either way.

        A success is audited by :func:`tools.plans.approve_plan` in the approval's own transaction (actor
        ``slack:USER``, channel ``slack``); a refusal or a failure gets an ``approval`` row with the reason.
        """
        started = time.perf_counter()
        approver = f"slack:{user}"

        def refused(error: str, message: str) -> ApprovalOutcome:
            self.audit(
                user=approver,
                kind="approval",
                name=APPROVE_ACTION,
                inputs={"plan_id": plan_id, "approvers": sorted(self.approvers)},
                outputs={"approved": False},
                started=started,
                error=error,
            )
            return ApprovalOutcome(False, plan_id, message)

        if user not in self.approvers:
            return refused(
                "not an approver",
                f"Only the configured approvers can approve plans; plan {plan_id} is unchanged. "
                "Ask an approver (FLASHSALE_SLACK_APPROVERS).",
            )
        from tools.plans import approve_plan

        try:
            with session_scope(self.factory) as session:
                approve_plan(session, plan_id, approver, channel=CHANNEL)
        except FlashSaleError as exc:
            return refused(str(exc), f"Plan {plan_id} was not approved: {exc}")
        return ApprovalOutcome(True, plan_id, f"Plan {plan_id} approved by <@{user}>.")

    def plan_message(self, plan_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        """The text and blocks of a plan's approval request, or None when no such plan exists."""
        with self.factory() as session:
            summary = plan_summary(session, plan_id)
        if summary is None:
            return None
        return summary, approval_blocks(plan_id, summary)

    # -- wiring --

    def register(self, app: App) -> None:
        """Attach the listeners: app mentions, direct messages, ``/flashsale`` and the approve button."""
        register_listeners(app, self)


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("a Slack worker failed", exc_info=exc)


def _is_connection_error(exc: Exception) -> bool:
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency
        return False
    return isinstance(exc, openai.APIConnectionError)


def _ephemeral(client: WebClient, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    except Exception:  # the refusal is audited; a failed notice must not crash the worker
        log.warning("could not post an ephemeral message to %s in %s", user, channel, exc_info=True)


_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def strip_mentions(text: str, bot_user_id: str | None = None) -> str:
    """The question without the bot's mention (or without every mention when the bot's id is unknown)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    else:
        text = _MENTION.sub(" ", text)
    return " ".join(text.split())


def register_listeners(app: App, bot: FlashSaleBot) -> None:
    """Bolt listeners that delegate to ``bot``.

    Slack wants an answer to every request within 3 seconds. Events are acknowledged by bolt before their
    listener runs; the slash command and the button call ``ack()`` first thing. Every listener only parses
    and hands the slow part (the agent turn, the approval) to the bot's own worker pool, so a burst of slow
    questions never delays the acknowledgement of the next request.
    """

    def ask_from_event(
        event: dict[str, Any], client: WebClient, bot_user_id: str | None, source: str
    ) -> None:
        channel, ts = event.get("channel"), event.get("ts")
        user = event.get("user")
        if not channel or not ts or not user or not bot.first_time(str(channel), str(ts)):
            return
        question = strip_mentions(str(event.get("text") or ""), bot_user_id)
        thread_ts = str(event.get("thread_ts") or ts)
        if not question:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=HELP_TEXT)
            return
        bot.respond_in_thread(
            client,
            source=source,
            user=str(user),
            channel=str(channel),
            thread_ts=thread_ts,
            question=question,
        )

    @app.event("app_mention")
    def on_mention(event: dict[str, Any], client: WebClient, context: Any) -> None:
        bot.submit(ask_from_event, event, client, getattr(context, "bot_user_id", None), "app_mention")

    @app.event("message")
    def on_message(event: dict[str, Any], client: WebClient, context: Any) -> None:
        # Only direct messages from people: channel messages arrive as app_mention, edits and bot posts
        # carry a subtype or a bot_id.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        bot.submit(ask_from_event, event, client, getattr(context, "bot_user_id", None), "message.im")

    def answer_command(
        client: WebClient, respond: Any, *, user: str, channel: str, text: str, question: str, trigger: str
    ) -> None:
        started = time.perf_counter()
        try:
            root = client.chat_postMessage(channel=channel, text=f"<@{user}> asked: {text}")
        except Exception as exc:  # e.g. not_in_channel: answer privately through the response URL
            log.info("cannot post in %s (%s); answering through response_url", channel, exc)
            reply = bot.answer(question, user=user, session_id=f"slack:{channel}:{trigger}")
            respond(text=to_mrkdwn(reply.text), blocks=reply.blocks or None, response_type="ephemeral")
            bot.audit(
                user=user,
                name="command",
                inputs={"channel": channel, "text": text},
                outputs={"reply": reply.text, "via": "response_url"},
                started=started,
                error=reply.error,
            )
            return
        thread_ts = str(root["ts"])
        session_id = f"slack:{channel}:{thread_ts}"
        reply = bot.answer(question, user=user, session_id=session_id)
        posted = client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=to_mrkdwn(reply.text), blocks=reply.blocks or None
        )
        bot.audit(
            user=user,
            name="command",
            inputs={"channel": channel, "thread_ts": thread_ts, "text": text, "question": question},
            outputs={"reply": reply.text, "ts": posted.get("ts"), "plan_id": reply.plan_id},
            started=started,
            session_id=session_id,
            error=reply.error,
        )

    @app.command(COMMAND)
    def on_command(ack: Callable[..., Any], command: dict[str, Any], client: WebClient, respond: Any) -> None:
        text = " ".join(str(command.get("text") or "").split())
        user, channel = str(command["user_id"]), str(command["channel_id"])
        words = text.split()
        first = words[0].lower() if words else ""
        if first in ("", "help"):
            ack(text=HELP_TEXT)
            return
        if first == "approve":
            plan_id = int(words[1]) if len(words) == 2 and words[1].isdigit() else None
            message = bot.plan_message(plan_id) if plan_id is not None else None
            if message is None:
                ack(text=f"Usage: `{COMMAND} approve PLAN_ID` with the id of an existing plan.")
                return
            ack()
            summary, blocks = message
            client.chat_postMessage(channel=channel, text=summary, blocks=blocks)
            return
        if len(words) == 1 and f"/{first}" in SLASH_QUESTIONS:
            question = SLASH_QUESTIONS[f"/{first}"]
        else:
            question = text
        refusal = bot.rate_limited(user)
        if refusal is not None:
            ack(text=refusal)
            bot.audit(
                user=user,
                name="command",
                inputs={"channel": channel, "text": text},
                outputs={"reply": refusal},
                started=time.perf_counter(),
                error="rate limited",
            )
            return
        ack(text="On it: the answer follows in a thread.")
        trigger = str(command.get("trigger_id") or time.time())
        bot.submit(
            functools.partial(
                answer_command, user=user, channel=channel, text=text, question=question, trigger=trigger
            ),
            client,
            respond,
        )

    def approve_from_button(
        client: WebClient, user: str, channel: str | None, message: dict[str, Any], value: str
    ) -> None:
        if not value.isdigit():
            if channel:
                _ephemeral(client, channel, user, f"This button names no plan ({value!r}).")
            return
        outcome = bot.approve(user=user, plan_id=int(value))
        if not channel:
            return
        if not outcome.approved:
            _ephemeral(client, channel, user, outcome.message, message.get("thread_ts"))
            return
        thread_ts = message.get("thread_ts") or message.get("ts")
        if message.get("ts"):
            kept = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
            kept.append({"type": "context", "elements": [{"type": "mrkdwn", "text": outcome.message}]})
            try:
                client.chat_update(channel=channel, ts=message["ts"], text=outcome.message, blocks=kept)
            except Exception:
                log.warning("could not update the approval message", exc_info=True)
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=outcome.message)

    @app.action(APPROVE_ACTION)
    def on_approve(
        ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        user = str(body["user"]["id"])
        channel = (body.get("channel") or {}).get("id")
        bot.submit(
            approve_from_button,
            client,
            user,
            channel,
            body.get("message") or {},
            str(action.get("value") or ""),
        )


# ---- the app and its servers -------------------------------------------------------------------------------


def build_app(
    bot: FlashSaleBot,
    credentials: SlackCredentials,
    *,
    client: WebClient | None = None,
    token_verification: bool = True,
) -> App:
    """A bolt ``App`` with the bot's listeners. ``client`` replaces the Slack Web API client (tests);
    ``token_verification`` calls ``auth.test`` at start to fail fast on a bad token."""
    require_slack_bolt()
    from slack_bolt import App

    app = App(
        name="flashsale",
        token=None if client is not None else credentials.bot_token,
        signing_secret=credentials.signing_secret,
        client=client,
        token_verification_enabled=token_verification,
        # Listeners only parse, acknowledge and hand over to the bot's workers: a few threads suffice.
        listener_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="flashsale-slack"),
    )
    bot.register(app)
    return app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops connections of a burst (a 1 s TCP retry each)


class _LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
        log.info("%s %s", self.address_string(), format % args)


def make_http_server(
    app: App, host: str = "127.0.0.1", port: int = 3000, path: str = EVENTS_PATH
) -> WSGIServer:
    """A threaded WSGI server with Slack's endpoint at ``path`` (and ``GET /healthz``); port 0 picks a free
    port (``server.server_port``). Call ``serve_forever()`` and, from another thread, ``shutdown()``."""
    require_slack_bolt()
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    slack = SlackRequestHandler(app, path=path)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok"]
        return slack(environ, start_response)

    return make_server(host, port, wsgi, server_class=_ThreadingWSGIServer, handler_class=_LoggingHandler)


def run_socket_mode(app: App, app_token: str) -> None:
    """Connect to Slack over Socket Mode (no public URL needed) and serve until interrupted."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    SocketModeHandler(app, app_token).start()


def draft_message(result: DraftResult) -> tuple[str, list[dict[str, Any]]]:
    """A Slack message for a daily draft: summary, top items, narrative label, and the approval button."""
    data = result.data
    plan = data["plan"]
    items = sorted(plan["items"], key=lambda i: -i["expected_profit_cents"])
    lines = [
        f"*Flash-sale plan draft for {result.sale_date}* (plan {plan['plan_id']}, status draft)",
        f"{len(items)} SKUs, {plan['allocated_units']:,} units allocated; expected revenue "
        f"{format_cents(plan['expected_revenue_cents'])}, "
        f"gross profit {format_cents(plan['expected_profit_cents'])}.",
    ]
    lines += [
        f"• {i['sku']} {i['title']}: -{i['discount'] * 100:.0f} % at {format_cents(i['sale_price_cents'])}, "
        f"{i['allocated_units']:,} units, profit {format_cents(i['expected_profit_cents'])}"
        for i in items[:8]
    ]
    if len(items) > 8:
        lines.append(f"… and {len(items) - 8} more in {result.markdown_path.name}")
    last = data.get("last_sale")
    if last:
        lines.append(
            f"Last sale (plan {last['plan_id']}, {last['sale_date']}): "
            f"GMV {format_cents(last['gmv_cents'])}, "
            f"sell-through {pct(last['sell_through'])}, {last['stock_outs']} stock-outs."
        )
    if data.get("signals"):
        lines.append(
            "Signals: "
            + ", ".join(f"{s['id']} ({s['direction']} {s['scope_value']})" for s in data["signals"])
        )
    lines += ["", f"_{data['narrative']['label']}_", data["narrative"]["text"]]
    # Titles, signals and the narrative are data: escaped, so that e.g. "<!channel>" in a title stays text.
    text = to_mrkdwn("\n".join(lines))
    blocks = text_blocks(text, converted=True)
    if plan.get("plan_id") is not None:
        blocks += approval_blocks(int(plan["plan_id"]))
    return text, blocks


def post_draft(client: WebClient, channel: str, result: DraftResult) -> str | None:
    """Post the draft's summary with its approval button to ``channel``; returns the message's ts."""
    text, blocks = draft_message(result)
    posted = client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    ts = posted.get("ts")
    return None if ts is None else str(ts)
