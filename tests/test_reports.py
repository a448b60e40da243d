"""Reports render: terminal tables, Markdown and HTML files with valid PNG charts, escaped values, and the
kpi / report / compare commands on the fixture shop of tests/kpi_shop.py."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from rich.console import Console
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import cli
from cli import app
from db.engine import make_session_factory
from db.models import FlashSalePlan, PlanStatus, Product
from tests.kpi_shop import END, START, TODAY, build_kpi_shop
from tools.campaigns import compare_samples, plan_vs_actual
from tools.kpi import kpi_report
from tools.reports import comparison_table, kpi_table, plan_vs_actual_table, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID_TAGS = {"meta", "img", "br", "hr", "link", "input"}


class StrictParser(HTMLParser):
    """Collects text and image sources and fails on unbalanced or mis-nested tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack})")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == [], (parser.errors, parser.stack)
    return parser


@pytest.fixture
def shop(sqlite_engine: Engine) -> tuple[sessionmaker[Session], int]:
    factory = make_session_factory(sqlite_engine)
    with factory.begin() as session:
        plan_id = build_kpi_shop(session)
        # a hostile category name must come out escaped, never as markup
        session.execute(update(Product).where(Product.sku == "C").values(category="<script>x</script>"))
    return factory, plan_id


def test_report_files_charts_and_html(shop: tuple[sessionmaker[Session], int], tmp_path: Path) -> None:
    factory, plan_id = shop
    with factory() as session:
        report = kpi_report(session, START, END, by="category")
        pva = plan_vs_actual(session, plan_id, today=TODAY)
    written = write_report(report, tmp_path / "out", plan_vs_actual=pva)
    names = sorted(p.name for p in written)
    assert names == [
        "discount_sell_through.png",
        "forecast_actual.png",
        "gmv_profit.png",
        "report.html",
        "report.md",
    ]
    for path in written:
        assert path.exists() and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_SIGNATURE
            image = matplotlib.image.imread(path)
            assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100

    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    parsed = parse_html(page)
    text = " ".join(parsed.text)
    for figure in ("121.50", "55.50", "45.7 %", "10.8 %", "66.7 %", "44.4 % (8/18)", "0.21", "1/3"):
        assert figure in text, figure
    assert "WAPE 175.0 %" in text and "stock-out" in text
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert sorted(parsed.images) == ["discount_sell_through.png", "forecast_actual.png", "gmv_profit.png"]

    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| Total | 121.50 | 55.50 | 45.7 % |" in markdown
    assert "![GMV and gross profit per day](gmv_profit.png)" in markdown
    assert "<script>" not in markdown


def test_markdown_only_and_unknown_format(shop: tuple[sessionmaker[Session], int], tmp_path: Path) -> None:
    factory, _ = shop
    with factory() as session:
        report = kpi_report(session, START, END)
    written = write_report(report, tmp_path, formats=["md"])
    assert (tmp_path / "report.md").exists() and not (tmp_path / "report.html").exists()
    assert len(written) == 4
    with pytest.raises(Exception, match="Unknown report format"):
        write_report(report, tmp_path, formats=["pdf"])


def test_terminal_tables_show_the_figures(shop: tuple[sessionmaker[Session], int]) -> None:
    factory, plan_id = shop
    with factory() as session:
        report = kpi_report(session, START, END, by="category")
        pva = plan_vs_actual(session, plan_id, today=TODAY)
    console = Console(record=True, width=250)
    console.print(kpi_table(report))
    console.print(plan_vs_actual_table(pva))
    console.print(comparison_table(compare_samples([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], metric="units")))
    out = console.export_text()
    assert "121.50" in out and "102.00" in out and "44.4 % (8/18)" in out
    assert "WAPE 175.0 %" in out and "price" in out
    assert "units per day" in out


def test_cli_kpi_report_compare(
    shop: tuple[sessionmaker[Session], int],
    sqlite_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, plan_id = shop
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setattr(cli.console, "width", 250)  # a wide terminal: the grouped table has 13 columns
    runner = CliRunner()

    result = runner.invoke(app, ["kpi", "--start", str(START), "--end", str(END), "--by", "category"])
    assert result.exit_code == 0, result.output
    assert "121.50" in result.output and "audio" in result.output and "Stock-outs" in result.output

    result = runner.invoke(app, ["kpi", "--start", str(START), "--end", str(END)])
    assert result.exit_code == 0, result.output
    assert "Sell-through" in result.output and "44.4 % (8/18)" in result.output

    result = runner.invoke(app, ["kpi", "--plan", str(plan_id), "--json"])
    assert result.exit_code == 0, result.output
    assert '"gmv_cents": 7200' in result.output

    out = tmp_path / "cli-report"
    result = runner.invoke(app, ["report", "--plan", str(plan_id), "--out", str(out), "--format", "md,html"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").exists() and (out / "report.md").exists()
    assert "Plan 1 against actual" in (out / "report.md").read_text(encoding="utf-8")

    result = runner.invoke(app, ["compare", "--plan-a", str(plan_id), "--plan-b", "2", "--boot", "200"])
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert "gross_profit per customer" in words and "than Plan 1" in words

    result = runner.invoke(app, ["kpi", "--start", "2026-03-40", "--end", str(END)])
    assert result.exit_code == 2 and "'2026-03-40' is not a date (YYYY-MM-DD)" in result.output
    result = runner.invoke(app, ["kpi", "--start", str(START), "--end", str(END), "--by", "colour"])
    assert result.exit_code == 1 and "Unknown grouping" in result.output


def test_kpi_without_dates_reports_the_last_closed_sale(demo_shop: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_shop.url)
    with demo_shop.session_factory() as s:
        last = s.scalars(
            select(FlashSalePlan)
            .where(FlashSalePlan.status == PlanStatus.CLOSED)
            .order_by(FlashSalePlan.sale_date.desc())
        ).first()
    assert last is not None
    out = CliRunner().invoke(cli.app, ["kpi", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["start"] == data["end"] == str(last.sale_date)
    assert data["notes"][0] == f"No period given: the last closed sale, plan {last.id} on {last.sale_date}."
