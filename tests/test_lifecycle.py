"""A plan's whole life on the demo shop: approve, publish (files and a signed webhook), watch the live sale,
re-plan the rest of the day inside the approved envelope, close it into kpi_result, learn from it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from assistant.slack.render import APPROVE_ACTION, revision_message
from cli import app
from db.engine import make_engine, make_session_factory
from db.job_lock import JobLocked, exclusive_job
from db.models import AuditLog, FlashSalePlan, KpiResult, OrderLine, PlanEvent, PlanStatus, Product
from tests.conftest import DEMO_SHOP_CONFIG
from tools.demand import fit_demand_model, save_demand_model
from tools.intraday import IntradayProfile, clumping, posterior_rate, shop_profile
from tools.lifecycle import approve_plan, cancel_plan, get_plan_row, move_plan
from tools.live_status import live_status
from tools.optimizer import Candidates, ObjectiveWeights, PlanConstraints, SolverOptions, optimize_plan
from tools.plans import PlanStateError, build_candidates, candidate_inputs, load_plan, save_draft_plan
from tools.publish import PublishTarget, publish_plan, signature
from tools.replan import ReplanChange, ReplanResult, replan_plan, rest_of_day
from tools.sale_close import close_sale
from tools.sales_panel import load_sales_panel
from tools.simulator import SimConfig
from tools.simulator.demo import build_demo
from tools.simulator.intraday import TRUE_SHARES, IntradayShock
from tools.simulator.live import play_live_sale

SALE_DATE = dt.date(2026, 7, 2)
NOW = dt.datetime(2026, 7, 1, 9, 0)


@pytest.fixture
def shop_env(demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("FLASHSALE_PUBLISH_URL", raising=False)
    monkeypatch.setenv("FLASHSALE_DB_PATH", str(demo_shop_copy.path))
    monkeypatch.setenv("FLASHSALE_PUBLISH_DIR", str(tmp_path / "prices"))
    monkeypatch.setenv("COLUMNS", "160")
    return demo_shop_copy


def _run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    return result


def _draft(shop: Any, *, slots: int = 6, budget: str | None = None) -> int:
    extra = ["--budget", budget] if budget else []
    out = _run("plan", "--date", SALE_DATE.isoformat(), "--slots", str(slots), *extra)
    assert out.exit_code == 0, out.output
    return int(out.output.split("Saved as draft plan")[1].split(";")[0].strip())


def _status(plan_id: int) -> dict[str, Any]:
    out = _run("plan", "status", str(plan_id), "--json")
    assert out.exit_code == 0, out.output
    return dict(json.loads(out.output))


def test_the_whole_lifecycle_through_the_cli(shop_env: Any, tmp_path: Path) -> None:
    plan_id = _draft(shop_env)
    refused = _run("plan", "publish", str(plan_id), "--by", "Dana")
    assert refused.exit_code == 1 and "only an approved plan is published" in refused.output
    assert _run("plan", "approve", str(plan_id), "--by", "Dana").exit_code == 0
    published = _run("plan", "publish", str(plan_id), "--by", "Dana")
    assert published.exit_code == 0 and "is live" in published.output, published.output
    price_file = json.loads((tmp_path / "prices" / f"plan-{plan_id}-rev-1.json").read_text())
    assert price_file["idempotency_key"] == f"flashsale-{plan_id}-rev-1"
    with shop_env.session_factory() as session:
        stored = load_plan(session, plan_id)
    assert {i["sku"] for i in price_file["items"]} == {i.sku for i in stored.items}
    top = stored.items[0]
    assert price_file["items"][[i["sku"] for i in price_file["items"]].index(top.sku)]["sale_price"] == (
        f"{top.sale_price_cents // 100}.{top.sale_price_cents % 100:02d}"
    )
    csv_lines = (tmp_path / "prices" / f"plan-{plan_id}-rev-1.csv").read_text().splitlines()
    assert (
        csv_lines[0].startswith("sku,title,list_price,sale_price") and len(csv_lines) == len(stored.items) + 1
    )

    # the morning: a SKU goes viral at 04:00
    played = _run("sim", "play", str(plan_id), "--until", "10", "--shock", f"viral_sku:{top.sku}@4:6")
    assert played.exit_code == 0, played.output
    status = _status(plan_id)
    assert status["hour"] == 10.0 and status["sold_units"] > 0
    viral = next(i for i in status["items"] if i["sku"] == top.sku)
    assert viral["flag"] in {"far ahead", "sold out early"}, viral
    assert viral["demand_day_posterior"] > 1.5 * viral["demand_day_prior"]
    assert _run("plan", "replan", str(plan_id), "--at", "25:00").exit_code == 2

    replanned = _run("plan", "replan", str(plan_id))
    assert replanned.exit_code == 0, replanned.output
    revision_id = int(replanned.output.split("(plan ")[1].split(")")[0])
    with shop_env.session_factory() as session:
        revision = get_plan_row(session, revision_id)
        assert (revision.status, revision.revision, revision.revises_id) == (PlanStatus.DRAFT, 2, plan_id)
        assert get_plan_row(session, plan_id).status == PlanStatus.LIVE  # the shop is unchanged
        viral_item = next(i for i in load_plan(session, revision_id).items if i.sku == top.sku)
    assert viral_item.allocated_units >= viral["allocated_units"]  # it gets more stock, or keeps its own
    assert _run("plan", "publish", str(revision_id), "--by", "Dana").exit_code == 1  # not approved yet
    assert _run("plan", "approve", str(revision_id), "--by", "Lee").exit_code == 0
    assert _run("plan", "publish", str(revision_id), "--by", "Lee").exit_code == 0
    with shop_env.session_factory() as session:
        assert get_plan_row(session, plan_id).status == PlanStatus.SUPERSEDED
        assert get_plan_row(session, revision_id).status == PlanStatus.LIVE

    early = _run("plan", "close", str(plan_id), "--by", "Dana")
    assert early.exit_code == 1 and "runs until 2026-07-03 00:00" in early.output
    assert _run("sim", "play", str(revision_id)).exit_code == 0
    closed = _run("plan", "close", str(plan_id), "--by", "Dana")
    assert closed.exit_code == 0 and "closed" in closed.output, closed.output
    assert _run("plan", "close", str(plan_id), "--by", "Dana").exit_code == 1  # once

    with shop_env.session_factory() as session:
        kpi = session.scalars(select(KpiResult).where(KpiResult.plan_id == revision_id)).one()
        assert kpi.kind == "sale_close" and kpi.period_start == SALE_DATE
        assert kpi.values["sold_units"] > 0 and set(kpi.values["revisions"]) == {plan_id, revision_id}
        items = {i["sku"]: i for i in kpi.values["items"]}
        assert set(kpi.values["censored_skus"]) == {s for s, i in items.items() if i["stocked_out"]}
        events = [
            (e.plan_id, e.action, e.actor) for e in session.scalars(select(PlanEvent).order_by(PlanEvent.id))
        ]
        for move in [(plan_id, "approve", "Dana"), (plan_id, "go_live", "Dana"), (plan_id, "replan", "cli"),
                     (revision_id, "approve", "Lee"), (revision_id, "go_live", "Lee"),
                     (plan_id, "supersede", "Lee"), (revision_id, "close", "Dana")]:  # fmt: skip
            assert move in events, move
        audited = session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.kind.in_(["plan", "approval"]))
        )
        assert audited == len(events)
        # the next fit reads the closed sale: its SKUs featured that day, capped at the day's allocation
        panel = load_sales_panel(session, SALE_DATE - dt.timedelta(days=30), SALE_DATE)
        row = panel.skus.index(top.sku)
        assert panel.featured[row, -1] == 1.0 and panel.cap[row, -1] == items[top.sku]["allocated_units"]
        model = fit_demand_model(session)
        assert model.window_end == SALE_DATE
    history = _run("plan", "history", str(revision_id))
    assert history.exit_code == 0 and "supersede" in history.output and "close" in history.output


def test_illegal_moves_are_clear_errors(shop_env: Any) -> None:
    plan_id = _draft(shop_env, slots=3)
    with shop_env.session_factory.begin() as session:
        with pytest.raises(
            PlanStateError, match="is draft: only a plan that is live or approved can be closed"
        ):
            move_plan(session, plan_id, "close", actor="Dana", now=NOW)
        with pytest.raises(PlanStateError, match="your name"):
            move_plan(session, plan_id, "cancel", actor=" ", now=NOW)
        approve_plan(session, plan_id, "Dana", now=NOW)
        with pytest.raises(PlanStateError, match="already approved by Dana"):
            approve_plan(session, plan_id, "Dana", now=NOW)
        cancel_plan(session, plan_id, "Dana", now=NOW, reason="supplier cancelled")
        with pytest.raises(
            PlanStateError, match=r"is cancelled: only a plan that is approved can go live\. A cancelled"
        ):
            move_plan(session, plan_id, "go_live", actor="Dana", now=NOW)
    refused = _run("plan", "replan", str(plan_id), "--at", "10:00")
    assert refused.exit_code == 1 and "only a live sale is re-planned" in refused.output


class _Shop(BaseHTTPRequestHandler):
    secret = b"s3cret"
    answers: ClassVar[list[int]] = []
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        timestamp = self.headers["X-FlashSale-Timestamp"]
        expected = (
            "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        valid = hmac.compare_digest(expected, self.headers["X-FlashSale-Signature"])
        self.received.append(
            {"key": self.headers["Idempotency-Key"], "valid": valid, "body": json.loads(body)}
        )
        code = self.answers.pop(0) if self.answers else 200
        self.send_response(code if valid else 401)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def shop_endpoint() -> Any:
    _Shop.answers, _Shop.received = [], []
    server = HTTPServer(("127.0.0.1", 0), _Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prices"
    server.shutdown()


def test_publish_signs_the_webhook_and_retries_a_failing_endpoint(
    shop_env: Any, shop_endpoint: str, tmp_path: Path
) -> None:
    plan_id = _draft(shop_env, slots=3)
    with shop_env.session_factory.begin() as session:
        approve_plan(session, plan_id, "Dana", now=NOW)
    waits: list[float] = []
    target = PublishTarget(shop_endpoint, "s3cret", retries=3, backoff_s=0.5)

    _Shop.answers = [503, 503, 503, 503]  # down for longer than the retries
    with shop_env.session_factory.begin() as session:
        failed = publish_plan(
            session,
            plan_id,
            actor="Dana",
            now=NOW,
            out_dir=tmp_path,
            currency="EUR",
            target=target,
            sleep=waits.append,
        )
    assert failed.error is not None and "after 4 attempt(s): HTTP 503" in failed.error
    assert waits == [0.5, 1.0, 2.0] and len(_Shop.received) == 4
    with shop_env.session_factory() as session:
        assert get_plan_row(session, plan_id).status == PlanStatus.APPROVED
        assert session.scalar(select(func.count()).where(PlanEvent.action == "publish_failed")) == 1

    _Shop.answers = [500]  # back after one more failure
    with shop_env.session_factory.begin() as session:
        done = publish_plan(
            session,
            plan_id,
            actor="Dana",
            now=NOW,
            out_dir=tmp_path,
            currency="EUR",
            target=target,
            sleep=waits.append,
        )
    assert done.error is None and done.delivery is not None and done.delivery.attempts == 2
    assert done.status == "live"
    assert all(r["valid"] for r in _Shop.received)
    assert {r["key"] for r in _Shop.received} == {f"flashsale-{plan_id}-rev-1"}
    assert _Shop.received[-1]["body"]["plan_id"] == plan_id

    wrong = PublishTarget(shop_endpoint, "not-the-secret", retries=3)
    with shop_env.session_factory.begin() as session:
        rejected = publish_plan(
            session,
            plan_id,
            actor="Dana",
            now=NOW,
            out_dir=tmp_path,
            currency="EUR",
            target=wrong,
            sleep=waits.append,
        )
    assert rejected.error is not None and "HTTP 401" in rejected.error and rejected.delivery is not None
    assert rejected.delivery.attempts == 1  # a refusal is final: no retry


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    body = b'{"a":1}'
    assert signature("k", "1700000000", body) == (
        "sha256=" + hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    )


def test_cli_publish_refuses_an_endpoint_without_a_secret(
    shop_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHSALE_PUBLISH_URL", "http://127.0.0.1:9/prices")
    monkeypatch.delenv("FLASHSALE_PUBLISH_SECRET", raising=False)
    out = _run("plan", "publish", "1", "--by", "Dana")
    assert out.exit_code == 2 and "FLASHSALE_PUBLISH_SECRET" in out.output


# ---- the re-plan step --------------------------------------------------------------------------------


@pytest.fixture
def approved_plan(demo_shop: Any) -> Any:
    with demo_shop.session_factory() as session:
        model = fit_demand_model(session)
        cand = build_candidates(session, SALE_DATE, model)
    constraints = PlanConstraints(slots=8, markdown_budget_cents=40_000, min_item_margin=0.1)
    weights = ObjectiveWeights()
    result = optimize_plan(cand, constraints, weights, SolverOptions(deterministic=True))
    rows = [cand.index()[i.sku] for i in result.items]
    sub = _subset(cand, rows)
    levels = np.array([i.level for i in result.items])
    alloc = np.array([i.allocated_units for i in result.items])
    return sub, levels, alloc, constraints, weights, result


def _subset(cand: Candidates, rows: list[int]) -> Candidates:
    """The candidates of ``rows`` only (the approved plan's SKUs, as a re-plan sees them)."""
    per_sku = {
        f.name: getattr(cand, f.name)[rows]
        for f in dataclasses.fields(cand)
        if isinstance(getattr(cand, f.name), np.ndarray)
    }
    return dataclasses.replace(
        cand, skus=[cand.skus[r] for r in rows], grid=cand.grid.subset(rows), titles=None, **per_sku
    )


def test_replan_at_midnight_with_nothing_sold_keeps_the_approved_plan(approved_plan: Any) -> None:
    cand, levels, alloc, constraints, weights, _ = approved_plan
    rest = rest_of_day(
        cand,
        levels,
        np.zeros(cand.n, dtype=np.int64),
        np.zeros(cand.n),
        1.0,
        constraints,
        weights,
        pool_units=int(alloc.sum()),
    )
    assert rest.levels.tolist() == levels.tolist()
    assert rest.allocation.tolist() == alloc.tolist()


@pytest.mark.parametrize("hour", [4, 10, 16])
@pytest.mark.parametrize("shock", ["calm", "viral", "slump"])
def test_replan_never_leaves_the_approved_envelope(approved_plan: Any, hour: int, shock: str) -> None:
    cand, levels, alloc, constraints, weights, static = approved_plan
    profile = IntradayProfile(TRUE_SHARES)
    rng = np.random.default_rng(hour)
    mean = cand.grid.mean[np.arange(cand.n), levels] * profile.by(hour)
    factor = {"calm": 1.0, "viral": 5.0, "slump": 0.2}[shock]
    mean[0] *= factor
    sold = np.minimum(rng.poisson(mean), alloc)
    price = cand.grid.prices_cents[np.arange(cand.n), levels]
    spent = float(((cand.list_price_cents - price) * sold).sum())
    rest = rest_of_day(
        cand,
        levels,
        sold,
        np.full(cand.n, profile.by(hour)),
        profile.between(hour, 24),
        constraints,
        weights,
        pool_units=int(alloc.sum()),
        markdown_spent_cents=spent,
    )
    on_sale = rest.levels >= 0
    assert np.all(rest.allocation >= sold)  # what sold stays sold
    assert np.all(rest.allocation <= np.maximum(cand.on_hand - cand.safety_stock, sold))  # the stock
    assert rest.allocation.sum() <= alloc.sum()  # no more units on sale than approved
    assert rest.result is not None
    assert rest.result.markdown_cost_cents <= constraints.markdown_budget_cents - spent + 1  # the budget
    new_price = cand.grid.prices_cents[np.arange(cand.n), np.where(on_sale, rest.levels, 0)]
    margin = (new_price - cand.cost_cents) / new_price
    assert np.all(margin[on_sale] >= constraints.min_item_margin - 1e-9)  # the rules
    assert set(rest.result.skus) <= set(cand.skus) and len(rest.result.items) <= (constraints.slots or cand.n)
    assert static.items  # (the approved plan was not empty)


def test_posterior_moves_toward_the_sales_by_their_weight() -> None:
    prior, size = np.array([10.0, 10.0, 10.0]), np.array([2.0, 2.0, np.inf])
    post, shape = posterior_rate(prior, size, np.array([0.0, 40.0, 40.0]), np.array([0.0, 0.5, 0.5]))
    assert post[0] == pytest.approx(10.0)  # nothing observed: the prior
    assert post[1] == pytest.approx((2 + 40) / (2 / 10 + 0.5))  # 60: most of the way to 40 / 0.5 = 80
    assert post[2] == pytest.approx(10.0) and np.isinf(shape[2])  # a Poisson forecast has no prior spread


def test_units_that_come_in_clumps_count_for_less_in_the_posterior() -> None:
    """Units that arrive several to a line (or basket) are less news than as many single units: with a
    clumping of 2 (the sum of squared quantities over their sum) the sales so far count half, and the
    forecast's overdispersion that clumping alone explains is no day-to-day spread of the rate: a forecast
    whose whole overdispersion is clumping stays where it is, whatever sold."""
    mu, r = np.array([10.0]), np.array([2.0])
    post, _ = posterior_rate(mu, r, np.array([40.0]), np.array([0.5]), clumping=2.0)
    r_day = 1 / (1 / 2.0 - (2.0 - 1) / 10.0)  # 2.5: the rate's own spread, without the clumping's
    assert post[0] == pytest.approx((r_day + 40 / 2) / (r_day / 10 + 0.5 / 2))
    only_clumps = np.array([10.0 / (2.0 - 1)])  # 1/r = (clumping - 1) / mu: all of it is clumping
    post, _ = posterior_rate(mu, only_clumps, np.array([40.0]), np.array([0.5]), clumping=2.0)
    assert post[0] == pytest.approx(10.0)
    assert clumping(np.array([1, 1, 1, 1])) == 1.0 and clumping(np.array([1, 3])) == pytest.approx(2.5)


def test_the_shops_intraday_profile_is_measured_from_its_orders(demo_shop: Any) -> None:
    with demo_shop.session_factory() as session:
        profile = shop_profile(session, dt.date(2026, 7, 1))
    assert profile.source.startswith("the shop's order lines")
    assert float(np.abs(profile.shares - TRUE_SHARES).sum()) < 0.15  # the simulator's Beta(2.2, 1.6) day
    assert profile.by(0) == 0 and profile.by(24) == pytest.approx(1.0)


# ---- the daily job --------------------------------------------------------------------------------


def test_two_daily_jobs_at_once_one_runs_the_other_is_told(shop_env: Any) -> None:
    with exclusive_job(shop_env.engine, "daily"):
        second = _run("daily", "--no-model")
    assert second.exit_code == 1 and "the daily job is already running (pid" in second.output
    first = _run("daily", "--no-model")
    assert first.exit_code == 0, first.output
    again = _run("daily", "--no-model")  # idempotent: nothing more to close, same model, the draft reused
    assert again.exit_code == 0 and "No sale to close" in again.output and "(current)" in again.output


def test_daily_job_closes_the_sale_whose_day_is_over(shop_env: Any) -> None:
    plan_id = _draft(shop_env, slots=3)
    assert _run("plan", "approve", str(plan_id), "--by", "Dana").exit_code == 0
    assert _run("plan", "publish", str(plan_id), "--by", "Dana").exit_code == 0
    assert _run("sim", "play", str(plan_id)).exit_code == 0
    out = _run("daily", "--no-model")
    assert out.exit_code == 0 and f"Closed sale {plan_id} of {SALE_DATE}" in out.output, out.output
    assert "refitted" in out.output
    with shop_env.session_factory() as session:
        assert get_plan_row(session, plan_id).status == PlanStatus.CLOSED


def test_job_lock_excludes_a_second_run_on_both_databases(db_engine: Any) -> None:
    other = make_engine(db_engine.url.render_as_string(hide_password=False))
    try:
        with exclusive_job(db_engine, "daily"):
            with pytest.raises(JobLocked, match="daily job"), exclusive_job(other, "daily"):
                pass
            with exclusive_job(other, "another-job"):  # other jobs are not blocked
                pass
        with exclusive_job(other, "daily"):  # released at the end of the block
            pass
    finally:
        other.dispose()


def test_plan_moves_are_atomic_and_audited_on_both_databases(session_factory: Any) -> None:
    with session_factory.begin() as session:
        session.add(
            Product(sku="S1", title="Thing", category="c", brand="b", cost_cents=100, list_price_cents=200)
        )
        plan = FlashSalePlan(sale_date=SALE_DATE, status=PlanStatus.DRAFT, created_by="t")
        session.add(plan)
        session.flush()
        plan_id = plan.id
    with session_factory.begin() as session:
        approve_plan(session, plan_id, "Dana", now=NOW)
        move_plan(session, plan_id, "go_live", actor="Dana", now=NOW)
    with session_factory.begin() as session, pytest.raises(PlanStateError, match="is live"):
        cancel_plan(session, plan_id, "Dana", now=NOW)
    with session_factory() as session:
        rows = session.scalars(
            select(PlanEvent).where(PlanEvent.plan_id == plan_id).order_by(PlanEvent.id)
        ).all()
        assert [(r.action, r.from_status, r.to_status) for r in rows] == [
            ("approve", "draft", "approved"),
            ("go_live", "approved", "live"),
        ]


def test_the_lifecycle_holds_on_both_databases(db_target: Any, tmp_path: Path) -> None:
    """Approve, publish, play to 10:00 with a viral SKU, watch, re-plan, publish the revision, play to the
    end, close: the same on SQLite and PostgreSQL (the SQL of sales so far, the hour profile, the locks)."""
    engine = db_target.engine()
    try:
        build_demo(engine, SimConfig.model_validate(DEMO_SHOP_CONFIG))
        factory = make_session_factory(engine)
        with factory.begin() as s:
            model = fit_demand_model(s)
            save_demand_model(s, model)
            cand = build_candidates(s, SALE_DATE, model)
            result = optimize_plan(cand, PlanConstraints(slots=5), None, SolverOptions(deterministic=True))
            plan_id = save_draft_plan(s, result, sale_date=SALE_DATE, inputs=candidate_inputs(cand))
            approve_plan(s, plan_id, "Dana", now=NOW)
            publish_plan(s, plan_id, actor="Dana", now=NOW, out_dir=tmp_path, currency="EUR")
            viral = result.items[0].sku
            play_live_sale(s, plan_id, 10, now=NOW, shocks=[IntradayShock("viral_sku", 3, (viral,), 6.0)])
        ten = dt.datetime.combine(SALE_DATE, dt.time(10))
        with factory.begin() as s:
            status = live_status(s, plan_id, ten)
            assert status.profile_source.startswith("the shop's order lines")
            item = next(i for i in status.items if i.sku == viral)
            assert item.demand_day_posterior > item.demand_day_prior and item.flag != "on track"
            revision = replan_plan(s, plan_id, at=ten, created_by="cli")
            approve_plan(s, revision.revision_id, "Lee", now=ten)
            publish_plan(s, revision.revision_id, actor="Lee", now=ten, out_dir=tmp_path, currency="EUR")
            play_live_sale(s, plan_id, 24, now=ten)
        with factory.begin() as s:
            closed = close_sale(
                s,
                plan_id,
                actor="Dana",
                now=dt.datetime.combine(SALE_DATE, dt.time(23)) + dt.timedelta(hours=2),
            )
            assert closed.plan_id == revision.revision_id and closed.report.sold_units == sum(
                i.sold_units for i in live_status(s, plan_id, ten + dt.timedelta(hours=14)).items
            )
        with factory() as s:
            statuses = {p: get_plan_row(s, p).status for p in (plan_id, revision.revision_id)}
            assert statuses == {plan_id: PlanStatus.SUPERSEDED, revision.revision_id: PlanStatus.CLOSED}
            assert (
                s.scalar(select(func.count()).select_from(KpiResult).where(KpiResult.kind == "sale_close"))
                == 1
            )
    finally:
        engine.dispose()


def test_a_replan_posted_to_slack_carries_the_revisions_approve_button() -> None:
    result = ReplanResult(
        sale_id=5, parent_id=5, revision_id=9, revision=2, at=dt.datetime(2026, 7, 2, 10), hour=10.0,
        share_left=0.74, expected_profit_cents=123_400, envelope={},
        changes=[
            ReplanChange(sku="A<!channel>", action="end early", discount_before=0.2, discount_after=None,
                         allocated_before=10, allocated_after=3, sold_so_far=3, demand_multiplier=0.3),
        ],
    )  # fmt: skip
    text, blocks = revision_message(result)
    assert "revision 2" in text and "ended for the rest of the day" in text and "<!channel>" not in text
    (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["value"] == "9" and button["action_id"] == APPROVE_ACTION


def test_stock_lost_to_a_supply_problem_stays_lost_in_later_plays(
    demo_shop_copy: Any, tmp_path: Path
) -> None:
    """A supply problem at 12:00 that leaves none of a SKU's stock: a play to 14:00 sells nothing of it after
    noon, and neither does the next play, to the end of the day (the lost stock is not found again)."""
    with demo_shop_copy.session_factory.begin() as s:
        model = fit_demand_model(s)
        cand = build_candidates(s, SALE_DATE, model)
        result = optimize_plan(cand, PlanConstraints(slots=5), None, SolverOptions(deterministic=True))
        plan_id = save_draft_plan(s, result, sale_date=SALE_DATE, inputs=candidate_inputs(cand))
        approve_plan(s, plan_id, "Dana", now=NOW)
        publish_plan(s, plan_id, actor="Dana", now=NOW, out_dir=tmp_path, currency="EUR")
        sku = max(result.items, key=lambda it: it.allocated_units).sku
        shock = IntradayShock("supply_problem", 12, (sku,), stock_left=0.0)
        play_live_sale(s, plan_id, 14, now=NOW, shocks=[shock])
        play_live_sale(s, plan_id, 24, now=NOW)
    noon = dt.datetime.combine(SALE_DATE, dt.time(12))
    with demo_shop_copy.session_factory() as s:
        before, after = (
            s.scalar(
                select(func.coalesce(func.sum(OrderLine.qty), 0)).where(
                    OrderLine.sku == sku, OrderLine.ts >= start, OrderLine.ts < end
                )
            )
            for start, end in (
                (dt.datetime.combine(SALE_DATE, dt.time.min), noon),
                (noon, noon + dt.timedelta(hours=12)),
            )
        )
    assert before > 0
    assert after == 0


def test_a_replan_told_of_the_stock_left_allocates_no_more_than_it(shop_env: Any, tmp_path: Path) -> None:
    """A supply problem the shop reports ("SKU X: none left"): `plan replan --on-hand X=0` ends X for the
    rest of the day (its allocation is what it already sold) and stores what was reported; a SKU outside
    the plan or a bad count is a named error."""
    plan_id = _draft(shop_env)
    assert _run("plan", "approve", str(plan_id), "--by", "Dana").exit_code == 0
    assert _run("plan", "publish", str(plan_id), "--by", "Dana").exit_code == 0
    assert _run("sim", "play", str(plan_id), "--until", "10").exit_code == 0
    with shop_env.session_factory() as s:
        sku = max(load_plan(s, plan_id).items, key=lambda i: i.allocated_units).sku
    out = _run("plan", "replan", str(plan_id), "--at", "10:00", "--on-hand", f"{sku}=0")
    assert out.exit_code == 0, out.output
    revision = int(out.output.split("saved as draft revision")[1].split("(plan ")[1].split(")")[0])
    sold = _status(plan_id)
    sold_units = next(i["sold_units"] for i in sold["items"] if i["sku"] == sku)
    with shop_env.session_factory() as s:
        items = {i.sku: i for i in load_plan(s, revision).items}
        stored = get_plan_row(s, revision).constraints["inputs"]["replan"]["stock_reported"]
    assert sku not in items or items[sku].allocated_units == sold_units
    assert stored == {sku: 0}
    bad = _run("plan", "replan", str(plan_id), "--at", "10:00", "--on-hand", "NOPE-1=3")
    assert bad.exit_code != 0 and "NOPE-1 is not in the live plan" in bad.output
    bad = _run("plan", "replan", str(plan_id), "--at", "10:00", "--on-hand", f"{sku}=lots")
    assert bad.exit_code != 0 and "SKU=UNITS" in bad.output
