"""My circles on the program home: members and the facilitator see their open circles (the
members, the next meeting, the goals), nobody else does, in this program or another tenant;
in a circle without a facilitator the peers agree to each other's goals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    Circle,
    CircleMember,
    Goal,
    Meeting,
    MeetingAttendee,
    MeetingFormat,
    MeetingKind,
    Participant,
    Program,
    Track,
    User,
)
from plugin.programs.circle_home import my_circles
from plugin.programs.goals import create_goal
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant
from tests.programs.test_coordinator_workspace import counting_queries


@dataclass
class CircleWorld:
    program: Program
    circle: Circle
    users: dict[str, User]
    people: dict[str, Participant]
    meeting: Meeting
    goal: Goal


def _circle(
    session: Session, program: Program, name: str, members: list[Participant], **fields: object
) -> Circle:
    circle = Circle(program_id=program.id, name=name, **fields)
    session.add(circle)
    session.flush()
    session.add_all(CircleMember(circle_id=circle.id, participant_id=p.id) for p in members)
    session.flush()
    session.refresh(circle)
    return circle


def _circle_meeting(
    session: Session, circle: Circle, start: datetime, attendees: list[Participant]
) -> Meeting:
    meeting = Meeting(
        program_id=circle.program_id,
        kind=MeetingKind.CIRCLE,
        circle_id=circle.id,
        title="Circle session",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        time_zone="UTC",
        format=MeetingFormat.VIRTUAL,
    )
    session.add(meeting)
    session.flush()
    session.add_all(MeetingAttendee(meeting_id=meeting.id, participant_id=p.id) for p in attendees)
    session.flush()
    return meeting


@pytest.fixture
def world(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> CircleWorld:
    program = make_program(tenant)
    names = {
        "ana": ("Ana Member", LEARNER),
        "ben": ("Ben Member", LEARNER),
        "lou": ("Lou Left", LEARNER),
        "oz": ("Oz Outsider", LEARNER),
        "fay": ("Dr Fay Facilitator", INSTRUCTOR),
    }
    users = {key: make_user(tenant, role, name=name) for key, (name, role) in names.items()}
    people = {
        key: enroll(program, user, mentee=key != "fay", mentor=key == "fay", time_zone="UTC")
        for key, user in users.items()
    }
    circle = _circle(
        session,
        program,
        "Tuesday circle",
        [people["ana"], people["ben"], people["lou"]],
        track=Track.RESEARCH,
        facilitator_id=people["fay"].id,
    )
    next(m for m in circle.members if m.participant_id == people["lou"].id).left_at = utcnow()
    _circle(session, program, "Closed circle", [people["ana"]], closed_at=utcnow())
    start = datetime(utcnow().year + 1, 3, 3, 15, 0, tzinfo=UTC)
    meeting = _circle_meeting(session, circle, start, [people["ana"], people["fay"]])
    _circle_meeting(session, circle, start + timedelta(days=7), [people["ana"], people["fay"]])
    session.refresh(circle)
    goal = create_goal(
        session,
        owner=people["ana"],
        scope=f"c{circle.id}",
        title="Present at journal club",
        measure="One talk",
        target_date="2099-01-01",
        today=date(2026, 1, 1),
    )
    session.commit()
    return CircleWorld(program, circle, users, people, meeting, goal)


def _home(
    as_person: Callable[..., Person], tenant: Tenant, user: User, program: Program, role: CourseRole
) -> str:
    page = as_person(tenant, user, role).get(f"/programs/{program.id}/")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_members_and_the_facilitator_see_their_circle_and_nobody_else_does(
    session: Session,
    tenant: Tenant,
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
    world: CircleWorld,
) -> None:
    other = make_tenant()
    other_program = make_program(other)
    stranger_user = make_user(other, LEARNER, name="Sol Elsewhere")
    stranger = enroll(other_program, stranger_user, mentee=True)
    _circle(session, other_program, "Elsewhere circle", [stranger])
    session.commit()
    program, meeting_link = world.program, f"/programs/{world.program.id}/meetings/"

    ana = _home(as_person, tenant, world.users["ana"], program, CourseRole.LEARNER)
    assert "My circles" in ana
    assert "Tuesday circle" in ana
    assert "Research" in ana
    assert "Ana Member (you)" in ana
    assert "Ben Member" in ana
    assert "Dr Fay Facilitator" in ana
    assert "Lou Left" not in ana  # left the circle
    assert "Closed circle" not in ana
    assert "Elsewhere circle" not in ana
    assert f"{meeting_link}{world.meeting.id}?lt=" in ana  # the next one, not the one after
    assert f"/programs/{program.id}/circles/{world.circle.id}/meetings/new?lt=" in ana
    assert f"/programs/{program.id}/goals/{world.goal.id}?lt=" in ana
    assert "waiting for your agreement" not in ana  # her own goal

    ben = _home(as_person, tenant, world.users["ben"], program, CourseRole.LEARNER)
    assert "Tuesday circle" in ben
    assert "Present at journal club" in ben
    assert f"{meeting_link}{world.meeting.id}?" not in ben  # not invited: no link to a 404
    assert "you are not on its invitation" in ben

    fay = _home(as_person, tenant, world.users["fay"], program, CourseRole.INSTRUCTOR)
    assert "Dr Fay Facilitator (you)" in fay
    assert "waiting for your agreement" in fay

    for key in ("oz", "lou"):
        page = _home(as_person, tenant, world.users[key], program, CourseRole.LEARNER)
        assert "My circles" not in page
        assert "Tuesday circle" not in page
        assert "Present at journal club" not in page

    sol = _home(as_person, other, stranger_user, other_program, CourseRole.LEARNER)
    assert "Elsewhere circle" in sol
    assert "Tuesday circle" not in sol
    assert "Ana Member" not in sol
    # A launch in the other course does not open this program at all.
    refused = as_person(other, stranger_user, CourseRole.LEARNER).get(f"/programs/{program.id}/")
    assert refused.status_code == 404


def test_my_circles_takes_the_same_few_queries_for_any_number_of_circles(
    session: Session, world: CircleWorld, enroll: Callable[..., Participant]
) -> None:
    ana = world.people["ana"]
    for n in range(3):
        _circle(session, world.program, f"Extra {n}", [ana, world.people["ben"]])
    session.commit()
    session.expire_all()
    assert ana.id
    assert world.program.id
    with counting_queries(session) as statements:
        cards = my_circles(session, world.program, ana)
        for card in cards:  # everything the template reads
            _ = [p.display_name for p in card.members]
            _ = [(g.owner.display_name, g.title) for g in card.goals]
            _ = card.circle.facilitator.display_name if card.circle.facilitator else ""
    assert [c.circle.name for c in cards] == ["Extra 0", "Extra 1", "Extra 2", "Tuesday circle"]
    # circles, members, goals, next meetings, invitations: whatever the number of circles
    assert len([s for s in statements if s.startswith("SELECT")]) == 5


def test_in_a_circle_without_a_facilitator_a_peer_agrees_from_their_home(
    session: Session,
    tenant: Tenant,
    as_person: Callable[..., Person],
    world: CircleWorld,
) -> None:
    world.circle.facilitator_id = None
    session.commit()
    program, goal = world.program, world.goal
    ben = as_person(tenant, world.users["ben"], CourseRole.LEARNER)
    home = ben.get(f"/programs/{program.id}/").get_data(as_text=True)
    assert "None: members agree to each other's goals" in home
    assert "waiting for your agreement" in home
    assert "Agree to this goal" in ben.get(f"/programs/{program.id}/goals/{goal.id}").text
    owner = as_person(tenant, world.users["ana"], CourseRole.LEARNER)
    assert "Agree to this goal" not in owner.get(f"/programs/{program.id}/goals/{goal.id}").text
    assert owner.post(f"/programs/{program.id}/goals/{goal.id}/agree").status_code == 403
    outsider = as_person(tenant, world.users["oz"], CourseRole.LEARNER)
    assert outsider.post(f"/programs/{program.id}/goals/{goal.id}/agree").status_code == 404
    assert ben.post(f"/programs/{program.id}/goals/{goal.id}/agree").status_code == 303
    session.refresh(goal)
    assert goal.status.value == "agreed"
    assert goal.agreed_by_id == world.people["ben"].id
