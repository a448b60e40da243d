"""Domain errors. Each says what went wrong and what to do next; the CLI, the bot and the agent render them
as one line instead of a stack trace."""

from __future__ import annotations


class FlashSaleError(Exception):
    """Base class of every error a user can act on."""


class DatabaseNotReady(FlashSaleError):
    """The database has no schema or no data yet."""
