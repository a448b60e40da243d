"""The daily draft as the CLI and the scheduler run it: pick the sale date, find a model for the narrative,
make the draft and optionally post it to Slack."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel
from sqlalchemy.orm import Session, sessionmaker

from assistant.draft import DraftResult, Progress, make_draft
from assistant.llm import open_chat_model
from assistant.settings import Settings
from assistant.slack.bot import post_draft, slack_client_from_env
from tools.clock import next_sale_date, shop_clock

if TYPE_CHECKING:
    from slack_sdk import WebClient


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
    clock = shop_clock(factory, settings.today)
    day = sale_date or next_sale_date(clock)
    chat_model = model
    if chat_model is None and use_model:
        chat_model = open_chat_model(settings, required=False)
    result = make_draft(
        factory,
        day,
        chat_model,
        out_dir or settings.draft_dir,
        today=clock().date(),
        force=force,
        currency=settings.currency,
        progress=progress,
    )
    if post_to:
        post_draft(client or slack_client_from_env(), post_to, result)
    return result
