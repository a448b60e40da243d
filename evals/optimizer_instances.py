"""Synthetic optimiser instances (for the solve-time benchmark and the optimiser's tests).

Demand follows the design's model: ``base * (p / list)^elasticity * flash lift``, negative binomial.
Everything is generated with numpy in one pass, so a million SKUs take a few seconds.
"""

from __future__ import annotations

import numpy as np

from tools.forecast import ForecastGrid
from tools.optimizer import (
    CLEARANCE_VALUE_OF_COST,
    DEFAULT_LADDER,
    Candidates,
    PlanConstraints,
    ladder_prices,
)


def synthetic_candidates(
    n: int,
    *,
    seed: int = 0,
    ladder: tuple[float, ...] = DEFAULT_LADDER,
    n_categories: int = 20,
    n_brands: int | None = None,
    competitor_share: float = 0.3,
) -> Candidates:
    """``n`` random SKUs with a forecast at every ladder price."""
    rng = np.random.default_rng(seed)
    n_brands = n_brands or max(5, min(500, n // 20))
    cost = np.round(np.exp(rng.normal(7.5, 0.7, n))).astype(np.int64) + 100
    list_price = np.round(cost * rng.uniform(1.4, 2.6, n)).astype(np.int64)
    elasticity = rng.uniform(-4.0, -1.2, n)
    base = np.exp(rng.normal(0.3, 1.0, n))
    lift = rng.uniform(1.2, 2.0, n)
    prices = ladder_prices(list_price, ladder)
    mean = base[:, None] * (prices / list_price[:, None]) ** elasticity[:, None] * lift[:, None]
    dispersion = rng.uniform(2.0, 30.0, n)
    on_hand = rng.poisson(base * 12.0 + 3.0).astype(np.int64)
    safety = np.minimum(on_hand, rng.integers(0, 3, n)).astype(np.int64)
    has_comp = rng.random(n) < competitor_share
    competitor = np.where(has_comp, np.round(list_price * rng.uniform(0.55, 0.95, n)), 0).astype(np.int64)
    excess = np.maximum(on_hand - base * 30.0, 0.0)
    skus = [f"SKU{i:07d}" for i in range(n)]
    grid = ForecastGrid(
        skus=skus,
        prices_cents=prices,
        mean=mean,
        dispersion=dispersion,
        signal_ids=[[] for _ in range(n)],
    )
    return Candidates(
        skus=skus,
        category=np.array([f"cat{c:02d}" for c in range(n_categories)])[rng.integers(0, n_categories, n)],
        brand=np.array([f"brand{b:03d}" for b in range(n_brands)])[rng.integers(0, n_brands, n)],
        cost_cents=cost,
        list_price_cents=list_price,
        on_hand=on_hand,
        grid=grid,
        ladder=ladder,
        safety_stock=safety,
        competitor_price_cents=competitor,
        excess_units=excess,
        clearance_value_cents=np.asarray(cost * CLEARANCE_VALUE_OF_COST, dtype=np.float64),
    )


def benchmark_constraints(cand: Candidates, slots: int) -> PlanConstraints:
    """A realistic constraint set: slots, category variety, brand caps, a binding budget and margins."""
    cats = sorted(set(cand.category.tolist()))
    per_cat_min = max(1, slots // (4 * len(cats)))
    per_cat_max = max(per_cat_min + 1, (slots * 3) // len(cats) // 2)
    brands = sorted(set(cand.brand.tolist()))
    per_brand = max(1, (3 * slots) // max(1, len(brands)))
    # A budget of about 60 % of the markdown the most profitable SKUs would spend without one.
    prices = cand.grid.prices_cents.astype(np.float64)
    profit = (prices - cand.cost_cents[:, None]) * cand.grid.mean
    best = np.argmax(profit, axis=1)
    rows = np.arange(cand.n)
    top = np.argsort(-profit[rows, best])[:slots]
    markdown = (cand.list_price_cents[top] - prices[top, best[top]]) * cand.grid.mean[top, best[top]]
    return PlanConstraints(
        slots=slots,
        category_min=dict.fromkeys(cats, per_cat_min),
        default_category_max=per_cat_max,
        default_brand_max=per_brand,
        markdown_budget_cents=int(0.6 * markdown.sum()),
        min_item_margin=0.05,
        min_plan_margin=0.15,
        match_competitor=True,
    )
