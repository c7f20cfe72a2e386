"""Per-track default capacities: the order they apply in, and everyone reading the same one.

A mentor's own number for a track wins, then the program's default for the track, then
the program's default for every track; seats, browsing, requests, the enrollment form and
match rounds all read it through ``track_capacity``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    Participant,
    Program,
    Relationship,
    RelationshipOrigin,
    RelationshipStatus,
    RoundObjective,
    Track,
    User,
)
from plugin.programs.dashboards import browse_mentors
from plugin.programs.errors import CapacityFull
from plugin.programs.matching_inputs import build_engine_inputs, engine_id
from plugin.programs.matching_rounds import publish_round, start_round
from plugin.programs.relationships import mentor_seats, propose_relationship, track_capacity
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant, coordinator_pair
from tests.programs.test_coordinator_settings import valid_form
from tests.programs.test_enrollment import mentor_form

Enroll = Callable[..., Participant]


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        # The mentor's own number wins, 0 included; a track they do not offer has none.
        (
            {"research": 3, "career": 0},
            {"research": 3, "career": 0, "clinical": 2, "wellbeing": 0},
        ),
        # Without one: the program's default for the track, else its default for all.
        ({}, {"research": 1, "career": 4, "clinical": 2, "wellbeing": 0}),
    ],
)
def test_capacity_is_the_mentor_s_then_the_track_default_then_the_program_default(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Enroll,
    own: dict[str, int],
    expected: dict[str, int],
) -> None:
    program = make_program(
        tenant, default_mentor_capacity=2, default_capacity_by_track={"research": 1, "career": 4}
    )
    mentor = enroll(
        program,
        make_user(tenant, INSTRUCTOR),
        mentor=True,
        tracks_offered=["research", "career", "clinical"],
        capacity_by_track=own,
    )
    found = {t.value: track_capacity(program, mentor, t) for t in program.offered_tracks}
    assert found == expected
    for track in program.offered_tracks:
        assert mentor_seats(session, program, mentor, track).track_capacity == expected[track.value]
    assert program.default_capacity(Track.CLINICAL) == 2
    assert program.default_capacity(Track.LEADERSHIP) == 2  # not offered: still the fallback


def test_a_round_and_browsing_honour_the_track_default(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Enroll,
) -> None:
    program = make_program(
        tenant,
        tracks=["research", "career"],
        default_mentor_capacity=1,
        default_capacity_by_track={"career": 3},
    )
    mentor = enroll(program, make_user(tenant, INSTRUCTOR), mentor=True)  # no own numbers
    mentees = [
        enroll(program, make_user(tenant, LEARNER), mentee=True, tracks_wanted=["career"])
        for _ in range(4)
    ]
    browse = browse_mentors(session, program, mentees[0], Track.CAREER)
    assert [(c.mentor.id, c.free_seats) for c in browse] == [(mentor.id, 3)]

    round_ = start_round(
        session,
        program,
        objective=RoundObjective.MAX_MATCHED,
        weights={},
        created_by_user_id=None,
    )
    (offered,) = build_engine_inputs(session, round_, now=utcnow()).mentors
    assert offered.id == engine_id(mentor.id)
    assert {o.track: o.capacity for o in offered.offers} == {"research": 1, "career": 3}
    assert len(round_.proposals) == 3  # the career default, not the program's 1
    assert publish_round(session, round_, actor=None, actor_user_id=None).created == 3
    left = next(m for m in mentees if m.id not in {p.mentee_id for p in round_.proposals})
    assert browse_mentors(session, program, left, Track.CAREER) == []


def test_lowering_a_track_default_below_a_mentor_s_mentees_keeps_them_and_refuses_new_ones(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Enroll,
    as_person: Callable[..., Person],
) -> None:
    program = make_program(
        tenant, tracks=["research", "career"], default_capacity_by_track={"career": 3}
    )
    mentor_user = make_user(tenant, INSTRUCTOR, name="Dr Max Mentor")
    mentor = enroll(program, mentor_user, mentor=True)
    mentees = [
        enroll(program, make_user(tenant, LEARNER), mentee=True, tracks_wanted=["career"])
        for _ in range(4)
    ]
    for mentee in mentees[:3]:
        coordinator_pair(session, program, mentee, mentor, Track.CAREER)
    session.commit()
    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)

    saved = coordinator.post(
        f"/programs/{program.id}/coordinator/settings",
        valid_form(tracks=["research", "career"], **{"default_capacity-career": "1"}),
    )

    assert saved.status_code == 303
    session.expire_all()
    relationships = session.scalars(select(Relationship)).all()
    assert [r.status for r in relationships] == [RelationshipStatus.ACTIVE] * 3
    seats = mentor_seats(session, program, mentor, Track.CAREER)
    assert (seats.track_capacity, seats.track_taken, seats.free) == (1, 3, 0)
    # The mentor's page still opens and shows them over the new number.
    home = as_person(tenant, mentor_user, CourseRole.INSTRUCTOR).get(f"/programs/{program.id}/")
    assert home.status_code == 200
    assert "3 of 1" in home.get_data(as_text=True)
    # The fourth mentee finds no one, and a request is refused for lack of a seat.
    last = mentees[3]
    assert browse_mentors(session, program, last, Track.CAREER) == []
    with pytest.raises(CapacityFull, match="no free place on the Career track"):
        propose_relationship(
            session,
            program=program,
            mentee=last,
            mentor=mentor,
            track=Track.CAREER,
            origin=RelationshipOrigin.REQUEST,
            actor=last,
        )
    session.rollback()
    assert len(session.scalars(select(Relationship)).all()) == 3


def test_the_enrollment_form_shows_and_applies_each_track_s_default(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    as_person: Callable[..., Person],
) -> None:
    program = make_program(
        tenant,
        tracks=["research", "clinical"],
        default_mentor_capacity=2,
        default_capacity_by_track={"research": 1},
    )
    user = make_user(tenant, INSTRUCTOR)
    person = as_person(tenant, user, CourseRole.INSTRUCTOR)
    page = person.get(f"/programs/{program.id}/profile").get_data(as_text=True)
    assert 'placeholder="1"' in page
    assert 'id="capacity-research-default">program default: 1<' in page
    assert 'id="capacity-clinical-default">program default: 2<' in page
    assert 'aria-describedby="capacity-hint capacity-research-default"' in page

    empty: dict[str, Any] = {"capacity-research": "", "capacity-clinical": "", "capacity_total": ""}
    assert person.post(f"/programs/{program.id}/profile", mentor_form(**empty)).status_code == 303

    participant = session.scalars(select(Participant).where(Participant.user_id == user.id)).one()
    assert participant.profile is not None
    assert participant.profile.capacity_by_track == {"research": 1, "clinical": 2}
