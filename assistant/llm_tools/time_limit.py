"""Every tool call runs under a time limit (``FLASHSALE_TOOL_TIME_LIMIT_S``, default 60 s).

A call runs on a worker thread in its own session; the caller waits at most the limit. At the limit the call
is given up and stopped where it can be: a SQLite query is interrupted by a progress handler, a PostgreSQL
statement by the ``statement_timeout`` set for the call's transaction, and a writing tool that is still
running rolls back instead of committing (the check and the commit are under one lock, so a call either
committed before the caller gave up, and its result is returned, or writes nothing). Pure Python work that
cannot be interrupted (none of the tools' arguments allow an unbounded amount) finishes in the background and
its result is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.engine import read_only_scope, session_scope
from db.errors import FlashSaleError

T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="flashsale-tool")


class ToolTimedOut(FlashSaleError):
    """A tool call ran past its time limit and was given up (nothing it would have written was saved)."""


class _Call:
    def __init__(self, limit_s: float) -> None:
        self.deadline = time.monotonic() + limit_s
        self.lock = threading.Lock()
        self.given_up = False
        self.committing = False

    def expired(self) -> bool:
        return self.given_up or time.monotonic() > self.deadline


@contextmanager
def _interrupt_when_expired(session: Session, call: _Call, limit_s: float) -> Iterator[None]:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(limit_s * 1000))}")
        yield
        return
    raw = connection.connection.driver_connection if connection.dialect.name == "sqlite" else None
    set_handler = getattr(raw, "set_progress_handler", None)
    if set_handler is None:
        yield
        return
    set_handler(lambda: int(call.expired()), 10_000)
    try:
        yield
    finally:
        set_handler(None, 0)


def call_with_time_limit(
    name: str,
    work: Callable[[Session], T],
    factory: sessionmaker[Session],
    *,
    read_only: bool,
    limit_s: float,
) -> T:
    """``work(session)`` in a read-only session or one transaction, given up after ``limit_s`` seconds with
    :class:`ToolTimedOut`; see the module docstring for what is stopped and what is kept."""
    call = _Call(limit_s)
    given_up = ToolTimedOut(f"{name} did not finish within {limit_s:g} s and was stopped; nothing was saved")

    def run() -> T:
        scope = read_only_scope if read_only else session_scope
        try:
            with scope(factory) as session:
                with _interrupt_when_expired(session, call, limit_s):
                    result = work(session)
                with call.lock:  # decide under the lock: commit (kept) or roll back (given up)
                    if call.expired():
                        raise given_up
                    call.committing = True
        except OperationalError as exc:
            if call.expired():  # the progress handler or the statement timeout stopped it
                raise given_up from exc
            raise
        return result

    bind = factory.kw.get("bind")
    if bind is not None and bind.dialect.name == "sqlite" and bind.url.database in (None, "", ":memory:"):
        return run()  # an in-memory database is one per thread: run here, its queries still interrupted
    future = _POOL.submit(run)
    try:
        return future.result(timeout=limit_s)
    except FutureTimeout:
        with call.lock:
            committed = call.committing
            call.given_up = not committed
        if committed:  # it finished just as the limit passed: what it saved stands, so report it
            return future.result()
        raise given_up from None
