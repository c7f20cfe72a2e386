"""CSV exports of the coordinator tables that had none: goals, audit log, match rounds,
meetings and follow-up deliveries.

Each export is one SQL query read in batches (``yield_per``) and written line by line, so
a large program streams instead of being built in memory. Names are computed in SQL the
way the pages show them (an erased participant reads "a former participant"). Cells go
through the shared formula guard (:func:`plugin.programs.transfer.csv_lines`). Free text
that only participants see (meeting agendas, goal titles, messages) is not exported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import String, case, cast, func, literal, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from plugin.models import (
    AuditEvent,
    Delivery,
    FollowUp,
    MatchProposal,
    MatchRound,
    Meeting,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    User,
)
from plugin.models.program import ERASED_NAME
from plugin.programs.program_stats import goal_summary
from plugin.programs.transfer import csv_lines

__all__ = [
    "EXPORTS",
    "export_audit",
    "export_followups",
    "export_goals",
    "export_meetings",
    "export_rounds",
    "participant_name",
]

#: Rows fetched per round trip while streaming.
BATCH: Final = 500


def _when(value: datetime | None) -> str:
    """A stored time in UTC, the same text on SQLite (naive) and PostgreSQL (aware)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds")


def participant_name(participant: Any, user: Any) -> ColumnElement[str]:
    """A participant's name as the pages show it, in SQL (``participant``/``user`` aliases)."""
    return case(
        (participant.status == ParticipantStatus.ERASED, literal(ERASED_NAME)),
        else_=func.coalesce(
            func.nullif(user.name, ""),
            func.nullif(participant.invite_name, ""),
            literal("Participant ") + cast(participant.id, String),
        ),
    )


def _stream(session: Session, query: Any) -> Iterator[Any]:
    yield from session.execute(query.execution_options(yield_per=BATCH))


def export_goals(session: Session, program: Program) -> Iterator[str]:
    """Goals in aggregate (what the goals page shows): by status, and by track."""
    summary = goal_summary(session, program.id)
    rows: list[Sequence[object]] = [("group", "value", "goals", "average_progress")]
    rows += [("status", s.value, n, "") for s, n in summary.by_status.items()]
    rows += [
        ("track", t.track.value if t.track else "not_shared", t.goals, t.average_progress)
        for t in summary.by_track
    ]
    return csv_lines(rows)


def export_audit(session: Session, program: Program) -> Iterator[str]:
    """The program's audit log, oldest first, with the changed fields as JSON."""
    query = (
        select(AuditEvent, func.coalesce(func.nullif(User.name, ""), User.email))
        .outerjoin(User, User.id == AuditEvent.actor_user_id)
        .where(AuditEvent.program_id == program.id)
        .order_by(AuditEvent.at, AuditEvent.id)
    )

    def rows() -> Iterator[Sequence[object]]:
        yield ("event_id", "at", "actor", "action", "target_type", "target_id", "before", "after")
        for event, actor in _stream(session, query):
            yield (
                event.id,
                _when(event.at),
                actor if event.actor_user_id is not None else "System",
                event.action,
                event.target_type,
                event.target_id if event.target_id is not None else "",
                json.dumps(event.before, sort_keys=True, default=str),
                json.dumps(event.after, sort_keys=True, default=str),
            )

    return csv_lines(rows())


def export_rounds(session: Session, program: Program) -> Iterator[str]:
    """Every match round and its proposals (a round with none is one line)."""
    mentee, mentor = aliased(Participant), aliased(Participant)
    mentee_user, mentor_user = aliased(User), aliased(User)
    query = (
        select(
            MatchRound,
            MatchProposal,
            participant_name(mentee, mentee_user),
            participant_name(mentor, mentor_user),
        )
        .outerjoin(MatchProposal, MatchProposal.round_id == MatchRound.id)
        .outerjoin(mentee, mentee.id == MatchProposal.mentee_id)
        .outerjoin(mentee_user, mentee_user.id == mentee.user_id)
        .outerjoin(mentor, mentor.id == MatchProposal.mentor_id)
        .outerjoin(mentor_user, mentor_user.id == mentor.user_id)
        .where(MatchRound.program_id == program.id)
        .order_by(MatchRound.id, MatchProposal.id)
    )

    def rows() -> Iterator[Sequence[object]]:
        yield (
            "round_id",
            "round_status",
            "objective",
            "round_created_at",
            "round_published_at",
            "proposal_id",
            "mentee",
            "mentor",
            "track",
            "score",
            "proposal_state",
            "relationship_id",
        )
        for rnd, proposal, mentee_name, mentor_name in _stream(session, query):
            head = (
                rnd.id,
                rnd.status.value,
                rnd.objective.value,
                _when(rnd.created_at),
                _when(rnd.published_at),
            )
            if proposal is None:
                yield (*head, "", "", "", "", "", "", "")
                continue
            yield (
                *head,
                proposal.id,
                mentee_name,
                mentor_name,
                proposal.track.value,
                f"{proposal.score:.3f}",
                proposal.state.value,
                proposal.relationship_id or "",
            )

    return csv_lines(rows())


def export_meetings(session: Session, program: Program) -> Iterator[str]:
    """Every meeting of the program (no agenda, location or link), oldest first."""
    mentee, mentor = aliased(Participant), aliased(Participant)
    mentee_user, mentor_user = aliased(User), aliased(User)
    query = (
        select(
            Meeting, participant_name(mentee, mentee_user), participant_name(mentor, mentor_user)
        )
        .outerjoin(Relationship, Relationship.id == Meeting.relationship_id)
        .outerjoin(mentee, mentee.id == Relationship.mentee_id)
        .outerjoin(mentee_user, mentee_user.id == mentee.user_id)
        .outerjoin(mentor, mentor.id == Relationship.mentor_id)
        .outerjoin(mentor_user, mentor_user.id == mentor.user_id)
        .where(Meeting.program_id == program.id)
        .order_by(Meeting.starts_at, Meeting.id)
    )

    def rows() -> Iterator[Sequence[object]]:
        yield (
            "meeting_id",
            "kind",
            "relationship_id",
            "circle_id",
            "mentee",
            "mentor",
            "title",
            "starts_at_utc",
            "ends_at_utc",
            "time_zone",
            "format",
            "status",
        )
        for meeting, mentee_name, mentor_name in _stream(session, query):
            yield (
                meeting.id,
                meeting.kind.value,
                meeting.relationship_id or "",
                meeting.circle_id or "",
                mentee_name if meeting.relationship_id else "",
                mentor_name if meeting.relationship_id else "",
                meeting.title,
                _when(meeting.starts_at),
                _when(meeting.ends_at),
                meeting.time_zone,
                meeting.format.value,
                meeting.status.value,
            )

    return csv_lines(rows())


def export_followups(session: Session, program: Program) -> Iterator[str]:
    """Every follow-up with its state and reason, and its latest delivery attempt."""
    latest = (
        select(Delivery.followup_id, func.max(Delivery.id).label("delivery_id"))
        .join(FollowUp, FollowUp.id == Delivery.followup_id)
        .where(FollowUp.program_id == program.id)
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
        .order_by(FollowUp.due_at, FollowUp.id)
    )

    def rows() -> Iterator[Sequence[object]]:
        yield (
            "followup_id",
            "kind",
            "recipient",
            "due_at_utc",
            "state",
            "reason",
            "attempts",
            "sent_at_utc",
            "last_channel",
            "last_outcome",
            "last_reason",
            "last_attempt_at_utc",
        )
        for followup, recipient, delivery in _stream(session, query):
            yield (
                followup.id,
                followup.kind.value,
                recipient,
                _when(followup.due_at),
                followup.state.value,
                followup.reason,
                followup.attempts,
                _when(followup.sent_at),
                delivery.channel if delivery else "",
                delivery.outcome.value if delivery else "",
                delivery.reason if delivery else "",
                _when(delivery.at) if delivery else "",
            )

    return csv_lines(rows())


#: Export name (the file is ``<name>.csv``) -> what writes it and a label for the page.
EXPORTS: Final = {
    "goals": (export_goals, "Goals in aggregate"),
    "audit": (export_audit, "Audit log"),
    "rounds": (export_rounds, "Match rounds and proposals"),
    "meetings": (export_meetings, "Meetings"),
    "followups": (export_followups, "Follow-ups and their deliveries"),
}
