"""ForecastGrid: quantiles and expected sales under a stock cap agree with the count distribution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tools.forecast import ForecastGrid


def _grid(mean: np.ndarray, dispersion: np.ndarray) -> ForecastGrid:
    n, k = mean.shape
    return ForecastGrid(
        skus=[f"SKU-{i}" for i in range(n)],
        prices_cents=np.tile(np.arange(1000, 1000 + 100 * k, 100), (n, 1)),
        mean=mean,
        dispersion=dispersion,
        signal_ids=[[] for _ in range(n)],
    )


def _brute_capped(mu: float, r: float, cap: float) -> float:
    units = np.arange(0, 5000)
    pmf = stats.nbinom.pmf(units, r, r / (r + mu)) if np.isfinite(r) else stats.poisson.pmf(units, mu)
    return float(np.sum(np.minimum(units, cap) * pmf))


@pytest.fixture
def grid() -> ForecastGrid:
    rng = np.random.default_rng(7)
    mean = rng.gamma(1.5, 6.0, size=(40, 5))
    mean[0, 0] = 0.0
    dispersion = np.where(rng.random(40) < 0.3, np.inf, rng.uniform(0.3, 30.0, size=40))
    return _grid(mean, dispersion)


def test_expected_capped_matches_summing_the_distribution(grid: ForecastGrid) -> None:
    caps = np.array([0, 1, 3, 7.5, 12, 40, 250], dtype=float)
    for cap in caps:
        got = grid.expected_capped(cap)
        for i in range(0, 40, 7):
            for j in range(5):
                expected = _brute_capped(grid.mean[i, j], grid.dispersion[i], cap)
                assert got[i, j] == pytest.approx(expected, abs=1e-9), (i, j, cap)


def test_expected_capped_is_bounded_by_mean_and_cap(grid: ForecastGrid) -> None:
    caps = np.arange(40, dtype=float)[:, None] % 11
    capped = grid.expected_capped(caps)
    assert capped.shape == grid.mean.shape
    assert np.all(capped <= np.minimum(grid.mean, caps) + 1e-12)
    assert np.all(capped >= 0)
    np.testing.assert_allclose(grid.expected_capped(np.inf), grid.mean)
    np.testing.assert_array_equal(grid.expected_capped(0), 0.0)
    # More stock never sells fewer units.
    assert np.all(grid.expected_capped(5) <= grid.expected_capped(6) + 1e-12)


def test_quantiles_are_ordered_and_match_scipy(grid: ForecastGrid) -> None:
    q = grid.quantiles((0.1, 0.5, 0.9))
    assert np.all(q[0.1] <= q[0.5])
    assert np.all(q[0.5] <= q[0.9])
    for i in range(grid.shape[0]):
        r, mu = grid.dispersion[i], grid.mean[i]
        dist = stats.poisson(mu) if not np.isfinite(r) else stats.nbinom(r, r / (r + mu))
        for level in (0.1, 0.5, 0.9):
            np.testing.assert_array_equal(q[level][i], np.where(mu > 0, dist.ppf(level), 0.0))
    assert q[0.5][0, 0] == 0.0  # zero mean demand


def test_quantiles_of_large_means_match_scipy() -> None:
    mean = np.array([[150.0, 199.0, 201.0, 5000.0], [150.0, 199.0, 201.0, 5000.0]])
    grid = _grid(mean, np.array([np.inf, 3.0]))
    for level in (0.05, 0.5, 0.95):
        got = grid.quantile(level)
        np.testing.assert_array_equal(got[0], stats.poisson.ppf(level, mean[0]))
        np.testing.assert_array_equal(got[1], stats.nbinom.ppf(level, 3.0, 3.0 / (3.0 + mean[1])))


def test_overdispersion_widens_the_interval() -> None:
    mean = np.full((2, 1), 20.0)
    grid = _grid(mean, np.array([np.inf, 2.0]))
    p10, p90 = grid.quantile(0.1), grid.quantile(0.9)
    assert (p90 - p10)[1, 0] > (p90 - p10)[0, 0]
    np.testing.assert_allclose(grid.variance()[:, 0], [20.0, 20.0 + 400.0 / 2.0])
    # Overdispersed demand sells less under the same cap.
    capped = grid.expected_capped(20)
    assert capped[1, 0] < capped[0, 0]


def test_sellout_probability_is_probability_of_demand_reaching_the_cap(grid: ForecastGrid) -> None:
    i, j = 5, 1
    r, mu = grid.dispersion[i], grid.mean[i, j]
    dist = stats.poisson(mu) if not np.isfinite(r) else stats.nbinom(r, r / (r + mu))
    assert grid.sellout_probability(4)[i, j] == pytest.approx(dist.sf(3))


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="shapes disagree"):
        _grid(np.ones((3, 2)), np.ones(3)).__class__(
            skus=["a"],
            prices_cents=np.ones((2, 2)),
            mean=np.ones((2, 2)),
            dispersion=np.ones(1),
            signal_ids=[[]],
        )
    with pytest.raises(ValueError, match="non-negative"):
        _grid(-np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="dispersion"):
        _grid(np.ones((2, 2)), np.zeros(2))
    grid = _grid(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="between 0 and 1"):
        grid.quantile(1.0)
    with pytest.raises(ValueError, match="broadcast"):
        grid.expected_capped(np.ones(3))
    with pytest.raises(KeyError):
        grid.row("nope")


def test_subset_keeps_rows_aligned(grid: ForecastGrid) -> None:
    sub = grid.subset([3, 1])
    assert sub.skus == ["SKU-3", "SKU-1"]
    np.testing.assert_array_equal(sub.mean, grid.mean[[3, 1]])
    np.testing.assert_array_equal(sub.dispersion, grid.dispersion[[3, 1]])
