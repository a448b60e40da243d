"""A command beside a long write (an import holds one transaction for minutes) waits for the lock and, after
a bounded wait the user sets, stops with one line instead of a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cli
from cli import app
from evals.replay_attacks import hold_write_lock


def _plan_beside_a_writer(shop: Any, monkeypatch: pytest.MonkeyPatch, hold_s: float, wait_s: str) -> Any:
    monkeypatch.setenv("DATABASE_URL", shop.url)
    monkeypatch.setenv("FLASHSALE_DB_BUSY_TIMEOUT_S", wait_s)
    assert CliRunner().invoke(app, ["fit"]).exit_code == 0
    locked = threading.Event()
    writer = threading.Thread(target=hold_write_lock, args=(shop.path, hold_s, locked))
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


def test_a_waiting_plan_says_what_it_waits_for(demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _plan_beside_a_writer(demo_shop_copy, monkeypatch, hold_s=3.0, wait_s="30")
    assert result.exit_code == 0, result.output
    assert "waiting for another command to finish writing (an import?)" in result.output


def _draft_ids(shop: Any) -> list[int]:
    conn = sqlite3.connect(shop.path)
    try:
        rows = conn.execute("SELECT id FROM flash_sale_plan WHERE status = 'draft' ORDER BY id")
        return [r[0] for r in rows]
    finally:
        conn.close()


def test_runs_of_plan_at_once_save_one_draft_and_force_saves_another(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_shop_copy.url)
    assert CliRunner().invoke(app, ["fit"]).exit_code == 0
    before = _draft_ids(demo_shop_copy)
    command = [sys.executable, str(Path(cli.__file__)), "plan", "--slots", "3"]
    env = {**os.environ, "DATABASE_URL": demo_shop_copy.url, "COLUMNS": "200"}
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [" ".join(run.communicate(timeout=300)[0].split()) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    new = [i for i in _draft_ids(demo_shop_copy) if i not in before]
    assert len(new) == 1, outputs  # one draft, not three
    assert sum("is already draft plan" in out for out in outputs) == 2, outputs
    forced = CliRunner().invoke(app, ["plan", "--slots", "3", "--force"])
    assert forced.exit_code == 0 and len(_draft_ids(demo_shop_copy)) == len(before) + 2


def test_a_command_pointed_at_no_shop_says_so_and_creates_no_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    missing = tmp_path / "elsewhere" / "flashsale.db"  # e.g. a relative path read from another folder
    monkeypatch.setenv("FLASHSALE_DB_PATH", str(missing))
    result = CliRunner().invoke(app, ["plan", "--slots", "3"])
    words = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "no shop" in words and str(missing) in words and "cli.py demo" in words
    assert not missing.exists()
