"""The demand model: expected units of a SKU on a day at a price, fitted on order history.

    E[units_i(t, p)] = base_i(t) · (p / ref_i)^ε_i · lift_i^featured · m_signal_i(t)

* ``base_i(t) = exp(level_i + trend_i · years(t - window_end) + dow_c[weekday(t)])``: a per-SKU level and
  trend with a weekly profile shared by the SKU's category.
* ``ε_i``: price elasticity from a per-SKU log-log Poisson regression (statsmodels GLM, quasi-Poisson
  standard errors) with the category's weekday and flash-sale effects as offsets, shrunk toward the
  category's elasticity by empirical Bayes: ``ε_i = m_c + w_i (ε̂_i - m_c)`` with
  ``w_i = τ_c² / (τ_c² + se_i²)`` and ``τ_c²`` the DerSimonian-Laird between-SKU variance
  (statsmodels ``combine_effects``). SKUs without price variation get the category's value. The trend is
  pooled the same way.
* ``lift_i``: extra demand on flash-sale days. A pooled Poisson regression per category (scikit-learn,
  sparse design with SKU fixed effects and SKU trends, weekday, log price and a flash-sale dummy) gives
  the weekday profile and a first lift; the final lift is the category's observed over expected units on
  its sale days, shrunk toward the shop's by empirical Bayes (a SKU is featured too rarely for its own).
* Sold-out sale days censor demand at the allocation: their units are replaced by ``E[D | D >= cap]``
  under the current fit (Poisson at first, then the fitted negative binomial) and the fit repeated (EM).
* Counts are negative binomial with a per-category size ``r`` from the Cameron-Trivedi auxiliary
  regression (Poisson when there is no overdispersion).

Prices come from ``price_history`` (shelf price) and the closed flash-sale plans (sale price on sale days).
Imported logs without a price history use each day's mean unit price of the order lines, carried over days
without sales. Returns and cancellations (``qty <= 0``) and non-products are excluded.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, Field
from scipy import sparse, stats
from sklearn.linear_model import PoissonRegressor
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from statsmodels.stats.meta_analysis import combine_effects
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from db.errors import FlashSaleError
from db.models import (
    DemandModelRun,
    Order,
)
from db.sqlvalues import utc_now
from tools.forecast import ForecastGrid
from tools.sales_panel import INFERENCE_RULE, SalesPanel, last_sales_date, load_sales_panel
from tools.signals import SignalEffect, signal_multipliers

MODEL_VERSION = "loglog-eb-nb/1"
DEFAULT_WINDOW_DAYS = 365
MIN_FIT_DAYS = 5  # selling days needed before a SKU gets its own elasticity regression
TREND_HORIZON_YEARS = 0.5  # the trend is extrapolated at most this far past the window
ELASTICITY_RANGE = (-8.0, -0.05)
#: The elasticity of a group when no group's estimate is usable.
DEFAULT_ELASTICITY = -1.5
#: Prices are read relative to the reference within this range: a unit price of a cent or a bundle's total
#: read as a unit price is a data error, and no flash sale goes beyond 80 % off.
PRICE_RATIO_RANGE = (0.2, 5.0)
LIFT_RANGE = (1.0, 20.0)
#: The log-lift spread assumed where the shop has no promoted period at all: a 90 % interval up to 2x.
NO_EVIDENCE_LOG_LIFT_SD = math.log(2.0) / 1.645

FloatArray = NDArray[np.float64]
ProgressCallback = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as the fit advances (e.g. to drive a progress bar)."""


class DemandModelError(FlashSaleError):
    """The demand model cannot be fitted or used as asked."""


class NoSalesHistory(DemandModelError):
    """There are no order lines to fit on."""


class UnknownSkus(DemandModelError):
    """Forecast asked for SKUs the model was not fitted on."""


# ---- the model ----------------------------------------------------------------------------------------


class SkuDemandParams(BaseModel):
    """One SKU's fitted demand parameters, for explanations and reports."""

    sku: str
    category: str
    brand: str
    ref_price_cents: int = Field(description="Reference price at which base demand is expressed.")
    base_units_per_day: float = Field(description="Mean daily units at the reference price at window end.")
    trend_per_year: float = Field(description="Log growth of base demand per year.")
    elasticity: float = Field(description="Price elasticity after pooling toward the category (< 0).")
    elasticity_own: float | None = Field(description="The SKU's own estimate before pooling, if any.")
    elasticity_se: float | None = Field(description="Standard error of the own estimate.")
    elasticity_weight: float = Field(description="Weight of the own estimate in the pooled value (0..1).")
    flash_lift: float = Field(description="Demand multiplier on flash-sale days.")
    dispersion: float | None = Field(description="Negative-binomial size r (None = Poisson).")
    selling_days: int = Field(description="Days with sales in the fitting window.")


@dataclass
class DemandModel:
    """A fitted demand model. Per-SKU arrays are aligned with ``skus``."""

    skus: list[str]
    categories: list[str]
    brands: list[str]
    ref_price_cents: FloatArray
    level: FloatArray  # log mean units/day at the reference price, weekday-average, at window_end
    trend: FloatArray  # log growth per year
    elasticity: FloatArray
    elasticity_own: FloatArray  # NaN where no own estimate
    elasticity_se: FloatArray  # NaN where no own estimate
    elasticity_weight: FloatArray
    lift: FloatArray
    dispersion: FloatArray  # NB size r, inf for Poisson
    selling_days: NDArray[np.int64]
    category_params: dict[str, dict[str, Any]]  # per category: dow (7 log effects), elasticity, tau2, lift
    window_start: dt.date
    window_end: dt.date
    fitted_at: dt.datetime
    version: str = MODEL_VERSION
    metrics: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    pool_groups: list[str] = field(default_factory=list)  # the group each SKU was pooled with; [] = category
    period_days: int = 1  # length of the periods it was fitted on: 1 (daily) or 7 (weekly)
    # Per SKU, in units per day of the fitting window: the recent mean, the best ordinary (unpromoted)
    # period and the best promoted period (NaN: never promoted); see :func:`sales_evidence`.
    evidence: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {sku: i for i, sku in enumerate(self.skus)}
        if self.evidence.shape != (len(self.skus), 3):
            self.evidence = np.full((len(self.skus), 3), np.nan)  # a model stored before it was kept
        if not self.pool_groups:
            self.pool_groups = list(self.categories)
        cats = sorted(self.category_params)
        self._cat_codes = np.array([cats.index(c) for c in self.pool_groups], dtype=np.int64)
        self._dow = np.array([self.category_params[c]["dow"] for c in cats], dtype=np.float64).reshape(-1, 7)

    # -- lookups --

    def rows(self, skus: Sequence[str]) -> NDArray[np.int64]:
        """Row of each SKU; raises :class:`UnknownSkus` naming the first few unknown ones."""
        index = self._index
        out = np.fromiter((index.get(s, -1) for s in skus), dtype=np.int64, count=len(skus))
        if (out < 0).any():
            unknown = [s for s, r in zip(skus, out, strict=True) if r < 0]
            shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise UnknownSkus(
                f"{len(unknown)} SKU(s) are not in demand model {self.id or '(unsaved)'}: {shown}. "
                "Refit with `python cli.py fit` after adding products."
            )
        return out

    def sku_params(self, sku: str) -> SkuDemandParams:
        i = int(self.rows([sku])[0])
        own = self.elasticity_own[i]
        se = self.elasticity_se[i]
        dow = self._dow[self._cat_codes[i]]
        return SkuDemandParams(
            sku=sku,
            category=self.categories[i],
            brand=self.brands[i],
            ref_price_cents=round(self.ref_price_cents[i]),
            base_units_per_day=float(np.exp(self.level[i]) * np.mean(np.exp(dow))),
            trend_per_year=float(self.trend[i]),
            elasticity=float(self.elasticity[i]),
            elasticity_own=None if np.isnan(own) else float(own),
            elasticity_se=None if np.isnan(se) else float(se),
            elasticity_weight=float(self.elasticity_weight[i]),
            flash_lift=float(self.lift[i]),
            dispersion=None if not np.isfinite(self.dispersion[i]) else float(self.dispersion[i]),
            selling_days=int(self.selling_days[i]),
        )

    # -- forecasting --

    def log_base(self, date: dt.date, rows: NDArray[np.int64]) -> FloatArray:
        """log base demand (reference price, not featured, no signals) of ``rows`` on ``date``."""
        years = (date - self.window_end).days / 365.25
        years = min(years, TREND_HORIZON_YEARS)
        dow = self._dow[self._cat_codes[rows], date.weekday()]
        return np.asarray(self.level[rows] + self.trend[rows] * years + dow, dtype=np.float64)

    def expected_units(
        self,
        date: dt.date,
        skus: Sequence[str],
        prices_cents: ArrayLike,
        featured: bool | ArrayLike = True,
        signals: Sequence[SignalEffect] | None = None,
    ) -> FloatArray:
        """Expected units (n, k) at the given prices; ``featured`` is a bool or one bool per SKU."""
        return self.forecast_grid(date, skus, prices_cents, featured, signals).mean

    def forecast_grid(
        self,
        date: dt.date,
        skus: Sequence[str],
        prices_cents: ArrayLike,
        featured: bool | ArrayLike = True,
        signals: Sequence[SignalEffect] | None = None,
        *,
        days: int = 1,
    ) -> ForecastGrid:
        """Forecast demand of ``skus`` over ``days`` days from ``date`` at each candidate price.

        ``prices_cents`` is (n, k) (or (n,) for one price each) in cents, positive. ``featured`` says
        whether the SKUs are in that day's flash sale (a bool, or one bool or intensity in [0, 1] per SKU).
        ``signals`` are applied as bounded multipliers (pass ``tools.signals.active_signals(session, date)``
        to use the stored ones); the grid lists which signals touched each SKU. A model fitted on weeks
        forecasts a day as a seventh of its week (no weekday profile: weekly data have none); the negative
        binomial's size scales with the length, so the demand of ``days`` days is a sum of daily demands.
        """
        skus = list(skus)
        prices = np.asarray(prices_cents)
        if prices.ndim == 1:
            prices = prices[:, None]
        if prices.ndim != 2 or prices.shape[0] != len(skus):
            raise DemandModelError(
                f"prices_cents must be (n, k) with n = {len(skus)} SKUs; got shape {prices.shape}"
            )
        if prices.size and (not np.all(np.isfinite(prices)) or np.any(prices <= 0)):
            raise DemandModelError("prices_cents must be positive and finite")
        rows = self.rows(skus)
        feat = np.broadcast_to(np.asarray(featured, dtype=np.float64), (len(skus),))
        scale = days / self.period_days
        log_mean = (
            self.log_base(date, rows)[:, None]
            + np.log(scale)
            + self.elasticity[rows, None] * log_price_ratio(prices, self.ref_price_cents[rows, None])
            + (feat * np.log(self.lift[rows]))[:, None]
        )
        touched: list[list[int]] = [[] for _ in skus]
        if signals:
            mult, touched = signal_multipliers(
                signals,
                skus,
                [self.categories[r] for r in rows],
                [self.brands[r] for r in rows],
                date,
            )
            log_mean = log_mean + np.log(mult)[:, None]
        return ForecastGrid(
            skus=skus,
            prices_cents=np.rint(prices).astype(np.int64),
            mean=np.exp(log_mean),
            dispersion=self.dispersion[rows] * scale,
            signal_ids=touched,
            model_id=self.id,
            meta={
                "date": date.isoformat(),
                "days": days,
                "featured": bool((feat > 0).all()) if len(feat) else bool(featured),
            },
        )

    # -- persistence --

    def to_params(self) -> dict[str, Any]:
        def floats(a: ArrayLike) -> list[float | None]:
            return [None if not math.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]

        return {
            "skus": list(self.skus),
            "category": list(self.categories),
            "brand": list(self.brands),
            "ref_price_cents": floats(self.ref_price_cents),
            "level": floats(self.level),
            "trend": floats(self.trend),
            "elasticity": floats(self.elasticity),
            "elasticity_own": floats(self.elasticity_own),
            "elasticity_se": floats(self.elasticity_se),
            "elasticity_weight": floats(self.elasticity_weight),
            "lift": floats(self.lift),
            "dispersion": floats(self.dispersion),  # None = Poisson
            "selling_days": [int(v) for v in self.selling_days],
            "categories": self.category_params,
            "pool_group": list(self.pool_groups),
            "period_days": self.period_days,
            "evidence_recent": floats(self.evidence[:, 0]),
            "evidence_best_ordinary": floats(self.evidence[:, 1]),
            "evidence_best_promotion": floats(self.evidence[:, 2]),
        }

    @classmethod
    def from_run(cls, run: DemandModelRun) -> DemandModel:
        p = run.params

        def arr(key: str, missing: float = np.nan) -> FloatArray:
            return np.array([missing if v is None else v for v in p[key]], dtype=np.float64)

        return cls(
            skus=list(p["skus"]),
            categories=list(p["category"]),
            brands=list(p["brand"]),
            ref_price_cents=arr("ref_price_cents"),
            level=arr("level"),
            trend=arr("trend"),
            elasticity=arr("elasticity"),
            elasticity_own=arr("elasticity_own"),
            elasticity_se=arr("elasticity_se"),
            elasticity_weight=arr("elasticity_weight"),
            lift=arr("lift"),
            dispersion=arr("dispersion", np.inf),
            selling_days=np.array(p["selling_days"], dtype=np.int64),
            category_params=dict(p["categories"]),
            window_start=run.window_start,
            window_end=run.window_end,
            fitted_at=run.fitted_at,
            version=run.version,
            metrics=dict(run.metrics or {}),
            id=run.id,
            pool_groups=list(p.get("pool_group") or p["category"]),
            period_days=int(p.get("period_days") or 1),
            evidence=np.column_stack(
                [arr(k) for k in ("evidence_recent", "evidence_best_ordinary", "evidence_best_promotion")]
            )
            if "evidence_recent" in p
            else np.zeros((0, 3)),
        )


def save_demand_model(session: Session, model: DemandModel) -> int:
    """Store ``model`` in ``demand_model`` (in the caller's transaction); sets and returns its id."""
    run = DemandModelRun(
        fitted_at=model.fitted_at,
        window_start=model.window_start,
        window_end=model.window_end,
        version=model.version,
        params=model.to_params(),
        metrics=model.metrics,
    )
    session.add(run)
    session.flush()
    model.id = run.id
    return run.id


def load_demand_model(session: Session, model_id: int) -> DemandModel:
    run = session.get(DemandModelRun, model_id)
    if run is None:
        raise DemandModelError(f"no demand model with id {model_id}; run `python cli.py fit` to fit one")
    return DemandModel.from_run(run)


def load_latest_demand_model(session: Session) -> DemandModel | None:
    """The most recently fitted stored model, or ``None`` when none has been fitted yet."""
    run = session.scalars(
        select(DemandModelRun).order_by(DemandModelRun.fitted_at.desc(), DemandModelRun.id.desc()).limit(1)
    ).first()
    return None if run is None else DemandModel.from_run(run)


FINGERPRINT_KEY = "data_fingerprint"


def data_fingerprint(session: Session) -> dict[str, Any]:
    """Number of orders and the newest order time: changes whenever orders are added or removed."""
    count, newest = session.execute(select(func.count(Order.id), func.max(Order.ts))).one()
    newest_text = None if newest is None else str(newest)[:19]
    return {"orders": int(count or 0), "newest_order": newest_text}


def is_current(session: Session, model: DemandModel) -> bool:
    """Whether ``model`` was fitted on the orders the database holds now.

    A model fitted by :func:`refresh_demand_model` carries the data's fingerprint and is current while it
    matches; a model fitted elsewhere (``python cli.py fit``) is current when no order is newer than the
    end of its window.
    """
    stored = model.metrics.get(FINGERPRINT_KEY)
    if stored is not None:
        return bool(stored == data_fingerprint(session))
    newest = last_sales_date(session)
    return newest is not None and newest <= model.window_end


def refresh_demand_model(
    session: Session, *, progress: Callable[[str], None] | None = None
) -> tuple[DemandModel, bool]:
    """The latest stored demand model when it is current (:func:`is_current`), else a new fit on the current
    data, stored with the data's fingerprint in the caller's transaction. Returns the model and whether it is
    new."""
    model = load_latest_demand_model(session)
    if model is not None and is_current(session, model):
        return model, False
    if progress:
        progress("refitting the demand model (order data changed)" if model else "fitting the demand model")
    fitted = fit_demand_model(
        session,
        progress=None
        if progress is None
        else lambda stage, done, total: progress(
            f"fitting: {stage} ({done:,}/{total:,})" if total else f"fitting: {stage}"
        ),
    )
    fitted.metrics[FINGERPRINT_KEY] = data_fingerprint(session)
    save_demand_model(session, fitted)
    return fitted, True


# ---- fitting --------------------------------------------------------------------------------------------


def _censored_mean(mu: FloatArray, cap: FloatArray, size: FloatArray | float = np.inf) -> FloatArray:
    """E[D | D >= cap] for D negative binomial with mean ``mu`` and size ``size`` (Poisson if inf).

    Uses ``E[D 1{D >= a}] = mu P(D' >= a - 1)`` with ``D' ~ NB(size + 1, p)`` (``D' = D`` for Poisson).
    """
    r = np.broadcast_to(np.asarray(size, dtype=np.float64), np.shape(mu))
    poisson = ~np.isfinite(r)
    r_nb = np.where(poisson, 1.0, r)
    p_nb = r_nb / (r_nb + mu)
    num = np.where(poisson, stats.poisson.sf(cap - 2.0, mu), stats.nbinom.sf(cap - 2.0, r_nb + 1.0, p_nb))
    den = np.where(poisson, stats.poisson.sf(cap - 1.0, mu), stats.nbinom.sf(cap - 1.0, r_nb, p_nb))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 1e-12, mu * num / np.maximum(den, 1e-300), cap + mu)
    return np.asarray(np.maximum(out, cap), dtype=np.float64)


@dataclass
class _CategoryFit:
    dow: FloatArray  # (7,) log effects, mean zero
    elasticity: float
    lift: float  # log lift
    sku_level: dict[int, float]  # row -> log level (at window end)
    sku_trend: dict[int, float]


def _fit_category_pooled(
    rows: NDArray[np.int64],
    panel: SalesPanel,
    y: FloatArray,
    years: FloatArray,
    logrel: FloatArray,
    *,
    offset: FloatArray | None = None,
) -> _CategoryFit:
    """Pooled Poisson regression of one category: SKU fixed effects and trends, weekday, log price, flash.

    An ``offset`` (n, T) in log units enters as the equivalent rate regression: target ``y / e^offset`` with
    sample weights ``e^offset`` has the same Poisson likelihood (scikit-learn has no offset argument)."""

    sub_active = panel.active[rows]
    r_idx, t_idx = np.nonzero(sub_active)
    m = len(r_idx)
    n_sku = len(rows)
    target = y[rows][r_idx, t_idx]
    weight = None
    if offset is not None:
        weight = np.exp(offset[rows][r_idx, t_idx])
        target = target / weight
    wd = panel.weekday[t_idx]
    yrs = years[t_idx]
    lp = logrel[rows][r_idx, t_idx]
    ft = panel.featured[rows][r_idx, t_idx].astype(np.float64)
    # Columns: n_sku dummies | n_sku trends | 6 weekdays (Mon base) | log price | featured
    ones = np.ones(m)
    wd_rows = np.flatnonzero(wd > 0)
    data = np.concatenate([ones, yrs, np.ones(len(wd_rows)), lp, ft])
    row_ids = np.concatenate([np.arange(m), np.arange(m), wd_rows, np.arange(m), np.arange(m)])
    col_ids = np.concatenate(
        [
            r_idx,
            n_sku + r_idx,
            2 * n_sku + wd[wd_rows] - 1,
            np.full(m, 2 * n_sku + 6),
            np.full(m, 2 * n_sku + 7),
        ]
    )
    x = sparse.csr_matrix((data, (row_ids, col_ids)), shape=(m, 2 * n_sku + 8))
    reg = PoissonRegressor(alpha=1e-6, fit_intercept=False, solver="newton-cholesky", max_iter=100, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(x, target, sample_weight=weight)
    coef = reg.coef_
    dow = np.concatenate([[0.0], coef[2 * n_sku : 2 * n_sku + 6]])
    dow_mean = dow.mean()
    dow = dow - dow_mean
    return _CategoryFit(
        dow=dow,
        elasticity=float(coef[2 * n_sku + 6]),
        lift=float(coef[2 * n_sku + 7]),
        sku_level={int(rows[j]): float(coef[j] + dow_mean) for j in range(n_sku)},
        sku_trend={int(rows[j]): float(coef[n_sku + j]) for j in range(n_sku)},
    )


def _sku_regression(
    y: FloatArray,
    years: FloatArray,
    logrel: FloatArray,
    offset: FloatArray,
    featured: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray] | None:
    """Per-SKU quasi-Poisson GLM y ~ 1 + years + log(p/ref) [+ featured] with an offset; (params, se) of
    the first three, or None. With ``featured`` the SKU's sale days get their own lift, so that its
    elasticity comes from its price changes alone."""

    columns = [np.ones_like(years), years, logrel] + ([featured] if featured is not None else [])
    x = np.column_stack(columns)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.GLM(y, x, family=sm.families.Poisson(), offset=offset).fit(scale="X2", maxiter=50)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None
    params = np.asarray(res.params, dtype=np.float64)[:3]
    se = np.asarray(res.bse, dtype=np.float64)[:3]
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(se))):
        return None
    return params, se


def _pool(estimates: FloatArray, se: FloatArray, prior_mean: float) -> tuple[float, float]:
    """(mean, tau²) of per-SKU estimates by DerSimonian-Laird random effects; ``prior_mean`` and no
    between-SKU variance when fewer than 3 SKUs have an estimate."""
    ok = np.isfinite(estimates) & np.isfinite(se) & (se > 0)
    if ok.sum() < 3:
        return prior_mean, 0.0
    mean, tau2, _ = _pool_with_se(estimates[ok], se[ok])
    return mean, tau2


def _dispersion_size(y: FloatArray, mu: FloatArray) -> float:
    """NB size r from the Cameron-Trivedi auxiliary regression ((y-mu)^2 - y)/mu = alpha * mu (OLS)."""

    ok = mu > 1e-6
    if ok.sum() < 10:
        return np.inf
    aux = ((y[ok] - mu[ok]) ** 2 - y[ok]) / mu[ok]
    alpha = float(sm.OLS(aux, mu[ok]).fit().params[0])
    return np.inf if alpha <= 1e-3 else 1.0 / alpha


def _levels(y: FloatArray, act: NDArray[np.bool_], log_rest: FloatArray, n_days: int) -> FloatArray:
    """Per-SKU log level: the Poisson MLE of an intercept given the other terms, log(sum y / sum exp(rest)).

    A SKU that never sold gets half a unit over its active window (or over the whole window)."""
    expo = np.exp(log_rest)
    denom = np.where(act, expo, 0.0).sum(axis=1)
    total = np.where(act, y, 0.0).sum(axis=1)
    total = np.where(total > 0, total, 0.5)
    fallback = expo.sum(axis=1) / max(n_days, 1) * np.maximum(act.sum(axis=1), 1)
    denom = np.where(denom > 0, denom, fallback)
    return np.asarray(np.log(total / np.maximum(denom, 1e-12)), dtype=np.float64)


@dataclass(frozen=True)
class LiftEstimate:
    """The sale lift of one pooling group: the raw estimate, its standard error, the value shrunk toward
    no lift and its 90 % interval (log scale), from ``periods`` promoted periods."""

    raw: float
    se: float
    log_lift: float
    low: float
    high: float
    periods: int
    at_bound: bool


def _group_lift(y: FloatArray, s: FloatArray, mu0: FloatArray) -> tuple[float, float, int]:
    """Poisson MLE of the log lift ``l`` in ``E[y] = mu0 exp(l s)`` over promoted cells (``s > 0``), by
    Newton's method, with a quasi-Poisson standard error; (nan, inf, 0) without promoted cells."""
    cells = s > 0
    m = int(cells.sum())
    if m == 0:
        return float("nan"), float("inf"), 0
    yy, ss, mm = y[cells], s[cells], mu0[cells]
    lam = 0.0
    for _ in range(50):
        mu = mm * np.exp(lam * ss)
        grad = float((ss * (yy - mu)).sum())
        hess = float((ss * ss * mu).sum())
        if hess <= 1e-12:
            break
        step = grad / hess
        lam = float(np.clip(lam + step, -3.0, 6.0))
        if abs(step) < 1e-8:
            break
    mu = mm * np.exp(lam * ss)
    info = float((ss * ss * mu).sum())
    phi = max(1.0, float(((yy - mu) ** 2 / np.maximum(mu, 1e-9)).sum() / max(m - 1, 1)))
    return lam, float(np.sqrt(phi / info)) if info > 0 else float("inf"), m


def _flash_lifts(
    y: FloatArray, intensity: FloatArray, log_no_lift: FloatArray, group_of: NDArray[np.int64], n_groups: int
) -> tuple[FloatArray, list[LiftEstimate]]:
    """Per-SKU log sale lift: its pooling group's, estimated on the group's promoted periods and pooled by
    empirical Bayes toward the shop's lift, itself shrunk toward no lift (log lift 0).

    A group's raw log lift is the Poisson MLE over its promoted periods (``intensity`` in (0, 1]: the share of
    the period and of the locations under promotion), with a quasi-Poisson standard error. The shop's lift
    is the random-effects mean of the groups' (DerSimonian-Laird, with the between-group variance ``tau2``),
    shrunk toward no lift by the prior :data:`NO_EVIDENCE_LOG_LIFT_SD`: a shop with little evidence has
    little lift. Each group keeps ``shop + w (raw - shop)`` with ``w = tau2 / (tau2 + se^2)``; a group without
    promoted periods gets the shop's lift, with the shop's uncertainty as its interval (the prior's when no
    group has any). :func:`_sku_lifts` refines SKUs promoted often enough. A raw estimate outside
    :data:`LIFT_RANGE` is reported (``at_bound``), never used as it is."""
    raws = []
    for g in range(n_groups):
        members = group_of == g
        raws.append(_group_lift(y[members], intensity[members], np.exp(log_no_lift[members])))
    raw = np.array([r[0] for r in raws])
    se = np.array([r[1] for r in raws])
    has = np.isfinite(raw) & np.isfinite(se)
    prior = NO_EVIDENCE_LOG_LIFT_SD**2
    if has.any():
        mean0, tau2, se_mean = _pool_with_se(raw[has], se[has])
        shop = max(mean0 * prior / (prior + se_mean**2), 0.0)
        shop_var = prior * se_mean**2 / (prior + se_mean**2)
    else:
        tau2, shop, shop_var = 0.0, 0.0, prior
    lo_bound, hi_bound = np.log(LIFT_RANGE[0]), np.log(LIFT_RANGE[1])
    estimates = []
    for g in range(n_groups):
        if has[g]:
            w = tau2 / (tau2 + se[g] ** 2) if tau2 > 0 else 0.0
            post = float(shop + w * (raw[g] - shop))
            sd = float(np.sqrt(w * se[g] ** 2 + (1 - w) ** 2 * shop_var))
        else:
            post, sd = shop, float(np.sqrt(tau2 + shop_var))
        at_bound = bool(has[g] and not lo_bound - 1e-9 <= raw[g] <= hi_bound + 1e-9)
        post = float(np.clip(post, lo_bound, hi_bound))
        estimates.append(
            LiftEstimate(
                raw=float(raw[g]),
                se=float(se[g]),
                log_lift=post,
                low=float(np.clip(post - 1.645 * sd, lo_bound, hi_bound)),
                high=float(np.clip(post + 1.645 * sd, lo_bound, hi_bound)),
                periods=raws[g][2],
                at_bound=at_bound,
            )
        )
    per_sku = np.array([estimates[g].log_lift for g in group_of], dtype=np.float64)
    return per_sku, estimates


#: Promoted periods a SKU needs before its own lift is estimated (and pooled toward its group's).
MIN_SKU_PROMOTED_PERIODS = 8


def _sku_lifts(
    y: FloatArray,
    intensity: FloatArray,
    log_no_lift: FloatArray,
    group_of: NDArray[np.int64],
    group_log_lift: FloatArray,
) -> FloatArray:
    """Per-SKU log lifts: each SKU with at least :data:`MIN_SKU_PROMOTED_PERIODS` promoted periods gets its
    own Poisson estimate shrunk toward its group's lift by empirical Bayes (the between-SKU variance of the
    group by the method of moments); the others keep the group's lift. A shop that promotes each SKU a
    handful of times keeps its group lifts. Sold-out periods count at their imputed demand (``y`` holds
    ``E[D | D >= cap]`` there, the EM step): leaving them out would keep only the periods whose demand
    happened to be low, a lift biased toward none."""
    out = group_log_lift[group_of].astype(np.float64).copy()
    counts = (intensity > 0).sum(axis=1)
    rows = np.flatnonzero(counts >= MIN_SKU_PROMOTED_PERIODS)
    if rows.size == 0:
        return out
    raw = np.full(rows.size, np.nan)
    se = np.full(rows.size, np.inf)
    for k, i in enumerate(rows):
        raw[k], se[k], _ = _group_lift(y[i], intensity[i], np.exp(log_no_lift[i]))
    ok = np.isfinite(raw) & np.isfinite(se)
    lo, hi = np.log(LIFT_RANGE[0]), np.log(LIFT_RANGE[1])
    for g in np.unique(group_of[rows[ok]]):
        sel = ok & (group_of[rows] == g)
        dev = raw[sel] - group_log_lift[g]
        tau2 = float(max(np.mean(dev**2 - se[sel] ** 2), 0.0))
        if tau2 <= 0:
            continue
        w = tau2 / (tau2 + se[sel] ** 2)
        out[rows[sel]] = np.clip(group_log_lift[g] + w * dev, lo, hi)
    return out


def _pool_with_se(estimates: FloatArray, se: FloatArray) -> tuple[float, float, float]:
    """(random-effects mean, tau², se of the mean) by DerSimonian-Laird (statsmodels combine_effects)."""

    ok = np.isfinite(estimates) & np.isfinite(se) & (se > 0)
    if ok.sum() == 0:
        return float("nan"), 0.0, float("inf")
    if ok.sum() < 3:
        w = 1.0 / se[ok] ** 2
        return float((w * estimates[ok]).sum() / w.sum()), 0.0, float(np.sqrt(1.0 / w.sum()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = combine_effects(estimates[ok], se[ok] ** 2, method_re="dl")
    if not res.tau2 > 0:
        # Q below its degrees of freedom: DerSimonian-Laird's variance is zero and the random-effects mean is
        # the fixed-effect one (statsmodels leaves tau² negative and weights with it, off the estimates'
        # range).
        return float(res.mean_effect_fe), 0.0, float(res.sd_eff_w_fe)
    return float(res.mean_effect_re), float(res.tau2), float(res.sd_eff_w_re)


def fit_demand_model(
    session: Session,
    *,
    window_end: dt.date | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    progress: ProgressCallback | None = None,
) -> DemandModel:
    """Fit the demand model on the ``window_days`` days of order history ending at ``window_end``.

    ``window_end`` defaults to the day of the newest order line. Nothing is written to the database; call
    :func:`save_demand_model` to store the result.
    """
    started = time.perf_counter()
    last = last_sales_date(session)
    if last is None:
        raise NoSalesHistory("there are no order lines to fit on; build a shop with `python cli.py demo`")
    end = window_end or last
    if end > last:
        raise DemandModelError(
            f"--window-end {end} is after the newest order ({last}): days without data would read as days "
            "without sales. Leave it out to fit up to the newest order."
        )
    if window_days < 28:
        raise DemandModelError(f"the fitting window must be at least 28 days, got {window_days}")
    start = end - dt.timedelta(days=window_days - 1)
    panel = load_sales_panel(session, start, end)
    if not panel.units[panel.active].sum() > 0:
        raise NoSalesHistory(f"no sales between {start} and {end}; pick another --window-end")
    return fit_panel(panel, progress=progress, started=started)


def _single_threaded() -> Any:
    # Many small regressions: OpenMP/BLAS thread pools only add contention (10x slower on a busy machine).

    return threadpool_limits(limits=1)


def fit_panel(
    panel: SalesPanel, *, progress: ProgressCallback | None = None, started: float | None = None
) -> DemandModel:
    """Fit the demand model on an already loaded :class:`SalesPanel`."""
    started = time.perf_counter() if started is None else started
    with _single_threaded():
        return _fit_panel(panel, progress, started)


#: Least SKUs per group for pooling by a level of the hierarchy.
MIN_POOL_SIZE = 3


def pooling_groups(panel: SalesPanel) -> tuple[list[str], str]:
    """The group each SKU borrows strength from, and the level used: its category when the shop has several
    categories of at least :data:`MIN_POOL_SIZE` SKUs; else the first of department, sub-category and brand
    that has; else a price band (quartiles of the list price); else the whole shop."""

    def usable(labels: list[str]) -> bool:
        counts = pd.Series([x for x in labels if x and x != "uncategorised"]).value_counts()
        return bool((counts >= MIN_POOL_SIZE).sum() >= 2)

    if usable(panel.categories):
        return list(panel.categories), "category"
    for level in ("department", "sub_category", "brand"):
        labels = panel.pool_labels.get(level)
        if labels is not None and usable(labels):
            return [x or "unknown" for x in labels], level
    if len(panel.skus) >= 4 * MIN_POOL_SIZE:
        prices = pd.Series(panel.list_price_cents).rank(method="first")
        bands = pd.qcut(prices, 4, labels=False)
        return [f"price band {int(b) + 1} of 4" for b in bands], "price band"
    return ["shop"] * len(panel.skus), "shop"


def _group_elasticities(
    own: FloatArray, own_se: FloatArray, group_of: NDArray[np.int64], pooled: list[float]
) -> list[tuple[float, float, bool]]:
    """Per pooling group: (elasticity, between-SKU variance tau², at_bound). The random-effects mean of its
    SKUs' own estimates (the pooled regression's value without any); a mean outside
    :data:`ELASTICITY_RANGE` is an estimate the data cannot support, reported (``at_bound``) and replaced by
    the median of the other groups' elasticities."""
    out = []
    for c, prior in enumerate(pooled):
        members = group_of == c
        mean_e, tau2_e = _pool(own[members, 2], own_se[members, 2], prior_mean=prior)
        if not np.isfinite(mean_e):
            mean_e = prior
        lo, hi = ELASTICITY_RANGE
        out.append((float(mean_e), float(tau2_e), not lo <= mean_e <= hi))
    inside = [e for e, _, at_bound in out if not at_bound]
    fallback = float(np.median(inside)) if inside else DEFAULT_ELASTICITY
    return [(fallback if at_bound else e, t, at_bound) for e, t, at_bound in out]


def _fit_panel(panel: SalesPanel, progress: ProgressCallback | None, started: float) -> DemandModel:
    n, n_days = panel.units.shape
    groups, pooled_by = pooling_groups(panel)
    cats = sorted(set(groups))
    cat_of = np.array([cats.index(c) for c in groups], dtype=np.int64)
    selling_days = (panel.units > 0).sum(axis=1).astype(np.int64)
    years = (np.arange(n_days) - (n_days - 1)) * panel.period_days / 365.25  # 0 at window end

    # Reference price: list price when known, else the median price over the active window.
    active_price = np.where(panel.active, panel.price, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median_price = np.nanmedian(active_price, axis=1)
    median_price = np.where(np.isfinite(median_price), median_price, panel.price[:, -1])
    ref = np.where(panel.list_price_cents > 0, panel.list_price_cents, median_price)
    ref = np.maximum(ref, 1.0)
    logrel = log_price_ratio(panel.price, ref[:, None])
    y = panel.units.copy()
    censored = panel.censored
    sig = panel.signal_log if panel.signal_log is not None else np.zeros_like(y)
    total_steps = len(cats) + n + 3
    done = 0

    def tick(stage: str, steps: int = 1) -> None:
        nonlocal done
        done += steps
        if progress is not None:
            progress(stage, done, total_steps)

    # Stage 1: pooled category regressions (weekday profile, category elasticity and flash lift), with
    # one EM step for sold-out sale days.
    cat_fits: dict[int, _CategoryFit] = {}
    for c, _name in enumerate(cats):
        rows = np.flatnonzero((cat_of == c) & (selling_days > 0))
        if len(rows) == 0:
            cat_fits[c] = _CategoryFit(np.zeros(7), DEFAULT_ELASTICITY, 0.0, {}, {})
            tick("category regressions")
            continue
        fit = _fit_category_pooled(rows, panel, y, years, logrel, offset=panel.signal_log)
        cens_rows = censored[rows]
        if cens_rows.any():
            r_idx, t_idx = np.nonzero(cens_rows)
            g = rows[r_idx]
            mu = np.exp(
                np.array([fit.sku_level[int(i)] for i in g])
                + np.array([fit.sku_trend[int(i)] for i in g]) * years[t_idx]
                + fit.dow[panel.weekday[t_idx]]
                + fit.elasticity * logrel[g, t_idx]
                + fit.lift
                + sig[g, t_idx]
            )
            y[g, t_idx] = _censored_mean(mu, panel.cap[g, t_idx])
            fit = _fit_category_pooled(rows, panel, y, years, logrel, offset=panel.signal_log)
        cat_fits[c] = fit
        tick("category regressions")

    # Stage 2: per-SKU elasticity and trend regressions with the category's weekday and lift as offsets;
    # a SKU promoted often enough for its own lift (stage 4) gets its own sale-day term instead, so that a
    # lift unlike its category's does not pass for a price response.
    dow_of = np.array([cat_fits[c].dow for c in range(len(cats))])  # (C, 7)
    lift_c = np.array([cat_fits[c].lift for c in range(len(cats))])
    own = np.full((n, 3), np.nan)
    own_se = np.full((n, 3), np.nan)
    weekday = panel.weekday

    def own_slopes(skus: Iterable[int], count: bool) -> None:
        for i in skus:
            c = cat_of[i]
            act = panel.active[i]
            lr = logrel[i, act]
            if selling_days[i] >= MIN_FIT_DAYS and np.ptp(lr) > 1e-3:
                feat = panel.featured[i, act]
                promoted = feat > 0
                own_lift = (
                    promoted.sum() >= MIN_SKU_PROMOTED_PERIODS
                    and (~promoted).sum() >= MIN_FIT_DAYS
                    and np.ptp(lr[~promoted]) > 1e-3
                )
                offset = dow_of[c, weekday[act]] + (0.0 if own_lift else lift_c[c] * feat) + sig[i, act]
                res = _sku_regression(y[i, act], years[act], lr, offset, feat if own_lift else None)
                if res is not None:
                    own[i], own_se[i] = res
            if count:
                tick("SKU regressions")

    own_slopes(range(n), count=True)

    # Stage 3: empirical-Bayes pooling of elasticities and trends toward their category.
    def pooled_slopes() -> tuple[FloatArray, FloatArray, FloatArray, dict[str, dict[str, Any]], list[str]]:
        elasticity = np.empty(n)
        weight = np.zeros(n)
        trend = np.empty(n)
        params: dict[str, dict[str, Any]] = {}
        group_e = _group_elasticities(own, own_se, cat_of, [cat_fits[c].elasticity for c in range(len(cats))])
        at_bound = [cats[c] for c, (_, _, bound) in enumerate(group_e) if bound]
        for c, name in enumerate(cats):
            members = np.flatnonzero(cat_of == c)
            e_hat, e_se = own[members, 2], own_se[members, 2]
            mean_e, tau2_e, _ = group_e[c]
            se_e = np.where(np.isfinite(e_se), e_se, 1.0)
            w = np.where(np.isfinite(e_se) & np.isfinite(e_hat), tau2_e / (tau2_e + se_e**2), 0.0)
            elasticity[members] = np.clip(mean_e + w * (np.nan_to_num(e_hat) - mean_e), *ELASTICITY_RANGE)
            weight[members] = w
            t_hat, t_se = own[members, 1], own_se[members, 1]
            sku_trends = np.array([cat_fits[c].sku_trend.get(int(i), np.nan) for i in members])
            prior_t = float(np.nanmedian(sku_trends)) if np.isfinite(sku_trends).any() else 0.0
            mean_t, tau2_t = _pool(t_hat, t_se, prior_mean=prior_t)
            if not np.isfinite(mean_t):
                mean_t = prior_t
            se_t = np.where(np.isfinite(t_se), t_se, 1.0)
            wt = np.where(np.isfinite(t_se) & np.isfinite(t_hat), tau2_t / (tau2_t + se_t**2), 0.0)
            trend[members] = mean_t + wt * (np.nan_to_num(t_hat) - mean_t)
            params[name] = {
                "dow": [float(v) for v in cat_fits[c].dow],
                "elasticity": mean_e,
                "elasticity_pooled_glm": cat_fits[c].elasticity,
                "elasticity_tau2": tau2_e,
                "trend": mean_t,
                "trend_tau2": tau2_t,
            }
        return elasticity, weight, trend, params, at_bound

    elasticity, weight, trend, category_params, elasticity_at_bound = pooled_slopes()
    tick("pooling")

    # Stage 4: per-SKU level given the pooled slopes (Poisson MLE of the intercept, closed form), each SKU's
    # category's flash lift (shrunk toward the shop's), and the NB dispersion per category.
    # Then sold-out sale days are re-imputed under the fitted negative binomial, the slopes of the SKUs with
    # sold-out days refitted on the imputed demand (stages 2 and 3), and stage 4 repeated (EM).
    def log_no_lift() -> FloatArray:
        return np.asarray(
            dow_of[cat_of][:, weekday] + trend[:, None] * years[None, :] + elasticity[:, None] * logrel + sig
        )

    no_lift = log_no_lift()
    censored_skus = np.flatnonzero(censored.any(axis=1))
    act = panel.active
    usable = act & ~censored
    lift_log = lift_c[cat_of].copy()
    level = np.zeros(n)
    dispersion = np.full(n, np.inf)
    intensity = np.where(act, panel.featured, 0.0)
    lifts: list[LiftEstimate] = []
    for _em in range(3):
        for _ in range(2):
            level = _levels(y, act, no_lift + lift_log[:, None] * panel.featured, n_days)
            lift_log, lifts = _flash_lifts(y, intensity, level[:, None] + no_lift, cat_of, len(cats))
            lift_log = _sku_lifts(
                y,
                intensity,
                level[:, None] + no_lift,
                cat_of,
                np.array([est.log_lift for est in lifts]),
            )
        mu_all = np.exp(level[:, None] + no_lift + lift_log[:, None] * panel.featured)
        for c in range(len(cats)):
            members = cat_of == c
            mask = usable & members[:, None]
            dispersion[members] = _dispersion_size(panel.units[mask], mu_all[mask])
        if not censored.any():
            break
        r_idx, t_idx = np.nonzero(censored)
        y[r_idx, t_idx] = _censored_mean(mu_all[r_idx, t_idx], panel.cap[r_idx, t_idx], dispersion[r_idx])
        own_slopes(censored_skus, count=False)
        elasticity, weight, trend, category_params, elasticity_at_bound = pooled_slopes()
        no_lift = log_no_lift()
    for c, name in enumerate(cats):
        r_c = float(dispersion[cat_of == c][0]) if (cat_of == c).any() else np.inf
        est = lifts[c]
        category_params[name].update(
            {
                "lift": float(np.exp(est.log_lift)),
                "lift_low": float(np.exp(est.low)),
                "lift_high": float(np.exp(est.high)),
                "lift_raw": None if not np.isfinite(est.raw) else float(np.exp(est.raw)),
                "lift_periods": est.periods,
                "lift_at_bound": est.at_bound,
                "lift_pooled_glm": float(np.exp(lift_c[c])),
                "dispersion": None if not np.isfinite(r_c) else r_c,
            }
        )
    tick("levels, lifts, dispersion", 2)

    fitted = mu_all[usable]
    observed = panel.units[usable]
    metrics = {
        "fit_seconds": round(time.perf_counter() - started, 3),
        "n_skus": n,
        "n_sku_days": int(act.sum()),
        "n_units": float(panel.units[act].sum()),
        "n_sale_days": int(((panel.featured > 0) & act).sum()),
        "period_days": panel.period_days,
        "pooled_by": pooled_by,
        "promotion_source": panel.promotion_source,
        "lift_at_bound": [cats[c] for c, est in enumerate(lifts) if est.at_bound],
        "elasticity_at_bound": elasticity_at_bound,
        "n_censored_days": int(censored.sum()),
        "n_own_elasticities": int(np.isfinite(own[:, 2]).sum()),
        "in_sample_wape": float(np.abs(observed - fitted).sum() / max(observed.sum(), 1e-9)),
        "price_source": "price_history" if panel.has_price_history.any() else panel.source.replace(" ", "_"),
        "inferred_promotion_days": panel.inferred_promotions,
        "inference_rule": INFERENCE_RULE if panel.inferred_promotions else None,
        "market_signals_in_window": panel.signal_ids,
    }
    return DemandModel(
        skus=panel.skus,
        categories=panel.categories,
        pool_groups=groups,
        period_days=panel.period_days,
        brands=panel.brands,
        ref_price_cents=ref,
        level=level,
        trend=trend,
        elasticity=elasticity,
        elasticity_own=own[:, 2],
        elasticity_se=own_se[:, 2],
        elasticity_weight=weight,
        lift=np.exp(lift_log),
        dispersion=dispersion,
        selling_days=selling_days,
        category_params=category_params,
        window_start=panel.start,
        window_end=panel.end,
        fitted_at=utc_now(),
        metrics=metrics,
        evidence=sales_evidence(panel),
    )


RECENT_DAYS = 28  # the "recent mean" of the sales evidence


def log_price_ratio(price: ArrayLike, ref: ArrayLike) -> FloatArray:
    """``log(price / ref)`` with the ratio held within :data:`PRICE_RATIO_RANGE`."""
    ratio = np.asarray(price, dtype=np.float64) / np.asarray(ref, dtype=np.float64)
    return np.asarray(np.log(np.clip(ratio, *PRICE_RATIO_RANGE)), dtype=np.float64)


def sales_evidence(panel: SalesPanel) -> FloatArray:
    """Per series (n, 3), in units per day: the mean over the last :data:`RECENT_DAYS` days on offer, the
    best period without promotion and the best promoted period (NaN: never promoted), as sold (a sold-out
    sale day counts what it sold). A weekly panel's periods count a seventh of their week per day."""
    per_day = panel.units / panel.period_days
    act = panel.active
    recent = max(1, RECENT_DAYS // panel.period_days)
    on_offer = act[:, -recent:]
    counted = on_offer.sum(axis=1)
    recent_mean = np.where(
        counted > 0,
        np.where(on_offer, per_day[:, -recent:], 0.0).sum(axis=1) / np.maximum(counted, 1),
        np.nan,
    )
    ordinary = act & (panel.featured <= 0)
    promoted = act & (panel.featured > 0)
    best_ordinary = np.where(ordinary, per_day, 0.0).max(axis=1, initial=0.0)
    best_promotion = np.where(
        promoted.any(axis=1), np.where(promoted, per_day, 0.0).max(axis=1, initial=0.0), np.nan
    )
    return np.column_stack([recent_mean, best_ordinary, best_promotion]).astype(np.float64)
