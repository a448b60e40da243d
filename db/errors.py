"""Domain errors. Each says what went wrong and what to do next; the CLI, the bot and the agent render them
as one line instead of a stack trace."""

from __future__ import annotations


class FlashSaleError(Exception):
    """Base class of every error a user can act on."""


class DatabaseNotReady(FlashSaleError):
    """The database has no schema or no data yet."""


class CsvImportError(FlashSaleError):
    """A CSV import failed: which file, which physical line (header = line 1), which column, which value and
    what was expected. Nothing of the import was written."""

    def __init__(
        self,
        file: str,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.value = value
        self.expected = message
        where = file if line is None else f"{file} line {line}"
        if column is not None:
            where += f', column "{column}"'
        what = message if value is None else f"{_quote(value)} {message}"
        super().__init__(f"{where}: {what}")


def _quote(value: str, limit: int = 80) -> str:
    shown = value if len(value) <= limit else value[: limit - 1] + "…"
    return '"' + shown.replace('"', '\\"') + '"'
