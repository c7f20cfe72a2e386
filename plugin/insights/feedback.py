"""Feedback services: after a meeting, periodic health checks, end-of-relationship evaluation.

Each answer is one row per person and occasion; submitting again edits it until the
occasion's deadline. Bad input raises :class:`~plugin.programs.errors.FormInvalid` before
anything is written; an occasion that is not open raises
:class:`~plugin.programs.errors.StateConflict`. Services flush, never commit: the view
commits. Who may answer is decided here too (:func:`may_give_meeting_feedback` and
friends), so a view only turns "no" into 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.followups.policy import FollowUpPolicy
from plugin.models import (
    CloseReason,
    FeedbackVisibility,
    GoalsMet,
    HealthCheck,
    Meeting,
    MeetingFeedback,
    MeetingStatus,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipEvaluation,
    RelationshipStatus,
)
from plugin.programs.errors import FormInvalid, StateConflict

__all__ = [
    "EVALUATED_CLOSE_REASONS",
    "EVALUATION_OPEN_DAYS",
    "FEEDBACK_OPEN_DAYS",
    "HEALTH_SCALE",
    "MAX_COMMENT",
    "RelationshipFeedback",
    "erase_feedback_text",
    "evaluation_deadline",
    "evaluation_of",
    "feedback_export",
    "health_check_of",
    "health_period",
    "invite_evaluation",
    "is_partner",
    "may_evaluate",
    "may_give_meeting_feedback",
    "meeting_feedback_deadline",
    "meeting_feedback_of",
    "meeting_feedback_state",
    "relationship_feedback",
    "save_evaluation",
    "save_health_check",
    "save_meeting_feedback",
    "shared_feedback_for",
]

#: Meeting feedback can be given and edited until this many days after the meeting ends.
FEEDBACK_OPEN_DAYS = 14
#: An evaluation can be given and edited until this many days after the relationship closed.
EVALUATION_OPEN_DAYS = 30
#: Longest free text accepted (characters).
MAX_COMMENT = 4000
#: The health-check scale, 1 to 5.
HEALTH_SCALE = (
    (1, "Very poorly"),
    (2, "Poorly"),
    (3, "Neither well nor poorly"),
    (4, "Well"),
    (5, "Very well"),
)


def _comment(form: Mapping[str, str], errors: dict[str, str]) -> str:
    text = form.get("comment", "").strip()
    if len(text) > MAX_COMMENT:
        errors["comment"] = f"Keep the comment under {MAX_COMMENT} characters."
    return text


def _one_to_five(form: Mapping[str, str], name: str, errors: dict[str, str], what: str) -> int:
    raw = form.get(name, "").strip()
    if raw not in ("1", "2", "3", "4", "5"):
        errors[name] = f"Choose {what} from 1 to 5."
        return 0
    return int(raw)


def _yes_no(form: Mapping[str, str], name: str, errors: dict[str, str], question: str) -> bool:
    raw = form.get(name, "")
    if raw not in ("yes", "no"):
        errors[name] = f"Answer yes or no: {question}"
        return False
    return raw == "yes"


Answer = TypeVar("Answer", MeetingFeedback, HealthCheck, RelationshipEvaluation)


def _stored_or_new(
    session: Session, stored: Callable[[], Answer | None], new: Callable[[], Answer]
) -> Answer:
    """The stored answer, or a new one inserted now. Of two first answers sent at once (a
    double click), the second loses the unique-constraint race and edits the first."""
    row = stored()
    if row is not None:
        return row
    row = new()
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        found = stored()
        if found is None:
            raise
        return found
    return row


# --- after a meeting ----------------------------------------------------------------------


def may_give_meeting_feedback(meeting: Meeting, participant: Participant | None) -> bool:
    """Whether ``participant`` was invited to ``meeting`` (only attendees give feedback)."""
    if participant is None:
        return False
    return any(a.participant_id == participant.id for a in meeting.attendees)


def meeting_feedback_deadline(meeting: Meeting) -> datetime:
    return meeting.ends_at + timedelta(days=FEEDBACK_OPEN_DAYS)


def meeting_feedback_state(meeting: Meeting, now: datetime) -> str:
    """ "open", or why not: "cancelled", "not_started", "closed"."""
    if meeting.status == MeetingStatus.CANCELLED:
        return "cancelled"
    if meeting.starts_at > now:
        return "not_started"
    if now > meeting_feedback_deadline(meeting):
        return "closed"
    return "open"


_STATE_MESSAGES = {
    "cancelled": "The meeting was cancelled, so there is nothing to give feedback on",
    "not_started": "Feedback opens when the meeting starts",
    "closed": f"Feedback closes {FEEDBACK_OPEN_DAYS} days after the meeting; it is closed now",
}


def meeting_feedback_of(
    session: Session, meeting: Meeting, author: Participant
) -> MeetingFeedback | None:
    return session.scalar(
        select(MeetingFeedback).where(
            MeetingFeedback.meeting_id == meeting.id, MeetingFeedback.author_id == author.id
        )
    )


def save_meeting_feedback(
    session: Session,
    meeting: Meeting,
    author: Participant,
    form: Mapping[str, str],
    now: datetime,
) -> MeetingFeedback:
    """Record (or edit) ``author``'s feedback on ``meeting``; the author must be an attendee."""
    if not may_give_meeting_feedback(meeting, author):
        raise StateConflict("Only the meeting's attendees can give feedback on it")
    state = meeting_feedback_state(meeting, now)
    if state != "open":
        raise StateConflict(_STATE_MESSAGES[state])
    errors: dict[str, str] = {}
    rating = _one_to_five(form, "rating", errors, "a rating")
    useful = _yes_no(form, "useful", errors, "was the meeting useful?")
    comment = _comment(form, errors)
    try:
        visibility = FeedbackVisibility(form.get("visibility", ""))
    except ValueError:
        errors["visibility"] = "Choose who may read this feedback."
        visibility = FeedbackVisibility.PRIVATE
    if errors:
        raise FormInvalid(errors)
    row = _stored_or_new(
        session,
        lambda: meeting_feedback_of(session, meeting, author),
        lambda: MeetingFeedback(
            program_id=meeting.program_id,
            meeting_id=meeting.id,
            relationship_id=meeting.relationship_id,
            author_id=author.id,
            rating=rating,
            useful=useful,
            visibility=visibility,
        ),
    )
    row.rating, row.useful, row.comment, row.visibility = rating, useful, comment, visibility
    row.updated_at = now
    session.flush()
    return row


def shared_feedback_for(
    session: Session, meeting: Meeting, viewer: Participant
) -> list[MeetingFeedback]:
    """Other attendees' feedback on ``meeting`` that they shared (never the private ones)."""
    return list(
        session.scalars(
            select(MeetingFeedback)
            .where(
                MeetingFeedback.meeting_id == meeting.id,
                MeetingFeedback.author_id != viewer.id,
                MeetingFeedback.visibility == FeedbackVisibility.SHARED,
            )
            .order_by(MeetingFeedback.id)
        )
    )


# --- health checks ------------------------------------------------------------------------


def is_partner(rel: Relationship, participant: Participant | None) -> bool:
    """Whether ``participant`` is the relationship's mentee or mentor."""
    return participant is not None and participant.id in (rel.mentee_id, rel.mentor_id)


def health_period(rel: Relationship, program: Program, now: datetime) -> int:
    """The health-check period ``now`` falls in: 0 before the first check is due, then n
    from the n-th check (the follow-up rule asks at ``started_at + n * health_check_days``)."""
    started = rel.started_at or rel.created_at
    every = timedelta(days=FollowUpPolicy.of(program).health_check_days)
    return max(0, (now - started) // every)


def health_check_of(
    session: Session, rel: Relationship, author: Participant, period: int
) -> HealthCheck | None:
    return session.scalar(
        select(HealthCheck).where(
            HealthCheck.relationship_id == rel.id,
            HealthCheck.author_id == author.id,
            HealthCheck.period == period,
        )
    )


def save_health_check(
    session: Session, rel: Relationship, author: Participant, form: Mapping[str, str], now: datetime
) -> HealthCheck:
    """Record (or edit) this period's health check by one side of an open relationship."""
    if not is_partner(rel, author):
        raise StateConflict("Only the mentee and the mentor answer this health check")
    if rel.status not in (RelationshipStatus.ACTIVE, RelationshipStatus.PAUSED):
        raise StateConflict("Health checks are for relationships under way; this one is not")
    errors: dict[str, str] = {}
    score = _one_to_five(form, "score", errors, "how it is going")
    comment = _comment(form, errors)
    if errors:
        raise FormInvalid(errors)
    period = health_period(rel, rel.program, now)
    row = _stored_or_new(
        session,
        lambda: health_check_of(session, rel, author, period),
        lambda: HealthCheck(
            program_id=rel.program_id,
            relationship_id=rel.id,
            author_id=author.id,
            period=period,
            score=score,
        ),
    )
    row.score, row.comment, row.updated_at = score, comment, now
    session.flush()
    return row


# --- end of a relationship ----------------------------------------------------------------


def evaluation_deadline(rel: Relationship) -> datetime | None:
    if rel.closed_at is None:
        return None
    return rel.closed_at + timedelta(days=EVALUATION_OPEN_DAYS)


def may_evaluate(rel: Relationship, now: datetime) -> bool:
    """Whether the relationship is closed after it started, within the evaluation window."""
    deadline = evaluation_deadline(rel)
    return (
        rel.status == RelationshipStatus.CLOSED
        and rel.started_at is not None
        and deadline is not None
        and now <= deadline
    )


def evaluation_of(
    session: Session, rel: Relationship, author: Participant
) -> RelationshipEvaluation | None:
    return session.scalar(
        select(RelationshipEvaluation).where(
            RelationshipEvaluation.relationship_id == rel.id,
            RelationshipEvaluation.author_id == author.id,
        )
    )


def save_evaluation(
    session: Session, rel: Relationship, author: Participant, form: Mapping[str, str], now: datetime
) -> RelationshipEvaluation:
    """Record (or edit) one side's evaluation of a closed relationship."""
    if not is_partner(rel, author):
        raise StateConflict("Only the mentee and the mentor evaluate this relationship")
    if not may_evaluate(rel, now):
        raise StateConflict(
            "Evaluations open when a relationship that started closes, for "
            f"{EVALUATION_OPEN_DAYS} days"
        )
    errors: dict[str, str] = {}
    try:
        goals_met = GoalsMet(form.get("goals_met", ""))
    except ValueError:
        errors["goals_met"] = "Say whether the goals were met: yes, partly or no."
        goals_met = GoalsMet.NO
    recommend = _yes_no(form, "would_recommend", errors, "would you recommend this mentoring?")
    comment = _comment(form, errors)
    if errors:
        raise FormInvalid(errors)
    row = _stored_or_new(
        session,
        lambda: evaluation_of(session, rel, author),
        lambda: RelationshipEvaluation(
            program_id=rel.program_id,
            relationship_id=rel.id,
            author_id=author.id,
            goals_met=goals_met,
            would_recommend=recommend,
        ),
    )
    row.goals_met, row.would_recommend, row.comment = goals_met, recommend, comment
    row.updated_at = now
    session.flush()
    return row


# --- what coordinators read ---------------------------------------------------------------


@dataclass(frozen=True)
class RelationshipFeedback:
    """Everything the two sides said about one relationship (for coordinators)."""

    meetings: list[MeetingFeedback]
    health_checks: list[HealthCheck]
    evaluations: list[RelationshipEvaluation]


def relationship_feedback(session: Session, rel: Relationship) -> RelationshipFeedback:
    """All feedback on ``rel``, newest first, private and shared alike."""
    return RelationshipFeedback(
        meetings=list(
            session.scalars(
                select(MeetingFeedback)
                .where(MeetingFeedback.relationship_id == rel.id)
                .order_by(MeetingFeedback.updated_at.desc(), MeetingFeedback.id.desc())
            )
        ),
        health_checks=list(
            session.scalars(
                select(HealthCheck)
                .where(HealthCheck.relationship_id == rel.id)
                .order_by(HealthCheck.updated_at.desc(), HealthCheck.id.desc())
            )
        ),
        evaluations=list(
            session.scalars(
                select(RelationshipEvaluation)
                .where(RelationshipEvaluation.relationship_id == rel.id)
                .order_by(RelationshipEvaluation.id)
            )
        ),
    )


# --- lifecycle hooks: closing, export, erasure --------------------------------------------

#: Close reasons after which both sides are invited to evaluate (a declined request never
#: started; a withdrawal or a roster departure leaves nobody to ask on one side).
EVALUATED_CLOSE_REASONS = frozenset(
    {CloseReason.COMPLETED, CloseReason.NOT_WORKING, CloseReason.OTHER}
)


def invite_evaluation(session: Session, rel: Relationship) -> int:
    """A relationship that had started closed: ask each side for an evaluation (in-app
    notification, committed with the closing). Returns how many were invited."""
    from plugin.programs.notifications import notify

    if rel.started_at is None or rel.close_reason not in EVALUATED_CLOSE_REASONS:
        return 0
    link = f"/programs/{rel.program_id}/relationships/{rel.id}/evaluation"
    invited = 0
    for me, partner in ((rel.mentee, rel.mentor), (rel.mentor, rel.mentee)):
        if me.status != ParticipantStatus.ACTIVE:
            continue
        notify(
            session,
            me,
            kind="relationship.evaluate",
            text=(
                f"Your {rel.track.label} mentoring with {partner.display_name} has ended. "
                "Two minutes of evaluation help the coordinators improve the program."
            ),
            link=link,
        )
        invited += 1
    return invited


def feedback_export(session: Session, author_id: int) -> dict[str, list[dict[str, object]]]:
    """What ``author_id`` wrote as feedback, for their data export."""
    meetings = session.scalars(
        select(MeetingFeedback).where(MeetingFeedback.author_id == author_id)
    ).all()
    checks = session.scalars(select(HealthCheck).where(HealthCheck.author_id == author_id)).all()
    evaluations = session.scalars(
        select(RelationshipEvaluation).where(RelationshipEvaluation.author_id == author_id)
    ).all()
    return {
        "meetings": [
            {
                "meeting_id": f.meeting_id,
                "rating": f.rating,
                "useful": f.useful,
                "comment": f.comment,
                "visibility": f.visibility.value,
                "at": f.updated_at.isoformat(),
            }
            for f in meetings
        ],
        "health_checks": [
            {
                "relationship_id": h.relationship_id,
                "period": h.period,
                "score": h.score,
                "comment": h.comment,
                "at": h.updated_at.isoformat(),
            }
            for h in checks
        ],
        "evaluations": [
            {
                "relationship_id": e.relationship_id,
                "goals_met": e.goals_met.value,
                "would_recommend": e.would_recommend,
                "comment": e.comment,
                "at": e.updated_at.isoformat(),
            }
            for e in evaluations
        ],
    }


def erase_feedback_text(session: Session, author_id: int) -> None:
    """Blank the free text ``author_id`` wrote; ratings stay (the program keeps its counts)."""
    for model in (MeetingFeedback, HealthCheck, RelationshipEvaluation):
        session.execute(update(model).where(model.author_id == author_id).values(comment=""))
