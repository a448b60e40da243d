"""Demand forecasts on a grid of (SKU, price) candidates, with their count distribution.

A :class:`ForecastGrid` holds, for ``n`` SKUs and ``k`` candidate prices each, the expected units of demand
and the negative-binomial size ``r`` of each SKU (``np.inf`` means Poisson). Demand ``D`` of a cell is
negative binomial with mean ``mu`` and variance ``mu + mu**2 / r``. From that distribution the grid answers
the questions the optimiser and the reports ask: quantiles (P10/P50/P90), the expected units sold under a
stock cap, ``E[min(D, a)]``, and the probability of selling out. Everything is vectorised over the whole grid.
:func:`allocation_and_sales` answers the optimiser's question (newsvendor allocation and the units it sells)
in one pass over the probability mass function.

The capped expectation uses a closed form rather than a sum over units. For a negative binomial
``D ~ NB(r, p)`` with mean ``mu``, ``j * P(D = j) = mu * P(D' = j - 1)`` where ``D' ~ NB(r + 1, p)`` (for
Poisson ``D' = D``), hence for an integer cap ``a``::

    E[min(D, a)] = mu * P(D' <= a - 1) + a * P(D > a)

and for a fractional cap ``c`` with ``a = floor(c)``: ``E[min(D, c)] = E[min(D, a)] + (c - a) * P(D > a)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
RECURSION_MAX_MEAN = 200.0


def _pmf_walk_start(mu: FloatArray, r: FloatArray) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray]:
    """Start a walk over the probability mass functions of cells with means ``mu`` and NB sizes ``r``.

    Returns the Poisson mask (``r`` infinite), the ``ratio`` and ``add`` terms of the recursion and
    ``P(D = 0)``; :func:`_pmf_walk_step` turns ``P(D = j)`` into ``P(D = j + 1)``.
    """
    pois = ~np.isfinite(r)
    r_nb = np.where(pois, 1.0, r)
    ratio = np.where(pois, mu, mu / (r_nb + mu))  # multiplies (j + r) / (j + 1), or 1 / (j + 1) for Poisson
    add = np.where(pois, 0.0, r_nb)
    pmf = np.where(pois, np.exp(-mu), np.exp(r_nb * (np.log(r_nb) - np.log(r_nb + mu))))
    return pois, ratio, add, pmf


def _pmf_walk_step(
    pmf: FloatArray, pois: BoolArray, add: FloatArray, ratio: FloatArray, j: int
) -> FloatArray:
    """``P(D = j + 1)`` from ``P(D = j)``: ``P(j+1) = P(j) * (j + r) / (j + 1) * mu / (r + mu)``."""
    return np.asarray(pmf * np.where(pois, 1.0, j + add) * ratio / (j + 1), dtype=np.float64)


@dataclass(frozen=True)
class ForecastGrid:
    """Forecast demand for ``len(skus)`` SKUs at ``prices_cents.shape[1]`` candidate prices each.

    Attributes:
        skus: the SKU of each row.
        prices_cents: (n, k) int64 candidate prices, in cents.
        mean: (n, k) expected units of demand at each price (uncapped).
        dispersion: (n,) negative-binomial size ``r`` per SKU; ``np.inf`` for Poisson.
        signal_ids: for each SKU, the ids of the market signals that changed its forecast.
        model_id: id of the stored demand model that produced the grid (``None`` if not stored).
        meta: free-form provenance (forecast date, featured flag, ...).
    """

    skus: list[str]
    prices_cents: NDArray[np.int64]
    mean: FloatArray
    dispersion: FloatArray
    signal_ids: list[list[int]]
    model_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        prices = np.asarray(self.prices_cents)
        mean = np.asarray(self.mean, dtype=np.float64)
        if prices.ndim == 1:
            prices = prices[:, None]
        if mean.ndim == 1:
            mean = mean[:, None]
        dispersion = np.asarray(self.dispersion, dtype=np.float64).reshape(-1)
        n = len(self.skus)
        if prices.shape[0] != n or mean.shape != prices.shape:
            raise ValueError(
                f"ForecastGrid shapes disagree: {n} skus, prices {prices.shape}, mean {mean.shape}"
            )
        if dispersion.shape != (n,):
            raise ValueError(f"dispersion must have one value per SKU ({n}), got shape {dispersion.shape}")
        if len(self.signal_ids) != n:
            raise ValueError(f"signal_ids must have one list per SKU ({n}), got {len(self.signal_ids)}")
        if not np.all(np.isfinite(mean)) or np.any(mean < 0):
            raise ValueError("mean demand must be finite and non-negative")
        if np.any(np.isnan(dispersion)) or np.any(dispersion <= 0):
            raise ValueError("dispersion (negative-binomial size) must be positive, or inf for Poisson")
        object.__setattr__(self, "prices_cents", prices.astype(np.int64, copy=False))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "dispersion", dispersion)

    # ---- shape helpers ----------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        """(number of SKUs, number of candidate prices)."""
        n, k = self.mean.shape
        return int(n), int(k)

    def row(self, sku: str) -> int:
        """Row index of ``sku``; raises ``KeyError`` if the grid does not hold it."""
        try:
            return self.skus.index(sku)
        except ValueError:
            raise KeyError(f"SKU {sku!r} is not in this forecast grid") from None

    def _r(self) -> FloatArray:
        """Dispersion broadcast to the grid's shape."""
        return np.broadcast_to(self.dispersion[:, None], self.mean.shape)

    def _split(self) -> tuple[NDArray[np.bool_], FloatArray, FloatArray]:
        """Mask of Poisson cells, their NB size and success probability (p = r / (r + mu))."""
        r = self._r()
        poisson = ~np.isfinite(r)
        r_nb = np.where(poisson, 1.0, r)
        p_nb = r_nb / (r_nb + self.mean)
        return poisson, r_nb, p_nb

    def _cap(self, cap: ArrayLike) -> FloatArray:
        cap_arr = np.asarray(cap, dtype=np.float64)
        try:
            cap_arr = np.broadcast_to(cap_arr, self.mean.shape)
        except ValueError:
            raise ValueError(
                f"cap of shape {cap_arr.shape} cannot be broadcast to the grid's shape {self.mean.shape}"
            ) from None
        if np.any(np.isnan(cap_arr)):
            raise ValueError("cap must not be NaN")
        return cap_arr

    # ---- distribution ---------------------------------------------------------------------------------

    def variance(self) -> FloatArray:
        """Variance of demand per cell: ``mu + mu**2 / r`` (``mu`` for Poisson)."""
        r = self._r()
        finite = np.isfinite(r)
        extra = np.where(finite, self.mean**2 / np.where(finite, r, 1.0), 0.0)
        return np.asarray(self.mean + extra, dtype=np.float64)

    def cdf(self, units: ArrayLike) -> FloatArray:
        """P(D <= units) per cell; ``units`` broadcastable to (n, k)."""
        x = self._cap(units)
        poisson, r_nb, p_nb = self._split()
        out = np.where(poisson, stats.poisson.cdf(x, self.mean), stats.nbinom.cdf(x, r_nb, p_nb))
        return np.asarray(out, dtype=np.float64)

    def sf(self, units: ArrayLike) -> FloatArray:
        """P(D > units) per cell: the probability that demand exceeds ``units`` (sells out a cap of units)."""
        x = self._cap(units)
        poisson, r_nb, p_nb = self._split()
        out = np.where(poisson, stats.poisson.sf(x, self.mean), stats.nbinom.sf(x, r_nb, p_nb))
        return np.asarray(out, dtype=np.float64)

    def quantile(self, q: float) -> FloatArray:
        """The ``q``-quantile of demand per cell (smallest integer u with P(D <= u) >= q), shape (n, k)."""
        return self.quantiles((q,))[q]

    def quantiles(self, levels: tuple[float, ...] = (0.1, 0.5, 0.9)) -> dict[float, FloatArray]:
        """Several quantiles at once, e.g. ``{0.1: P10, 0.5: P50, 0.9: P90}``, each (n, k).

        Cells with a mean up to :data:`RECURSION_MAX_MEAN` (daily SKU demand, nearly always) walk the
        probability mass function once for all levels (``P(j+1) = P(j) (j + r) / (j + 1) · mu / (r + mu)``),
        several times faster than scipy's per-level inversion; larger means use ``scipy.stats`` ``ppf``.
        """
        for q in levels:
            if not 0.0 < q < 1.0:
                raise ValueError(f"quantile level must be strictly between 0 and 1, got {q}")
        qs = np.asarray(levels, dtype=np.float64)
        mu = self.mean.reshape(-1)
        r = np.broadcast_to(self.dispersion[:, None], self.mean.shape).reshape(-1)
        out = np.zeros((len(qs), mu.size))
        big = mu > RECURSION_MAX_MEAN
        if big.any():
            rb, mb = r[big], mu[big]
            pois = ~np.isfinite(rb)
            r_nb = np.where(pois, 1.0, rb)
            for li, q in enumerate(qs):
                out[li, big] = np.where(
                    pois, stats.poisson.ppf(q, mb), stats.nbinom.ppf(q, r_nb, r_nb / (r_nb + mb))
                )
        act = np.flatnonzero(~big & (mu > 0))
        if act.size:
            pois, ratio, add, pmf = _pmf_walk_start(mu[act], r[act])
            cdf = np.zeros(act.size)
            found = np.full((len(qs), act.size), -1.0)
            target = qs[:, None] - 1e-12
            j = 0
            while act.size:
                cdf = cdf + pmf
                hit = (found < 0) & (cdf[None, :] >= target)
                found[hit] = j
                done = (found >= 0).all(axis=0)
                if done.any():
                    out[:, act[done]] = found[:, done]
                    keep = ~done
                    act, ratio, add, pmf, cdf = act[keep], ratio[keep], add[keep], pmf[keep], cdf[keep]
                    pois, found = pois[keep], found[:, keep]
                pmf = _pmf_walk_step(pmf, pois, add, ratio, j)
                j += 1
        shape = self.mean.shape
        return {float(q): out[li].reshape(shape) for li, q in enumerate(qs)}

    def expected_capped(self, cap: ArrayLike) -> FloatArray:
        """E[min(D, cap)] per cell: expected units sold when at most ``cap`` units are available.

        ``cap`` is broadcast to (n, k): a scalar, an (n, 1) column of allocations per SKU, or a full (n, k)
        array. Fractional caps are handled exactly; ``np.inf`` gives the mean; caps <= 0 give 0.
        """
        cap_arr = self._cap(cap)
        mu = self.mean
        finite = np.isfinite(cap_arr)
        a = np.where(finite, np.floor(np.clip(cap_arr, 0.0, None)), 0.0)
        frac = np.where(finite, np.clip(cap_arr, 0.0, None) - a, 0.0)
        poisson, r_nb, p_nb = self._split()

        sf_a = np.where(poisson, stats.poisson.sf(a, mu), stats.nbinom.sf(a, r_nb, p_nb))
        # D' is NB(r + 1, p) (Poisson: D itself); P(D' <= a - 1).
        cdf_shift = np.where(
            poisson, stats.poisson.cdf(a - 1.0, mu), stats.nbinom.cdf(a - 1.0, r_nb + 1.0, p_nb)
        )
        capped = mu * cdf_shift + a * sf_a + frac * sf_a
        capped = np.where(finite, capped, mu)
        capped = np.where(cap_arr <= 0, 0.0, capped)
        # Guard against rounding: 0 <= E[min(D, c)] <= min(E[D], c).
        upper = np.minimum(mu, np.where(finite, np.clip(cap_arr, 0.0, None), np.inf))
        return np.asarray(np.clip(capped, 0.0, upper), dtype=np.float64)

    def sellout_probability(self, cap: ArrayLike) -> FloatArray:
        """P(D >= cap): the chance that an allocation of ``cap`` units sells out."""
        cap_arr = self._cap(cap)
        return self.sf(np.ceil(cap_arr) - 1.0)

    def subset(self, rows: ArrayLike) -> ForecastGrid:
        """A grid with only the given rows (indices or boolean mask)."""
        idx = np.arange(len(self.skus))[np.asarray(rows)]
        return ForecastGrid(
            skus=[self.skus[i] for i in idx],
            prices_cents=self.prices_cents[idx],
            mean=self.mean[idx],
            dispersion=self.dispersion[idx],
            signal_ids=[self.signal_ids[i] for i in idx],
            model_id=self.model_id,
            meta=dict(self.meta),
        )


def allocation_and_sales(
    grid: ForecastGrid, service_level: float, available: IntArray, excess: FloatArray | None = None
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Allocation, expected units sold and expected units sold out of excess stock, all (n, k).

    allocation ``a = min(max(Q_q(D), 1), available)`` (the newsvendor quantile, at least one unit, never
    more than is available); units ``E[min(D, a)] = sum_{j<a} P(D > j)``; clearance units the same with the
    cap ``min(a, excess)``. Equal to ``grid.quantile`` / ``grid.expected_capped`` (to rounding) but computed
    in one vectorised pass over the probability mass function (:func:`_pmf_walk_step`), about three times
    faster than the quantile plus two scipy-based ``expected_capped`` calls for the small means of daily SKU
    demand. Cells with a mean above :data:`RECURSION_MAX_MEAN` units use the grid's own methods. The
    optimiser's coefficients come from here.
    """
    n, k = grid.shape
    mu = grid.mean.reshape(-1)
    r = np.repeat(grid.dispersion, k)
    avail = np.repeat(np.asarray(available, dtype=np.float64), k)
    exc = np.repeat(np.floor(np.asarray(excess, dtype=np.float64)), k) if excess is not None else None
    quant = np.zeros(n * k)
    units = np.zeros(n * k)
    clear = np.zeros(n * k)

    big = mu > RECURSION_MAX_MEAN
    if big.any():
        rows = np.flatnonzero(big)
        sub = ForecastGrid(
            skus=[str(j) for j in rows.tolist()],
            prices_cents=np.zeros((rows.size, 1), dtype=np.int64),
            mean=mu[rows][:, None],
            dispersion=r[rows],
            signal_ids=[[] for _ in range(rows.size)],
        )
        q_big = sub.quantile(service_level)[:, 0]
        a_big = np.minimum(np.maximum(q_big, 1.0), avail[rows])
        quant[rows] = q_big
        units[rows] = sub.expected_capped(a_big[:, None])[:, 0]
        if exc is not None:
            clear[rows] = sub.expected_capped(np.minimum(a_big, exc[rows])[:, None])[:, 0]

    act = np.flatnonzero(~big)
    pois_act, ratio, add, pmf = _pmf_walk_start(mu[act], r[act])
    cdf = pmf.copy()
    q_found = np.full(act.size, -1.0)
    cap_a = avail[act]
    cap_c = np.minimum(cap_a, exc[act]) if exc is not None else np.zeros(act.size)
    acc_u = np.zeros(act.size)
    acc_c = np.zeros(act.size)
    j = 0
    while act.size:
        new_q = (q_found < 0) & (cdf >= service_level)
        q_found[new_q] = j
        a_now = np.where(q_found < 0, cap_a, np.minimum(np.maximum(q_found, 1.0), cap_a))
        tail = np.clip(1.0 - cdf, 0.0, 1.0)
        acc_u += np.where(j < a_now, tail, 0.0)
        acc_c += np.where((j < a_now) & (j < cap_c), tail, 0.0)
        done = (q_found >= 0) & (j + 1 >= a_now) | (j > 100_000)
        if done.any():
            idx = act[done]
            quant[idx] = np.where(q_found[done] < 0, j, q_found[done])
            units[idx] = acc_u[done]
            clear[idx] = acc_c[done]
            keep = ~done
            act, ratio, add, pmf, cdf = act[keep], ratio[keep], add[keep], pmf[keep], cdf[keep]
            q_found, pois_act = q_found[keep], pois_act[keep]
            cap_a, cap_c, acc_u, acc_c = cap_a[keep], cap_c[keep], acc_u[keep], acc_c[keep]
        pmf = _pmf_walk_step(pmf, pois_act, add, ratio, j)
        cdf = cdf + pmf
        j += 1
    alloc = np.minimum(np.maximum(quant, 1.0), avail).astype(np.int64).reshape(n, k)
    sold = np.asarray(np.minimum(units, grid.mean.reshape(-1)).reshape(n, k), dtype=np.float64)
    return alloc, sold, np.asarray(clear.reshape(n, k), dtype=np.float64)
