"""Long work shows it is alive in a log: plain progress lines when the output is not a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli import app
from tools.progress import ProgressLines


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(console: Console) -> list[str]:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue().splitlines()


def test_plain_progress_writes_a_line_per_ten_percent_and_every_five_seconds() -> None:
    console = Console(file=io.StringIO(), width=80)
    clock = _Clock()
    lines = ProgressLines(console, "import orders.csv", total=1000, clock=clock)
    for done in range(0, 1001, 10):  # 101 updates, 0.1 s apart
        clock.now += 0.1
        lines(done, rows=done * 3)
    out = _lines(console)
    assert len(out) == 10, out  # 10 %, 20 %, ..., 100 %: one line per step, not per update
    assert out[0].startswith("import orders.csv: 10%, 300 rows")
    assert "left" in out[0] and "left" not in out[-1]  # time left while running, not when done

    clock.now += 1.0
    lines(1000, rows=3000)  # nothing new and under 5 s: no line
    assert len(_lines(console)) == 10
    clock.now += 5.0
    lines(1000, rows=3000)  # stalled, but a log still hears from it every 5 s
    assert len(_lines(console)) == 11


def test_a_new_stage_gets_its_own_line_and_count() -> None:
    console = Console(file=io.StringIO(), width=80)
    clock = _Clock()
    lines = ProgressLines(console, "fit", clock=clock)
    lines(0, total=4, stage="loading sales")
    clock.now += 1
    lines(1, total=10, stage="fitting elasticities")
    lines(5, total=10, stage="fitting elasticities")
    out = _lines(console)
    assert out[0].startswith("fit (loading sales): 0%")
    assert out[1].startswith("fit (fitting elasticities): 10%")
    assert out[2].startswith("fit (fitting elasticities): 50%")


def test_a_redirected_demo_build_logs_its_progress_before_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    out = CliRunner().invoke(app, ["demo", "--scale", "0.05"])
    assert out.exit_code == 0, out.output
    before_summary = out.output.split("Demo shop")[0]
    progress = [line for line in before_summary.splitlines() if re.match(r"Building the shop: \d+%", line)]
    assert len(progress) >= 5, out.output
    assert "\x1b[" not in before_summary  # no terminal control codes in a log


def test_a_redirected_import_logs_its_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    rows = ["sku,title,category,list_price,cost"]
    rows += [f"SKU-{i:05d},Item {i},cat{i % 7},{10 + i % 50}.99,{5 + i % 20}.00" for i in range(3000)]
    path = tmp_path / "products.csv"
    path.write_text("\n".join(rows) + "\n")
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    out = CliRunner().invoke(app, ["import", "catalog", str(path), "--batch-size", "200"])
    assert out.exit_code == 0, out.output
    assert re.search(r"catalog products\.csv: \d+%, [\d,]+ rows", out.stderr), out.output
