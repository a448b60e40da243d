"""The market simulator is deterministic and its data really carry the stated true parameters."""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import pytest
import statsmodels.api as sm
from pydantic import ValidationError
from scipy import stats

from tools.simulator import (
    History,
    SimConfig,
    SimulationError,
    World,
    build_world,
    generate_history,
    iter_sales,
)

END = dt.date(2026, 6, 30)
SMALL = SimConfig(seed=11, n_skus=120, n_customers=1_000, n_days=90, n_flash_days=5, end_date=END)
# A year of a mid-sized shop with enough volume to check the parameters statistically.
YEAR = SimConfig(seed=3, n_skus=300, n_customers=3_000, n_days=365, volume=3.0, end_date=END)


@cache
def _shop(config: SimConfig) -> tuple[World, History]:
    world = build_world(config)
    return world, generate_history(world)


def _flash_mask(world: World) -> np.ndarray:
    mask = np.zeros((world.config.n_days, world.n_skus), dtype=bool)
    for sale in world.flash_sales:
        mask[sale.day, sale.sku_idx] = True
    return mask


def _true_means(world: World) -> np.ndarray:
    return np.vstack([world.day_expected(d) for d in range(world.config.n_days)])


# ---- determinism -------------------------------------------------------------------------------------


def test_same_seed_gives_identical_data_and_another_seed_differs() -> None:
    a, b = generate_history(build_world(SMALL)), generate_history(build_world(SMALL))
    for name in ("line_sku", "line_qty", "line_price_cents", "order_customer", "order_ts", "review_rating"):
        np.testing.assert_array_equal(a.concat(name), b.concat(name))
    assert a.concat("review_text").tolist() == b.concat("review_text").tolist()
    assert [n.title for n in a.world.news] == [n.title for n in b.world.news]
    np.testing.assert_array_equal(a.world.competitor_price_cents, b.world.competitor_price_cents)
    np.testing.assert_array_equal(a.inventory.on_hand, b.inventory.on_hand)

    other = build_world(SMALL.model_copy(update={"seed": 12}))
    assert not np.array_equal(other.elasticity, a.world.elasticity)
    assert not np.array_equal(generate_history(other).units, a.units)


def test_chunk_size_does_not_change_the_history() -> None:
    world = build_world(SMALL)
    weekly = np.concatenate([c.units for c in iter_sales(world, chunk_days=7)])
    whole = np.concatenate([c.units for c in iter_sales(world, chunk_days=1000)])
    np.testing.assert_array_equal(weekly, whole)


def test_config_rejects_flash_days_that_do_not_fit_and_scales() -> None:
    with pytest.raises(ValidationError, match="do not fit"):
        SimConfig(n_days=60, n_flash_days=10, flash_every_days=14)
    big = SimConfig.scaled(50, end_date=END)
    assert (big.n_skus, big.n_customers) == (100_000, 1_000_000)
    with pytest.raises(SimulationError):
        SimConfig.scaled(0)


def test_catalogue_has_the_promised_shape() -> None:
    world = build_world(SimConfig(end_date=END))
    assert world.n_skus == 2000 and len(world.customer_ids) == 20_000
    assert len(set(world.category.tolist())) >= 10
    assert np.all(world.cost_cents < world.list_price_cents)
    assert np.all(world.elasticity < 0)
    assert len(world.flash_sales) >= 20
    assert all(40 <= s.sku_idx.size <= 100 for s in world.flash_sales)
    np.testing.assert_allclose(world.weekly.mean(axis=1), 1.0)
    assert len(set(world.sku_ids)) == world.n_skus


# ---- the data carry the parameters ----------------------------------------------------------------------


def test_log_log_fit_recovers_the_true_elasticity_of_busy_skus() -> None:
    world, history = _shop(YEAR)
    units, flash = history.units, _flash_mask(world)
    n_days = world.config.n_days
    prices = np.vstack([world.shelf_prices(d) for d in range(n_days)])
    weekday = np.array([world.date_of(d).weekday() for d in range(n_days)])
    years = (np.arange(n_days) - n_days) / 365.25
    errors = []
    for i in np.argsort(-units.sum(axis=0))[:20]:
        everyday = ~flash[:, i]
        log_price = np.log(prices[everyday, i] / world.list_price_cents[i])
        x = np.column_stack([log_price, np.eye(7)[weekday[everyday]], years[everyday]])
        fit = sm.GLM(units[everyday, i], x, family=sm.families.Poisson()).fit()
        errors.append(fit.params[0] - world.elasticity[i])
    errors_arr = np.asarray(errors)
    assert np.median(np.abs(errors_arr)) < 0.25, errors_arr.round(2)
    assert abs(errors_arr.mean()) < 0.15, errors_arr.round(2)


def test_weekly_pattern_is_visible_in_daily_sales() -> None:
    world, history = _shop(YEAR)
    everyday = ~_flash_mask(world).any(axis=1)
    weekday = np.array([world.date_of(d).weekday() for d in range(world.config.n_days)])
    totals = history.units.sum(axis=1)
    means = _true_means(world).sum(axis=1)
    observed = np.array([totals[everyday & (weekday == k)].mean() for k in range(7)])
    expected = np.array([means[everyday & (weekday == k)].mean() for k in range(7)])
    np.testing.assert_allclose(observed / observed.mean(), expected / expected.mean(), atol=0.04)
    # and the pattern is not flat: Saturday clearly beats Tuesday
    assert observed[5] > 1.1 * observed[1]


def _expected_capped(mean: np.ndarray, cap: np.ndarray, size: float) -> np.ndarray:
    """E[min(D, cap)] for D ~ NegBin(size, mean)."""
    k = np.arange(int(cap.max()))
    sf = stats.nbinom.sf(k[None, :], size, size / (size + mean[:, None]))
    return np.where(k[None, :] < cap[:, None], sf, 0.0).sum(axis=1)


def test_flash_sales_lift_demand_as_stated() -> None:
    world, history = _shop(YEAR)
    units = history.units
    sold, with_lift, without_lift = 0, 0.0, 0.0
    for sale in world.flash_sales:
        inputs = world.day_inputs(sale.day)
        mean = world.day_expected(sale.day, inputs)[sale.sku_idx]
        sold += int(units[sale.day, sale.sku_idx].sum())
        with_lift += _expected_capped(mean, sale.allocated_units, world.nb_size).sum()
        plain = mean / world.flash_lift[sale.sku_idx]
        without_lift += _expected_capped(plain, sale.allocated_units, world.nb_size).sum()
    assert sold == pytest.approx(with_lift, rel=0.06)
    assert sold > 1.25 * without_lift
    assert all(np.all(units[s.day, s.sku_idx] <= s.allocated_units) for s in world.flash_sales)


def test_each_past_shock_moves_sales_in_its_window() -> None:
    world, history = _shop(YEAR)
    units, means, flash = history.units, _true_means(world), _flash_mask(world)
    last = world.config.n_days - 1
    checked = 0
    for shock, mask in zip(world.shocks, world._shock_masks, strict=True):
        if shock.end_day > last:
            continue
        days = np.arange(shock.start_day, shock.end_day + 1)
        cells = np.zeros_like(flash)
        cells[np.ix_(days, np.flatnonzero(mask))] = True
        cells &= ~flash
        observed, expected = units[cells].sum(), means[cells].sum()
        assert observed == pytest.approx(expected, rel=0.2), shock
        ratio = observed / (expected / shock.multiplier)
        if shock.multiplier > 1:
            assert ratio > 1 + 0.4 * (shock.multiplier - 1), shock
        else:
            assert ratio < 1 - 0.4 * (1 - shock.multiplier), shock
        checked += 1
    assert checked >= 6


def test_reviews_follow_hidden_quality_and_defects_show() -> None:
    world, history = _shop(YEAR)
    sku, rating = history.concat("review_sku"), history.concat("review_rating")
    review_day = (
        (history.concat("review_ts") - np.datetime64(world.start_date.isoformat()))
        .astype("timedelta64[D]")
        .astype(int)
    )
    before_defect = review_day < world.defect_day[sku]
    count = np.bincount(sku[before_defect], minlength=world.n_skus)
    total = np.bincount(sku[before_defect], weights=rating[before_defect], minlength=world.n_skus)
    enough = count >= 8
    corr = np.corrcoef(total[enough] / count[enough], world.quality0[enough])[0, 1]
    assert corr > 0.7
    defective = np.flatnonzero(world.defect_drop > 0)
    after = np.isin(sku, defective) & ~before_defect
    before = np.isin(sku, defective) & before_defect
    assert rating[after].mean() < rating[before].mean() - 0.8
    assert set(np.unique(rating)) <= {1, 2, 3, 4, 5}
    texts = history.concat("review_text")
    assert any("defect" in t.lower() or "stopped working" in t.lower() for t in texts[after])


def test_competitor_price_cuts_show_in_competitor_prices() -> None:
    world = build_world(YEAR)
    cuts = [s for s in world.shocks if s.kind == "competitor_price_cut"]
    assert cuts
    for shock in cuts:
        comp = ["MegaMart", "QuickBuy", "ValueHub"].index(str(shock.competitor))
        in_scope = np.isin(
            world.competitor_sku, np.flatnonzero(world._scope_mask(shock.scope, shock.scope_value))
        )
        rows = in_scope & (world.competitor_name == comp)
        inside = rows & (world.competitor_day >= shock.start_day) & (world.competitor_day <= shock.end_day)
        outside = rows & ~inside
        ratio_in = world.competitor_price_cents[inside] / world.list_price_cents[world.competitor_sku[inside]]
        ratio_out = (
            world.competitor_price_cents[outside] / world.list_price_cents[world.competitor_sku[outside]]
        )
        assert ratio_in.size and ratio_out.size
        assert np.median(ratio_in) == pytest.approx(np.median(ratio_out) * (1 - shock.cut), rel=0.05)


def test_inventory_ranges_from_scarce_to_excess() -> None:
    world, history = _shop(YEAR)
    daily = world.baseline(world.config.n_days)
    cover = history.inventory.on_hand / np.maximum(daily, 1e-9)
    assert np.mean(cover < 10) > 0.03
    assert np.mean(cover > 90) > 0.05


# ---- news ----------------------------------------------------------------------------------------------


def test_news_carry_known_shocks_neutral_items_and_injections() -> None:
    world = build_world(SimConfig(end_date=END))
    kinds = [n.kind for n in world.news]
    assert 100 <= len(world.news) <= 200
    assert 10 <= sum(n.shock is not None for n in world.news) <= 20
    assert 3 <= kinds.count("adversarial") <= 5
    assert any("ignore previous instructions" in n.body.lower() for n in world.news)
    assert all(n.shock is None for n in world.news if n.kind in ("neutral", "adversarial"))
    assert all(n.published_at.date() <= END for n in world.news)
    tomorrow = world.config.n_days
    current = [s for s in world.shocks if s.active(tomorrow)]
    assert {s.kind for s in current} == {
        "category_demand",
        "competitor_price_cut",
        "brand_supply",
        "viral_sku",
    }
    # tomorrow's true demand reflects them
    sku = world.sku_ids[int(np.flatnonzero(world._scope_mask("category", "fans"))[0])]
    fans = next(s for s in current if s.kind == "category_demand")
    without = world.baseline(tomorrow)[world.sku_index([sku])] / fans.multiplier
    assert world.expected_units(
        END + dt.timedelta(days=1), [sku], world.list_price_cents[world.sku_index([sku])]
    )[0] == pytest.approx(float(without[0]) * fans.multiplier)
    assert fans.scope_value == "fans" and fans.multiplier > 1.2


def test_adversarial_news_have_no_market_effect() -> None:
    quiet = SMALL.model_copy(update={"n_adversarial_news": 0})
    loud = SMALL.model_copy(update={"n_adversarial_news": 6})
    world_quiet, world_loud = build_world(quiet), build_world(loud)
    assert sum(n.kind == "adversarial" for n in world_loud.news) == 6
    assert world_quiet.shocks == world_loud.shocks
    np.testing.assert_array_equal(generate_history(world_quiet).units, generate_history(world_loud).units)


# ---- the true demand function and playing plans ---------------------------------------------------------


def test_expected_units_broadcasts_and_follows_price_and_lift() -> None:
    world = build_world(SMALL)
    skus = world.sku_ids[:4]
    ref = world.list_price_cents[:4]
    grid = ref[:, None] * np.array([1.0, 0.8, 0.6])[None, :]
    plain = world.expected_units(END, skus, grid)
    featured = world.expected_units(END, skus, grid, featured=True)
    assert plain.shape == (4, 3)
    assert np.all(np.diff(plain, axis=1) > 0)  # lower price, more units
    np.testing.assert_allclose(featured / plain, np.repeat(world.flash_lift[:4, None], 3, axis=1))
    np.testing.assert_allclose(plain[:, 1] / plain[:, 0], 0.8 ** world.elasticity[:4])
    with pytest.raises(SimulationError, match="unknown SKU"):
        world.expected_units(END, ["NOPE-1"], [100])


def test_play_is_capped_by_allocation_and_deterministic() -> None:
    world = build_world(SMALL)
    busy = np.argsort(-world.base_rate)[:6]
    tomorrow = END + dt.timedelta(days=1)
    items = [(world.sku_ids[i], int(world.list_price_cents[i] * 0.7), 2) for i in busy]
    a = world.play(tomorrow, items, seed=1)
    b = world.play(tomorrow, items, seed=1)
    np.testing.assert_array_equal(a.units, b.units)
    assert a.line_customer_ids == b.line_customer_ids
    assert np.all(a.units <= 2)
    assert np.all(a.units == np.minimum(a.demand, 2))
    np.testing.assert_array_equal(a.stocked_out, a.demand >= 2)
    assert a.stocked_out.any()
    per_sku = {s: 0 for s in a.skus}
    for s, q in zip(a.line_skus, a.line_qty.tolist(), strict=True):
        per_sku[s] += q
    assert [per_sku[s] for s in a.skus] == a.units.tolist()
    assert set(a.line_customer_ids) <= set(world.customer_ids)
    assert a.total_revenue_cents == int((a.units * a.sale_price_cents).sum())

    roomy = [(s, p, 10_000) for s, p, _ in items]
    draws = [world.play(tomorrow, roomy, seed=s).units.sum() for s in range(30)]
    expected = world.expected_units(tomorrow, [s for s, _, _ in items], [p for _, p, _ in items], True).sum()
    assert np.mean(draws) == pytest.approx(expected, rel=0.15)
    assert len({int(d) for d in draws}) > 1


def test_play_rejects_bad_plans() -> None:
    world = build_world(SMALL)
    sku = world.sku_ids[0]
    with pytest.raises(SimulationError, match="unknown SKU"):
        world.play(END, [("XX-1", 100, 1)])
    with pytest.raises(SimulationError, match="negative"):
        world.play(END, [(sku, 100, -1)])
    with pytest.raises(SimulationError, match="twice"):
        world.play(END, [(sku, 100, 1), (sku, 90, 1)])
    with pytest.raises(SimulationError, match="at least one"):
        world.play(END, [])


def test_bargain_hunters_buy_more_of_the_discounted_lines_and_customers_repeat() -> None:
    world, history = _shop(YEAR)
    line_sku, customer = (
        history.concat("line_sku"),
        history.concat("order_customer")[history.concat("line_order")],
    )
    depth = 1 - history.concat("line_price_cents") / world.list_price_cents[line_sku]
    bargain = world.customer_segment[customer] == world.segment_names.index("bargain_hunter")
    assert bargain[depth >= 0.3].mean() > 1.3 * bargain[depth <= 0.1].mean()
    orders_per_customer = np.bincount(history.concat("order_customer"), minlength=len(world.customer_ids))
    assert np.mean(orders_per_customer >= 2) > 0.5
    assert orders_per_customer.max() > 5 * np.median(orders_per_customer[orders_per_customer > 0])
