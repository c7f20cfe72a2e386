"""Participant flows end to end through the pages: request a mentor, answer, write a goal,
agree, check in; notifications; browse order; deletion requests."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    AuditEvent,
    Goal,
    GoalStatus,
    Notification,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipStatus,
    User,
)
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant
from tests.programs.forms import database_snapshot, field_error, page_alert


class Pair:
    """A program with one mentee and one mentor enrolled, each with a browser."""

    def __init__(
        self,
        program: Program,
        mentee: Participant,
        mentor: Participant,
        as_mentee: Person,
        as_mentor: Person,
    ) -> None:
        self.program = program
        self.mentee = mentee
        self.mentor = mentor
        self.as_mentee = as_mentee
        self.as_mentor = as_mentor

    def path(self, rest: str) -> str:
        return f"/programs/{self.program.id}{rest}"


@pytest.fixture
def pair(
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> Pair:
    program = make_program(tenant)
    mentee_user = make_user(tenant, LEARNER, name="Mia Mentee")
    mentor_user = make_user(tenant, INSTRUCTOR, name="Dr Max Mentor")
    mentee = enroll(program, mentee_user, mentee=True, interests=["specialty.cardiology"])
    mentor = enroll(
        program,
        mentor_user,
        mentor=True,
        bio="Echo lab",
        interests=["specialty.cardiology"],
        capacity_by_track={"research": 1},
    )
    return Pair(
        program,
        mentee,
        mentor,
        as_person(tenant, mentee_user, CourseRole.LEARNER),
        as_person(tenant, mentor_user, CourseRole.INSTRUCTOR),
    )


def _text(html: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", html))


def test_a_mentee_requests_a_mentor_who_accepts_and_both_are_told(
    session: Session, pair: Pair
) -> None:
    browse = pair.as_mentee.get(pair.path("/mentors?track=research")).get_data(as_text=True)
    assert "Dr Max Mentor" in browse
    assert "Shared interests: Cardiology" in _text(browse)
    response = pair.as_mentee.post(
        pair.path(f"/mentors/{pair.mentor.id}/request"),
        {"track": "research", "note": "I loved your talk."},
    )
    assert response.status_code == 303
    relationship = session.scalars(select(Relationship)).one()
    assert relationship.status.value == "proposed"
    assert relationship.origin.value == "request"
    mentor_home = _text(pair.as_mentor.get(pair.path("/")).get_data(as_text=True))
    assert "Mia Mentee asked you to be their Research mentor." in mentor_home  # notification
    assert "I loved your talk." in mentor_home  # the request with its message
    assert "1 of 1" in mentor_home  # the seat is held while the request waits
    answer = pair.as_mentor.post(pair.path(f"/requests/{relationship.id}"), {"decision": "accept"})
    assert answer.status_code == 303
    session.refresh(relationship)
    assert relationship.status == RelationshipStatus.ACTIVE
    mentee_home = _text(pair.as_mentee.get(pair.path("/")).get_data(as_text=True))
    assert "Dr Max Mentor accepted your request" in mentee_home
    assert "Active" in mentee_home
    # The mentor is full now: the list no longer offers them.
    browse = pair.as_mentee.get(pair.path("/mentors?track=research")).get_data(as_text=True)
    assert "Ask Dr Max Mentor" not in browse


def test_a_declined_request_frees_the_seat_and_tells_the_mentee(
    session: Session, pair: Pair
) -> None:
    pair.as_mentee.post(pair.path(f"/mentors/{pair.mentor.id}/request"), {"track": "research"})
    relationship = session.scalars(select(Relationship)).one()
    pair.as_mentor.post(pair.path(f"/requests/{relationship.id}"), {"decision": "decline"})
    session.refresh(relationship)
    assert relationship.status == RelationshipStatus.CLOSED
    assert "declined your request" in pair.as_mentee.get(pair.path("/")).get_data(as_text=True)
    again = pair.as_mentor.post(pair.path(f"/requests/{relationship.id}"), {"decision": "accept"})
    assert again.status_code == 409


def test_a_full_mentor_is_refused_at_the_request_with_a_message(
    session: Session,
    pair: Pair,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    from plugin.programs.relationships import propose_relationship

    rival = enroll(pair.program, make_user(tenant, LEARNER), mentee=True)
    from plugin.models import RelationshipOrigin, Track

    propose_relationship(
        session,
        program=pair.program,
        mentee=rival,
        mentor=pair.mentor,
        track=Track.RESEARCH,
        origin=RelationshipOrigin.REQUEST,
        actor=rival,
    )
    session.commit()
    response = pair.as_mentee.post(
        pair.path(f"/mentors/{pair.mentor.id}/request"), {"track": "research", "note": "Hi"}
    )
    html = _text(response.get_data(as_text=True))
    assert response.status_code == 409
    assert 'role="alert"' in html  # the mentor is no longer listed: the message is on top
    assert "no free place on the Research track" in html
    assert (
        session.scalar(select(Relationship).where(Relationship.mentee_id == pair.mentee.id)) is None
    )


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"track": "research", "note": "x" * 1001}, "note-{mentor}", "at most 1000"),
        ({"track": "astrology"}, None, "This program does not offer that track"),
        ({"track": ""}, None, "This program does not offer that track"),
    ],
)
def test_a_bad_request_to_a_mentor_is_refused_and_changes_nothing(
    session: Session, pair: Pair, form: dict[str, str], field: str | None, says: str
) -> None:
    before = database_snapshot(session)
    response = pair.as_mentee.post(pair.path(f"/mentors/{pair.mentor.id}/request"), form)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    if field is None:  # the track is not a field the mentee fills in: said on top
        assert says in page_alert(html)
    else:
        assert says in field_error(html, field.format(mentor=pair.mentor.id))
    assert database_snapshot(session) == before


@pytest.mark.parametrize("decision", ["", "maybe"])
def test_an_answer_that_is_neither_accept_nor_decline_is_refused(
    session: Session, pair: Pair, decision: str
) -> None:
    pair.as_mentee.post(pair.path(f"/mentors/{pair.mentor.id}/request"), {"track": "research"})
    relationship = session.scalars(select(Relationship)).one()
    before = database_snapshot(session)
    answer = pair.as_mentor.post(pair.path(f"/requests/{relationship.id}"), {"decision": decision})
    assert answer.status_code == 400
    assert "Choose to accept or decline the request." in page_alert(answer.get_data(as_text=True))
    assert database_snapshot(session) == before


def test_browse_orders_mentors_by_shared_interests(
    pair: Pair,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    pair.mentee.profile.interests = [  # type: ignore[union-attr]
        "specialty.cardiology",
        "research.clinical_trials",
    ]
    enroll(
        pair.program,
        make_user(tenant, INSTRUCTOR, name="Aaron Also"),
        mentor=True,
        interests=["research.clinical_trials", "specialty.cardiology"],
    )
    enroll(pair.program, make_user(tenant, INSTRUCTOR, name="Abe Unrelated"), mentor=True)
    html = pair.as_mentee.get(pair.path("/mentors?track=research")).get_data(as_text=True)
    order = [html.index(name) for name in ("Aaron Also", "Dr Max Mentor", "Abe Unrelated")]
    assert order == sorted(order)


def test_browse_ranks_mentors_with_the_engine_and_says_why(
    pair: Pair,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    # Same interests for both mentors: common availability decides, and is given as a reason.
    monday_evening = [{"day": 0, "start": "18:00", "end": "20:00"}]
    pair.mentee.profile.availability = monday_evening  # type: ignore[union-attr]
    pair.mentee.profile.time_zone = "Europe/Paris"  # type: ignore[union-attr]
    enroll(
        pair.program,
        make_user(tenant, INSTRUCTOR, name="Dr Available"),
        mentor=True,
        interests=["specialty.cardiology"],
        time_zone="Europe/Paris",
        availability=monday_evening,
    )
    html = _text(pair.as_mentee.get(pair.path("/mentors?track=research")).get_data(as_text=True))
    # Dr Max Mentor declared no availability (admissible, scores 0 on it): ranked second.
    assert html.index("Dr Available") < html.index("Dr Max Mentor")
    assert "Why Dr Available (fit" in html
    assert "common availability" in html


def _active_pair(session: Session, pair: Pair) -> Relationship:
    pair.as_mentee.post(pair.path(f"/mentors/{pair.mentor.id}/request"), {"track": "research"})
    relationship = session.scalars(select(Relationship)).one()
    pair.as_mentor.post(pair.path(f"/requests/{relationship.id}"), {"decision": "accept"})
    return relationship


def test_a_goal_is_proposed_agreed_and_checked_in_on_by_both(session: Session, pair: Pair) -> None:
    relationship = _active_pair(session, pair)
    target = (utcnow() + timedelta(days=90)).date().isoformat()
    created = pair.as_mentee.post(
        pair.path("/goals"),
        {
            "scope": f"r{relationship.id}",
            "title": "Submit an abstract to the spring meeting",
            "measure": "Abstract submitted",
            "target_date": target,
        },
    )
    assert created.status_code == 303
    goal = session.scalars(select(Goal)).one()
    assert goal.status.value == "proposed"
    assert "Submit an abstract" in pair.as_mentor.get(pair.path("/")).get_data(as_text=True)
    assert pair.as_mentee.post(pair.path(f"/goals/{goal.id}/agree")).status_code == 403
    assert pair.as_mentor.post(pair.path(f"/goals/{goal.id}/agree")).status_code == 303
    session.refresh(goal)
    assert goal.status == GoalStatus.AGREED
    assert goal.agreed_by_id == pair.mentor.id
    for who, progress, note in (
        (pair.as_mentee, "30", "Outline written"),
        (pair.as_mentor, "60", "Reviewed the draft together"),
    ):
        response = who.post(
            pair.path(f"/goals/{goal.id}/checkins"), {"progress": progress, "note": note}
        )
        assert response.status_code == 303
    session.refresh(goal)
    assert goal.progress == 60
    assert [u.kind for u in goal.updates] == ["created", "agreed", "checkin", "checkin"]
    page = _text(pair.as_mentee.get(pair.path(f"/goals/{goal.id}")).get_data(as_text=True))
    assert "Dr Max Mentor checked in: 60%" in page
    assert "Reviewed the draft together" in page
    assert "Mia Mentee agreed" not in page


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"title": ""}, "title", "what you want"),
        ({"title": "t" * 201}, "title", "at most 200"),
        ({"measure": ""}, "measure", "how you will know"),
        ({"measure": "m" * 1001}, "measure", "at most 1000"),
        ({"target_date": ""}, "target_date", "YYYY-MM-DD"),
        ({"target_date": "2001-01-01"}, "target_date", "in the future"),
        ({"target_date": "next week"}, "target_date", "YYYY-MM-DD"),
        ({"scope": "r999"}, "scope", "Choose one of your mentors"),
        ({"scope": "c999"}, "scope", "Choose one of your mentors"),
        ({"scope": ""}, "scope", "Choose one of your mentors"),
    ],
)
def test_bad_goal_input_is_refused_at_the_field(
    session: Session, pair: Pair, form: dict[str, str], field: str, says: str
) -> None:
    relationship = _active_pair(session, pair)
    data = {
        "scope": f"r{relationship.id}",
        "title": "Learn echo",
        "measure": "Do 20 supervised studies",
        "target_date": (utcnow() + timedelta(days=30)).date().isoformat(),
    }
    data.update(form)
    before = database_snapshot(session)
    response = pair.as_mentee.post(pair.path("/goals"), data)
    assert response.status_code == 400
    assert says in field_error(response.get_data(as_text=True), field)
    assert database_snapshot(session) == before
    assert session.scalars(select(Goal)).all() == []


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"progress": "120", "note": "x"}, "progress", "0 to 100"),
        ({"progress": "-1", "note": "x"}, "progress", "0 to 100"),
        ({"progress": "ten", "note": "x"}, "progress", "0 to 100"),
        ({"progress": "", "note": "x"}, "progress", "0 to 100"),
        ({"progress": "10", "note": ""}, "note", "short note"),
        ({"progress": "10", "note": "n" * 2001}, "note", "at most 2000"),
    ],
)
def test_bad_checkins_are_refused_at_the_field(
    session: Session, pair: Pair, form: dict[str, str], field: str, says: str
) -> None:
    relationship = _active_pair(session, pair)
    pair.as_mentee.post(
        pair.path("/goals"),
        {
            "scope": f"r{relationship.id}",
            "title": "Learn echo",
            "measure": "20 studies",
            "target_date": (utcnow() + timedelta(days=30)).date().isoformat(),
        },
    )
    goal = session.scalars(select(Goal)).one()
    before = database_snapshot(session)
    response = pair.as_mentee.post(pair.path(f"/goals/{goal.id}/checkins"), form)
    assert response.status_code == 400
    assert says in field_error(response.get_data(as_text=True), field)
    assert database_snapshot(session) == before
    session.refresh(goal)
    assert goal.progress == 0
    assert len(goal.updates) == 1


def test_notifications_are_marked_read_only_by_their_recipient(
    session: Session, pair: Pair
) -> None:
    pair.as_mentee.post(pair.path(f"/mentors/{pair.mentor.id}/request"), {"track": "research"})
    note = session.scalars(select(Notification)).one()
    pair.as_mentee.post(pair.path("/notifications/read"), {"id": str(note.id)})
    assert session.scalar(select(Notification.read_at).where(Notification.id == note.id)) is None
    pair.as_mentor.post(pair.path("/notifications/read"), {"id": str(note.id)})
    read_at = session.scalar(select(Notification.read_at).where(Notification.id == note.id))
    assert read_at is not None
    assert "asked you" not in pair.as_mentor.get(pair.path("/")).get_data(as_text=True)


def test_asking_for_deletion_records_it_for_coordinators_and_withdraws(
    session: Session, pair: Pair
) -> None:
    _active_pair(session, pair)
    before = database_snapshot(session)
    for unconfirmed in ({}, {"confirm": "no"}):
        refused = pair.as_mentee.post(pair.path("/privacy/deletion"), unconfirmed)
        assert refused.status_code == 400
        assert "Tick the box" in field_error(refused.get_data(as_text=True), "confirm")
    assert database_snapshot(session) == before
    response = pair.as_mentee.post(pair.path("/privacy/deletion"), {"confirm": "yes"})
    assert response.status_code == 200
    assert "Your request is recorded" in response.get_data(as_text=True)
    session.refresh(pair.mentee)
    assert pair.mentee.status == ParticipantStatus.WITHDRAWN
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "participant.deletion_requested")
    ).one()
    assert (audit.program_id, audit.target_id) == (pair.program.id, pair.mentee.id)
    assert audit.after == {}  # no personal data in the audit trail
    told = session.scalars(
        select(Notification).where(Notification.recipient_id == pair.mentor.id)
    ).all()
    assert any("withdrew from the program" in n.text for n in told)


def test_my_data_is_a_json_download(pair: Pair) -> None:
    response = pair.as_mentee.get(pair.path("/my-data.json"))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.get_json()
    assert data["person"]["name"] == "Mia Mentee"
    assert data["profile"]["interests"] == ["specialty.cardiology"]
