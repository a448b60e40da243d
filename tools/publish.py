"""Publish an approved plan to the shop: a price file (CSV and JSON) and, when configured, a signed POST.

The request body is the JSON price file. Its headers carry ``X-FlashSale-Timestamp`` (Unix seconds),
``X-FlashSale-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the shared secret>`` and
``Idempotency-Key: flashsale-<sale id>-rev-<revision>``, so the shop can check the sender, refuse replays
and apply each revision once however often it is sent. Connection errors, 429 and 5xx answers are retried
with exponential backoff; any other answer is final. Only an approved (or, to re-send it, a live) plan
publishes; a successful publish makes it live. The assistant has no tool that publishes.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from db.files import output_folder, write_text
from db.models import PlanStatus
from tools.lifecycle import get_plan_row, go_live, record_event, root_of
from tools.plans import PlanStateError, load_plan

SIGNATURE_HEADER = "X-FlashSale-Signature"
TIMESTAMP_HEADER = "X-FlashSale-Timestamp"
CSV_COLUMNS = (
    "sku",
    "title",
    "list_price",
    "sale_price",
    "discount_pct",
    "allocated_units",
    "starts_at",
    "ends_at",
)


@dataclass(frozen=True)
class PublishTarget:
    url: str
    secret: str
    retries: int = 4
    timeout_s: float = 10.0
    backoff_s: float = 0.5


class Delivery(BaseModel):
    url: str
    status_code: int | None
    attempts: int
    idempotency_key: str
    error: str | None = None


class PublishResult(BaseModel):
    plan_id: int
    revision: int
    status: str
    idempotency_key: str
    csv_path: str
    json_path: str
    delivery: Delivery | None
    error: str | None = None


def _major(cents: int) -> str:
    """Cents as a plain decimal string in major units (1999 -> "19.99"), exact for any amount."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def idempotency_key(sale_id: int, revision: int) -> str:
    return f"flashsale-{sale_id}-rev-{revision}"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``timestamp.body``: what the shop recomputes to check a request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def price_file(session: Session, plan_id: int, currency: str) -> dict[str, Any]:
    """The approved prices and allocations of a plan as the shop receives them (money in major units)."""
    plan = load_plan(session, plan_id)
    row = get_plan_row(session, plan_id)
    sale = root_of(row)
    start = dt.datetime.combine(plan.sale_date, dt.time.min)
    end = start + dt.timedelta(days=1)
    return {
        "sale_id": sale,
        "plan_id": plan.id,
        "revision": row.revision,
        "idempotency_key": idempotency_key(sale, row.revision),
        "sale_date": plan.sale_date.isoformat(),
        "currency": currency,
        "approved_by": plan.approved_by,
        "approved_at": plan.approved_at.isoformat() if plan.approved_at else None,
        "items": [
            {
                "sku": i.sku,
                "title": str(i.title),
                "list_price": _major(i.list_price_cents),
                "sale_price": _major(i.sale_price_cents),
                "discount_pct": round(i.discount * 100, 2),
                "allocated_units": i.allocated_units,
                "starts_at": start.isoformat(),
                "ends_at": end.isoformat(),
            }
            for i in sorted(plan.items, key=lambda i: i.sku)
        ],
    }


def write_price_files(payload: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``plan-<id>-rev-<r>.csv`` and ``.json`` in ``out_dir``, each written whole or not at all."""
    output_folder(out_dir)
    stem = f"plan-{payload['sale_id']}-rev-{payload['revision']}"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in payload["items"]:
        writer.writerow({k: item[k] for k in CSV_COLUMNS})
    csv_path = write_text(out_dir / f"{stem}.csv", buffer.getvalue())
    json_path = write_text(out_dir / f"{stem}.json", json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return csv_path, json_path


def deliver(
    payload: dict[str, Any],
    target: PublishTarget,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Delivery:
    """POST ``payload`` to the shop, signed, retrying connection errors, 429 and 5xx with backoff."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    key = str(payload["idempotency_key"])
    status: int | None = None
    error = ""
    attempts = 0
    for attempt in range(target.retries + 1):
        attempts = attempt + 1
        timestamp = str(int(clock()))
        request = urllib.request.Request(
            target.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(target.secret, timestamp, body),
                "User-Agent": "flashsale-publish/1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=target.timeout_s) as response:
                return Delivery(
                    url=target.url, status_code=response.status, attempts=attempts, idempotency_key=key
                )
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if exc.code != 429 and exc.code < 500:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, error = None, f"cannot reach it: {getattr(exc, 'reason', exc)}"
        if attempt < target.retries:
            sleep(target.backoff_s * 2**attempt)
    return Delivery(url=target.url, status_code=status, attempts=attempts, idempotency_key=key, error=error)


def publish_plan(
    session: Session,
    plan_id: int,
    *,
    actor: str,
    now: dt.datetime,
    out_dir: Path,
    currency: str,
    target: PublishTarget | None = None,
    channel: str = "cli",
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Write the price files of an approved plan, POST them when ``target`` is given, and make it live.

    A delivery that fails after its retries is recorded (``publish_failed``) and returned with ``error``
    set; the plan stays approved. Re-publishing a live plan re-sends the same
    idempotency key.
    """
    actor = (actor or "").strip()
    if not actor:
        raise PlanStateError("publishing a plan needs your name (--by NAME)")
    row = get_plan_row(session, plan_id)
    if row.status not in (PlanStatus.APPROVED, PlanStatus.LIVE):
        raise PlanStateError(
            f"plan {plan_id} is {row.status.value}: only an approved plan is published "
            + (
                "(approve it first with `python cli.py plan approve ID --by NAME`)"
                if row.status == PlanStatus.DRAFT
                else ""
            )
        )
    payload = price_file(session, plan_id, currency)
    csv_path, json_path = write_price_files(payload, out_dir)
    delivery = deliver(payload, target, sleep=sleep) if target is not None else None
    detail = {
        "csv": str(csv_path),
        "json": str(json_path),
        "idempotency_key": payload["idempotency_key"],
        **({"delivery": delivery.model_dump()} if delivery else {}),
    }
    error = None
    if delivery is not None and delivery.error:
        record_event(session, row, "publish_failed", actor=actor, now=now, channel=channel, detail=detail)
        error = (
            f"the shop's endpoint {delivery.url} did not take plan {plan_id} after {delivery.attempts} "
            f"attempt(s): {delivery.error}. The price files are written ({csv_path}); the plan stays "
            f"{row.status.value}. Publish again when the endpoint is back (the idempotency key "
            f"{payload['idempotency_key']} makes a repeat safe)."
        )
    else:
        record_event(session, row, "publish", actor=actor, now=now, channel=channel, detail=detail)
        if row.status == PlanStatus.APPROVED:
            go_live(session, plan_id, actor, now=now, channel=channel)
    session.flush()
    return PublishResult(
        plan_id=plan_id,
        revision=row.revision,
        status=get_plan_row(session, plan_id).status.value,
        idempotency_key=payload["idempotency_key"],
        csv_path=str(csv_path),
        json_path=str(json_path),
        delivery=delivery,
        error=error,
    )
