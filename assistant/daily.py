"""The daily draft as the CLI and the scheduler run it: pick the sale date, find a model for the narrative,
make the draft and optionally post it to Slack."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel
from sqlalchemy.orm import Session, sessionmaker

from assistant.draft import DraftResult, Progress, make_draft
from assistant.settings import Settings

if TYPE_CHECKING:
    from slack_sdk import WebClient

log = logging.getLogger(__name__)


def narrative_model(settings: Settings) -> BaseChatModel | None:
    """The chat model for the narrative: the in-process model if configured, else the server if it answers,
    else None (the draft then uses its template)."""
    if settings.llm_local_model:
        from assistant.local_model import LocalChatModel

        return LocalChatModel.from_pretrained(
            settings.llm_local_model, max_new_tokens=settings.llm_max_tokens
        )
    from assistant.llm import make_chat_model, probe_llm

    probe = probe_llm(settings)
    if not probe.ok:
        log.info("no model for the narrative: %s (%s)", probe.message, probe.detail)
        return None
    return make_chat_model(settings)


def next_sale_date(settings: Settings, factory: sessionmaker[Session]) -> dt.date:
    """Tomorrow in the shop's time: the day after ``FLASHSALE_TODAY``, or after the demo shop's 'today'."""
    from assistant.chat import shop_clock

    return shop_clock(settings, factory)().date() + dt.timedelta(days=1)


def slack_client_from_env() -> WebClient:
    """A Slack Web API client with ``SLACK_BOT_TOKEN`` from the environment."""
    from assistant.slack import SlackConfigError, require_slack_bolt

    require_slack_bolt()
    from slack_sdk import WebClient

    token = os.environ.get("SLACK_BOT_TOKEN", "").strip()
    if not token:
        raise SlackConfigError(
            "Set SLACK_BOT_TOKEN (xoxb-...) in the environment to post the draft to Slack."
        )
    return WebClient(token=token)


def run_daily_draft(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    sale_date: dt.date | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    post_to: str | None = None,
    client: WebClient | None = None,
    model: BaseChatModel | None = None,
    use_model: bool = True,
    progress: Progress | None = None,
) -> DraftResult:
    """Make (or reuse) the draft of ``sale_date`` (default: the next sale) and post it to channel ``post_to``.

    A reused draft is posted again only when ``post_to`` is given explicitly. ``model`` overrides the
    narrative model; ``use_model=False`` forces the template.
    """
    day = sale_date or next_sale_date(settings, factory)
    chat_model = model if model is not None else (narrative_model(settings) if use_model else None)
    result = make_draft(
        factory, day, chat_model, out_dir or settings.draft_dir, force=force, progress=progress
    )
    if post_to:
        from assistant.slack import post_draft

        post_draft(client or slack_client_from_env(), post_to, result)
    return result
