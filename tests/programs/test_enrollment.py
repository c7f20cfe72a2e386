"""Enrollment and profile: the form, its validation at each field, edit, withdraw, vocabulary."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import (
    Circle,
    CircleMember,
    CloseReason,
    MentorPolicy,
    Notification,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
    User,
)
from plugin.programs.vocabulary import backgrounds, program_vocabulary, shipped_vocabulary
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant, coordinator_pair
from tests.programs.forms import database_snapshot, field_error


def mentee_form(**overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "roles": ["mentee"],
        "tracks_wanted": ["research", "career"],
        "goals_text": "Find a research project in cardiology.",
        "interests": ["specialty.cardiology", "research.clinical_trials"],
        "interests_text": "echocardiography",
        "career_stage": "clinical_student",
        "time_zone": "America/Chicago",
        "window-0-day": "1",
        "window-0-start": "17:00",
        "window-0-end": "19:00",
        "meeting_format": "virtual",
        "languages": "en, es",
        "seek_backgrounds": ["background.first_generation"],
    }
    form.update(overrides)
    return form


def mentor_form(**overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "roles": ["mentor"],
        "tracks_offered": ["research", "clinical"],
        "bio": "Cardiologist; I run the echo lab.",
        "interests": ["specialty.cardiology"],
        "career_stage": "mid_career",
        "time_zone": "Europe/Paris",
        "meeting_format": "either",
        "languages": "en",
        "capacity-research": "3",
        "capacity-clinical": "1",
        "capacity_total": "3",
        "share_backgrounds": ["background.first_generation"],
    }
    form.update(overrides)
    return form


@pytest.fixture
def program(tenant: Tenant, make_program: Callable[..., Program]) -> Program:
    return make_program(tenant)


@pytest.fixture
def learner(
    tenant: Tenant, make_user: Callable[..., User], as_person: Callable[..., Person]
) -> tuple[User, Person]:
    user = make_user(tenant, LEARNER, name="Lee Learner")
    return user, as_person(tenant, user, CourseRole.LEARNER)


@pytest.fixture
def faculty(
    tenant: Tenant, make_user: Callable[..., User], as_person: Callable[..., Person]
) -> tuple[User, Person]:
    user = make_user(tenant, INSTRUCTOR, name="Dr Fay")
    return user, as_person(tenant, user, CourseRole.INSTRUCTOR)


def participant_of(session: Session, program: Program, user: User) -> Participant | None:
    return session.scalar(
        select(Participant).where(
            Participant.program_id == program.id, Participant.user_id == user.id
        )
    )


def test_the_vocabulary_ships_grouped_real_entries_and_programs_extend_it(
    program: Program,
) -> None:
    vocabulary = shipped_vocabulary()
    groups = {g.code: g for g in vocabulary.groups}
    assert set(groups) == {"specialty", "research", "career", "wellbeing"}
    assert all(len(g.items) >= 15 for g in groups.values())
    codes = [i.code for g in vocabulary.groups for i in g.items]
    assert len(codes) == len(set(codes))
    assert vocabulary.label("wellbeing.burnout") == "Burnout prevention"
    assert len(backgrounds()) >= 8
    program.extra_interests = [{"code": "local.simulation_lab", "label": "Simulation lab"}]
    extended = program_vocabulary(program)
    assert "local.simulation_lab" in extended
    assert "local.simulation_lab" not in shipped_vocabulary()


def test_a_learner_enrolls_as_mentee_with_a_full_profile(
    session: Session, program: Program, learner: tuple[User, Person]
) -> None:
    user, person = learner
    page = person.get(f"/programs/{program.id}/profile")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="mentee"' in html
    assert 'value="mentor"' not in html  # faculty-only program: no mentor option
    assert "timezone.js" in html
    assert "<script>" not in html  # CSP: no inline scripts
    response = person.post(f"/programs/{program.id}/profile", mentee_form())
    assert response.status_code == 303
    participant = participant_of(session, program, user)
    assert participant is not None
    assert participant.is_mentee
    assert not participant.is_mentor
    profile = participant.profile
    assert profile is not None
    assert profile.tracks_wanted == ["research", "career"]
    assert profile.time_zone == "America/Chicago"
    assert profile.availability == [{"day": 1, "start": "17:00", "end": "19:00"}]
    assert profile.languages == ["en", "es"]
    assert json.loads(profile.private_preferences or "") == {
        "seek": ["background.first_generation"],
        "identify_as": [],
    }
    home = person.get(f"/programs/{program.id}/").get_data(as_text=True)
    assert "You are enrolled as a mentee." in home
    assert "a Research mentor" in home


def test_faculty_enroll_as_mentor_and_edit_their_capacity(
    session: Session, program: Program, faculty: tuple[User, Person]
) -> None:
    user, person = faculty
    assert person.post(f"/programs/{program.id}/profile", mentor_form()).status_code == 303
    participant = participant_of(session, program, user)
    assert participant is not None
    assert participant.is_mentor
    assert participant.profile is not None
    assert participant.profile.capacity_by_track == {"research": 3, "clinical": 1}
    form = person.get(f"/programs/{program.id}/profile").get_data(as_text=True)
    assert 'value="Cardiologist; I run the echo lab."' in form or "echo lab" in form
    edited = mentor_form(**{"capacity-research": "4", "bio": "Now also a dean."})
    assert person.post(f"/programs/{program.id}/profile", edited).status_code == 303
    session.refresh(participant.profile)
    assert participant.profile.capacity_by_track["research"] == 4
    assert participant.profile.bio == "Now also a dean."


def test_a_learner_may_not_enroll_as_mentor_unless_peers_are_allowed(
    session: Session, program: Program, learner: tuple[User, Person]
) -> None:
    user, person = learner
    response = person.post(f"/programs/{program.id}/profile", mentor_form())
    assert response.status_code == 400
    assert "mentors are faculty" in response.get_data(as_text=True)
    assert participant_of(session, program, user) is None
    program.mentor_policy = MentorPolicy.FACULTY_AND_PEERS
    session.flush()
    assert person.post(f"/programs/{program.id}/profile", mentor_form()).status_code == 303


BAD_MENTEE_INPUT = [
    ({"roles": []}, "roles", "Choose to join"),
    ({"tracks_wanted": []}, "tracks_wanted", "at least one track"),
    ({"tracks_wanted": ["astrology"]}, "tracks_wanted", "this program's list"),
    ({"tracks_wanted": ["leadership"]}, "tracks_wanted", "this program's list"),
    ({"goals_text": "  "}, "goals_text", "hope to get"),
    ({"goals_text": "x" * 2001}, "goals_text", "at most 2000"),
    ({"interests_text": "y" * 501}, "interests_text", "at most 500"),
    ({"interests": ["specialty.astrology"]}, "interests", "from the list"),
    ({"career_stage": ""}, "career_stage", "career stage"),
    ({"time_zone": ""}, "time_zone", "time zone"),
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "not a time zone"),
    ({"time_zone": "../../etc/passwd"}, "time_zone", "not a time zone"),
    ({"window-0-end": "16:00"}, "window-0", "end after it starts"),
    ({"window-0-start": "25:00"}, "window-0", "HH:MM"),
    ({"window-0-day": "9"}, "window-0", "Choose a day"),
    ({"window-0-end": ""}, "window-0", "a start and an end"),
    ({"window-0-start": ""}, "window-0", "a start and an end"),
    ({"window-0-day": ""}, "window-0", "Choose a day"),
    (
        {"window-1-day": "1", "window-1-start": "18:30", "window-1-end": "20:00"},
        "window-1",
        "overlaps window 1",
    ),
    ({"meeting_format": "carrier_pigeon"}, "meeting_format", "how you would like"),
    ({"languages": ""}, "languages", "at least one language"),
    ({"languages": "english please!"}, "languages", "not a language code"),
    ({"languages": "en, es, fr, de, it, pt, nl, sv, da"}, "languages", "at most 8 languages"),
    ({"seek_backgrounds": ["background.martian"]}, "seek_backgrounds", "from the list"),
]


@pytest.mark.parametrize("editing", [False, True], ids=["enrolling", "editing"])
@pytest.mark.parametrize(("change", "field", "says"), BAD_MENTEE_INPUT)
def test_bad_mentee_input_is_refused_at_the_field_and_changes_nothing(
    session: Session,
    program: Program,
    learner: tuple[User, Person],
    change: dict[str, Any],
    field: str,
    says: str,
    editing: bool,
) -> None:
    user, person = learner
    if editing:
        assert person.post(f"/programs/{program.id}/profile", mentee_form()).status_code == 303
    before = database_snapshot(session)
    response = person.post(f"/programs/{program.id}/profile", mentee_form(**change))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert says in field_error(html, field)
    assert 'aria-invalid="true"' in html
    assert database_snapshot(session) == before
    assert (participant_of(session, program, user) is None) is not editing


BAD_MENTOR_INPUT = [
    ({"bio": ""}, "bio", "introduction"),
    ({"tracks_offered": ["wellbeing", "nope"]}, "tracks_offered", "this program's list"),
    ({"capacity-research": "many"}, "capacity-research", "whole number"),
    ({"capacity-research": "-1"}, "capacity-research", "from 0 to 20"),
    ({"capacity_total": "99"}, "capacity_total", "from 0 to 50"),
    ({"bio": "b" * 2001}, "bio", "at most 2000"),
    ({"tracks_offered": []}, "tracks_offered", "at least one track"),
    ({"languages": "en, es, fr, de, it, pt, nl, sv, da"}, "languages", "at most 8 languages"),
    ({"share_backgrounds": ["background.martian"]}, "share_backgrounds", "from the list"),
]


@pytest.mark.parametrize("editing", [False, True], ids=["enrolling", "editing"])
@pytest.mark.parametrize(("change", "field", "says"), BAD_MENTOR_INPUT)
def test_bad_mentor_input_is_refused_at_the_field_and_changes_nothing(
    session: Session,
    program: Program,
    faculty: tuple[User, Person],
    change: dict[str, Any],
    field: str,
    says: str,
    editing: bool,
) -> None:
    user, person = faculty
    if editing:
        assert person.post(f"/programs/{program.id}/profile", mentor_form()).status_code == 303
    before = database_snapshot(session)
    response = person.post(f"/programs/{program.id}/profile", mentor_form(**change))
    assert response.status_code == 400
    assert says in field_error(response.get_data(as_text=True), field)
    assert database_snapshot(session) == before
    assert (participant_of(session, program, user) is None) is not editing


def _mentor_with_mentees(
    session: Session,
    program: Program,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    mentor_user: User,
    n: int,
) -> Participant:
    mentor = enroll(program, mentor_user, mentor=True, capacity_by_track={"research": 3}, bio="Hi")
    for _ in range(n):
        mentee = enroll(program, make_user(tenant, LEARNER), mentee=True)
        coordinator_pair(session, program, mentee, mentor)
    return mentor


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"capacity-research": "1"}, "capacity-research"),
        ({"capacity_total": "1"}, "capacity_total"),
        ({"tracks_offered": ["clinical"]}, "tracks_offered"),
        ({"roles": []}, "roles"),
    ],
)
def test_a_mentor_cannot_go_below_their_current_mentees(
    session: Session,
    program: Program,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    faculty: tuple[User, Person],
    change: dict[str, Any],
    field: str,
) -> None:
    user, person = faculty
    mentor = _mentor_with_mentees(session, program, tenant, make_user, enroll, user, 2)
    before = database_snapshot(session)
    response = person.post(f"/programs/{program.id}/profile", mentor_form(**change))
    assert response.status_code == 400
    field_error(response.get_data(as_text=True), field)
    assert database_snapshot(session) == before
    session.refresh(mentor.profile)
    assert mentor.profile is not None
    assert mentor.profile.capacity_by_track == {"research": 3}
    assert mentor.profile.bio == "Hi"


def test_enrollment_outside_the_window_is_refused(
    session: Session, program: Program, learner: tuple[User, Person]
) -> None:
    from datetime import date

    user, person = learner
    program.enrollment_closes_on = date(2020, 1, 1)
    session.flush()
    response = person.post(f"/programs/{program.id}/profile", mentee_form())
    assert response.status_code == 400
    assert "Enrollment closed" in field_error(response.get_data(as_text=True), "roles")
    assert participant_of(session, program, user) is None


def test_withdrawing_ends_relationships_leaves_circles_and_tells_partners(
    session: Session,
    program: Program,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    faculty: tuple[User, Person],
) -> None:
    user, person = faculty
    mentor = _mentor_with_mentees(session, program, tenant, make_user, enroll, user, 2)
    circle = Circle(program_id=program.id, name="Wednesday circle", facilitator_id=mentor.id)
    session.add(circle)
    session.flush()
    session.add(CircleMember(circle_id=circle.id, participant_id=mentor.id))
    session.flush()
    before = database_snapshot(session)
    for unconfirmed in ({}, {"confirm": "no"}):
        refused = person.post(f"/programs/{program.id}/withdraw", unconfirmed)
        assert refused.status_code == 400
        assert "Tick the box" in field_error(refused.get_data(as_text=True), "confirm")
    assert database_snapshot(session) == before
    assert person.post(f"/programs/{program.id}/withdraw", {"confirm": "yes"}).status_code == 303
    session.refresh(mentor)
    assert mentor.status.value == "withdrawn"
    relationships = session.scalars(select(Relationship)).all()
    assert {r.status for r in relationships} == {RelationshipStatus.CLOSED}
    assert {r.close_reason for r in relationships} == {CloseReason.WITHDRAWN}
    assert all(r.events[-1].kind == "closed" for r in relationships)
    notes = session.scalars(select(Notification)).all()
    assert sorted(n.recipient_id for n in notes) == sorted(r.mentee_id for r in relationships)
    assert all("withdrew from the program" in n.text for n in notes)
    member = session.scalars(select(CircleMember)).one()
    assert member.left_at is not None
    # They can come back, and the form is there again.
    again = person.post(f"/programs/{program.id}/profile", mentor_form())
    assert again.status_code == 303
    session.refresh(mentor)
    assert mentor.status == ParticipantStatus.ACTIVE


def test_profile_rows_are_not_duplicated_on_edit(
    session: Session, program: Program, learner: tuple[User, Person]
) -> None:
    _user, person = learner
    person.post(f"/programs/{program.id}/profile", mentee_form())
    person.post(f"/programs/{program.id}/profile", mentee_form(goals_text="Changed"))
    assert len(session.scalars(select(Profile)).all()) == 1


def test_a_withdrawing_facilitator_leaves_open_circles_without_one_and_members_are_told(
    session: Session,
    program: Program,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    from datetime import date

    from plugin.db import utcnow
    from plugin.programs.enrollment import withdraw
    from plugin.programs.goals import agree_goal, create_goal

    facilitator = enroll(program, make_user(tenant, INSTRUCTOR), mentor=True)
    first, second, third = (enroll(program, make_user(tenant, LEARNER), mentee=True) for _ in "abc")
    open_circle = Circle(program_id=program.id, name="Open", facilitator_id=facilitator.id)
    old_circle = Circle(
        program_id=program.id, name="Old", facilitator_id=facilitator.id, closed_at=utcnow()
    )
    session.add_all([open_circle, old_circle])
    session.flush()
    session.add_all(
        [
            CircleMember(circle_id=open_circle.id, participant_id=p.id)
            for p in (first, second, third)
        ]
        + [CircleMember(circle_id=old_circle.id, participant_id=first.id)]
    )
    session.flush()
    session.refresh(open_circle)
    goal = create_goal(
        session,
        owner=first,
        scope=f"c{open_circle.id}",
        title="Lead a case review",
        measure="One review led",
        target_date="2099-01-01",
        today=date(2026, 1, 1),
    )

    withdraw(session, facilitator)
    assert open_circle.facilitator_id is None
    assert old_circle.facilitator_id == facilitator.id  # kept for the record
    told = session.scalars(
        select(Notification).where(Notification.kind == "circle.facilitator_left")
    ).all()
    assert sorted(n.recipient_id for n in told) == sorted([first.id, second.id, third.id])
    assert all("Open has no facilitator now" in n.text for n in told)
    agree_goal(session, goal, actor=second)  # the peers agree among themselves now

    withdraw(session, first, by_coordinator=True)
    left = session.scalars(select(Notification).where(Notification.kind == "circle.member_left"))
    expected = (
        f"{first.display_name} was withdrawn from the program and has left your peer circle Open."
    )
    assert sorted((n.recipient_id, n.text) for n in left) == [
        (p.id, expected) for p in (second, third)
    ]
