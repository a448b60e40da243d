"""The demand model: fitting recovers known parameters, forecasts behave, models round-trip the database."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cli import app
from db.engine import make_engine, make_session_factory
from db.importers import ImportOptions, import_file
from db.migrate import upgrade
from db.models import DemandModelRun, MarketSignal, OrderLine, SignalDirection, SignalScope, SimSkuTruth
from tests.synthetic_shop import ShopTruth, build_synthetic_shop
from tools.backtest import pinball, rmsse, run_backtest, save_chart, score_forecast
from tools.demand import (
    DemandModel,
    DemandModelError,
    NoSalesHistory,
    UnknownSkus,
    _pool_with_se,
    fit_demand_model,
    fit_panel,
    load_demand_model,
    load_latest_demand_model,
    load_sales_panel,
    save_demand_model,
)
from tools.sales_panel import SalesPanel


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, ShopTruth]]:
    path = tmp_path_factory.mktemp("demand") / "shop.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    truth = build_synthetic_shop(engine, n_skus=60, n_days=240, seed=3)
    yield engine, truth
    engine.dispose()


@pytest.fixture(scope="module")
def model(shop: tuple[Engine, ShopTruth]) -> DemandModel:
    engine, _ = shop
    with make_session_factory(engine)() as session:
        return fit_demand_model(session)


def _rows(model: DemandModel, truth: ShopTruth) -> np.ndarray:
    return model.rows(truth.skus)


def test_fit_recovers_elasticities_lift_and_level(model: DemandModel, shop: tuple[Engine, ShopTruth]) -> None:
    _, truth = shop
    rows = _rows(model, truth)
    err = np.abs(model.elasticity[rows] - truth.elasticity)
    assert np.median(err) < 0.35
    assert np.corrcoef(model.elasticity[rows], truth.elasticity)[0, 1] > 0.6
    assert np.all(model.elasticity < 0)
    # Lift is fitted per category from sale days, a third of which sold out (censored).
    assert np.median(model.lift[rows]) == pytest.approx(np.median(truth.lift), rel=0.12)
    # Base demand at the reference price and window end (weekday average).
    base = np.array([model.sku_params(s).base_units_per_day for s in truth.skus])
    assert np.median(base / truth.base_rate) == pytest.approx(1.0, abs=0.12)
    # Negative-binomial size: the data were generated with r = 4.
    assert np.median(model.dispersion) == pytest.approx(truth.nb_size, rel=0.35)
    assert model.metrics["n_censored_days"] > 0


def test_pooling_pulls_noisy_estimates_toward_the_category(model: DemandModel) -> None:
    own, pooled = model.elasticity_own, model.elasticity
    ok = np.isfinite(own)
    cats = np.array(model.categories)
    for cat, params in model.category_params.items():
        members = ok & (cats == cat)
        centre = params["elasticity"]
        # Each pooled value lies between its own estimate and the category mean.
        lo = np.minimum(own[members], centre) - 1e-9
        hi = np.maximum(own[members], centre) + 1e-9
        assert np.all((pooled[members] >= lo) & (pooled[members] <= hi))
    assert np.all((model.elasticity_weight >= 0) & (model.elasticity_weight <= 1))


def test_returns_and_non_products_are_excluded(shop: tuple[Engine, ShopTruth], model: DemandModel) -> None:
    engine, truth = shop
    assert "SHIP" not in model.skus
    with make_session_factory(engine)() as session:
        panel = load_sales_panel(session, truth.start, truth.end)
    assert truth.units is not None
    rows = [panel.skus.index(s) for s in truth.skus]
    np.testing.assert_array_equal(panel.units[rows], truth.units)  # the -1 return lines are not demand


def test_forecast_responds_to_price_feature_and_cap(model: DemandModel) -> None:
    skus = model.skus[:10]
    ref = model.ref_price_cents[model.rows(skus)]
    prices = np.rint(ref[:, None] * np.array([0.5, 0.7, 0.9, 1.0])).astype(np.int64)
    date = model.window_end + dt.timedelta(days=1)
    grid = model.forecast_grid(date, skus, prices, featured=True)
    assert grid.mean.shape == (10, 4)
    assert np.all(np.diff(grid.mean, axis=1) < 0)  # dearer sells less
    plain = model.forecast_grid(date, skus, prices, featured=False)
    lift = np.broadcast_to(model.lift[model.rows(skus)][:, None], grid.mean.shape)
    np.testing.assert_allclose(grid.mean / plain.mean, lift)
    p10, p50, p90 = grid.quantile(0.1), grid.quantile(0.5), grid.quantile(0.9)
    assert np.all(p10 <= p50) and np.all(p50 <= p90)
    cap = np.full((10, 1), 3.0)
    capped = grid.expected_capped(cap)
    assert np.all(capped <= np.minimum(grid.mean, cap) + 1e-9)
    assert grid.model_id == model.id
    # The elasticity is the slope of log demand in log price.
    slope = np.log(grid.mean[:, 0] / grid.mean[:, 3]) / np.log(prices[:, 0] / prices[:, 3])
    np.testing.assert_allclose(slope, model.elasticity[model.rows(skus)], rtol=1e-3)


def test_forecast_rejects_bad_input(model: DemandModel) -> None:
    date = model.window_end + dt.timedelta(days=1)
    with pytest.raises(UnknownSkus, match="NOPE"):
        model.forecast_grid(date, ["NOPE", model.skus[0]], np.array([[1000], [1000]]))
    with pytest.raises(DemandModelError, match="positive"):
        model.forecast_grid(date, model.skus[:1], np.array([[0]]))
    with pytest.raises(DemandModelError, match="shape"):
        model.forecast_grid(date, model.skus[:2], np.array([[1000, 900]]))


def test_model_round_trips_through_the_database(
    session_factory: sessionmaker[Session], model: DemandModel
) -> None:
    model = dataclasses.replace(model, id=None)  # saving sets the id: keep the shared fixture untouched
    with session_factory.begin() as session:
        assert load_latest_demand_model(session) is None
        first_id = save_demand_model(session, model)
    assert model.id == first_id
    later = dataclasses.replace(model, fitted_at=model.fitted_at + dt.timedelta(hours=1), id=None)
    with session_factory.begin() as session:
        second_id = save_demand_model(session, later)
    with session_factory() as session:
        loaded = load_latest_demand_model(session)
        run = session.get(DemandModelRun, first_id)
        first = load_demand_model(session, first_id)
    assert loaded is not None and loaded.id == second_id != first_id
    assert run is not None and run.window_start == model.window_start and run.window_end == model.window_end
    assert first.fitted_at == model.fitted_at and first.version == model.version
    date = model.window_end + dt.timedelta(days=3)
    skus = model.skus[:5]
    prices = np.rint(model.ref_price_cents[:5, None] * [0.6, 0.8]).astype(np.int64)
    a = model.forecast_grid(date, skus, prices)
    b = loaded.forecast_grid(date, skus, prices)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_array_equal(a.dispersion, b.dispersion)
    assert b.model_id == second_id
    with pytest.raises(DemandModelError, match="no demand model"), session_factory() as session:
        load_demand_model(session, 10_000)


def test_imported_logs_without_price_history_fit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'imported.db'}")
    upgrade(engine)
    truth = build_synthetic_shop(engine, n_skus=45, n_days=200, seed=11, with_price_history=False)
    with make_session_factory(engine)() as session:
        model = fit_demand_model(session)
    engine.dispose()
    assert model.metrics["price_source"] == "order_lines"
    rows = model.rows(truth.skus)
    assert np.median(np.abs(model.elasticity[rows] - truth.elasticity)) < 0.45
    assert np.median(model.lift[rows]) == pytest.approx(np.median(truth.lift), rel=0.2)


def test_fit_window_and_empty_database(sqlite_engine: Engine, shop: tuple[Engine, ShopTruth]) -> None:
    with make_session_factory(sqlite_engine)() as session, pytest.raises(NoSalesHistory, match="demo"):
        fit_demand_model(session)
    engine, truth = shop
    end = truth.end - dt.timedelta(days=30)
    with make_session_factory(engine)() as session:
        model = fit_demand_model(session, window_end=end, window_days=120)
        with pytest.raises(DemandModelError, match="at least 28"):
            fit_demand_model(session, window_days=7)
        with pytest.raises(DemandModelError, match="after the newest order"):
            fit_demand_model(session, window_end=truth.end + dt.timedelta(days=1))
        with pytest.raises(NoSalesHistory, match="no sales between"):
            fit_demand_model(session, window_end=truth.start - dt.timedelta(days=1))
    assert model.window_end == end and model.window_start == end - dt.timedelta(days=119)


def test_fit_on_the_demo_shop_tracks_the_simulator(demo_shop: Any) -> None:
    with demo_shop.session_factory() as session:
        stages: list[str] = []
        model = fit_demand_model(session, progress=lambda stage, done, total: stages.append(stage))
        truth = {
            r.sku: r.elasticity for r in session.execute(select(SimSkuTruth.sku, SimSkuTruth.elasticity))
        }
    assert "SKU regressions" in stages
    sold = np.flatnonzero(model.selling_days >= 30)
    assert len(sold) >= 20
    true_e = np.array([truth[model.skus[i]] for i in sold])
    assert np.median(np.abs(model.elasticity[sold] - true_e)) < 0.5


def test_cli_fit_stores_a_model(shop: tuple[Engine, ShopTruth], monkeypatch: pytest.MonkeyPatch) -> None:

    engine, _ = shop
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["fit"])
    assert result.exit_code == 0, result.output
    assert "Stored as model" in result.output
    with make_session_factory(engine)() as session:
        stored = load_latest_demand_model(session)
    assert stored is not None and stored.id is not None
    bad = CliRunner().invoke(app, ["fit", "--window-end", "yesterday"])
    assert bad.exit_code == 2 and "'yesterday' is not a date (YYYY-MM-DD)" in bad.output
    late = CliRunner().invoke(app, ["fit", "--window-end", "2099-01-01"])
    assert late.exit_code == 1 and "after the newest order" in late.output


def test_backtest_scores_model_naive_and_truth(demo_shop: Any, tmp_path: Path) -> None:

    with demo_shop.session_factory() as session:
        result = run_backtest(session, weeks=2)
    assert result.holdout_end - result.holdout_start == dt.timedelta(days=13)
    assert result.fit_window[1] == result.holdout_start - dt.timedelta(days=1)
    names = {(s.forecaster, s.level) for s in result.scores}
    for forecaster in ("zero", "naive", "training mean", "model", "truth"):
        for level in ("sku-day", "category-day", "total-day"):
            assert (forecaster, level) in names
    assert ("model median", "sku-day") in names and ("model median", "total-day") not in names
    for score in result.scores:
        assert np.isfinite(score.wape) and score.wape >= 0
    zero = result.score("zero", "sku-day")
    assert zero is not None and zero.wape == pytest.approx(1.0) and zero.bias == pytest.approx(-1.0)
    mean = result.score("model", "sku-day")
    assert mean is not None and mean.coverage_80 is not None and 0.5 < mean.coverage_80 <= 1.0
    assert mean.pinball is not None and mean.pinball > 0 and np.isfinite(mean.rmsse)
    # The oracle bounds what any forecast can do; the model's totals are not far off.
    model, truth = result.score("model", "category-day"), result.score("truth", "category-day")
    assert result.ratio("naive", "sku-day", "rmsse") is not None
    assert model is not None and truth is not None
    assert abs(model.bias) < 0.25
    assert result.elasticity and result.elasticity[0].spearman > 0.3
    assert len(result.daily["actual"]) == 14
    chart = save_chart(result, tmp_path / "bt.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_works_on_every_backend(db_engine: Engine) -> None:
    truth = build_synthetic_shop(db_engine, n_skus=24, n_days=90, seed=5, sale_slots=4)
    factory = make_session_factory(db_engine)
    with factory.begin() as session:
        model = fit_demand_model(session)
        model_id = save_demand_model(session, model)
    with factory() as session:
        loaded = load_latest_demand_model(session)
    assert loaded is not None and loaded.id == model_id
    assert loaded.window_end == truth.end and loaded.metrics["n_sale_days"] > 0
    assert sorted(loaded.skus) == sorted(truth.skus)


def test_fit_on_an_imported_transaction_log(tmp_path: Path) -> None:
    """A UCI-style log imported with the CSV importer: no price history, no categories, rare sellers,
    cancellations and non-product lines."""

    source = make_engine(f"sqlite:///{tmp_path / 'source.db'}")
    upgrade(source)
    truth = build_synthetic_shop(source, n_skus=40, n_days=200, seed=21, sale_slots=4)
    with make_session_factory(source)() as session:
        lines = session.execute(
            select(OrderLine.order_id, OrderLine.sku, OrderLine.qty, OrderLine.unit_price_cents, OrderLine.ts)
            .where(OrderLine.qty > 0)
            .order_by(OrderLine.id)
        ).all()
    source.dispose()
    path = tmp_path / "online_retail.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "InvoiceNo",
                "StockCode",
                "Description",
                "Quantity",
                "InvoiceDate",
                "UnitPrice",
                "CustomerID",
                "Country",
            ]
        )
        for k, (order, sku, qty, price, ts) in enumerate(lines):
            stamp = ts.strftime("%m/%d/%Y %H:%M")
            out.writerow(
                [order, sku, f"item {sku}", qty, stamp, f"{price / 100:.2f}", "17850", "United Kingdom"]
            )
            if k % 50 == 0:  # a cancellation and a postage line now and then
                out.writerow(
                    [f"C{order}", sku, f"item {sku}", -1, stamp, f"{price / 100:.2f}", "17850", "UK"]
                )
                out.writerow([order, "POST", "POSTAGE", 1, stamp, "18.00", "17850", "United Kingdom"])
    engine = make_engine(f"sqlite:///{tmp_path / 'imported.db'}")
    upgrade(engine)
    import_file(engine, "orders", path, ImportOptions(preset="uci", create_products=True))
    with make_session_factory(engine)() as session:
        model = fit_demand_model(session)
    engine.dispose()
    assert "POST" not in model.skus
    assert model.metrics["price_source"] == "order_lines"
    rows = model.rows(truth.skus)
    assert np.all(model.elasticity < 0)
    busy = truth.base_rate > 2.0
    assert np.median(np.abs(model.elasticity[rows][busy] - truth.elasticity[busy])) < 0.5
    # No flash-sale plans in a raw log: the sale days are just cheap days; forecasts still follow price.
    date = model.window_end + dt.timedelta(days=1)
    ref = model.ref_price_cents[model.rows(truth.skus[:5])]
    grid = model.forecast_grid(date, truth.skus[:5], np.outer(ref, [0.8, 1.2]), featured=False)
    assert np.all(grid.mean[:, 0] > grid.mean[:, 1])


def test_stored_market_signals_are_offsets_in_the_fit(tmp_path: Path) -> None:
    """A known shock at the end of the history: with its signal stored the fit does not read it as base
    demand (the level after the shock is right); without the signal, the level is inflated."""

    engine = make_engine(f"sqlite:///{tmp_path / 'shock.db'}")
    upgrade(engine)
    truth = build_synthetic_shop(engine, n_skus=45, n_days=180, seed=8, shock=("audio", 30, 2.0))
    audio = np.array([c == "audio" for c in truth.categories])
    factory = make_session_factory(engine)

    def base_ratio() -> float:
        with factory() as session:
            model = fit_demand_model(session)
        base = np.array([model.sku_params(s).base_units_per_day for s in truth.skus])
        return float(np.median(base[audio] / truth.base_rate[audio]))

    without = base_ratio()
    with factory.begin() as session:
        session.add(
            MarketSignal(
                scope=SignalScope.CATEGORY,
                scope_value="audio",
                direction=SignalDirection.UP,
                multiplier=2.0,
                confidence=1.0,
                valid_from=truth.end - dt.timedelta(days=29),
                valid_to=truth.end,
                extracted_by="test",
            )
        )
    with_signal = base_ratio()
    engine.dispose()
    assert without > 1.25  # the shock leaks into base demand
    assert with_signal == pytest.approx(1.0, abs=0.15)


def test_cli_backtest_prints_scores_and_saves_a_chart(
    demo_shop: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("DATABASE_URL", demo_shop.url)
    chart = tmp_path / "bt.png"
    result = CliRunner().invoke(app, ["backtest", "--weeks", "2", "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    for text in ("WAPE", "naive", "truth", "Elasticity recovery", "Spearman"):
        assert text in result.output
    assert chart.exists() and chart.stat().st_size > 10_000
    bad = CliRunner().invoke(app, ["backtest", "--weeks", "0"])
    words = " ".join(bad.output.replace("│", " ").split())
    assert (
        bad.exit_code == 2
        and "Invalid value for '--weeks': Input should be greater than or equal to 1" in words
    )


def test_backtest_metrics_match_hand_computed_values() -> None:

    actual = np.array([[0.0, 2.0, 4.0], [1.0, 1.0, 1.0]])
    pred = np.array([[1.0, 2.0, 2.0], [1.0, 1.0, 3.0]])
    train = np.array([[0.0, 2.0, 0.0, 2.0], [1.0, 1.0, 1.0, 1.0]])  # the second series never changes
    score = score_forecast("model", "sku-day", pred, actual, train)
    assert score.wape == pytest.approx((1 + 0 + 2 + 0 + 0 + 2) / 9)
    assert score.bias == pytest.approx((1 - 2 + 2) / 9)
    assert score.mae == pytest.approx(5 / 6)
    # series 1: RMSE sqrt((1 + 0 + 4) / 3) over the naive step RMSE sqrt((4 + 4 + 4) / 3) = 2; series 2 has
    # no scale and is left out
    assert score.rmsse == pytest.approx(np.sqrt(5 / 3) / 2)
    assert rmsse(pred, actual, train, np.array([1.0, 1.0])) == pytest.approx(np.sqrt(5 / 3) / 2)
    q = {0.1: np.array([[0.0]]), 0.5: np.array([[1.0]]), 0.9: np.array([[2.0]])}
    # y = 3: losses 0.1 * 3, 0.5 * 2, 0.9 * 1
    assert pinball(q, np.array([[3.0]])) == pytest.approx((0.3 + 1.0 + 0.9) / 3)


def _often_featured_panel(
    lift: np.ndarray,
    elasticity: np.ndarray,
    *,
    sales: int,
    seed: int,
    cap_factor: float = np.inf,
    sale_prices: tuple[float, ...] = (0.7,),
) -> SalesPanel:
    """A panel of ``len(lift)`` SKUs over 240 days in 3 categories, each featured on ``sales`` days at a
    price drawn from ``sale_prices`` (shares of the list price; as the learning loop features its SKUs, at
    the ladder's steps again and again), with everyday price changes of 10-20 %; sale days sell out above
    ``cap_factor`` x their expected demand."""
    rng = np.random.default_rng(seed)
    n, n_days, r = len(lift), 240, 8.0
    start = dt.date(2026, 1, 1)
    list_price = rng.integers(20, 120, n).astype(float) * 100
    base = rng.lognormal(np.log(5.0), 0.5, n)
    price = np.repeat(list_price[:, None], n_days, axis=1)
    price *= rng.choice([1.0, 1.0, 0.9, 0.8], size=(n, n_days))  # everyday price changes
    featured = np.zeros((n, n_days))
    for i in range(n):
        featured[i, rng.choice(n_days, sales, replace=False)] = 1.0
    sale_price = list_price[:, None] * rng.choice(sale_prices, size=(n, n_days))
    price = np.where(featured > 0, sale_price, price)
    mean = base[:, None] * (price / list_price[:, None]) ** elasticity[:, None] * lift[:, None] ** featured
    demand = rng.poisson(rng.gamma(r, mean / r))
    cap = np.where(featured > 0, np.floor(mean * cap_factor), np.inf)
    return SalesPanel(
        skus=[f"S{i:03d}" for i in range(n)],
        categories=[("audio", "kitchen", "toys")[i % 3] for i in range(n)],
        brands=[f"b{i % 4}" for i in range(n)],
        list_price_cents=list_price,
        start=start,
        end=start + dt.timedelta(days=n_days - 1),
        units=np.minimum(demand, cap).astype(float),
        price=price,
        featured=featured,
        cap=cap,
        active=np.ones((n, n_days), dtype=bool),
        has_price_history=np.ones(n, dtype=bool),
    )


def test_a_sku_featured_often_keeps_its_lift_when_many_of_its_sales_sell_out() -> None:
    """The learning loop features the same SKUs again and again, and a third or more of those sales sell
    out. A SKU's own lift must count its sold-out sale days (at their imputed demand), not only the days
    that did not sell out: those are the days demand happened to be low, and a lift read from them alone
    falls toward no lift the more often the SKU is featured."""
    rng = np.random.default_rng(11)
    lift = rng.lognormal(np.log(1.8), 0.1, 36)
    panel = _often_featured_panel(lift, rng.normal(-1.8, 0.3, 36), sales=24, seed=11, cap_factor=1.05)
    assert 0.3 < panel.censored.sum() / panel.featured.sum() < 0.6
    model = fit_panel(panel)
    assert np.median(model.lift / lift) == pytest.approx(1.0, abs=0.08)


def test_a_sku_featured_often_with_its_own_lift_keeps_its_elasticity() -> None:
    """Half the SKUs of each category lift 1.3x on a sale day, half 2.6x, and each is featured on 40 days
    at the same discount. A SKU's elasticity must come from its price changes, not from its sale days read
    with its category's lift: there the SKU's own lift would pass for a price response."""
    rng = np.random.default_rng(5)
    n = 36
    lift = np.where(np.arange(n) % 2 == 0, 1.3, 2.6)
    elasticity = rng.normal(-1.8, 0.3, n)
    model = fit_panel(_often_featured_panel(lift, elasticity, sales=40, seed=5))
    error = model.elasticity - elasticity
    assert np.median(np.abs(error)) < 0.25
    for low in (True, False):  # no bias that follows the lift
        assert abs(np.median(error[(lift < 2) == low])) < 0.2
    assert np.median(np.abs(model.lift / lift - 1)) < 0.15  # own lifts, shrunk a little toward the group


def test_pooling_estimates_that_agree_more_than_their_errors_say_gives_their_weighted_mean() -> None:
    """Estimates closer together than their standard errors imply (Cochran's Q below its degrees of
    freedom): the between-SKU variance is zero and the pooled value is the inverse-variance weighted mean,
    inside the estimates' range, with a finite standard error. (statsmodels' DerSimonian-Laird leaves the
    variance negative there, and its 'random-effects' mean fell outside the range: a category of SKUs
    estimated at -1.0 to -3.2 was pooled at -5.1.)"""
    rng = np.random.default_rng(2)
    se = rng.uniform(0.3, 1.2, 33)
    estimates = -2.0 + rng.normal(0, 0.3, 33) * se  # far less spread than the errors allow
    mean, tau2, se_mean = _pool_with_se(estimates, se)
    w = 1 / se**2
    assert tau2 == 0.0
    assert mean == pytest.approx(float((w * estimates).sum() / w.sum()))
    assert estimates.min() <= mean <= estimates.max()
    assert se_mean == pytest.approx(float(np.sqrt(1 / w.sum())))


def test_skus_that_sell_out_at_deep_discounts_keep_their_own_elasticity() -> None:
    """The optimiser features the SKUs that answer discounts most, at the ladder's steps, and many of those
    sales sell out. Half the SKUs of each category have an elasticity of -3.0, half -1.2: their sold-out
    days must be imputed under each SKU's own response (EM over the elasticities too), not their
    category's, so that the estimates come out as they would had nothing sold out (the same demand)."""
    n = 36
    elasticity = np.where(np.arange(n) % 2 == 0, -3.0, -1.2)
    fits = {}
    for cap_factor in (np.inf, 0.9):
        panel = _often_featured_panel(
            np.full(n, 1.8),
            elasticity,
            sales=30,
            seed=8,
            cap_factor=cap_factor,
            sale_prices=(0.8, 0.7, 0.6, 0.5),
        )
        fits[cap_factor] = fit_panel(panel).elasticity
    assert panel.censored.sum() / panel.featured.sum() > 0.5
    for group in (elasticity < -2, elasticity > -2):
        uncensored, censored = (np.median(fits[k][group] - elasticity[group]) for k in (np.inf, 0.9))
        assert abs(uncensored) < 0.25  # pooling toward the category's mean, nothing more
        assert censored == pytest.approx(uncensored, abs=0.05)
