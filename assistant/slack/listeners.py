"""The bolt listeners: app mentions, direct messages, ``/flashsale`` and the approve button, each handing
its slow part to the bot's worker pool."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from assistant.chat import SLASH_QUESTIONS
from assistant.slack.bot import COMMAND, HELP_TEXT, FlashSaleBot, post_ephemeral
from assistant.slack.render import APPROVE_ACTION, escape_mrkdwn, to_mrkdwn

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

log = logging.getLogger(__name__)


_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def strip_mentions(text: str, bot_user_id: str | None = None) -> str:
    """The question without the bot's mention (or without every mention when the bot's id is unknown)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    else:
        text = _MENTION.sub(" ", text)
    return " ".join(text.split())


def _signature(request: Any) -> str:
    """The request's ``X-Slack-Signature`` (bolt keeps headers as lists under lower-case names)."""
    values = (getattr(request, "headers", None) or {}).get("x-slack-signature") or [""]
    return str(values[0] if isinstance(values, list | tuple) else values)


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
            # the user's text is shown as text: a "<!channel>" in it must not ping the channel
            root = client.chat_postMessage(channel=channel, text=f"<@{user}> asked: {escape_mrkdwn(text)}")
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
    def on_command(
        ack: Callable[..., Any], command: dict[str, Any], client: WebClient, respond: Any, request: Any
    ) -> None:
        # A signed command replayed within bolt's five minutes is acknowledged and does nothing. Slack makes
        # trigger_id unique per invocation; without one, the signature identifies the request.
        key = str(command.get("trigger_id") or "") or "sig:" + _signature(request)
        if not bot.first_delivery("command", key):
            log.info("ignoring a replayed %s (%s)", COMMAND, key)
            ack()
            return
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
                post_ephemeral(client, channel, user, f"This button names no plan ({value!r}).")
            return
        outcome = bot.approve(user=user, plan_id=int(value))
        if not channel:
            return
        if not outcome.approved:
            post_ephemeral(client, channel, user, outcome.message, message.get("thread_ts"))
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
        ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any], client: WebClient, request: Any
    ) -> None:
        ack()
        # A replayed click does nothing (the approval itself is one conditional update, so a replay could not
        # approve twice; it would audit and post a second time). trigger_id is unique per interaction.
        click = str(body.get("trigger_id") or "") + ":" + str(action.get("action_ts") or "")
        key = click if click != ":" else "sig:" + _signature(request)
        if not bot.first_delivery("action", key):
            log.info("ignoring a replayed approve click (%s)", key)
            return
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
