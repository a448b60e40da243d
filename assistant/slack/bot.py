"""The Slack bot's core, independent of Slack's SDK: questions answered by the same assistant as the terminal
chat, rate limits, plan approval limited to the configured approvers, the audit, and the credentials.

How a question flows: Slack's request is verified (HTTP mode: bolt's ``RequestVerification`` checks the
``X-Slack-Signature`` HMAC and a timestamp younger than five minutes; a forged, unsigned or stale request gets
401 before any listener runs), acknowledged at once (events automatically, the slash command by ``ack()``
first), and answered from a worker thread of bolt's listener executor in the message's thread. Each Slack
thread is one conversation of the agent (session id ``slack:CHANNEL:THREAD_TS``). A per-user token bucket
(``FLASHSALE_SLACK_RATE_PER_MINUTE``, ``FLASHSALE_SLACK_RATE_BURST``) refuses questions that come too fast.

Drafting: a question may make the agent save a draft plan (``save_draft_plan``). With
``FLASHSALE_SLACK_DRAFTERS`` set, only the users listed get that tool; everybody else asks read-only
questions. Unset, everyone may draft.

A signed request replayed within bolt's five minutes does nothing: events are remembered by channel and ts,
commands by trigger_id (else the signature), approve clicks by trigger_id and action_ts.

Approval: the "Approve plan N" button calls :func:`tools.plans.approve_plan` only for a user listed in
``FLASHSALE_SLACK_APPROVERS``; anybody else gets an ephemeral refusal and the plan stays as it is. Every
attempt, approved or refused, is written to the audit log (kind ``approval``) through
:func:`db.audit.record_audit`, like every Slack exchange (kind ``slack``).

Credentials come from the environment only: ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET`` (HTTP mode) and
``SLACK_APP_TOKEN`` (Socket Mode).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openai
from langchain_core.language_models import BaseChatModel
from sqlalchemy.orm import Session, sessionmaker

from assistant.agent import AgentAnswer
from assistant.chat import answer_footer, open_assistant
from assistant.llm import ModelUnavailable, open_chat_model, unavailable_message
from assistant.ratelimit import RateLimiter
from assistant.settings import Settings
from assistant.slack.render import (
    APPROVE_ACTION,
    approval_blocks,
    draft_message,
    plan_summary,
    revision_message,
    text_blocks,
    to_mrkdwn,
)
from db.audit import record_audit
from db.engine import read_only_scope, session_scope
from db.errors import FlashSaleError
from db.sqlvalues import utc_now
from tools.lifecycle import approve_plan
from tools.plans import PlanNotFound, load_plan

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from assistant.draft import DraftResult
    from tools.replan import ReplanResult

log = logging.getLogger(__name__)

CHANNEL = "slack"
COMMAND = "/flashsale"
EVENTS_PATH = "/slack/events"
SEEN_MESSAGES = 2_000

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
        import slack_bolt  # noqa: F401, PLC0415  (optional extra: slack)
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
        self.limiter = RateLimiter(settings.slack_rate_per_minute, settings.slack_rate_burst, clock=clock)
        self.approvers = settings.slack_approver_ids()
        self.drafters = settings.slack_drafter_ids()
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

    def _chat_model(self) -> BaseChatModel:
        """The injected model, else the in-process model (loaded once), else the server (probed at every
        question, so that a server started later is picked up)."""
        if self.model is None and self.settings.llm_local_model:
            with self._guard:
                if self.model is None:
                    self.model = open_chat_model(self.settings)
        return self.model if self.model is not None else open_chat_model(self.settings)

    # -- bookkeeping --

    @contextmanager
    def _conversation(self, session_id: str) -> Iterator[None]:
        """Turns of one thread run one at a time (the agent's memory of a thread is not shared-safe)."""
        with self._guard:
            lock = self._locks.setdefault(session_id, threading.Lock())
        with lock:
            yield

    def first_time(self, channel: str, ts: str) -> bool:
        """True the first time a message is seen (a DM mention can arrive as two events)."""
        return self.first_delivery(channel, ts)

    def first_delivery(self, kind: str, ident: str) -> bool:
        """True the first time request ``ident`` of ``kind`` is seen (a message's channel and ts, a command's
        trigger_id, a click's trigger_id and action_ts): a replay within bolt's five minutes does nothing.
        The last :data:`SEEN_MESSAGES` are remembered."""
        key = (kind, ident)
        with self._guard:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > SEEN_MESSAGES:
                self._seen.popitem(last=False)
            return True

    def may_draft(self, user: str) -> bool:
        """Whether ``user``'s questions may save a draft plan: everyone unless FLASHSALE_SLACK_DRAFTERS is
        set, then only those listed."""
        return not self.drafters or user in self.drafters

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
                    session_id=session_id,
                    can_save_drafts=self.may_draft(user),
                )
                answer = agent.ask(question)
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
            post_ephemeral(client, channel, user, refusal, thread_ts)
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
        try:
            with session_scope(self.factory) as session:
                approve_plan(session, plan_id, approver, now=utc_now(), channel=CHANNEL)
        except FlashSaleError as exc:
            return refused(str(exc), f"Plan {plan_id} was not approved: {exc}")
        return ApprovalOutcome(True, plan_id, f"Plan {plan_id} approved by <@{user}>.")

    def plan_message(self, plan_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        """The text and blocks of a plan's approval request, or None when no such plan exists."""
        try:
            with read_only_scope(self.factory) as session:
                summary = plan_summary(load_plan(session, plan_id))
        except PlanNotFound:
            return None
        return summary, approval_blocks(plan_id, summary)


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("a Slack worker failed", exc_info=exc)


def _is_connection_error(exc: Exception) -> bool:
    return isinstance(exc, openai.APIConnectionError)


# ---- the app and its servers -------------------------------------------------------------------------------


def post_draft(client: WebClient, channel: str, result: DraftResult) -> str | None:
    """Post the draft's summary with its approval button to ``channel``; returns the message's ts."""
    text, blocks = draft_message(result)
    posted = client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    ts = posted.get("ts")
    return None if ts is None else str(ts)


def post_revision(client: WebClient, channel: str, result: ReplanResult) -> str | None:
    """Post a re-planned revision with its approval button (for the approvers) to ``channel``."""
    text, blocks = revision_message(result)
    posted = client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    ts = posted.get("ts")
    return None if ts is None else str(ts)


def post_ephemeral(
    client: WebClient, channel: str, user: str, text: str, thread_ts: str | None = None
) -> None:
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    except Exception:  # the refusal is audited; a failed notice must not crash the worker
        log.warning("could not post an ephemeral message to %s in %s", user, channel, exc_info=True)


def slack_client_from_env() -> WebClient:
    """A Slack Web API client with ``SLACK_BOT_TOKEN`` from the environment."""
    require_slack_bolt()
    from slack_sdk import WebClient  # noqa: PLC0415  (optional extra: slack)

    token = os.environ.get("SLACK_BOT_TOKEN", "").strip()
    if not token:
        raise SlackConfigError(
            "Set SLACK_BOT_TOKEN (xoxb-...) in the environment to post the draft to Slack."
        )
    return WebClient(token=token)
