"""The daily draft and the daily job as the CLI and the scheduler run them.

:func:`run_daily_draft` picks the sale date, finds a model for the narrative, makes the draft and optionally
posts it to Slack. :func:`run_daily_job` is the morning's whole loop: close the sales whose day is over
(their KPIs into ``kpi_result``), refit the demand model on them, draft tomorrow's sale. It is idempotent
per date (a closed sale is not closed again, a current model is not refitted, a written draft is reused)
and one run at a time across processes and hosts (:func:`db.job_lock.exclusive_job`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel
from sqlalchemy.orm import Session, sessionmaker

from assistant.draft import DraftResult, Progress, make_draft
from assistant.llm import open_chat_model
from assistant.settings import Settings
from assistant.slack.bot import post_draft, slack_client_from_env
from db.engine import session_scope
from db.job_lock import exclusive_job
from tools.clock import next_sale_date, shop_clock
from tools.demand import refresh_demand_model
from tools.sale_close import CloseResult, close_sale, sales_to_close

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


JOB = "daily"


@dataclass(frozen=True)
class DailyJobResult:
    closed: list[CloseResult]
    demand_model_id: int
    refitted: bool
    draft: DraftResult


def run_daily_job(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    out_dir: Path | None = None,
    actor: str = "daily-job",
    post_to: str | None = None,
    model: BaseChatModel | None = None,
    use_model: bool = True,
    progress: Progress | None = None,
) -> DailyJobResult:
    """Close the sales whose day is over, refit, draft tomorrow's sale; :class:`db.job_lock.JobLocked` when
    another run (here or on another host) holds the job's lock."""
    with exclusive_job(factory.kw["bind"], JOB):
        clock = shop_clock(factory, settings.today)
        now = clock()
        closed: list[CloseResult] = []
        with session_scope(factory) as session:
            for plan_id in sales_to_close(session, now.date()):
                if progress:
                    progress(f"closing sale {plan_id}")
                closed.append(close_sale(session, plan_id, actor=actor, now=now, channel="scheduler"))
        with session_scope(factory) as session:
            if progress:
                progress("refitting the demand model")
            fitted, refitted = refresh_demand_model(session, progress=progress)
            model_id = int(fitted.id or 0)
        draft = run_daily_draft(
            settings,
            factory,
            sale_date=next_sale_date(clock),
            out_dir=out_dir,
            post_to=post_to,
            model=model,
            use_model=use_model,
            progress=progress,
        )
        return DailyJobResult(closed, model_id, refitted, draft)
