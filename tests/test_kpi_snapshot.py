"""The KPI report's second PostgreSQL connection (``tools.kpi._snapshot_twin``) answers exactly as the
report's own session would: same snapshot, and no second connection when the session holds uncommitted rows.
PostgreSQL only (SQLite has no second connection); skipped with the reason when no server answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import tools.kpi
from db.engine import make_session_factory
from db.migrate import upgrade
from db.models import Customer, Order, OrderLine
from tests.conftest import DbTarget, _reset_postgres_schema
from tests.kpi_shop import END, START, build_kpi_shop
from tools.kpi import _snapshot_twin, kpi_report

pytestmark = pytest.mark.postgres

SALE_DAY_NOON = dt.datetime.combine(START, dt.time(12, 0))


@pytest.fixture
def pg_shop(postgres_schema_target: DbTarget) -> Iterator[sessionmaker[Session]]:
    engine = postgres_schema_target.engine()
    _reset_postgres_schema(engine)
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        build_kpi_shop(session)
    yield factory
    engine.dispose()


def _add_order(session: Session, order_id: str, qty: int) -> None:
    """One order of ``qty`` units of SKU C by a new customer (named after the order)."""
    customer = f"buyer-{order_id}"
    session.add(Customer(id=customer, segment="new"))
    session.flush()
    session.add(Order(id=order_id, customer_id=customer, ts=SALE_DAY_NOON, is_cancellation=False))
    session.flush()
    session.add(
        OrderLine(
            order_id=order_id, sku="C", customer_id=customer, qty=qty, unit_price_cents=500, ts=SALE_DAY_NOON
        )
    )
    session.flush()


@pytest.mark.parametrize("by", [None, "sku", "category", "brand"])
def test_report_with_twin_equals_report_without(
    pg_shop: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, by: tools.kpi.GroupBy | None
) -> None:
    with pg_shop() as session:
        with _snapshot_twin(session) as twin:
            assert twin is not None  # the shop is committed: the report does use a second connection
        session.rollback()
        concurrent = kpi_report(session, START, END, by=by, counterfactual=False)
    monkeypatch.setattr(tools.kpi, "_snapshot_twin", _no_twin)
    with pg_shop() as session:
        sequential = kpi_report(session, START, END, by=by, counterfactual=False)
    assert concurrent == sequential
    assert concurrent.total.unique_buyers > 0


def test_twin_reads_the_sessions_snapshot(pg_shop: sessionmaker[Session]) -> None:
    count = select(func.count()).select_from(OrderLine)
    with pg_shop() as session:
        # A REPEATABLE READ session keeps the snapshot of its first query: a row committed after it is
        # invisible to the session, and must be to the twin as well, although the twin starts later.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        before = session.execute(count).scalar_one()
        with pg_shop.begin() as other:
            _add_order(other, "late", 1)
        with _snapshot_twin(session) as twin:
            assert twin is not None
            assert twin.execute(count).scalar_one() == before
        assert session.execute(count).scalar_one() == before
    with pg_shop() as session:
        assert session.execute(count).scalar_one() == before + 1


def test_uncommitted_rows_are_reported_without_twin(pg_shop: sessionmaker[Session]) -> None:
    with pg_shop() as session:
        base = kpi_report(session, START, END, by="sku", counterfactual=False)
    with pg_shop() as session:
        _add_order(session, "pending", 7)
        with _snapshot_twin(session) as twin:
            assert twin is None  # another connection could not see the pending order
        report = kpi_report(session, START, END, by="sku", counterfactual=False)
        session.rollback()
    assert report.total.units == base.total.units + 7
    assert base.total.orders is not None
    assert report.total.orders == base.total.orders + 1
    by_sku = {g.key: g for g in report.groups}
    base_c = {g.key: g for g in base.groups}["C"]
    assert by_sku["C"].units == base_c.units + 7
    assert by_sku["C"].unique_buyers == base_c.unique_buyers + 1
    assert report.total.unique_buyers == base.total.unique_buyers + 1


class _NoTwin:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


def _no_twin(_session: Session) -> _NoTwin:
    return _NoTwin()
