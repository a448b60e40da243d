"""What customers' reviews say about a SKU, a brand or a category: the rating trend (the recent window
against the history before it, with a rank test), the most negative recent reviews (their text is outside
text, fenced when a model reads it), and the market signals made from reviews that the demand model applies.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import FlashSaleError
from db.models import MarketSignal, Product, Review, SignalScope
from tools.outside_text import OutsideText

Scope = Literal["sku", "brand", "category"]
#: Reviews a window needs on each side before the trend is tested.
MIN_REVIEWS = 5


class UnknownScope(FlashSaleError):
    """The SKU, brand or category names nothing in the catalogue."""


class MonthRating(BaseModel):
    month: str = Field(description="YYYY-MM")
    reviews: int
    mean_rating: float


class ReviewQuote(BaseModel):
    review_id: int
    sku: str
    date: dt.date
    rating: int = Field(description="1-5 stars")
    text: OutsideText


class ReviewSignal(BaseModel):
    signal_id: int
    scope: str
    scope_value: str
    direction: str
    multiplier: float = Field(description="demand multiplier the forecast applies while it is valid")
    confidence: float
    valid_from: dt.date
    valid_to: dt.date
    active_today: bool


class ReviewSummary(BaseModel):
    scope: Scope
    value: str
    skus: int
    recent_days: int
    recent_reviews: int
    recent_mean_rating: float | None
    earlier_reviews: int
    earlier_mean_rating: float | None
    change: float | None = Field(description="recent mean - earlier mean, in stars")
    p_value: float | None = Field(description="Mann-Whitney U test of recent against earlier ratings")
    verdict: str
    by_month: list[MonthRating] = Field(description="the last 6 months, oldest first")
    most_negative_recent: list[ReviewQuote]
    signals_from_reviews: list[ReviewSignal]


def _skus(session: Session, scope: Scope, value: str) -> list[str]:
    column = {"sku": Product.sku, "brand": Product.brand, "category": Product.category}[scope]
    skus = list(session.scalars(select(Product.sku).where(func.lower(column) == value.lower())))
    if not skus:
        raise UnknownScope(f"no {scope} {value!r} in the catalogue; find it with search_products")
    return skus


def review_summary(
    session: Session, scope: Scope, value: str, *, today: dt.date, recent_days: int = 30, worst: int = 5
) -> ReviewSummary:
    """The reviews of a SKU, brand or category up to ``today`` (exclusive): the last ``recent_days``
    against all before them."""
    skus = _skus(session, scope, value)
    end = dt.datetime.combine(today, dt.time.min)
    split = end - dt.timedelta(days=recent_days)
    rows = session.execute(
        select(Review.id, Review.sku, Review.ts, Review.rating, Review.text)
        .where(Review.sku.in_(skus), Review.ts < end)
        .order_by(Review.ts)
    ).all()
    recent = np.array([r.rating for r in rows if r.ts >= split], dtype=float)
    earlier = np.array([r.rating for r in rows if r.ts < split], dtype=float)
    change = p_value = None
    if recent.size >= MIN_REVIEWS and earlier.size >= MIN_REVIEWS:
        change = round(float(recent.mean() - earlier.mean()), 3)
        p_value = round(float(stats.mannwhitneyu(recent, earlier).pvalue), 4)
        if p_value < 0.05:
            verdict = (
                f"ratings {'fell' if change < 0 else 'rose'} by {abs(change):.2f} stars (p = {p_value:.3f})"
            )
        else:
            verdict = f"no significant change ({change:+.2f} stars, p = {p_value:.2f})"
    else:
        verdict = (
            f"too few reviews to test: {recent.size} recent, {earlier.size} earlier "
            f"({MIN_REVIEWS} needed each)"
        )
    months: dict[str, list[int]] = {}
    for r in rows:
        months.setdefault(f"{r.ts:%Y-%m}", []).append(int(r.rating))
    by_month = [
        MonthRating(month=m, reviews=len(v), mean_rating=round(float(np.mean(v)), 2))
        for m, v in sorted(months.items())[-6:]
    ]
    negative = sorted((r for r in rows if r.ts >= split), key=lambda r: (r.rating, -r.ts.timestamp()))[:worst]
    quotes = [
        ReviewQuote(review_id=r.id, sku=r.sku, date=r.ts.date(), rating=int(r.rating), text=r.text)
        for r in negative
    ]
    return ReviewSummary(
        scope=scope,
        value=value,
        skus=len(skus),
        recent_days=recent_days,
        recent_reviews=int(recent.size),
        recent_mean_rating=round(float(recent.mean()), 3) if recent.size else None,
        earlier_reviews=int(earlier.size),
        earlier_mean_rating=round(float(earlier.mean()), 3) if earlier.size else None,
        change=change,
        p_value=p_value,
        verdict=verdict,
        by_month=by_month,
        most_negative_recent=quotes,
        signals_from_reviews=_review_signals(session, skus, {r.id for r in rows}, today),
    )


def _review_signals(
    session: Session, skus: list[str], review_ids: set[int], today: dt.date
) -> list[ReviewSignal]:
    """Stored signals made from these reviews, or from any review and scoped to one of these SKUs."""
    refs = {f"review:{i}" for i in review_ids}
    out = []
    for sig in session.scalars(select(MarketSignal).order_by(MarketSignal.id)):
        sources = {str(s) for s in sig.source_ids or []}
        from_reviews = any(s.startswith("review:") for s in sources)
        if not from_reviews:
            continue
        if not (sources & refs or (sig.scope is SignalScope.SKU and sig.scope_value in skus)):
            continue
        out.append(
            ReviewSignal(
                signal_id=sig.id,
                scope=sig.scope.value,
                scope_value=sig.scope_value,
                direction=sig.direction.value,
                multiplier=sig.multiplier,
                confidence=sig.confidence,
                valid_from=sig.valid_from,
                valid_to=sig.valid_to,
                active_today=sig.valid_from <= today <= sig.valid_to,
            )
        )
    return out
