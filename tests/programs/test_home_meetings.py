"""Mentee and mentor homes show each relationship's next meeting in the viewer's zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    MeetingStatus,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from plugin.programs.dashboards import next_meetings
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant, add_meeting
from tests.programs.test_coordinator_workspace import counting_queries


def test_homes_show_the_next_meeting_in_each_viewers_zone_with_a_link(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = make_program(tenant)
    mentee_user = make_user(tenant, LEARNER)
    mentor_user = make_user(tenant, INSTRUCTOR)
    mentee = enroll(program, mentee_user, mentee=True, time_zone="Asia/Tokyo")
    mentor = enroll(program, mentor_user, mentor=True, time_zone="America/New_York")
    rel = Relationship(
        program_id=program.id,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        track=Track.RESEARCH,
        status=RelationshipStatus.ACTIVE,
    )
    session.add(rel)
    session.flush()
    year = utcnow().year + 1
    start = datetime(year, 3, 3, 15, 0, tzinfo=UTC)  # 00:00 next day in Tokyo, 10:00 in New York
    add_meeting(session, rel, start - timedelta(days=1), MeetingStatus.CANCELLED)
    soon = add_meeting(session, rel, start, MeetingStatus.SCHEDULED)
    add_meeting(session, rel, start + timedelta(days=7), MeetingStatus.SCHEDULED)
    session.commit()

    with counting_queries(session) as statements:
        found = next_meetings(session, [rel.id])
    assert len([s for s in statements if s.startswith("SELECT")]) == 1
    assert found[rel.id].id == soon.id

    mentee_page = as_person(tenant, mentee_user, CourseRole.LEARNER).get(f"/programs/{program.id}/")
    assert mentee_page.status_code == 200
    assert f"/programs/{program.id}/meetings/{soon.id}?lt=" in mentee_page.text
    assert f"4 Mar {year}, 00:00" in mentee_page.text
    mentor_page = as_person(tenant, mentor_user, CourseRole.INSTRUCTOR).get(
        f"/programs/{program.id}/"
    )
    assert f"/programs/{program.id}/meetings/{soon.id}?lt=" in mentor_page.text
    assert f"3 Mar {year}, 10:00" in mentor_page.text


def test_a_relationship_without_a_scheduled_meeting_says_so(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = make_program(tenant)
    mentee_user = make_user(tenant, LEARNER)
    mentee = enroll(program, mentee_user, mentee=True)
    mentor = enroll(program, make_user(tenant, INSTRUCTOR), mentor=True)
    session.add(
        Relationship(
            program_id=program.id,
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
        )
    )
    session.commit()
    page = as_person(tenant, mentee_user, CourseRole.LEARNER).get(f"/programs/{program.id}/")
    assert "No meeting scheduled" in page.text
