"""The coordinator's delivery view of follow-ups: filtered, counted and paged in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.insights.exports import participant_name
from plugin.models import (
    Delivery,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Participant,
    Program,
    User,
)

__all__ = [
    "FOLLOWUPS_PAGE_SIZE",
    "STATE_LABELS",
    "DeliveryFilter",
    "DeliveryPage",
    "DeliveryRow",
    "delivery_page",
]

FOLLOWUPS_PAGE_SIZE: Final = 50

#: How each state reads to a coordinator ("planned" is waiting in the queue).
STATE_LABELS: Final = {
    FollowUpState.PLANNED: "Queued",
    FollowUpState.SENDING: "Sending",
    FollowUpState.SENT: "Sent",
    FollowUpState.FAILED: "Failed",
    FollowUpState.SKIPPED: "Skipped",
    FollowUpState.CANCELLED: "Cancelled",
}


@dataclass(frozen=True)
class DeliveryFilter:
    """What the coordinator asked to see (unknown values are ignored, not errors)."""

    state: str = ""
    kind: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: Any) -> DeliveryFilter:
        state = str(args.get("state", ""))
        kind = str(args.get("kind", ""))
        try:
            page = max(1, int(args.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            state=state if state in FollowUpState._value2member_map_ else "",
            kind=kind if kind in FollowUpKind._value2member_map_ else "",
            page=page,
        )


@dataclass(frozen=True)
class DeliveryRow:
    followup_id: int
    kind: FollowUpKind
    recipient: str
    due_at: datetime
    state: FollowUpState
    reason: str
    attempts: int
    sent_at: datetime | None
    channel: str
    last_outcome: str
    last_reason: str

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[DeliveryRow]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


def delivery_page(session: Session, program: Program, wanted: DeliveryFilter) -> DeliveryPage:
    """One page of ``program``'s follow-ups, newest due first, with counts per state."""
    base = select(FollowUp.id).where(FollowUp.program_id == program.id)
    if wanted.kind:
        base = base.where(FollowUp.kind == FollowUpKind(wanted.kind))
    counted = base.add_columns(FollowUp.state).subquery()
    counts = {
        FollowUpState(s).value: int(n)
        for s, n in session.execute(select(counted.c.state, func.count()).group_by(counted.c.state))
    }
    total = counts.get(wanted.state, 0) if wanted.state else sum(counts.values())
    pages = max(1, -(-total // FOLLOWUPS_PAGE_SIZE))
    page = min(wanted.page, pages)
    latest = (
        select(Delivery.followup_id, func.max(Delivery.id).label("delivery_id"))
        .group_by(Delivery.followup_id)
        .subquery()
    )
    query = (
        select(FollowUp, participant_name(Participant, User), Delivery)
        .join(Participant, Participant.id == FollowUp.recipient_id)
        .outerjoin(User, User.id == Participant.user_id)
        .outerjoin(latest, latest.c.followup_id == FollowUp.id)
        .outerjoin(Delivery, Delivery.id == latest.c.delivery_id)
        .where(FollowUp.program_id == program.id)
    )
    if wanted.kind:
        query = query.where(FollowUp.kind == FollowUpKind(wanted.kind))
    if wanted.state:
        query = query.where(FollowUp.state == FollowUpState(wanted.state))
    query = (
        query.order_by(FollowUp.due_at.desc(), FollowUp.id.desc())
        .limit(FOLLOWUPS_PAGE_SIZE)
        .offset((page - 1) * FOLLOWUPS_PAGE_SIZE)
    )
    rows = [
        DeliveryRow(
            followup_id=f.id,
            kind=f.kind,
            recipient=name,
            due_at=f.due_at,
            state=f.state,
            reason=f.reason,
            attempts=f.attempts,
            sent_at=f.sent_at,
            channel=d.channel if d else "",
            last_outcome=d.outcome.value if d else "",
            last_reason=d.reason if d else "",
        )
        for f, name, d in session.execute(query)
    ]
    return DeliveryPage(rows=rows, total=total, page=page, pages=pages, counts=counts)
