"""A small shop with known demand parameters, written straight into the schema, for demand-model tests.

Independent of the market simulator on purpose: the demand tests know exactly which process generated the
data (negative-binomial daily demand, log-log price response, weekly profile, trend, flash-sale lift,
sold-out sale days) and can check that the fit recovers it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from db.bulk import bulk_insert
from db.models import FlashSalePlan, Order, OrderLine, PlanItem, PriceHistory, Product

DOW = np.log(np.array([0.9, 0.85, 0.9, 1.0, 1.1, 1.25, 1.1]))


@dataclass
class ShopTruth:
    skus: list[str]
    categories: list[str]
    brands: list[str]
    elasticity: np.ndarray
    base_rate: np.ndarray  # units/day at list price, average weekday, at the end of the window
    trend: np.ndarray
    lift: np.ndarray
    list_price: np.ndarray
    start: dt.date
    end: dt.date
    nb_size: float
    units: np.ndarray | None = None  # realised (capped) units, (n, T)
    featured: np.ndarray | None = None

    def expected(self, i: np.ndarray, date: dt.date, price: np.ndarray, featured: np.ndarray) -> np.ndarray:
        years = (date - self.end).days / 365.25
        return np.asarray(
            self.base_rate[i]
            * np.exp(DOW[date.weekday()] - DOW.mean() + self.trend[i] * years)
            * (price / self.list_price[i]) ** self.elasticity[i]
            * np.where(featured, self.lift[i], 1.0)
        )


def build_synthetic_shop(
    engine: Engine,
    *,
    n_skus: int = 60,
    n_days: int = 240,
    end: dt.date = dt.date(2026, 6, 30),
    seed: int = 3,
    with_price_history: bool = True,
    sale_slots: int = 8,
    nb_size: float = 4.0,
    shock: tuple[str, int, float] | None = None,
) -> ShopTruth:
    """Generate ``n_days`` of sales for ``n_skus`` products into the (migrated, empty) database.

    ``shock=(category, days, multiplier)`` multiplies that category's demand over the last ``days`` days
    (a market shock, not part of the returned base rates)."""
    rng = np.random.default_rng(seed)
    start = end - dt.timedelta(days=n_days - 1)
    cats = ["audio", "kitchen", "toys"]
    cat_elast = {"audio": -2.2, "kitchen": -1.4, "toys": -1.8}
    skus = [f"SKU-{i:04d}" for i in range(n_skus)]
    categories = [cats[i % len(cats)] for i in range(n_skus)]
    brands = [f"brand-{i % 5}" for i in range(n_skus)]
    elasticity = np.array([cat_elast[c] for c in categories]) + rng.normal(0, 0.4, n_skus)
    elasticity = np.clip(elasticity, -4.0, -0.3)
    base_rate = rng.lognormal(np.log(4.0), 0.8, n_skus)
    trend = rng.normal(0.0, 0.3, n_skus)
    lift = rng.lognormal(np.log(1.8), 0.15, n_skus)
    list_price = rng.integers(10, 200, n_skus) * 100
    truth = ShopTruth(
        skus, categories, brands, elasticity, base_rate, trend, lift, list_price, start, end, nb_size
    )

    # Shelf price: list price with a few permanent changes of -25 %..+10 % per SKU.
    shelf = np.tile(list_price.astype(float), (n_days, 1)).T
    price_rows: list[tuple[str, int, dt.datetime]] = []
    for i, sku in enumerate(skus):
        price_rows.append((sku, int(list_price[i]), dt.datetime.combine(start, dt.time())))
        for day in sorted(rng.choice(np.arange(20, n_days), size=3, replace=False)):
            new = round(float(list_price[i]) * rng.uniform(0.75, 1.1))
            shelf[i, day:] = new
            price_rows.append((sku, new, dt.datetime.combine(start + dt.timedelta(days=int(day)), dt.time())))

    # Flash sales: ``sale_slots`` random SKUs a day at a 10-50 % discount off the shelf price.
    featured = np.zeros((n_skus, n_days), dtype=bool)
    sale_price = shelf.copy()
    allocation = np.full((n_skus, n_days), np.inf)
    plans: list[tuple[int, dt.date]] = []
    items: list[tuple[int, str, float, int, int]] = []
    for day in range(0, n_days, 3):
        chosen = rng.choice(n_skus, size=sale_slots, replace=False)
        plan_id = len(plans) + 1
        plans.append((plan_id, start + dt.timedelta(days=day)))
        for i in chosen:
            disc = rng.choice([0.1, 0.2, 0.3, 0.4, 0.5])
            featured[i, day] = True
            sale_price[i, day] = round(shelf[i, day] * (1 - disc))
            mean = truth.expected(
                np.array([i]), start + dt.timedelta(days=day), sale_price[i, day : day + 1], True
            )
            allocation[i, day] = max(1, int(mean[0] * rng.uniform(0.8, 3.0)))
            items.append(
                (plan_id, skus[i], float(disc * 100), int(sale_price[i, day]), int(allocation[i, day]))
            )

    # Daily demand, capped by the allocation on sale days.
    units = np.zeros((n_skus, n_days), dtype=np.int64)
    for day in range(n_days):
        date = start + dt.timedelta(days=day)
        mu = truth.expected(np.arange(n_skus), date, sale_price[:, day], featured[:, day])
        if shock is not None and day >= n_days - shock[1]:
            mu = mu * np.where(np.array(categories) == shock[0], shock[2], 1.0)
        demand = rng.negative_binomial(nb_size, nb_size / (nb_size + mu))
        units[:, day] = np.minimum(demand, allocation[:, day])

    with engine.begin() as conn:
        bulk_insert(
            conn,
            Product.__table__,  # type: ignore[arg-type]
            [
                "sku",
                "title",
                "category",
                "brand",
                "cost_cents",
                "list_price_cents",
                "is_product",
                "attributes",
            ],
            [
                (s, f"Item {s}", c, b, int(p * 0.5), int(p), True, {})
                for s, c, b, p in zip(skus, categories, brands, list_price, strict=True)
            ]
            + [("SHIP", "Shipping", "service", "shop", 0, 500, False, {})],
        )
        if with_price_history:
            bulk_insert(conn, PriceHistory.__table__, ["sku", "price_cents", "valid_from"], price_rows)  # type: ignore[arg-type]
        bulk_insert(
            conn,
            FlashSalePlan.__table__,  # type: ignore[arg-type]
            ["id", "sale_date", "status", "objective", "constraints", "solver_stats", "created_by"],
            [(pid, d, "closed", {}, {}, {}, "test") for pid, d in plans],
        )
        bulk_insert(
            conn,
            PlanItem.__table__,  # type: ignore[arg-type]
            [
                "plan_id",
                "sku",
                "discount_pct",
                "sale_price_cents",
                "allocated_units",
                "forecast_units",
                "expected_revenue_cents",
                "expected_profit_cents",
            ],
            [(pid, s, d, p, a, 0.0, 0, 0) for pid, s, d, p, a in items],
        )
        orders: list[tuple[str, dt.datetime, bool]] = []
        lines: list[tuple[str, str, int, int, dt.datetime]] = []
        for i, day in zip(*np.nonzero(units), strict=True):
            ts = dt.datetime.combine(start + dt.timedelta(days=int(day)), dt.time(12, 0))
            order_id = f"O-{i}-{day}"
            orders.append((order_id, ts, False))
            # Split into two lines to exercise aggregation; unit price is what was paid.
            q = int(units[i, day])
            paid = int(sale_price[i, day])
            lines.append((order_id, skus[i], q - q // 2, paid, ts))
            if q // 2:
                lines.append((order_id, skus[i], q // 2, paid, ts))
            if rng.random() < 0.05:  # a return, never demand
                lines.append((order_id, skus[i], -1, paid, ts))
        bulk_insert(conn, Order.__table__, ["id", "ts", "is_cancellation"], orders)  # type: ignore[arg-type]
        bulk_insert(
            conn,
            OrderLine.__table__,  # type: ignore[arg-type]
            ["order_id", "sku", "qty", "unit_price_cents", "ts"],
            [(o, s, q, p, t) for o, s, q, p, t in lines],
        )
    truth.featured = featured
    truth.units = units
    return truth
