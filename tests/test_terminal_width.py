"""What the CLI prints is readable in an ordinary terminal: no line over the width, no figure or name cut
with an ellipsis, long lists capped with the count and how to see every row."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli import app
from db.models import FlashSalePlan, PlanStatus, Product


def _run(shop: Any, monkeypatch: pytest.MonkeyPatch, columns: int, *args: str) -> str:
    monkeypatch.setenv("DATABASE_URL", shop.url)
    monkeypatch.setenv("COLUMNS", str(columns))
    out = CliRunner().invoke(app, list(args), terminal_width=columns)
    assert out.exit_code == 0, out.output
    return out.output


def _assert_readable(output: str, columns: int) -> None:
    too_wide = [line for line in output.splitlines() if len(line) > columns]
    assert not too_wide, f"{len(too_wide)} lines over {columns} columns, e.g. {too_wide[0]!r}"
    assert "…" not in output, "a cell was cut"


def _closed_plan(shop: Any) -> int:
    with shop.session_factory() as s:
        plan_id = s.scalars(
            select(FlashSalePlan.id)
            .where(FlashSalePlan.status == PlanStatus.CLOSED)
            .order_by(FlashSalePlan.sale_date.desc())
        ).first()
    assert plan_id is not None
    return int(plan_id)


@pytest.mark.parametrize("columns", [80, 120])
def test_kpi_tables_fit_the_terminal_without_cutting_a_figure(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    shop = demo_shop_copy
    by_category = _run(shop, monkeypatch, columns, "kpi", "--by", "category", "--no-counterfactual")
    _assert_readable(by_category, columns)
    for args in (("kpi", "--no-counterfactual"), ("kpi", "--by", "sku", "--no-counterfactual")):
        _assert_readable(_run(shop, monkeypatch, columns, *args), columns)
    plan_id = _closed_plan(shop)
    _assert_readable(_run(shop, monkeypatch, columns, "kpi", "--plan", str(plan_id)), columns)
    wide = _run(shop, monkeypatch, columns, "kpi", "--by", "category", "--wide", "--no-counterfactual")
    assert "Incr." in wide and "Turn" in wide and "…" not in wide  # --wide: every column, whole


def test_a_narrow_kpi_table_says_what_it_left_out_and_shows_category_names_whole(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = demo_shop_copy
    out = _run(shop, monkeypatch, 80, "kpi", "--by", "category", "--no-counterfactual")
    assert "Left out at this width:" in out and "--wide shows them" in out
    with shop.session_factory() as s:
        names = set(s.scalars(select(Product.category).where(Product.category.is_not(None))).all())
    printed = {line.split()[0] for line in out.splitlines() if line.split()}
    assert names & printed and len(names & printed) >= len(names) - 2, "category names cut or missing"


def test_the_stock_out_list_is_capped_and_all_lists_every_one(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = demo_shop_copy
    period = ("--start", "2026-03-01", "--end", "2026-06-30", "--no-counterfactual")
    capped = _run(shop, monkeypatch, 80, "kpi", *period)
    total = int(re.search(r"Stock-outs \(([\d,]+)\)", capped).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert total > 10, "the demo shop should have more than 10 stock-outs in four months"
    listed = [line for line in capped.splitlines() if re.match(r"^\s+\d+\s+2026-\d\d-\d\d\s", line)]
    assert len(listed) == 10
    words = " ".join(capped.split())
    assert f"10 of {total:,} stock-outs shown" in words and "--all lists every one" in words
    every = _run(shop, monkeypatch, 80, "kpi", *period, "--all")
    listed_all = [line for line in every.splitlines() if re.match(r"^\s+\d+\s+2026-\d\d-\d\d\s", line)]
    assert len(listed_all) == total
    _assert_readable(every, 80)


@pytest.mark.parametrize("columns", [80, 120])
def test_model_and_data_screens_fit_the_terminal(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    shop = demo_shop_copy
    for args in (("fit",), ("data", "check"), ("backtest", "--weeks", "2", "--no-chart")):
        _assert_readable(_run(shop, monkeypatch, columns, *args), columns)
    wide = _run(shop, monkeypatch, columns, "backtest", "--weeks", "2", "--no-chart", "--wide")
    assert "pinball" in wide and "…" not in wide and "training mean " in wide
