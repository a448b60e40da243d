"""The shop's clock: what "now", "today" and "tomorrow's sale" mean for every command, tool and draft.

Timestamps in the schema are UTC without a time zone, so "now" is naive UTC. A shop whose data end in the
past (a demo shop, an imported log or panel) lives on the morning after its last day of sales;
``FLASHSALE_TODAY`` pins the date for everyone. A simulated shop whose live sale has been played ahead
(``cli.py sim play``) lives at the moment the simulator reached, so that watching, re-planning and closing
the sale see the same time the orders came in. Front ends build one clock (``Deps.clock``) and pass dates
down explicitly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import FlashSalePlan, PlanEvent
from db.sqlvalues import utc_now
from tools.sales_panel import last_sales_date

Clock = Callable[[], dt.datetime]

#: The shop's morning: the time of day a pinned or past "today" is taken to be.
MORNING = dt.time(9, 0)


def fixed_clock(moment: dt.datetime) -> Clock:
    """A clock that always reads ``moment``."""
    return lambda: moment


def shop_clock(factory: sessionmaker[Session], today: dt.date | None = None) -> Clock:
    """``today`` at 09:00 if given; the moment a simulated live sale was played to, when the simulator wrote
    the newest sales; the morning after the last day of the sales history (order lines, else sales
    periods) when it ends before yesterday (a demo shop, an imported log or panel); else the real time."""
    if today is not None:
        return fixed_clock(dt.datetime.combine(today, MORNING))
    with factory() as session:
        newest = last_sales_date(session)
        played = simulated_moment(session)
    if played is not None and (newest is None or played >= dt.datetime.combine(newest, dt.time.min)):
        return fixed_clock(played)  # the simulator wrote the newest sales: its moment is the shop's
    now = utc_now()
    if newest is not None and newest < now.date() - dt.timedelta(days=1):
        return fixed_clock(dt.datetime.combine(newest + dt.timedelta(days=1), MORNING))
    return utc_now


def simulated_moment(session: Session) -> dt.datetime | None:
    """The moment of the sale day that the shop's simulator last played a live sale to (None: never)."""
    row = session.execute(
        select(FlashSalePlan.sale_date, PlanEvent.detail)
        .join(FlashSalePlan, FlashSalePlan.id == PlanEvent.plan_id)
        .where(PlanEvent.action == "simulate")
        .order_by(PlanEvent.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    hours = float((row.detail or {}).get("until_hour", 0))
    return dt.datetime.combine(row.sale_date, dt.time.min) + dt.timedelta(hours=hours)


def next_sale_date(clock: Clock) -> dt.date:
    """Tomorrow by ``clock``: the default date of a plan and of the daily draft."""
    return clock().date() + dt.timedelta(days=1)


__all__ = ["MORNING", "Clock", "fixed_clock", "next_sale_date", "shop_clock", "utc_now"]
