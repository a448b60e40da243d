"""One dependencies object handed to every tool and to the agent (no globals): the database, the settings,
the chat model, the shop's clock, who is asking, and the conversation's plan proposals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from sqlalchemy.orm import Session, sessionmaker

from assistant.settings import Settings
from tools.clock import Clock, shop_clock, utc_now
from tools.planning import PlanProposal

ProposalLookup = Callable[[str], PlanProposal | None]


def _no_proposals(_proposal_id: str) -> PlanProposal | None:
    return None


@dataclass
class Deps:
    """What tools and the agent need: the database, the configuration, the chat model and a clock.

    ``chat_model`` is None for deterministic uses (tools called from code, evals of tools alone).
    ``actor`` and ``channel`` end up in every audit row written on behalf of this caller. ``proposals``
    finds a plan proposal shown earlier in the conversation by its id (the agent supplies it).
    """

    session_factory: sessionmaker[Session]
    settings: Settings = field(default_factory=Settings)
    chat_model: BaseChatModel | None = None
    clock: Clock = utc_now
    actor: str = "merchandiser"
    channel: str = "cli"
    proposals: ProposalLookup = _no_proposals

    def now(self) -> dt.datetime:
        return self.clock()

    def today(self) -> dt.date:
        return self.clock().date()

    @property
    def currency(self) -> str:
        return self.settings.currency


def make_deps(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    actor: str,
    channel: str,
    chat_model: BaseChatModel | None = None,
) -> Deps:
    """The dependencies of a front end, on the shop's clock (``FLASHSALE_TODAY``, else the shop's data)."""
    return Deps(
        session_factory=factory,
        settings=settings,
        chat_model=chat_model,
        clock=shop_clock(factory, settings.today),
        actor=actor,
        channel=channel,
    )
