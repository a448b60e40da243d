"""The stochastic history of a simulated shop: orders, order lines, reviews and stock, drawn
deterministically from a :class:`~tools.simulator.world.World` (columnar numpy chunks)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tools.simulator.world import STREAM_INVENTORY, STREAM_SALES, FlashSale, IntArray, World, stream_rng

# ---- history ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesChunk:
    """Orders, order lines and reviews of a block of consecutive days (columnar, numpy)."""

    first_day: int
    last_day: int
    # orders
    order_ids: list[str]
    order_customer: IntArray
    order_ts: NDArray[np.datetime64]
    order_plan_id: IntArray  # 0 = none
    # lines (grouped by order)
    line_order: IntArray  # index into this chunk's orders
    line_sku: IntArray
    line_qty: IntArray
    line_price_cents: IntArray
    # per (sku, day) units for the days of this chunk: (n_days_chunk, n_skus)
    units: IntArray
    # reviews
    review_sku: IntArray
    review_customer: IntArray
    review_rating: IntArray
    review_ts: NDArray[np.datetime64]
    review_text: list[str]

    @property
    def line_customer(self) -> IntArray:
        return np.asarray(self.order_customer[self.line_order], dtype=np.int64)

    @property
    def line_ts(self) -> NDArray[np.datetime64]:
        return self.order_ts[self.line_order]


@dataclass(frozen=True)
class InventorySnapshot:
    sku: IntArray
    on_hand: IntArray
    reserved: IntArray
    as_of: dt.datetime


@dataclass(frozen=True)
class History:
    """Every generated row of a shop, columnar (numpy arrays and lists)."""

    world: World
    chunks: list[SalesChunk]
    inventory: InventorySnapshot

    def concat(self, name: str) -> NDArray[Any]:
        """Concatenate one array attribute of every sales chunk (e.g. ``"line_sku"``)."""
        if name == "line_order":  # make order indices global
            offsets = np.cumsum([0] + [len(c.order_ids) for c in self.chunks[:-1]])
            return np.concatenate([c.line_order + o for c, o in zip(self.chunks, offsets, strict=True)])
        return np.concatenate([np.asarray(getattr(c, name)) for c in self.chunks])

    @property
    def units(self) -> IntArray:
        """Realised units, shape (n_days, n_skus)."""
        return np.asarray(np.concatenate([c.units for c in self.chunks]), dtype=np.int64)


REVIEW_RATE = 0.04
REVIEW_TEMPLATES: dict[int, tuple[str, ...]] = {
    1: ("Terrible {noun}. It broke almost immediately, avoid.", "Very disappointed with this {noun} from "
        "{brand}; poor quality.", "Waste of money. The {noun} does not work as advertised."),
    2: ("The {noun} is below expectations; feels cheap.", "Not great. My {brand} {noun} has quality issues.",
        "Mediocre {noun}, would not buy again."),
    3: ("An okay {noun} for the price.", "Average {brand} {noun}: does the job, nothing special.",
        "The {noun} is fine, some minor flaws."),
    4: ("Good {noun}, happy with it.", "Solid {brand} {noun}, works well.", "Nice {noun}, good value."),
    5: ("Excellent {noun}! Highly recommended.", "Love this {brand} {noun}, great quality.",
        "Best {noun} I have owned. Five stars."),
}  # fmt: skip
DEFECT_TEMPLATES = (
    "The {noun} stopped working after a week. Looks like a bad batch.",
    "Defective {noun}: the new {brand} batch has a faulty part.",
    "Second {brand} {noun} with the same defect. Quality has clearly dropped recently.",
)


def iter_sales(world: World, chunk_days: int = 30) -> Iterator[SalesChunk]:
    """Generate the order history block by block (the same data whatever ``chunk_days``)."""
    n_days = world.config.n_days
    flash_by_day = {f.day: f for f in world.flash_sales}
    day = 0
    while day < n_days:
        last = min(n_days - 1, day + chunk_days - 1)
        yield _sales_chunk(world, day, last, flash_by_day)
        day = last + 1


def _sales_chunk(world: World, first: int, last: int, flash_by_day: dict[int, FlashSale]) -> SalesChunk:
    cfg = world.config
    epoch = np.datetime64(cfg.start_date.isoformat(), "s")
    order_ids: list[str] = []
    order_customer, order_ts, order_plan, line_order, line_sku, line_qty, line_price = ([] for _ in range(7))
    units_rows = []
    r_sku, r_cust, r_rating, r_ts = [], [], [], []
    r_text: list[str] = []
    n_orders = 0
    for day in range(first, last + 1):
        rng = stream_rng(cfg.seed, STREAM_SALES, day)
        flash = flash_by_day.get(day)
        day_in = world.day_inputs(day)
        price, featured, alloc = day_in.price_cents, day_in.featured, day_in.allocated_units
        units = np.minimum(world._nb(rng, world.day_expected(day, day_in)), alloc)
        units_rows.append(units)
        sold = np.flatnonzero(units)
        lines = world._lines_for(rng, sold, units[sold], price[sold])
        # one order per customer and day
        uniq, inv = np.unique(lines.customer, return_inverse=True)
        k = uniq.size
        secs = (rng.beta(2.2, 1.6, k) * 86_399).astype(np.int64)
        ts = epoch + np.timedelta64(day * 86_400, "s") + secs.astype("timedelta64[s]")
        if flash is not None:
            has_flash = np.bincount(inv, weights=featured[lines.sku], minlength=k) > 0
            plan = np.where(has_flash, flash.plan_id, 0)
        else:
            plan = np.zeros(k, dtype=np.int64)
        stamp = world.date_of(day).strftime("%Y%m%d")
        order_ids.extend(f"O{stamp}-{j + 1:06d}" for j in range(k))
        order_customer.append(uniq)
        order_ts.append(ts)
        order_plan.append(plan)
        line_order.append(inv + n_orders)
        line_sku.append(lines.sku)
        line_qty.append(lines.qty)
        line_price.append(lines.price)
        n_orders += k
        # reviews: a few buyers review after a short delay, rating follows the hidden quality
        n_rev = rng.binomial(lines.qty, REVIEW_RATE)
        rl = np.flatnonzero(n_rev)
        if rl.size:
            rl = np.repeat(rl, n_rev[rl])
            rev_day = day + rng.geometric(0.25, rl.size)
            keep = rev_day <= cfg.n_days - 1
            rl, rev_day = rl[keep], rev_day[keep]
            rs = lines.sku[rl]
            q = world.quality0[rs] - world.defect_drop[rs] * (rev_day >= world.defect_day[rs])
            rating = np.clip(np.round(3.6 + 0.9 * q + rng.normal(0, 0.8, rl.size)), 1, 5).astype(np.int64)
            rsec = rng.integers(0, 86_400, rl.size)
            r_sku.append(rs)
            r_cust.append(lines.customer[rl])
            r_rating.append(rating)
            r_ts.append(epoch + (rev_day * 86_400 + rsec).astype("timedelta64[s]"))
            variant = rng.integers(0, 3, rl.size)
            defective = rev_day >= world.defect_day[rs]
            for s, r, v, d in zip(
                rs.tolist(), rating.tolist(), variant.tolist(), defective.tolist(), strict=True
            ):
                tpl = DEFECT_TEMPLATES[v] if d and r <= 2 else REVIEW_TEMPLATES[r][v]
                noun = world.attributes[s]["noun"].lower()
                r_text.append(tpl.format(noun=noun, brand=world.brand_names[world.brand[s]]))

    def cat(parts: list[Any], dtype: Any = np.int64) -> Any:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    return SalesChunk(
        first_day=first,
        last_day=last,
        order_ids=order_ids,
        order_customer=cat(order_customer),
        order_ts=cat(order_ts, "datetime64[s]"),
        order_plan_id=cat(order_plan),
        line_order=cat(line_order),
        line_sku=cat(line_sku),
        line_qty=cat(line_qty),
        line_price_cents=cat(line_price),
        units=np.vstack(units_rows),
        review_sku=cat(r_sku),
        review_customer=cat(r_cust),
        review_rating=cat(r_rating),
        review_ts=cat(r_ts, "datetime64[s]"),
        review_text=r_text,
    )


def inventory_snapshot(world: World) -> InventorySnapshot:
    """Stock at the end of the last history day: days of cover vary widely (scarce to excess)."""
    rng = stream_rng(world.config.seed, STREAM_INVENTORY)
    last = world.config.n_days - 1
    rate = world.baseline(last + 1) * (world.shelf_prices(last) / world.list_price_cents) ** world.elasticity
    cover = np.exp(rng.normal(math.log(35), 0.9, world.n_skus))
    on_hand = np.round(rate * cover).astype(np.int64)
    for shock, mask in zip(world.shocks, world._shock_masks, strict=True):
        if shock.kind == "brand_supply" and shock.active(last):
            on_hand[mask] = np.round(on_hand[mask] * 0.15).astype(np.int64)
    reserved = rng.binomial(on_hand, 0.02)
    as_of = dt.datetime.combine(world.config.end_date, dt.time(23, 59, 59))
    return InventorySnapshot(np.arange(world.n_skus), on_hand, reserved.astype(np.int64), as_of)


def generate_history(world: World, chunk_days: int = 30) -> History:
    """All generated rows of ``world``'s shop (deterministic; fits in memory for the default sizes)."""
    return History(world, list(iter_sales(world, chunk_days)), inventory_snapshot(world))
