"""Enrollment: join a program (or edit one's profile), withdraw, download one's data, ask
for deletion.

Withdrawing ends every open relationship with the reason "withdrawn" (through
:func:`close_relationship`, so seats are freed and history is kept), leaves every circle,
gives up facilitating open circles, is dropped from the circles' upcoming meetings (their
calendars lose them), and tells each partner and circle member in the app.
A deletion request is recorded for the coordinators in the audit trail (they erase the
person's records; the request itself names no personal data) and withdraws the person at
once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.db import utcnow
from plugin.models import (
    Circle,
    CircleMember,
    CloseReason,
    Goal,
    GoalUpdate,
    Notification,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    Relationship,
    User,
)
from plugin.models.relationships import SEAT_HOLDING
from plugin.programs.errors import FormInvalid, StateConflict
from plugin.programs.notifications import notify
from plugin.programs.profile_form import ProfileData, private_preferences
from plugin.programs.relationships import close_relationship

__all__ = [
    "enrollment_closed_reason",
    "export_participant_data",
    "request_deletion",
    "save_enrollment",
    "withdraw",
]


def enrollment_closed_reason(program: Program, today: date) -> str:
    """Why a new enrollment is refused today ("" when the window is open)."""
    if program.archived_at is not None:
        return "This program is archived and no longer takes enrollments."
    if program.enrollment_opens_on and today < program.enrollment_opens_on:
        return f"Enrollment opens on {program.enrollment_opens_on:%d %B %Y}."
    if program.enrollment_closes_on and today > program.enrollment_closes_on:
        return f"Enrollment closed on {program.enrollment_closes_on:%d %B %Y}."
    return ""


def save_enrollment(
    session: Session,
    *,
    program: Program,
    user: User,
    participant: Participant | None,
    data: ProfileData,
    today: date,
) -> Participant:
    """Enroll ``user`` (or re-enroll, or update their profile) with a validated profile."""
    joining = participant is None or participant.status != ParticipantStatus.ACTIVE
    if joining and (reason := enrollment_closed_reason(program, today)):
        raise FormInvalid({"roles": reason})
    if participant is None:
        participant = Participant(program_id=program.id, user_id=user.id)
        session.add(participant)
    if joining:
        participant.status = ParticipantStatus.ACTIVE
        participant.withdrawn_at = None
        participant.enrolled_at = utcnow()
    participant.is_mentee = data.as_mentee
    participant.is_mentor = data.as_mentor
    profile = participant.profile
    if profile is None:
        profile = Profile()
        participant.profile = profile
    profile.tracks_wanted = data.tracks_wanted
    profile.tracks_offered = data.tracks_offered
    profile.interests = data.interests
    profile.interests_text = data.interests_text
    profile.goals_text = data.goals_text
    profile.bio = data.bio
    profile.career_stage = data.career_stage
    profile.time_zone = data.time_zone
    profile.availability = data.availability
    profile.meeting_format = data.meeting_format
    profile.languages = data.languages
    profile.capacity_by_track = data.capacity_by_track
    profile.capacity_total = data.capacity_total
    profile.private_preferences = data.private_preferences
    session.flush()
    if joining:
        from plugin.meetings.institution import connect_through_institution

        connect_through_institution(session, participant)
    return participant


def _other_side(relationship: Relationship, participant: Participant) -> Participant:
    return relationship.mentor if relationship.mentee_id == participant.id else relationship.mentee


def withdraw(
    session: Session,
    participant: Participant,
    *,
    reason_note: str = "",
    by_coordinator: bool = False,
    actor: Participant | None = None,
) -> int:
    """Withdraw ``participant``: end their open relationships, leave circles, tell partners.

    The person withdraws themselves, or a coordinator withdraws them (``by_coordinator``,
    ``actor`` the coordinator's enrollment if they have one). Returns how many
    relationships were ended.
    """
    if participant.status == ParticipantStatus.WITHDRAWN:
        raise StateConflict("you have already withdrawn from this program")
    if not by_coordinator:
        actor = participant
    relationships = session.scalars(
        select(Relationship)
        .where(
            or_(Relationship.mentee_id == participant.id, Relationship.mentor_id == participant.id),
            Relationship.status.in_(SEAT_HOLDING),
        )
        .order_by(Relationship.id)
    ).all()
    name = participant.display_name
    for relationship in relationships:
        close_relationship(
            session,
            relationship,
            reason=CloseReason.WITHDRAWN,
            actor=actor,
            note=reason_note,
        )
        notify(
            session,
            _other_side(relationship, participant),
            kind="relationship.ended",
            text=(
                f"{name} {'was withdrawn' if by_coordinator else 'withdrew'} from the "
                f"program, so your {relationship.track.label} mentoring relationship has ended."
            ),
            link=f"/programs/{participant.program_id}/",
        )
    now = utcnow()
    _leave_circles(session, participant, by_coordinator=by_coordinator, now=now)
    participant.status = ParticipantStatus.WITHDRAWN
    participant.withdrawn_at = now
    session.flush()
    from plugin.meetings.scheduling import cancel_meetings_of_departed

    # After the status: they are then no longer invited to any circle's meetings, even
    # those of a closed circle that keeps them as its facilitator for the record.
    cancel_meetings_of_departed(session, participant, now=now)
    session.flush()
    return len(relationships)


def _leave_circles(
    session: Session, participant: Participant, *, by_coordinator: bool, now: datetime
) -> None:
    """Leave every circle and stop facilitating open ones; tell the rest of each open one.

    A closed circle keeps its facilitator for the record. An open one is left without a
    facilitator, so its members agree to each other's goals (:func:`goals.goal_agreers`).
    """
    from plugin.meetings.scheduling import circle_people

    left: set[Circle] = set()
    for membership in session.scalars(
        select(CircleMember).where(
            CircleMember.participant_id == participant.id, CircleMember.left_at.is_(None)
        )
    ):
        membership.left_at = now
        left.add(membership.circle)
    facilitated = session.scalars(
        select(Circle).where(Circle.facilitator_id == participant.id, Circle.closed_at.is_(None))
    ).all()
    for circle in facilitated:
        circle.facilitator = None
        circle.facilitator_id = None
    session.flush()
    name = participant.display_name
    verb = "was withdrawn" if by_coordinator else "withdrew"
    for circle in sorted(left | set(facilitated), key=lambda c: c.id):
        if circle.closed_at is not None:
            continue
        if circle in facilitated:
            kind = "circle.facilitator_left"
            text = (
                f"{name} {verb} from the program, so your peer circle {circle.name} has no "
                "facilitator now: its members agree to each other's goals."
            )
        else:
            kind = "circle.member_left"
            text = f"{name} {verb} from the program and has left your peer circle {circle.name}."
        recipients = set(circle_people(circle)) - {participant}  # active, not left
        for recipient in sorted(recipients, key=lambda p: p.id):
            notify(session, recipient, kind=kind, text=text, link=f"/programs/{circle.program_id}/")


def request_deletion(session: Session, participant: Participant, *, actor_user_id: int) -> None:
    """Record a deletion request for the coordinators and withdraw the person now."""
    program = participant.program
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor_user_id,
        action="participant.deletion_requested",
        target_type="participant",
        target_id=participant.id,
    )
    if participant.status == ParticipantStatus.ACTIVE:
        withdraw(session, participant, reason_note="asked for their data to be deleted")
    session.flush()


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else value


def export_participant_data(session: Session, participant: Participant) -> dict[str, Any]:
    """Everything this program holds about ``participant``, as JSON-ready data.

    Partners appear by name only (their own data is theirs to download).
    """
    from plugin.insights.feedback import feedback_export

    profile = participant.profile
    relationships = session.scalars(
        select(Relationship)
        .where(
            or_(Relationship.mentee_id == participant.id, Relationship.mentor_id == participant.id)
        )
        .order_by(Relationship.id)
    ).all()
    goals = session.scalars(
        select(Goal).where(Goal.owner_id == participant.id).order_by(Goal.id)
    ).all()
    written = session.scalars(
        select(GoalUpdate)
        .join(Goal)
        .where(GoalUpdate.author_id == participant.id, Goal.owner_id != participant.id)
        .order_by(GoalUpdate.id)
    ).all()
    memberships = session.scalars(
        select(CircleMember).where(CircleMember.participant_id == participant.id)
    ).all()
    notifications = session.scalars(
        select(Notification)
        .where(Notification.recipient_id == participant.id)
        .order_by(Notification.id)
    ).all()
    user = participant.user
    return {
        "program": {"id": participant.program_id, "title": participant.program.title},
        "person": {
            "name": participant.display_name,
            "email": participant.email,
            "lms_user_id": user.sub if user is not None else None,
        },
        "enrollment": {
            "mentee": participant.is_mentee,
            "mentor": participant.is_mentor,
            "coordinator": participant.is_coordinator,
            "status": participant.status.value,
            "enrolled_at": _iso(participant.enrolled_at),
            "withdrawn_at": _iso(participant.withdrawn_at),
        },
        "profile": None
        if profile is None
        else {
            "tracks_wanted": profile.tracks_wanted,
            "tracks_offered": profile.tracks_offered,
            "interests": profile.interests,
            "interests_text": profile.interests_text,
            "goals_text": profile.goals_text,
            "bio": profile.bio,
            "career_stage": profile.career_stage.value if profile.career_stage else None,
            "time_zone": profile.time_zone,
            "availability": profile.availability,
            "meeting_format": profile.meeting_format.value,
            "languages": profile.languages,
            "capacity_by_track": profile.capacity_by_track,
            "capacity_total": profile.capacity_total,
            "private_preferences": private_preferences(profile.private_preferences),
        },
        "relationships": [
            {
                "id": r.id,
                "role": "mentee" if r.mentee_id == participant.id else "mentor",
                "partner": _other_side(r, participant).display_name,
                "track": r.track.value,
                "status": r.status.value,
                "origin": r.origin.value,
                "close_reason": r.close_reason.value if r.close_reason else None,
                "note": r.note,
                "created_at": _iso(r.created_at),
                "started_at": _iso(r.started_at),
                "closed_at": _iso(r.closed_at),
                "history": [
                    {"kind": e.kind, "from": e.from_status, "to": e.to_status, "at": _iso(e.at)}
                    for e in r.events
                ],
            }
            for r in relationships
        ],
        "goals": [
            {
                "id": g.id,
                "title": g.title,
                "measure": g.measure,
                "target_date": _iso(g.target_date),
                "status": g.status.value,
                "progress": g.progress,
                "history": [
                    {
                        "kind": u.kind,
                        "progress": u.progress,
                        "note": u.note,
                        "changes": u.changes,
                        "at": _iso(u.at),
                    }
                    for u in g.updates
                ],
            }
            for g in goals
        ],
        "notes_on_partners_goals": [
            {"goal": u.goal.title, "kind": u.kind, "progress": u.progress, "note": u.note}
            for u in written
        ],
        "circles": [
            {
                "name": m.circle.name,
                "joined_at": _iso(m.joined_at),
                "left_at": _iso(m.left_at),
            }
            for m in memberships
        ],
        "notifications": [
            {"kind": n.kind, "text": n.text, "at": _iso(n.created_at), "read_at": _iso(n.read_at)}
            for n in notifications
        ],
        "feedback": feedback_export(session, participant.id),
    }
