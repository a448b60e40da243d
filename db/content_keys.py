"""Natural keys of the rows that carry no id of their own (reviews, news items): a hash of what they say,
so that the same file imported twice, or a demo review exported and imported again, is the same row."""

from __future__ import annotations

import datetime as dt
import hashlib


def _key(*parts: object) -> str:
    text = "\x1f".join(" ".join(str(p).split()) if p is not None else "" for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _moment(ts: dt.datetime) -> str:
    return ts.replace(tzinfo=None, microsecond=0).isoformat()


def review_key(sku: str, customer_id: str | None, rating: int, text: str, ts: dt.datetime) -> str:
    """The same customer's same stars and words on the same SKU at the same second are one review."""
    return _key("review", sku, customer_id, int(rating), text, _moment(ts))


def news_key(source: str | None, title: str, published_at: dt.datetime, url: str | None) -> str:
    """The same source's same headline (and link) at the same second is one news item."""
    return _key("news", source, title, _moment(published_at), url)
