"""A plan's lifecycle: draft -> approved -> live -> closed, or cancelled, or superseded by a revision.

Every move is one conditional ``UPDATE ... WHERE status = <from>`` (of two moves at once exactly one wins),
one ``plan_event`` row (who, when, from, to, details) and one audit row. An illegal move is a
:class:`PlanStateError` that says what the plan is and which moves it allows.

Revisions: a change to an approved or live plan (a re-plan of the rest of the sale day) is a new draft row
with ``revision + 1`` that ``revises`` it; it needs its own approval. Approving a revision supersedes an
approved parent at once; a live parent keeps selling until the revision is published (goes live).
Approval, publishing and closing are a person's acts (the CLI, the Slack button, the scheduler): none of
them is offered to the LLM as a tool.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from db.audit import jsonable, record_audit
from db.models import FlashSalePlan, PlanEvent, PlanStatus
from tools.plans import PlanNotFound, PlanStateError, StoredPlan, load_plan

D, A, L, C, X, S = (
    PlanStatus.DRAFT,
    PlanStatus.APPROVED,
    PlanStatus.LIVE,
    PlanStatus.CLOSED,
    PlanStatus.CANCELLED,
    PlanStatus.SUPERSEDED,
)

#: The legal moves: action -> (from statuses, to status).
MOVES: dict[str, tuple[tuple[PlanStatus, ...], PlanStatus]] = {
    "approve": ((D,), A),
    "go_live": ((A,), L),
    "close": ((L, A), C),
    "cancel": ((D, A), X),
    "supersede": ((D, A, L), S),
}

_PASSIVE = {
    "approve": "be approved",
    "go_live": "go live",
    "close": "be closed",
    "cancel": "be cancelled",
    "supersede": "be superseded",
}

_HINTS: dict[PlanStatus, str] = {
    D: "A draft can be approved (`plan approve ID --by NAME`) or cancelled (`plan cancel ID --by NAME`).",
    A: "An approved plan can be published (`plan publish ID --by NAME`), closed after its sale day, or "
    "cancelled.",
    L: "A live sale can be watched (`plan status ID`), re-planned for the rest of the day (`plan replan ID`) "
    "or closed after its day (`plan close ID --by NAME`).",
    C: "A closed sale is final.",
    X: "A cancelled plan is final.",
    S: "A newer revision replaced it: see `plan history ID`.",
}


class PlanEventView(BaseModel):
    plan_id: int
    revision: int
    ts: dt.datetime
    actor: str
    channel: str
    action: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any]


def root_of(plan: FlashSalePlan) -> int:
    """The id that names a sale through all its revisions (the first revision's id)."""
    return int(plan.root_id or plan.id)


def get_plan_row(session: Session, plan_id: int) -> FlashSalePlan:
    plan = session.get(FlashSalePlan, plan_id, populate_existing=True)
    if plan is None:
        raise PlanNotFound(f"no plan with id {plan_id}; list the plans with `python cli.py plan list`")
    return plan


def record_event(
    session: Session,
    plan: FlashSalePlan,
    action: str,
    *,
    actor: str,
    now: dt.datetime,
    channel: str,
    from_status: PlanStatus | None = None,
    to_status: PlanStatus | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One ``plan_event`` row and its audit row (the caller owns the transaction)."""
    body = jsonable(detail or {})
    session.add(
        PlanEvent(
            plan_id=plan.id,
            ts=now,
            actor=actor[:100],
            channel=channel[:30],
            action=action,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value if to_status else None,
            detail=body,
        )
    )
    record_audit(
        session,
        actor=actor,
        channel=channel,
        kind="approval" if action == "approve" else "plan",
        name=f"{action}_plan",
        inputs={"plan_id": plan.id, "revision": plan.revision, **({"detail": body} if body else {})},
        outputs={"status": (to_status or plan.status).value},
        latency_ms=None,
        session_id=None,
        ts=now,
    )


def move_plan(
    session: Session,
    plan_id: int,
    action: str,
    *,
    actor: str,
    now: dt.datetime,
    channel: str = "cli",
    detail: dict[str, Any] | None = None,
) -> FlashSalePlan:
    """Move plan ``plan_id`` by ``action`` (a key of :data:`MOVES`), or raise :class:`PlanStateError`."""
    actor = (actor or "").strip()
    if not actor:
        raise PlanStateError(f"to {action.replace('_', ' ')} a plan, give your name (--by NAME)")
    sources, target = MOVES[action]
    plan = get_plan_row(session, plan_id)
    current = plan.status
    values: dict[str, Any] = {"status": target}
    if action == "approve":
        values |= {"approved_by": actor[:100], "approved_at": now}
    changed = session.execute(
        update(FlashSalePlan)
        .where(FlashSalePlan.id == plan_id, FlashSalePlan.status.in_(sources))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(changed, "rowcount", 0) != 1:
        plan = get_plan_row(session, plan_id)
        raise PlanStateError(_refusal(plan, action))
    session.refresh(plan)
    record_event(
        session,
        plan,
        action,
        actor=actor,
        now=now,
        channel=channel,
        from_status=current,
        to_status=target,
        detail=detail,
    )
    session.flush()
    return plan


def _refusal(plan: FlashSalePlan, action: str) -> str:
    status = plan.status
    verb = _PASSIVE[action]
    if action == "approve" and status == A:
        when = f" at {plan.approved_at:%Y-%m-%d %H:%M}" if plan.approved_at else ""
        return f"plan {plan.id} is already approved by {plan.approved_by}{when}"
    sources = " or ".join(s.value for s in MOVES[action][0])
    return f"plan {plan.id} is {status.value}: only a plan that is {sources} can {verb}. {_HINTS[status]}"


def approve_plan(
    session: Session, plan_id: int, approver: str, *, now: dt.datetime, channel: str = "cli"
) -> StoredPlan:
    """A person approves a draft plan. Never exposed as an LLM tool.

    Of two approvals at once exactly one succeeds (and is audited); the other gets :class:`PlanStateError`
    naming who approved the plan and when. Approving a revision supersedes its parent when the parent is
    only approved; a live parent keeps selling until the revision is published.
    """
    approver = (approver or "").strip()
    if not approver:
        raise PlanStateError("an approval needs the approver's name (--by NAME)")
    plan = move_plan(session, plan_id, "approve", actor=approver, now=now, channel=channel)
    _supersede_parent(session, plan, (A,), actor=approver, now=now, channel=channel)
    return load_plan(session, plan_id)


def cancel_plan(
    session: Session, plan_id: int, actor: str, *, now: dt.datetime, reason: str = "", channel: str = "cli"
) -> StoredPlan:
    """A person cancels a draft or an approved plan that has not gone live."""
    move_plan(session, plan_id, "cancel", actor=actor, now=now, channel=channel, detail={"reason": reason})
    return load_plan(session, plan_id)


def go_live(session: Session, plan_id: int, actor: str, *, now: dt.datetime, channel: str = "cli") -> None:
    """The approved plan's prices reached the shop: it is live, and the revision it replaces is superseded."""
    plan = move_plan(session, plan_id, "go_live", actor=actor, now=now, channel=channel)
    _supersede_parent(session, plan, (A, L), actor=actor, now=now, channel=channel)


def _supersede_parent(
    session: Session,
    plan: FlashSalePlan,
    when: tuple[PlanStatus, ...],
    *,
    actor: str,
    now: dt.datetime,
    channel: str,
) -> None:
    """Supersede the revision ``plan`` revises, when that one is in a status of ``when``."""
    if plan.revises_id is None:
        return
    parent = get_plan_row(session, plan.revises_id)
    if parent.status in when:
        move_plan(
            session,
            parent.id,
            "supersede",
            actor=actor,
            now=now,
            channel=channel,
            detail={"by_revision": plan.id},
        )


def new_revision_fields(session: Session, parent_id: int) -> dict[str, Any]:
    """The revision columns of a new revision of ``parent_id`` (which must be approved or live); open draft
    revisions of the same sale are superseded by the caller's new one (see :func:`supersede_open_drafts`)."""
    parent = get_plan_row(session, parent_id)
    if parent.status not in (A, L):
        raise PlanStateError(
            f"plan {parent_id} is {parent.status.value}: only an approved or live plan gets a revision"
            + (" (a draft can simply be changed and saved again)" if parent.status == D else "")
        )
    return {"revision": parent.revision + 1, "revises_id": parent.id, "root_id": root_of(parent)}


def supersede_open_drafts(
    session: Session, root_id: int, keep: int, *, actor: str, now: dt.datetime, channel: str = "cli"
) -> list[int]:
    """Supersede the draft revisions of sale ``root_id`` other than ``keep``; returns their ids."""
    ids = session.scalars(
        select(FlashSalePlan.id).where(
            or_(FlashSalePlan.root_id == root_id, FlashSalePlan.id == root_id),
            FlashSalePlan.status == D,
            FlashSalePlan.id != keep,
        )
    ).all()
    for pid in ids:
        move_plan(
            session, pid, "supersede", actor=actor, now=now, channel=channel, detail={"by_revision": keep}
        )
    return list(ids)


def sale_revisions(session: Session, plan_id: int) -> list[FlashSalePlan]:
    """Every revision of the sale that ``plan_id`` belongs to, oldest first."""
    root = root_of(get_plan_row(session, plan_id))
    return list(
        session.scalars(
            select(FlashSalePlan)
            .where(or_(FlashSalePlan.id == root, FlashSalePlan.root_id == root))
            .order_by(FlashSalePlan.revision, FlashSalePlan.id)
        )
    )


def live_revision(session: Session, plan_id: int) -> FlashSalePlan | None:
    """The revision of ``plan_id``'s sale that is live now (None when none is)."""
    return next((p for p in sale_revisions(session, plan_id) if p.status == L), None)


def plan_history(session: Session, plan_id: int) -> list[PlanEventView]:
    """Every event of every revision of ``plan_id``'s sale, in time order."""
    revisions = {p.id: p.revision for p in sale_revisions(session, plan_id)}
    rows = session.scalars(
        select(PlanEvent).where(PlanEvent.plan_id.in_(revisions)).order_by(PlanEvent.ts, PlanEvent.id)
    ).all()
    return [
        PlanEventView(
            plan_id=r.plan_id,
            revision=revisions[r.plan_id],
            ts=r.ts,
            actor=r.actor,
            channel=r.channel,
            action=r.action,
            from_status=r.from_status,
            to_status=r.to_status,
            detail=dict(r.detail or {}),
        )
        for r in rows
    ]
