"""The daily plan draft on the demo shop: contents, idempotency, refits, the lock, the narrative and the
schedule."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openai
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from sqlalchemy import func, select
from typer.testing import CliRunner

import assistant.draft
from assistant.draft import DraftLocked, draft_lock, make_draft, narrative_facts
from assistant.narrative import LABEL_TEMPLATE_NO_MODEL, NarrativeFacts, write_narrative
from assistant.scheduler import (
    JOB_ID,
    ScheduleError,
    add_daily_job,
    daily_trigger,
    next_fire_times,
    parse_time_of_day,
)
from cli import app
from db.models import (
    AuditLog,
    DemandModelRun,
    FlashSalePlan,
    MarketNews,
    MarketSignal,
    Order,
    OrderLine,
    PlanStatus,
    Product,
    SignalDirection,
    SignalScope,
)
from tests.scripted_model import ScriptedChatModel, say
from tools.demand import FINGERPRINT_KEY
from tools.kpi import last_closed_plan

SALE_DATE = dt.date(2026, 7, 1)  # the day after the demo shop's last day (2026-06-30)
TODAY = SALE_DATE  # the shop's today: the morning after its newest order


def _add_signal(shop: Any, category: str) -> tuple[int, int, str]:
    """A stored 'up' signal on ``category`` valid on the sale date, sourced from a real news item."""
    with shop.session_factory.begin() as s:
        news = s.scalars(select(MarketNews).order_by(MarketNews.id)).first()
        assert news is not None
        signal = MarketSignal(
            scope=SignalScope.CATEGORY,
            scope_value=category,
            direction=SignalDirection.UP,
            multiplier=1.4,
            confidence=1.0,
            valid_from=SALE_DATE - dt.timedelta(days=2),
            valid_to=SALE_DATE + dt.timedelta(days=2),
            evidence="test evidence",
            source_ids=[f"news:{news.id}"],
            extracted_by="test-extractor",
        )
        s.add(signal)
        s.flush()
        return signal.id, news.id, news.title


def _top_category(shop: Any) -> str:
    with shop.session_factory() as s:
        return str(
            s.execute(
                select(Product.category).group_by(Product.category).order_by(func.count().desc()).limit(1)
            ).scalar_one()
        )


def test_draft_on_the_demo_shop(demo_shop_copy: Any, tmp_path: Path) -> None:
    shop = demo_shop_copy
    category = _top_category(shop)
    signal_id, news_id, news_title = _add_signal(shop, category)
    out = tmp_path / "drafts"

    result = make_draft(shop.session_factory, SALE_DATE, None, out, today=TODAY)

    folder = out / "2026-07-01"
    assert result.folder == folder and not result.reused and result.refitted
    for name in ("draft.md", "draft.html", "draft.json", "plan.png", "gmv_profit.png"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    data = json.loads((folder / "draft.json").read_text(encoding="utf-8"))
    markdown = (folder / "draft.md").read_text(encoding="utf-8")
    page = (folder / "draft.html").read_text(encoding="utf-8")

    # the plan: stored as a draft, the same in the JSON and in the table
    with shop.session_factory() as s:
        plan = s.get(FlashSalePlan, result.plan_id)
        assert plan is not None and plan.status is PlanStatus.DRAFT and plan.sale_date == SALE_DATE
        stored_skus = sorted(i.sku for i in plan.items)
        last = last_closed_plan(s, SALE_DATE)
        assert last is not None
        model_run = s.get(DemandModelRun, result.demand_model_id)
        assert model_run is not None and FINGERPRINT_KEY in model_run.metrics
        audit = s.scalars(select(AuditLog).where(AuditLog.kind == "draft")).all()
    items = data["plan"]["items"]
    assert data["plan"]["id"] == result.plan_id and sorted(i["sku"] for i in items) == stored_skus
    assert 0 < len(items) <= 20
    assert "| SKU | Title | Category | Off |" in markdown and "Off: discount" in markdown
    for item in items:
        assert f"| {item['sku']} |" in markdown
    assert sum(i["expected_profit_cents"] for i in items) == data["plan"]["expected_profit_cents"]

    # the last closed sale's KPIs
    assert data["last_sale"]["plan_id"] == last.id and data["last_sale"]["sale_date"] == str(last.sale_date)
    assert f"KPIs of plan {last.id} on {last.sale_date}" in markdown
    assert f"| GMV | {data['last_sale']['gmv_cents'] / 100:,.2f} |" in markdown
    assert "| Sell-through |" in markdown and "<td>Sell-through</td>" in page

    # the signal that moved planned SKUs, with its source
    planned_in_category = sorted(i["sku"] for i in items if i["category"] == category)
    assert planned_in_category, "the up signal should keep some of its category in the plan"
    (signal,) = data["signals"]
    assert signal["id"] == signal_id and signal["plan_skus"] == planned_in_category
    assert signal["sources"] == [{"ref": f"news:{news_id}", "title": news_title}]
    assert signal["multiplier"] == pytest.approx(1.4)
    assert f"signal {signal_id}: up on category {category}" in markdown and f"news:{news_id}" in markdown

    # the narrative: the template, labelled as such, in every format
    assert data["narrative"]["label"] == LABEL_TEMPLATE_NO_MODEL == result.narrative_label
    assert f"*{LABEL_TEMPLATE_NO_MODEL}*" in markdown and LABEL_TEMPLATE_NO_MODEL in page
    assert f"The draft plan {result.plan_id} for 2026-07-01 puts {len(items)} SKUs on sale" in markdown
    assert len(audit) == 1 and audit[0].channel == "draft"
    assert audit[0].outputs["plan_id"] == result.plan_id and audit[0].outputs["signals"] == [signal_id]

    # idempotent per date: the second run reuses the draft and saves no plan
    again = make_draft(shop.session_factory, SALE_DATE, None, out, today=TODAY)
    assert again.reused and again.plan_id == result.plan_id and again.data == data
    with shop.session_factory() as s:
        assert s.scalar(select(func.count(FlashSalePlan.id)).where(FlashSalePlan.sale_date == SALE_DATE)) == 1

    # unchanged data: no refit for another date; new orders: a refit
    other = make_draft(shop.session_factory, SALE_DATE + dt.timedelta(days=1), None, out, today=TODAY)
    assert not other.refitted and other.demand_model_id == result.demand_model_id
    with shop.session_factory.begin() as s:
        sku = items[0]["sku"]
        ts = dt.datetime(2026, 6, 30, 23, 0)
        order = Order(id="late-order", ts=ts)
        order.lines.append(OrderLine(sku=sku, qty=1, unit_price_cents=items[0]["list_price_cents"], ts=ts))
        s.add(order)
    refit = make_draft(shop.session_factory, SALE_DATE + dt.timedelta(days=2), None, out, today=TODAY)
    assert refit.refitted and refit.demand_model_id != result.demand_model_id


def test_a_concurrent_run_for_the_same_date_is_refused(demo_shop_copy: Any, tmp_path: Path) -> None:
    shop = demo_shop_copy
    out = tmp_path / "drafts"
    inside, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def stall(stage: str) -> None:
        inside.set()
        assert release.wait(30)
        raise Stop(stage)  # end the first run early: a failed run must leave nothing half-written

    def first_run() -> None:
        try:
            make_draft(shop.session_factory, SALE_DATE, None, out, today=TODAY, progress=stall)
        except Stop as exc:
            outcome["first"] = exc

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert inside.wait(30), "the first run never started"
        with pytest.raises(DraftLocked, match="2026-07-01 is being written by pid"):
            make_draft(shop.session_factory, SALE_DATE, None, out, today=TODAY)
        with pytest.raises(DraftLocked):
            draft_lock(out, SALE_DATE).__enter__()
        # another date is not blocked
        with draft_lock(out, SALE_DATE + dt.timedelta(days=1)):
            pass
    finally:
        release.set()
        thread.join(30)
    assert isinstance(outcome.get("first"), Stop)
    assert not (out / "2026-07-01" / "draft.json").exists()
    with shop.session_factory() as s:
        assert s.scalar(select(func.count(FlashSalePlan.id)).where(FlashSalePlan.sale_date == SALE_DATE)) == 0
    with draft_lock(out, SALE_DATE):  # the lock died with the run
        pass


def _facts() -> NarrativeFacts:
    return NarrativeFacts.model_validate(
        {
            "sale_date": "2026-07-01",
            "plan_id": 12,
            "n_items": 2,
            "expected_revenue_cents": 123_456,
            "expected_profit_cents": 45_678,
            "expected_units": 31.5,
            "allocated_units": 40,
            "markdown_cost_cents": 20_000,
            "solver_status": "optimal",
            "gap": 0.0,
            "top_items": [
                {
                    "sku": "PET-1",
                    "title": "Cat tree",
                    "category": "pet",
                    "brand": "Purrfect",
                    "discount": 0.2,
                    "list_price_cents": 10_999,
                    "sale_price_cents": 7_999,
                    "cost_cents": 6_499,
                    "allocated_units": 25,
                    "expected_units": 20.0,
                    "expected_revenue_cents": 159_980,
                    "expected_profit_cents": 30_000,
                    "reason": "in: 20 % off",
                },
            ],
            "categories": {"pet": 2},
            "binding_constraints": ["20 sale slots"],
            "last_sale": None,
            "signals": [],
            "demand_model_id": 3,
            "refitted": False,
        }
    )


def test_the_narrative_is_written_by_the_model_when_its_numbers_check_out() -> None:
    model = ScriptedChatModel()
    model.enqueue(say("Plan 12 for 2026-07-01 expects 1,234.56 of revenue; PET-1 leads at 20 % off."))
    exchanges: list[dict[str, Any]] = []
    narrative = write_narrative(_facts(), model, on_exchange=exchanges.append)
    assert narrative.by_model and narrative.label == "Narrative: written by scripted"
    assert narrative.text.startswith("Plan 12 for 2026-07-01")
    sent: list[BaseMessage] = model.calls[0]
    # the facts as tool results show money: major units with the currency
    assert isinstance(sent[-1], HumanMessage) and '"expected_revenue": "1234.56 EUR"' in str(sent[-1].content)
    assert exchanges[0]["name"] == "scripted" and exchanges[0]["error"] is None


def test_a_narrative_with_invented_numbers_falls_back_to_the_template() -> None:
    model = ScriptedChatModel()
    model.enqueue(say("This plan will earn 9,999.00 and lift sales by 37 %."))
    narrative = write_narrative(_facts(), model)
    assert not narrative.by_model and "9,999.00" in narrative.label and "37 %" in narrative.label
    assert narrative.text.startswith("The draft plan 12 for 2026-07-01 puts 2 SKUs on sale")


def test_no_model_gives_the_labelled_template() -> None:
    narrative = write_narrative(_facts(), None)
    assert narrative.label == LABEL_TEMPLATE_NO_MODEL and "1,234.56 of revenue" in narrative.text


def test_narrative_facts_come_from_the_draft_data(demo_shop_copy: Any, tmp_path: Path) -> None:
    model = ScriptedChatModel()

    def reply(msgs: list[BaseMessage]) -> AIMessage:
        facts = json.loads(_facts_json(msgs))
        return say(f"The plan saves {facts['n_items']} SKUs; {facts['top_items'][0]['sku']} leads.")

    model.enqueue(reply)
    result = make_draft(demo_shop_copy.session_factory, SALE_DATE, model, tmp_path, today=TODAY)
    facts = narrative_facts(result.data)
    assert facts.plan_id == result.plan_id and facts.n_items == len(result.data["plan"]["items"])
    assert result.narrative_label == "Narrative: written by scripted"
    lead = facts.top_items[0].sku
    assert result.data["narrative"]["text"] == f"The plan saves {facts.n_items} SKUs; {lead} leads."
    with demo_shop_copy.session_factory() as s:
        llm = s.scalars(select(AuditLog).where(AuditLog.kind == "llm", AuditLog.channel == "draft")).all()
    assert len(llm) == 1 and llm[0].outputs["text"] == result.data["narrative"]["text"]


def _facts_json(messages: list[BaseMessage]) -> str:
    content = str(messages[-1].content)
    return content.split("```json\n", 1)[1].rsplit("\n```", 1)[0]


# ---- the CLI and the schedule ----------------------------------------------------------------------------


def test_cli_draft_writes_then_reuses(
    demo_shop_copy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("DATABASE_URL", demo_shop_copy.url)
    runner = CliRunner()
    args = ["draft", "--date", "2026-07-01", "--out", str(tmp_path), "--no-model"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "Wrote the draft for 2026-07-01" in first.output and LABEL_TEMPLATE_NO_MODEL in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "Reused the existing draft" in second.output
    bad = runner.invoke(app, ["draft", "--date", "July 1st", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "'July 1st' is not a date (YYYY-MM-DD)" in bad.output


def test_the_schedule_fires_once_a_day_at_the_configured_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    trigger = daily_trigger(parse_time_of_day("06:00"), "Europe/Berlin")
    # a week across the spring daylight-saving change (2026-03-29): still once a day, at 06:00 local time
    start = dt.datetime(2026, 3, 26, 7, 0, tzinfo=berlin)
    fires = next_fire_times(trigger, start, 7)
    assert [f.date() for f in fires] == [dt.date(2026, 3, 27) + dt.timedelta(days=i) for i in range(7)]
    assert {(f.hour, f.minute) for f in fires} == {(6, 0)}
    assert len({f.date() for f in fires}) == len(fires)
    # just before the time: today; just after: tomorrow
    assert next_fire_times(trigger, dt.datetime(2026, 5, 4, 5, 59, tzinfo=berlin), 1)[0].date() == dt.date(
        2026, 5, 4
    )
    assert next_fire_times(trigger, dt.datetime(2026, 5, 4, 6, 1, tzinfo=berlin), 1)[0].date() == dt.date(
        2026, 5, 5
    )


def test_the_daily_job_never_overlaps_itself(request: pytest.FixtureRequest) -> None:
    """Two fires while a slow run is still going: the second never starts beside the first."""

    lock = threading.Lock()
    state = {"running": 0, "peak": 0, "runs": 0}
    first_started = threading.Event()

    def slow_job() -> None:
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        first_started.set()
        time.sleep(1.5)
        with lock:
            state["running"] -= 1
            state["runs"] += 1

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start()
    request.addfinalizer(lambda: scheduler.shutdown(wait=True))
    job = add_daily_job(scheduler, slow_job, dt.time(6, 30), "UTC")
    assert job.id == JOB_ID
    again = add_daily_job(scheduler, slow_job, dt.time(7, 0), "UTC")  # replaces, never adds a second job
    assert [j.id for j in scheduler.get_jobs()] == [JOB_ID] and str(again.trigger) == str(
        daily_trigger(dt.time(7, 0))
    )
    scheduler.modify_job(JOB_ID, next_run_time=dt.datetime.now(dt.UTC))  # fire now
    assert first_started.wait(10), "the job never ran"
    scheduler.modify_job(JOB_ID, next_run_time=dt.datetime.now(dt.UTC))  # fire again while it runs
    time.sleep(2.5)
    assert state["peak"] == 1 and state["runs"] == 1


def test_bad_schedule_settings_are_refused() -> None:
    with pytest.raises(ScheduleError, match="HH:MM"):
        parse_time_of_day("6am")
    with pytest.raises(ScheduleError, match="HH:MM"):
        parse_time_of_day("25:00")
    with pytest.raises(ScheduleError, match="time zone"):
        daily_trigger(dt.time(6, 0), "Mars/Olympus")


def test_a_failing_model_gives_the_template_with_the_reason() -> None:

    def unreachable(messages: list[BaseMessage]) -> Any:
        raise openai.APIConnectionError(
            request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
        )

    def broken(messages: list[BaseMessage]) -> Any:
        raise ValueError("the server sent nonsense")

    model = ScriptedChatModel()
    model.enqueue(unreachable, broken)
    assert write_narrative(_facts(), model).label == LABEL_TEMPLATE_NO_MODEL
    failed = write_narrative(_facts(), model)
    assert failed.label == "Narrative: template (scripted failed: ValueError)" and not failed.by_model


def test_the_draft_locks_nothing_while_the_narrative_model_writes(
    demo_shop_copy: Any, tmp_path: Path
) -> None:
    """A slow model (longer than SQLite's 5 s busy timeout) and a writer at the same time: the plan is
    committed before the model is asked, so the writer is never blocked."""

    shop = demo_shop_copy
    asked, done = threading.Event(), threading.Event()

    def slow(messages: list[BaseMessage]) -> Any:
        asked.set()
        time.sleep(6.0)
        done.set()
        lead = json.loads(_facts_json(messages))["top_items"][0]["sku"]
        return say(f"The plan is ready for review; {lead} leads.")

    model = ScriptedChatModel()
    model.enqueue(slow)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(
            result=make_draft(shop.session_factory, SALE_DATE, model, tmp_path, today=TODAY)
        )
    )
    thread.start()
    try:
        assert asked.wait(120), "the narrative model was never asked"
        started = time.perf_counter()
        with shop.session_factory.begin() as s:
            s.add(Order(id="written-meanwhile", ts=dt.datetime(2026, 6, 30, 22, 0)))
        waited = time.perf_counter() - started
        assert not done.is_set(), "the write had to wait for the model"
    finally:
        thread.join(60)
    assert waited < 2.0
    result = outcome["result"]
    assert result.narrative_label == "Narrative: written by scripted"
    with shop.session_factory() as s:
        assert s.get(Order, "written-meanwhile") is not None
        assert s.get(FlashSalePlan, result.plan_id) is not None


def test_a_run_that_failed_after_saving_its_plan_is_completed_by_the_next(
    demo_shop_copy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    shop = demo_shop_copy
    real = assistant.draft.render_markdown

    def broken(data: dict[str, Any]) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(assistant.draft, "render_markdown", broken)
    with pytest.raises(OSError, match="disk full"):
        make_draft(shop.session_factory, SALE_DATE, None, tmp_path, today=TODAY)
    assert not (tmp_path / "2026-07-01" / "draft.json").exists()
    with shop.session_factory() as s:
        (saved,) = s.scalars(select(FlashSalePlan.id).where(FlashSalePlan.sale_date == SALE_DATE)).all()

    monkeypatch.setattr(assistant.draft, "render_markdown", real)
    result = make_draft(shop.session_factory, SALE_DATE, None, tmp_path, today=TODAY)
    assert result.plan_id == saved and (tmp_path / "2026-07-01" / "draft.json").is_file()
    with shop.session_factory() as s:
        assert s.scalars(select(FlashSalePlan.id).where(FlashSalePlan.sale_date == SALE_DATE)).all() == [
            saved
        ]
    forced = make_draft(shop.session_factory, SALE_DATE, None, tmp_path, today=TODAY, force=True)
    assert forced.plan_id != saved


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (
            AIMessage(
                "Plan 12 looks good and PET-1 leads the", response_metadata={"finish_reason": "length"}
            ),
            "cut off",
        ),
        (say("The sale is good. " * 40), "repeats itself"),
        (
            say("A fine plan for tomorrow, with care and attention to the shop's goals."),
            "names none of the plan's items",
        ),
    ],
)
def test_a_narrative_that_is_cut_off_repeats_itself_or_names_no_item_gives_the_template(
    reply: AIMessage, why: str
) -> None:
    model = ScriptedChatModel()
    model.enqueue(reply)
    narrative = write_narrative(_facts(), model)
    assert not narrative.by_model and why in narrative.label
    assert narrative.text.startswith("The draft plan 12 for 2026-07-01 puts 2 SKUs on sale")
