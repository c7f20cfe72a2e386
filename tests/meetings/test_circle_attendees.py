"""A circle's upcoming meetings follow its members: whoever leaves loses the event, whoever
joins gets it, through the real drain, bridge and Google client against the loopback fake."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.meetings.providers import get_provider
from plugin.meetings.scheduling import reschedule_meeting, schedule_meeting, sync_circle_attendees
from plugin.models import (
    Circle,
    CircleMember,
    FollowUp,
    FollowUpState,
    Meeting,
    MeetingAttendee,
    MeetingFormat,
    MeetingKind,
    MeetingStatus,
    OutboxJob,
    Participant,
    SyncIntent,
    SyncOperation,
    User,
)
from plugin.programs.circles import add_circle_members, close_circle, remove_circle_member
from plugin.programs.enrollment import withdraw
from tests.meetings.conftest import Pair, RecordingProvider, draft
from tests.meetings.test_calendar_bridge import (
    Calendars,
    _google_server,
    _graph_server,
    calendars,
    google_fake,
    google_version,
    graph_fake,
)
from tests.programs.conftest import LEARNER

__all__ = ["_google_server", "_graph_server", "calendars", "google_fake", "graph_fake"]

Drain = Callable[..., int]


@dataclass
class World:
    """A circle: the pair's mentor facilitates; the mentee and Ben are on Google, Cai has
    no calendar (e-mail invitations); one upcoming meeting and one held last week."""

    pair: Pair
    circle: Circle
    ben: Participant
    ben_user: User
    cai: Participant
    meeting: Meeting
    held: Meeting
    ics: RecordingProvider

    def events(self, calendars: Calendars, user: User) -> list[dict[str, Any]]:
        return calendars.google_events(user.email)


@pytest.fixture
def world(
    session: Session,
    pair: Pair,
    calendars: Calendars,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    drain_jobs: Drain,
) -> World:
    ben_user = make_user(pair.tenant, LEARNER, name="Ben Peer")
    ben = enroll(pair.program, ben_user, mentee=True)
    cai = enroll(pair.program, make_user(pair.tenant, LEARNER, name="Cai Peer"), mentee=True)
    circle = Circle(program_id=pair.program.id, name="PGY-1", facilitator_id=pair.mentor.id)
    circle.members = [CircleMember(participant_id=p.id) for p in (pair.mentee, ben, cai)]
    session.add(circle)
    session.flush()
    calendars.connect_google(pair.mentor, pair.mentor_user)
    calendars.connect_google(pair.mentee, pair.mentee_user)
    calendars.connect_google(ben, ben_user)
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentor),
        draft=draft(),
        circle=circle,
    )
    start = utcnow() - timedelta(days=7)
    held = Meeting(
        program_id=pair.program.id,
        kind=MeetingKind.CIRCLE,
        circle_id=circle.id,
        title="Peer circle: PGY-1",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        time_zone="UTC",
        format=MeetingFormat.IN_PERSON,
        status=MeetingStatus.HELD,
        attendees=[MeetingAttendee(participant_id=p.id) for p in (pair.mentor, pair.mentee, ben)],
    )
    session.add(held)
    session.commit()
    drain_jobs()
    ics = get_provider("ics")  # the calendars fixture records e-mail invitations
    assert isinstance(ics, RecordingProvider)
    return World(pair, circle, ben, ben_user, cai, meeting, held, ics)


def _attendee_line(event: dict[str, Any]) -> str:
    """The event description's list of who is invited."""
    description: str = event["description"]
    return next(p for p in description.split("\n\n") if p.startswith("Attendees: "))


def _attendees(session: Session, meeting: Meeting) -> set[int]:
    session.refresh(meeting)
    return {a.participant_id for a in meeting.attendees}


def _planned_for(session: Session, participant: Participant, meeting: Meeting) -> int:
    """How many follow-ups (reminders, feedback requests) are still to go to ``participant``."""
    planned = select(FollowUp.id).where(
        FollowUp.recipient_id == participant.id,
        FollowUp.meeting_id == meeting.id,
        FollowUp.state == FollowUpState.PLANNED,
    )
    return len(session.scalars(planned).all())


def test_a_removed_member_loses_the_event_and_the_others_get_the_new_list(
    session: Session, world: World, calendars: Calendars, drain_jobs: Drain
) -> None:
    pair, meeting, ben = world.pair, world.meeting, world.ben
    (ben_event,) = world.events(calendars, world.ben_user)
    assert "Ben Peer" in _attendee_line(ben_event)
    assert _planned_for(session, ben, meeting) > 0  # his reminders were planned

    remove_circle_member(
        session, pair.program, world.circle, ben.id, actor_user_id=pair.coordinator_user.id
    )
    session.commit()
    drain_jobs()

    assert world.events(calendars, world.ben_user) == []
    assert _attendees(session, meeting) == {pair.mentor.id, pair.mentee.id, world.cai.id}
    for user in (pair.mentor_user, pair.mentee_user):
        (event,) = world.events(calendars, user)
        assert google_version(event) == meeting.version == 2
        assert _attendee_line(event) == "Attendees: Maya Mentee, Cai Peer, Dr Omar Mentor"
    cai_change = world.ics.changes[-1]
    assert (cai_change.operation, cai_change.version) == (SyncOperation.UPDATE, 2)
    assert _planned_for(session, ben, meeting) == 0  # no reminder, no feedback request
    assert _planned_for(session, pair.mentee, meeting) > 0
    # The meeting held last week keeps him: it is history.
    assert ben.id in _attendees(session, world.held)
    assert world.held.version == 1

    # A second call finds nothing to change and writes nothing.
    intents = session.scalar(select(func.count()).select_from(SyncIntent))
    jobs = session.scalar(select(func.count()).select_from(OutboxJob))
    assert sync_circle_attendees(session, world.circle) == 0
    session.commit()
    assert session.scalar(select(func.count()).select_from(SyncIntent)) == intents
    assert session.scalar(select(func.count()).select_from(OutboxJob)) == jobs

    # Added back, he is invited again (Google kept the deleted id: the event is revived).
    add_circle_members(
        session, pair.program, world.circle, [ben.id], actor_user_id=pair.coordinator_user.id
    )
    session.commit()
    drain_jobs()
    (event,) = world.events(calendars, world.ben_user)
    assert google_version(event) == 3
    assert "Ben Peer" in _attendee_line(event)
    assert _planned_for(session, ben, meeting) > 0
    for user in (pair.mentor_user, pair.mentee_user):
        (event,) = world.events(calendars, user)
        assert google_version(event) == 3


def test_withdrawn_members_and_facilitator_are_dropped_even_if_it_moves_before_the_sync(
    session: Session, world: World, calendars: Calendars, drain_jobs: Drain
) -> None:
    pair, meeting, cai = world.pair, world.meeting, world.cai
    (cai_invite,) = [c for c in world.ics.changes if c.operation == SyncOperation.CREATE]
    withdraw(session, cai)
    withdraw(session, pair.mentor)  # the facilitator
    session.commit()
    session.refresh(world.circle)
    assert world.circle.facilitator_id is None
    # The meeting moves before any worker ran: the cancellations must still go out.
    reschedule_meeting(
        session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=9, hour=10)
    )
    session.commit()
    drain_jobs()

    assert world.events(calendars, pair.mentor_user) == []
    assert _attendees(session, meeting) == {pair.mentee.id, world.ben.id}
    cancel = world.ics.changes[-1]
    assert (cancel.key, cancel.operation) == (cai_invite.key, SyncOperation.CANCEL)
    assert "no longer invited" in cancel.description
    for user in (pair.mentee_user, world.ben_user):
        (event,) = world.events(calendars, user)
        assert google_version(event) == meeting.version
        assert _attendee_line(event) == "Attendees: Maya Mentee, Ben Peer"
    for person in (cai, pair.mentor):
        assert _planned_for(session, person, meeting) == 0


def test_a_meeting_nobody_is_left_to_attend_is_cancelled(session: Session, pair: Pair) -> None:
    circle = Circle(program_id=pair.program.id, name="Solo")
    circle.members = [CircleMember(participant_id=pair.mentee.id)]
    session.add(circle)
    session.flush()
    meeting = schedule_meeting(
        session, program=pair.program, actor=pair.actor(pair.mentee), draft=draft(), circle=circle
    )
    remove_circle_member(
        session, pair.program, circle, pair.mentee.id, actor_user_id=pair.coordinator_user.id
    )
    session.commit()
    assert (meeting.status, meeting.version) == (MeetingStatus.CANCELLED, 2)
    assert meeting.cancel_reason == "Nobody is left in the peer circle."
    latest = session.scalars(select(SyncIntent).order_by(SyncIntent.id.desc())).first()
    assert latest is not None
    assert (latest.attendee_id, latest.operation) == (pair.mentee.id, SyncOperation.CANCEL)
    assert _planned_for(session, pair.mentee, meeting) == 0
    assert sync_circle_attendees(session, circle) == 0


def test_closing_a_circle_calls_off_its_upcoming_meetings_only(
    session: Session, world: World, calendars: Calendars, drain_jobs: Drain
) -> None:
    pair = world.pair
    assert all(
        len(calendars.google_events(u.email)) == 1
        for u in (pair.mentor_user, pair.mentee_user, world.ben_user)
    )
    close_circle(session, pair.program, world.circle, actor_user_id=pair.coordinator_user.id)
    session.commit()
    drain_jobs()
    session.refresh(world.meeting)
    session.refresh(world.held)
    assert world.meeting.status == MeetingStatus.CANCELLED
    assert world.meeting.cancel_reason == "The peer circle has closed."
    assert world.held.status == MeetingStatus.HELD  # history stays
    for user in (pair.mentor_user, pair.mentee_user, world.ben_user):
        assert calendars.google_events(user.email) == []
    for person in (pair.mentor, pair.mentee, world.ben, world.cai):
        assert _planned_for(session, person, world.meeting) == 0
