"""The plan service: one way a plan is made, so the same question gives the same plan whichever way it is
asked (the CLI, the assistant, the Slack bot, the daily draft), on the shop's clock, with one set of
defaults; a plan shown in one message is the plan saved from the next."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import typer.main
from sqlalchemy import select
from typer.testing import CliRunner

from assistant.agent import Agent
from assistant.daily import run_daily_draft
from assistant.deps import make_deps
from assistant.llm_tools import build_tools
from assistant.llm_tools.planning import PlanArgs
from assistant.memory import ConversationStore
from assistant.settings import Settings
from assistant.slack import FlashSaleBot
from cli import app
from db.models import FlashSalePlan, Inventory, Product
from tests.scripted_model import ScriptedChatModel, call, cents, last_tool_json, say, tool_calls
from tools.demand import fit_demand_model, save_demand_model
from tools.planning import PlanRequest, PlanRequestError, propose_plan
from tools.plans import StoredPlan, load_plan

TOMORROW = dt.date(2026, 7, 2)  # the demo shop's orders end 2026-06-30: today is 07-01 on its clock


def _items(plan: StoredPlan) -> list[tuple[str, float, int, int, float]]:
    return [
        (i.sku, i.discount, i.sale_price_cents, i.allocated_units, round(i.expected_units, 6))
        for i in sorted(plan.items, key=lambda i: i.sku)
    ]


def _saved_plan_id(output: str) -> int:
    return int(output.split("Saved as draft plan", 1)[1].split(";", 1)[0].strip())


def test_tomorrows_plan_is_the_same_whichever_way_it_is_asked(
    demo_shop_copy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = demo_shop_copy
    monkeypatch.setenv("DATABASE_URL", shop.url)
    monkeypatch.delenv("FLASHSALE_TODAY", raising=False)
    settings = Settings()

    # 1. the CLI (it refits first: the demo shop has no model yet)
    out = CliRunner().invoke(app, ["plan"])
    assert out.exit_code == 0, out.output
    cli_id = _saved_plan_id(out.output)

    # 2. the assistant in the terminal chat: shows the plan, then saves the proposal it showed
    model = ScriptedChatModel()
    model.enqueue(
        tool_calls(call("optimize_plan")),
        lambda msgs: tool_calls(call("save_draft_plan", proposal_id=last_tool_json(msgs)["proposal_id"])),
        lambda msgs: say(f"Saved as draft plan {last_tool_json(msgs)['plan_id']}."),
    )
    deps = make_deps(settings, shop.session_factory, actor="ana", channel="cli")
    answer = Agent(model, deps).ask("Plan tomorrow's sale and save it as a draft.")
    agent_id = json.loads(answer.tool_calls[-1].output)["plan_id"]

    # 3. the Slack bot (its own agent per message), asked with the plan's arguments left to their defaults
    slack_model = ScriptedChatModel()
    slack_model.enqueue(
        tool_calls(call("save_draft_plan", notes="from Slack")),
        lambda msgs: say(f"Saved as draft plan {last_tool_json(msgs)['plan_id']}."),
    )
    bot = FlashSaleBot(settings, shop.session_factory, model=slack_model)
    reply = bot.answer("/flashsale plan", user="U1", session_id="slack:C1:1")
    bot.close()
    assert reply.plan_id is not None, reply.text

    # 4. the daily draft
    draft = run_daily_draft(settings, shop.session_factory, out_dir=tmp_path, use_model=False)
    assert draft.plan_id is not None

    with shop.session_factory() as s:
        plans = [load_plan(s, plan_id) for plan_id in (cli_id, agent_id, reply.plan_id, draft.plan_id)]
    assert len({p.id for p in plans}) == 4
    assert {p.sale_date for p in plans} == {TOMORROW}
    assert {p.demand_model_id for p in plans} == {plans[0].demand_model_id}
    reference = _items(plans[0])
    assert reference
    for plan in plans[1:]:
        assert _items(plan) == reference, plan.created_by


def test_the_plan_date_follows_the_shops_clock(demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_shop_copy.url)
    monkeypatch.setenv("FLASHSALE_TODAY", "2026-07-05")
    out = CliRunner().invoke(app, ["plan", "--slots", "3"])
    assert out.exit_code == 0, out.output
    with demo_shop_copy.session_factory() as s:
        assert load_plan(s, _saved_plan_id(out.output)).sale_date == dt.date(2026, 7, 6)
    past = CliRunner().invoke(app, ["plan", "--date", "2026-07-01"])
    assert past.exit_code == 1 and "2026-07-01 is in the past (today is 2026-07-05)" in past.output


def test_every_front_end_uses_the_plan_services_defaults() -> None:
    """The CLI's options and the assistant's arguments default to the plan service's own defaults."""

    defaults = PlanRequest()
    params = {p.name: p.default for p in typer.main.get_command(app).commands["plan"].params}  # type: ignore[attr-defined]
    assert params["slots"] == defaults.slots
    assert params["min_margin"] == defaults.min_item_margin
    assert params["time_limit"] == defaults.time_limit_s
    assert params["gap"] == defaults.relative_gap
    assert tuple(float(x) for x in params["ladder"].split(",")) == defaults.ladder
    assert PlanArgs().request() == defaults


def test_the_service_refuses_dates_out_of_range(demo_shop: Any) -> None:
    with demo_shop.session_factory() as s:
        for day, needle in (
            (dt.date(1999, 1, 1), "in the past"),
            (dt.date(9999, 12, 31), "more than 90 days"),
        ):
            with pytest.raises(PlanRequestError, match=needle):
                propose_plan(s, PlanRequest(sale_date=day), today=dt.date(2026, 7, 1))


def test_a_plan_shown_in_one_message_is_the_plan_saved_from_the_next(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proposal travels with the conversation in the database: a new agent with a new store (another
    bot process) saves exactly the plan shown, even after the shop's data changed in between."""
    shop = demo_shop_copy
    monkeypatch.setenv("DATABASE_URL", shop.url)
    assert CliRunner().invoke(app, ["fit"]).exit_code == 0
    deps = make_deps(Settings(), shop.session_factory, actor="ana", channel="slack")
    first = ScriptedChatModel()
    first.enqueue(
        tool_calls(call("optimize_plan", slots=5)),
        lambda msgs: say(f"Here is proposal {last_tool_json(msgs)['proposal_id']}."),
    )
    shown = Agent(first, deps, session_id="slack:C1:42").ask("What should go on sale tomorrow?")
    proposal = json.loads(shown.tool_calls[0].output)
    # The top SKU's stock is counted again and found empty: a fresh solve now leaves it out, the plan that
    # was shown (and is saved) keeps it.
    sku = proposal["items"][0]["sku"]
    with shop.session_factory.begin() as s:
        s.add(Inventory(sku=sku, on_hand=0, reserved=0, as_of=dt.datetime(2026, 6, 30, 23, 59, 59, 900_000)))
    with shop.session_factory() as s:
        fresh = propose_plan(s, PlanRequest(slots=5), today=dt.date(2026, 7, 1))
    assert sku not in fresh.result.skus
    second = ScriptedChatModel()
    second.enqueue(
        lambda msgs: tool_calls(call("save_draft_plan", proposal_id=proposal["proposal_id"])),
        lambda msgs: say(f"Saved plan {last_tool_json(msgs)['plan_id']}."),
    )
    other_process = Agent(
        second, deps, memory=ConversationStore(shop.session_factory), session_id="slack:C1:42"
    )
    saved = other_process.ask("save it")
    result = json.loads(saved.tool_calls[0].output)
    assert result["proposal_id"] == proposal["proposal_id"]
    with shop.session_factory() as s:
        stored = load_plan(s, result["plan_id"])
        assert (
            s.scalar(select(FlashSalePlan.created_by).where(FlashSalePlan.id == stored.id)) == "assistant:ana"
        )
    shown_items = {i["sku"]: (cents(i["sale_price"]), i["allocated_units"]) for i in proposal["items"]}
    assert {i.sku: (i.sale_price_cents, i.allocated_units) for i in stored.items} == shown_items
    # an id never shown in this conversation is refused with the way out
    third = ScriptedChatModel()
    third.enqueue(tool_calls(call("save_draft_plan", proposal_id="P0123456789")), say("It failed."))
    refused = Agent(third, deps, session_id="slack:C1:43").ask("save P0123456789")
    assert refused.tool_calls[0].error and "call optimize_plan again" in refused.tool_calls[0].output


def test_the_model_reads_money_and_what_each_binding_constraint_is_worth(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_shop_copy.url)
    assert CliRunner().invoke(app, ["fit"]).exit_code == 0
    deps = make_deps(Settings(), demo_shop_copy.session_factory, actor="ana", channel="cli")
    (tool,) = [t for t in build_tools(deps) if t.name == "optimize_plan"]
    out = json.loads(tool.invoke({"slots": 3}))
    assert not any(key.endswith("_cents") for key in out) and out["expected_profit"].endswith(" EUR")
    assert all(item["sale_price"].endswith(" EUR") for item in out["items"])
    slots = next(b for b in out["binding_constraints"] if b["constraint"] == "3 sale slots")
    assert slots["per"] == "one more sale slot" and slots["marginal_value"].endswith(" EUR")
    assert float(slots["marginal_value"].split()[0]) > 0  # with 3 slots, a fourth one pays
    # the CLI says the same in money, not as a raw dual in cents
    cli = CliRunner().invoke(app, ["plan", "--slots", "3"])
    assert cli.exit_code == 0, cli.output
    line = next(ln for ln in cli.output.splitlines() if "binding: 3 sale slots" in ln)
    assert f"one more sale slot: +{float(slots['marginal_value'].split()[0]):,.2f}" in line
    assert "dual" not in cli.output


@pytest.mark.parametrize("columns", [80, 120])
def test_the_plan_table_fits_the_terminal_and_cuts_no_figure(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_shop_copy.url)
    monkeypatch.setenv("COLUMNS", str(columns))
    out = CliRunner().invoke(app, ["plan", "--slots", "12"], terminal_width=columns)
    assert out.exit_code == 0, out.output
    table = out.output.split("Saved as draft plan")[0]
    assert max(len(line) for line in table.splitlines()) <= columns
    with demo_shop_copy.session_factory() as s:
        plan = load_plan(s, _saved_plan_id(out.output))
    for item in plan.items:  # every SKU and its whole category name on one line
        row = next(line for line in table.splitlines() if line.lstrip().startswith(item.sku))
        assert f" {item.category} " in f" {row} " and "…" not in row


def test_a_sku_pinned_at_a_discount_through_the_cli_and_the_assistant(
    demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merchandiser's "put SKU Y at 10 % off: what happens to the plan's margin?". `plan --pin SKU@10`
    saves it at 10 % off; the assistant's what_if gives the plan with it pinned there beside the optimal
    one; a pin that is not SKU@PERCENT is refused with the form to use."""
    shop = demo_shop_copy
    monkeypatch.setenv("DATABASE_URL", shop.url)
    monkeypatch.delenv("FLASHSALE_TODAY", raising=False)
    out = CliRunner().invoke(app, ["plan", "--date", TOMORROW.isoformat(), "--slots", "6"])
    assert out.exit_code == 0, out.output
    with shop.session_factory() as s:
        base = load_plan(s, _saved_plan_id(out.output))
    sku = base.items[0].sku
    other = 0.1 if abs(base.items[0].discount - 0.1) > 1e-9 else 0.2  # shallow: above cost
    out = CliRunner().invoke(
        app, ["plan", "--date", TOMORROW.isoformat(), "--slots", "6", "--pin", f"{sku}@{other * 100:g}"]
    )
    assert out.exit_code == 0, out.output
    with shop.session_factory() as s:
        pinned = load_plan(s, _saved_plan_id(out.output))
    assert next(i for i in pinned.items if i.sku == sku).discount == pytest.approx(other)
    assert pinned.expected_profit_cents <= base.expected_profit_cents

    tools = {
        t.name: t
        for t in build_tools(make_deps(Settings(), shop.session_factory, actor="ana", channel="cli"))
    }
    raw = tools["what_if"].invoke(
        {"slots": 6, "sale_date": TOMORROW.isoformat(), "pin": sku, "pin_discount": other}
    )
    data = json.loads(raw)
    assert f"at {other:.0%} off" in data["change"]
    assert data["alternative"] is not None

    bad = CliRunner().invoke(app, ["plan", "--date", TOMORROW.isoformat(), "--pin", f"{sku}@lots"])
    assert bad.exit_code != 0 and "SKU@PERCENT" in bad.output


def test_what_if_a_market_event_hits_a_category(demo_shop_copy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ "A competitor is dumping prices on a category: what changes tomorrow, and how sure are you?" The
    what-if halves the category's demand: the plan loses profit and features no more of it, and each
    touched SKU either plan features comes with its forecast and 80 % interval with and without the event.
    Tripling the demand of a category the plan left out draws the plan into it. A bad event is a named
    error."""
    shop = demo_shop_copy
    monkeypatch.setenv("DATABASE_URL", shop.url)
    monkeypatch.delenv("FLASHSALE_TODAY", raising=False)
    with shop.session_factory.begin() as s:
        save_demand_model(s, fit_demand_model(s))
        category_of = {sku: category for sku, category in s.execute(select(Product.sku, Product.category))}
    tools = {
        t.name: t
        for t in build_tools(make_deps(Settings(), shop.session_factory, actor="ana", channel="cli"))
    }
    base = {"slots": 8, "sale_date": TOMORROW.isoformat()}

    def what_if(**event: Any) -> dict[str, Any]:
        return dict(json.loads(tools["what_if"].invoke({**base, **event})))

    first = what_if(event_scope="category", event_value="__none__", event_multiplier=1.0)
    assert set(first) == {"error", "hint"} and "__none__" in first["error"]
    plan = json.loads(tools["optimize_plan"].invoke(base))
    categories = [category_of[i["sku"]] for i in plan["items"]]
    hit = max(set(categories), key=categories.count)
    data = what_if(event_scope="category", event_value=hit, event_multiplier=0.5)
    assert data["change"] == f"market event: category {hit} demand x0.5"
    assert data["delta_profit"].startswith("-")  # less demand, less profit
    assert [category_of[s] for s in data["alternative"]["skus"]].count(hit) <= categories.count(hit)
    affected = data["affected_by_event"]
    assert affected and all(a["in_base"] or a["in_alternative"] for a in affected)
    for a in affected:
        assert category_of[a["sku"]] == hit
        assert a["forecast_units_with_event"] == pytest.approx(0.5 * a["forecast_units"], abs=0.01)
        assert a["forecast_low"] <= a["forecast_units"] <= a["forecast_high"]
        assert a["forecast_high_with_event"] <= a["forecast_high"]
    absent = sorted(set(category_of.values()) - set(categories))
    boosted = what_if(event_scope="category", event_value=absent[0], event_multiplier=3.0)
    assert absent[0] in [category_of[s] for s in boosted["alternative"]["skus"]]
    bad = what_if(event_scope="category", event_value=hit)
    assert set(bad) == {"error", "hint"} and "event_multiplier" in bad["error"] + bad["hint"]
