"""One dependencies object handed to every tool and to the agent (no globals)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from sqlalchemy.orm import Session, sessionmaker

from assistant.settings import Settings


def utc_now() -> dt.datetime:
    """Now in UTC without time zone, as the schema stores timestamps."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class Deps:
    """What tools and the agent need: the database, the configuration, the chat model and a clock.

    ``chat_model`` is None for deterministic uses (tools called from code, evals of tools alone).
    ``actor`` and ``channel`` end up in every audit row written on behalf of this caller.
    """

    session_factory: sessionmaker[Session]
    settings: Settings = field(default_factory=Settings)
    chat_model: BaseChatModel | None = None
    clock: Callable[[], dt.datetime] = utc_now
    actor: str = "merchandiser"
    channel: str = "cli"

    def now(self) -> dt.datetime:
        return self.clock()

    def today(self) -> dt.date:
        return self.clock().date()
