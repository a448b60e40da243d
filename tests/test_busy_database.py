"""A command beside a long write (an import holds one transaction for minutes) waits for the lock and, after
a bounded wait the user sets, stops with one line instead of a traceback."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app


def _hold_write_lock(path: Any, seconds: float, locked: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE product SET title = title WHERE 0")
    locked.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def _plan_beside_a_writer(shop: Any, monkeypatch: pytest.MonkeyPatch, hold_s: float, wait_s: str) -> Any:
    monkeypatch.setenv("DATABASE_URL", shop.url)
    monkeypatch.setenv("FLASHSALE_DB_BUSY_TIMEOUT_S", wait_s)
    assert CliRunner().invoke(app, ["fit"]).exit_code == 0
    locked = threading.Event()
    writer = threading.Thread(target=_hold_write_lock, args=(shop.path, hold_s, locked))
    writer.start()
    locked.wait(5)
    try:
        return CliRunner().invoke(app, ["plan", "--slots", "3"])
    finally:
        writer.join()


def test_plan_waits_for_a_writer_that_finishes(demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _plan_beside_a_writer(demo_shop_copy, monkeypatch, hold_s=2.0, wait_s="30")
    assert result.exit_code == 0, result.output
    assert "Saved as draft plan" in result.output


def test_plan_beside_a_writer_that_holds_on_stops_with_one_line(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _plan_beside_a_writer(demo_shop_copy, monkeypatch, hold_s=4.0, wait_s="1")
    assert result.exit_code == 1, result.output
    words = " ".join(result.output.split())
    assert "Traceback" not in result.output and "database is busy" in words
    assert "FLASHSALE_DB_BUSY_TIMEOUT_S" in words
