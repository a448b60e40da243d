"""Progress of long work, whatever the output is.

In a terminal: a live bar (or a spinner for work without a measure), as rich draws them. Anywhere else (a
log file, cron, CI, a pipe): one plain line at each 10 % step, at each new stage and at least every 5
seconds, with the rows done, the rate and the time left, so a log shows the work is alive.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

STEP = 0.10  # a plain line at each step of this fraction
EVERY_S = 5.0  # and at least this often


class ProgressUpdate(Protocol):
    def __call__(
        self,
        completed: float,
        *,
        total: float | None = None,
        stage: str | None = None,
        detail: str | None = None,
        rows: int | None = None,
    ) -> None: ...


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressLines:
    """Plain progress lines on ``console``; the object is the callback the work calls: ``completed`` of
    ``total``, a new ``stage`` starts its own count (and a line), ``detail`` is shown as given, ``rows``
    with its rate."""

    def __init__(
        self,
        console: Console,
        label: str,
        *,
        total: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console, self.label, self.total, self.clock = console, label, total, clock
        self.started = self.last_line = clock()
        self.stage: str | None = None
        self.stage_started = self.started
        self.next_step = STEP

    def __call__(
        self,
        completed: float,
        *,
        total: float | None = None,
        stage: str | None = None,
        detail: str | None = None,
        rows: int | None = None,
    ) -> None:
        now = self.clock()
        if total is not None:
            self.total = total
        new_stage = stage is not None and stage != self.stage
        if new_stage:
            self.stage, self.stage_started, self.next_step = stage, now, STEP
        fraction = completed / self.total if self.total else None
        stepped = fraction is not None and fraction >= self.next_step
        if not (new_stage or stepped or now - self.last_line >= EVERY_S):
            return
        if fraction is not None:
            while self.next_step <= fraction:
                self.next_step += STEP
        self._line(now, fraction, detail, rows)

    def _line(self, now: float, fraction: float | None, detail: str | None, rows: int | None) -> None:
        elapsed, in_stage = now - self.started, now - self.stage_started
        parts = [f"{self.label}" + (f" ({self.stage})" if self.stage else "")]
        if fraction is not None:
            parts.append(f"{min(fraction, 1.0):.0%}")
        if detail:
            parts.append(detail)
        if rows is not None:
            rate = rows / in_stage if in_stage > 0 else 0.0
            parts.append(f"{rows:,} rows ({rate:,.0f}/s)")
        parts.append(f"{_duration(elapsed)} elapsed")
        if fraction is not None and 0 < fraction < 1 and in_stage > 0:
            parts.append(f"about {_duration(in_stage * (1 - fraction) / fraction)} left")
        self.console.print(
            parts[0] + ": " + ", ".join(parts[1:]), highlight=False, markup=False, soft_wrap=True
        )
        self.last_line = now


def _bar_columns(kind: str) -> list[ProgressColumn]:
    if kind == "bytes":
        return [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
        ]
    return [TextColumn("{task.description:<36}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn()]


@contextlib.contextmanager
def progress(
    console: Console, label: str, *, total: float | None = None, kind: str = "fraction"
) -> Iterator[ProgressUpdate]:
    """A progress callback for ``label``: a bar in a terminal, plain lines elsewhere. ``kind``: "bytes"
    shows a transfer (bytes read, speed, rows) in the bar."""
    if not console.is_terminal:
        yield ProgressLines(console, label, total=total)
        return
    with Progress(*_bar_columns(kind), console=console, transient=True) as bar:
        task = bar.add_task(label, total=total, rows=0)

        def update(
            completed: float,
            *,
            total: float | None = None,
            stage: str | None = None,
            detail: str | None = None,
            rows: int | None = None,
        ) -> None:
            description = None if kind == "bytes" else detail or stage
            fields: dict[str, Any] = {} if rows is None else {"rows": rows}
            bar.update(task, completed=completed, total=total, description=description, **fields)

        yield update


@contextlib.contextmanager
def status(console: Console, text: str) -> Iterator[Callable[[str], None]]:
    """A spinner with a changing message in a terminal; elsewhere each new message as a plain line with
    the time since the start."""
    if console.is_terminal:
        with console.status(text) as spinner:
            yield spinner.update
        return
    started = time.monotonic()

    def line(message: str) -> None:
        elapsed = _duration(time.monotonic() - started)
        console.print(f"{message} ({elapsed} elapsed)", highlight=False, markup=False, soft_wrap=True)

    line(text)
    yield line
