"""Erasure: a coordinator deletes a participant's personal data in one program.

A participant asks for deletion (:func:`plugin.programs.enrollment.request_deletion`); a
coordinator of the program sees the request and erases. What goes: the profile (free
text, introduction, interests, private preferences, availability), the goals they own
with their history, the notes they wrote on others' goals and on relationship steps, the
free text of their feedback (meeting feedback, health checks, evaluations),
their notifications, notification preferences and pending follow-ups, circle
memberships, the calendar connection and ICS feed they set up for this program, an
invited mentor's name and address, and the link to their LMS user; the agendas,
cancellation reasons, attendance and booking topics of their meetings, their slots'
details, their profile features stored with match rounds, and their name in messages
already delivered to others in the program (in-app notifications, e-mail subjects).

What stays: the ``Participant`` row with status ``erased`` and no user, so the
relationships it took part in remain as closed history with "a former participant" on
their side (partners keep their records, the program keeps its counts). The ``User`` row
is deleted too unless the person is in another program or another course: nothing outside
this program is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.models import (
    AuditEvent,
    CalendarConnection,
    CalendarFeed,
    CircleMember,
    CourseMembership,
    Delivery,
    FollowUp,
    Goal,
    GoalUpdate,
    MatchRound,
    Meeting,
    MeetingAttendee,
    Notification,
    NotificationPreference,
    Participant,
    ParticipantStatus,
    RelationshipEvent,
    Slot,
    SlotBooking,
    User,
)
from plugin.models.program import ERASED_NAME
from plugin.programs.enrollment import withdraw

__all__ = ["DeletionRequest", "erase_participant", "pending_deletion_requests"]


@dataclass(frozen=True)
class DeletionRequest:
    """A participant's request to be erased, not handled yet."""

    participant: Participant
    requested: AuditEvent


def pending_deletion_requests(session: Session, program_id: int) -> list[DeletionRequest]:
    """Deletion requests in ``program_id`` whose participant is not erased, oldest first."""
    rows = session.execute(
        select(AuditEvent, Participant)
        .join(Participant, Participant.id == AuditEvent.target_id)
        .where(
            AuditEvent.program_id == program_id,
            AuditEvent.action == "participant.deletion_requested",
            AuditEvent.target_type == "participant",
            Participant.program_id == program_id,
            Participant.status != ParticipantStatus.ERASED,
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    ).all()
    seen: set[int] = set()
    requests = []
    for event, participant in rows:
        if participant.id not in seen:  # asked twice: one line, the first request
            seen.add(participant.id)
            requests.append(DeletionRequest(participant=participant, requested=event))
    return requests


def _user_is_elsewhere(session: Session, user_id: int, participant: Participant) -> bool:
    """Whether the user is enrolled in another program or a member of another course."""
    other_programs = session.scalar(
        select(func.count())
        .select_from(Participant)
        .where(Participant.user_id == user_id, Participant.id != participant.id)
    )
    other_courses = session.scalar(
        select(func.count())
        .select_from(CourseMembership)
        .where(
            CourseMembership.user_id == user_id,
            CourseMembership.course_id != participant.program.course_id,
        )
    )
    return bool(other_programs or other_courses)


def _forget_meetings(session: Session, pid: int) -> None:
    """Meetings stay as dated history; what the person wrote or did in them goes.

    Agendas and cancellation reasons of the meetings they organised or attended as one
    of a pair, the topics they booked, their attendance record, and the topics and
    places of the slots they published (the slots were closed when they withdrew).
    """
    attended = select(MeetingAttendee.meeting_id).where(MeetingAttendee.participant_id == pid)
    session.execute(
        update(Meeting)
        .where(
            or_(
                Meeting.organizer_id == pid,
                (Meeting.id.in_(attended)) & (Meeting.circle_id.is_(None)),
            )
        )
        .values(agenda="", cancel_reason="")
    )
    session.execute(
        update(MeetingAttendee).where(MeetingAttendee.participant_id == pid).values(attended=None)
    )
    session.execute(update(SlotBooking).where(SlotBooking.mentee_id == pid).values(topic=""))
    session.execute(
        update(Slot)
        .where(Slot.mentor_id == pid)
        .values(topics=[], location="", conference_url="", active=False)
    )


def _forget_in_rounds(session: Session, program_id: int, pid: int) -> None:
    """Match rounds keep their pairs and scores; the person's stored profile features go."""
    for round_ in session.scalars(select(MatchRound).where(MatchRound.program_id == program_id)):
        inputs = dict(round_.inputs or {})
        changed = False
        for side in ("mentees", "mentors"):
            rows = inputs.get(side)
            if not isinstance(rows, list):
                continue
            kept = [{"id": pid, "erased": True} if row.get("id") == pid else row for row in rows]
            if kept != rows:
                inputs[side], changed = kept, True
        if changed:
            round_.inputs = inputs  # a new object, so the JSON column is written


def _forget_name_in_messages(session: Session, program_id: int, name: str) -> None:
    """Messages already delivered to others in the program stop naming the person."""
    if len(name.strip()) < 3:  # too short to replace without garbling other words
        return
    in_program = select(Participant.id).where(Participant.program_id == program_id)
    session.execute(
        update(Notification)
        .where(
            Notification.recipient_id.in_(in_program),
            Notification.text.contains(name, autoescape=True),
        )
        .values(text=func.replace(Notification.text, name, ERASED_NAME))
    )
    of_program = select(FollowUp.id).where(FollowUp.program_id == program_id)
    session.execute(
        update(Delivery)
        .where(
            Delivery.followup_id.in_(of_program), Delivery.subject.contains(name, autoescape=True)
        )
        .values(subject=func.replace(Delivery.subject, name, ERASED_NAME))
    )


def erase_participant(session: Session, participant: Participant, *, actor_user_id: int) -> bool:
    """Erase ``participant``'s personal data in their program; False if already erased."""
    if participant.status == ParticipantStatus.ERASED:
        return False
    program = participant.program
    if participant.status == ParticipantStatus.ACTIVE:
        # Asked for deletion, then enrolled again: end what is open before erasing.
        withdraw(
            session,
            participant,
            reason_note="their data was erased",
            by_coordinator=True,
        )
    pid = participant.id
    participant.profile = None  # delete-orphan: the whole profile row goes
    session.execute(delete(Goal).where(Goal.owner_id == pid))  # updates cascade
    session.execute(update(GoalUpdate).where(GoalUpdate.author_id == pid).values(note=""))
    session.execute(
        update(RelationshipEvent).where(RelationshipEvent.actor_id == pid).values(note="")
    )
    session.execute(delete(Notification).where(Notification.recipient_id == pid))
    session.execute(
        delete(NotificationPreference).where(NotificationPreference.participant_id == pid)
    )
    session.execute(delete(CircleMember).where(CircleMember.participant_id == pid))
    from plugin.insights.feedback import erase_feedback_text

    erase_feedback_text(session, pid)  # what they wrote as feedback; ratings stay as counts
    # Pending follow-ups (and their delivery log), this program's calendar link and feed:
    # nothing is sent to, or synced for, an erased person.
    session.execute(delete(FollowUp).where(FollowUp.recipient_id == pid))
    session.execute(delete(CalendarConnection).where(CalendarConnection.participant_id == pid))
    session.execute(delete(CalendarFeed).where(CalendarFeed.participant_id == pid))
    _forget_meetings(session, pid)
    _forget_in_rounds(session, program.id, pid)
    _forget_name_in_messages(session, program.id, participant.display_name)
    user_id = participant.user_id
    participant.user_id = None
    participant.invite_name = ""
    participant.invite_email = ""
    participant.is_coordinator = False
    participant.status = ParticipantStatus.ERASED
    session.flush()
    session.expire(participant, ["user"])
    if user_id is not None and not _user_is_elsewhere(session, user_id, participant):
        # Memberships in this course go with it; audit events keep no actor.
        session.execute(delete(CourseMembership).where(CourseMembership.user_id == user_id))
        session.execute(delete(User).where(User.id == user_id))
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor_user_id,
        action="participant.erased",
        target_type="participant",
        target_id=pid,
    )
    session.flush()
    return True
