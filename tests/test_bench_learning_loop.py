"""The learning-loop benchmark (evals/bench_learning_loop.py) end to end on a tiny shop: each loop day's
plan goes the product's whole way (draft, approved, live, closed into kpi_result), and the report prints
the weekly table and the verdict. Its figures are the benchmark's, not checked here."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.engine import make_engine, make_session_factory
from db.models import FlashSalePlan, KpiResult, PlanEvent, PlanStatus
from evals.bench_learning_loop import main


def test_bench_learning_loop_runs_the_lifecycle_on_a_tiny_shop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        ["--days", "2", "--scale", "0.05", "--history-days", "120", "--slots", "5", "--folder", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert "Verdict, week 1" in out and "Goal (errors fall, share rises" in out
    (db,) = tmp_path.glob("loop-*.db")
    engine = make_engine(f"sqlite:///{db}")
    try:
        with make_session_factory(engine)() as s:
            end = s.scalar(select(func.max(FlashSalePlan.sale_date)))
            loop = s.scalars(select(FlashSalePlan).where(FlashSalePlan.created_by == "bench-loop")).all()
            assert len(loop) == 2 and all(p.status == PlanStatus.CLOSED for p in loop)
            assert end in {p.sale_date for p in loop}
            moves = s.scalars(select(PlanEvent.action).where(PlanEvent.plan_id == loop[0].id)).all()
            assert {"approve", "go_live", "simulate", "close"} <= set(moves)
            closes = s.scalar(
                select(func.count()).select_from(KpiResult).where(KpiResult.kind == "sale_close")
            )
            assert closes == 2
    finally:
        engine.dispose()
