"""The live re-planning benchmark (evals/bench_live_replan.py) end to end on a tiny shop: it runs, prints
both goals, and a re-plan at 00:00 with nothing sold gives back the static plan. Its figures are the
benchmark's, not checked here."""

from __future__ import annotations

import pytest

from evals.bench_live_replan import main


def test_bench_live_replan_runs_on_a_tiny_shop(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--days", "2", "--skus", "60"])
    out = capsys.readouterr().out
    assert "Goal 1" in out and "Goal 2" in out
    assert "gives back the static plan on 2/2 days" in out
