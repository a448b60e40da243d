"""``build_demo`` and ``python cli.py demo`` write a complete, consistent shop on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import app
from db.engine import make_session_factory
from db.errors import DatabaseNotReady
from db.models import MarketNews, OrderLine, PlanStatus, PriceHistory, SimRun
from tools.simulator import SimConfig, SimulationError, build_world, generate_history, load_world, play_plan
from tools.simulator.demo import DemoProgress, ShopNotEmpty, build_demo

TINY = SimConfig(seed=5, n_skus=60, n_customers=400, n_days=60, n_flash_days=3, end_date=dt.date(2026, 3, 31))


def _scalar(session: Session, sql: str) -> Any:
    return session.execute(text(sql)).scalar_one()


def test_build_demo_writes_a_consistent_shop(db_target: Any) -> None:
    engine = db_target.engine()
    events: list[DemoProgress] = []
    summary = build_demo(engine, TINY, progress=events.append)
    world = build_world(TINY)
    history = generate_history(world)
    try:
        with make_session_factory(engine)() as session:
            for table, count in summary.counts.items():
                assert _scalar(session, f"SELECT COUNT(*) FROM {table}") == count, table
            assert summary.counts["product"] == 60
            assert summary.counts["customer"] == 400
            assert summary.counts["order_line"] == history.concat("line_sku").size
            assert summary.counts["flash_sale_plan"] == 3
            # relations
            orphans = """
                SELECT COUNT(*) FROM order_line l LEFT JOIN product p ON p.sku = l.sku WHERE p.sku IS NULL
            """
            assert _scalar(session, orphans) == 0
            assert _scalar(session, "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS "
                                    "(SELECT 1 FROM order_line l WHERE l.order_id = o.id)") == 0  # fmt: skip
            mixed = """
                SELECT COUNT(*) FROM order_line l JOIN orders o ON o.id = l.order_id
                WHERE o.customer_id <> l.customer_id OR o.ts <> l.ts
            """
            assert _scalar(session, mixed) == 0
            # sums match the simulator's history
            assert _scalar(session, "SELECT SUM(qty) FROM order_line") == int(history.units.sum())
            revenue = int((history.concat("line_qty") * history.concat("line_price_cents")).sum())
            assert _scalar(session, "SELECT SUM(qty * unit_price_cents) FROM order_line") == revenue
            # flash-sale orders contain a featured SKU at its sale price, within its allocation
            sold_vs_alloc = session.execute(
                text("""
                    SELECT pi.allocated_units, COALESCE(SUM(l.qty), 0), MIN(l.unit_price_cents),
                           MAX(l.unit_price_cents), pi.sale_price_cents
                    FROM plan_item pi
                    JOIN flash_sale_plan p ON p.id = pi.plan_id
                    JOIN orders o ON o.flash_sale_plan_id = p.id
                    JOIN order_line l ON l.order_id = o.id AND l.sku = pi.sku
                    GROUP BY pi.id, pi.allocated_units, pi.sale_price_cents
                """)
            ).all()
            assert sold_vs_alloc
            for alloc, sold, lo, hi, sale_price in sold_vs_alloc:
                assert sold <= alloc
                assert lo == hi == sale_price
            statuses = {s for (s,) in session.execute(text("SELECT DISTINCT status FROM flash_sale_plan"))}
            assert statuses == {PlanStatus.CLOSED.value}
            # truth tables
            assert _scalar(session, "SELECT COUNT(*) FROM sim_sku_truth") == 60
            assert _scalar(session, "SELECT COUNT(*) FROM sim_news_truth") == len(world.news)
            assert _scalar(
                session, "SELECT COUNT(*) FROM sim_news_truth WHERE kind IN ('neutral', 'adversarial') "
                "AND (multiplier <> 1 OR scope IS NOT NULL)"
            ) == 0  # fmt: skip
            assert _scalar(session, "SELECT COUNT(*) FROM sim_news_truth WHERE kind = 'adversarial'") >= 3
            elasticity = _scalar(
                session, f"SELECT elasticity FROM sim_sku_truth WHERE sku = '{world.sku_ids[7]}'"
            )
            assert elasticity == pytest.approx(world.elasticity[7])
            assert session.execute(select(func.max(OrderLine.ts))).scalar_one() < dt.datetime(2026, 4, 1)
            # the shop's world can be rebuilt from the database alone
            loaded = load_world(session)
            assert loaded.sku_ids == world.sku_ids
            np.testing.assert_array_equal(loaded.elasticity, world.elasticity)
            run = session.execute(select(SimRun)).scalar_one()
            assert run.truth["flash_lift_global"] == pytest.approx(world.flash_lift_global)
            # explicit ids did not break the id sequences: a new news item gets the next id
            session.add(MarketNews(title="t", body="b", published_at=dt.datetime(2026, 4, 1), source="test"))
            session.flush()
            assert session.execute(select(func.max(MarketNews.id))).scalar_one() == len(world.news) + 1
            session.rollback()
    finally:
        engine.dispose()
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"product", "order_line", "review"} <= {e.table for e in events}


def test_build_demo_refuses_a_full_database_unless_replacing(db_target: Any) -> None:
    engine = db_target.engine()
    try:
        first = build_demo(engine, TINY)
        with pytest.raises(ShopNotEmpty, match="--replace"):
            build_demo(engine, TINY)
        second = build_demo(engine, TINY.model_copy(update={"seed": 6}), replace=True)
        assert second.counts["product"] == first.counts["product"]
        with make_session_factory(engine)() as session:
            assert _scalar(session, "SELECT COUNT(*) FROM sim_run") == 1
            assert _scalar(session, "SELECT COUNT(*) FROM order_line") == second.counts["order_line"]
            assert load_world(session).config.seed == 6
    finally:
        engine.dispose()


def test_load_world_needs_a_simulated_shop(sqlite_engine: Any) -> None:
    with make_session_factory(sqlite_engine)() as session, pytest.raises(DatabaseNotReady, match="demo"):
        load_world(session)


def test_demo_shop_fixture_matches_its_world(demo_shop: Any) -> None:
    with demo_shop.session_factory() as session:
        assert load_world(session).sku_ids == demo_shop.world.sku_ids
        assert _scalar(session, "SELECT COUNT(*) FROM product") == 150
        assert _scalar(session, "SELECT COUNT(*) FROM flash_sale_plan") >= 8
        last_price = session.execute(select(func.max(PriceHistory.valid_from))).scalar_one()
        assert last_price <= dt.datetime(2026, 6, 30)


def test_cli_demo_builds_and_then_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "cli.db"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("FLASHSALE_DATABASE_URL", raising=False)
    monkeypatch.setenv("FLASHSALE_DB_PATH", str(db))
    runner = CliRunner()
    args = ["demo", "--scale", "0.02", "--seed", "3", "--end-date", "2026-02-28"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "order_line" in result.output and "40 SKUs" in result.output
    assert db.exists()
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "--replace" in again.output
    replaced = runner.invoke(app, [*args, "--replace"])
    assert replaced.exit_code == 0, replaced.output
    bad = runner.invoke(app, ["demo", "--end-date", "yesterday"])
    assert bad.exit_code == 2
    assert "YYYY-MM-DD" in bad.output


def test_play_plan_plays_a_stored_plan_in_the_shops_world(demo_shop: Any) -> None:

    with demo_shop.session_factory() as session:
        items = session.execute(
            text("SELECT sku, allocated_units FROM plan_item WHERE plan_id = 1 ORDER BY sku")
        ).all()
        realised = play_plan(session, 1, seed=4)
        assert realised.skus == [sku for sku, _ in items]
        assert realised.units.tolist() == np.minimum(realised.demand, [a for _, a in items]).tolist()
        assert play_plan(session, 1, seed=4).units.tolist() == realised.units.tolist()
        with pytest.raises(SimulationError, match="no flash-sale plan"):
            play_plan(session, 999)
