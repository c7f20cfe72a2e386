"""Relationship lifecycle and mentor seats, including two requests racing for the last one."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from plugin.models import (
    CloseReason,
    Participant,
    Program,
    Relationship,
    RelationshipOrigin,
    RelationshipStatus,
    Track,
    User,
)
from plugin.programs.errors import CapacityFull, NotAllowed, StateConflict
from plugin.programs.relationships import (
    close_relationship,
    mentor_seats,
    propose_relationship,
    respond_to_request,
    set_paused,
)
from tests.conftest import run_together
from tests.programs.conftest import LEARNER, Tenant, coordinator_pair, seed_program


@pytest.fixture
def pair_setup(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> tuple[Program, Participant, Participant]:
    program = make_program(tenant)
    mentee = enroll(program, make_user(tenant, LEARNER), mentee=True)
    mentor = enroll(program, make_user(tenant), mentor=True, capacity_by_track={"research": 1})
    return program, mentee, mentor


def test_request_accept_pause_resume_close_keeps_history(
    session: Session, pair_setup: tuple[Program, Participant, Participant]
) -> None:
    program, mentee, mentor = pair_setup
    relationship = propose_relationship(
        session,
        program=program,
        mentee=mentee,
        mentor=mentor,
        track=Track.RESEARCH,
        origin=RelationshipOrigin.REQUEST,
        actor=mentee,
        note="I'd like help with my first abstract",
    )
    assert relationship.status.value == "proposed"
    respond_to_request(session, relationship, accept=True, actor=mentor)
    set_paused(session, relationship, paused=True, actor=mentor)
    set_paused(session, relationship, paused=False, actor=mentee)
    close_relationship(session, relationship, reason=CloseReason.COMPLETED, actor=mentor)
    session.refresh(relationship)
    assert relationship.status == RelationshipStatus.CLOSED
    assert relationship.close_reason == CloseReason.COMPLETED
    assert [(e.kind, e.from_status, e.to_status) for e in relationship.events] == [
        ("proposed", "", "proposed"),
        ("accepted", "proposed", "active"),
        ("paused", "active", "paused"),
        ("resumed", "paused", "active"),
        ("closed", "active", "closed"),
    ]


def test_a_full_mentor_refuses_the_next_mentee_and_a_closed_one_frees_the_seat(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    pair_setup: tuple[Program, Participant, Participant],
) -> None:
    program, mentee, mentor = pair_setup
    first = coordinator_pair(session, program, mentee, mentor)
    other = enroll(program, make_user(tenant, LEARNER), mentee=True)
    with pytest.raises(CapacityFull, match="no free place"):
        propose_relationship(
            session,
            program=program,
            mentee=other,
            mentor=mentor,
            track=Track.RESEARCH,
            origin=RelationshipOrigin.REQUEST,
            actor=other,
        )
    assert mentor_seats(session, program, mentor, Track.RESEARCH).free == 0
    close_relationship(session, first, reason=CloseReason.NOT_WORKING, actor=None)
    assert mentor_seats(session, program, mentor, Track.RESEARCH).free == 1


def test_overall_capacity_caps_the_sum_of_tracks(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> None:
    program = make_program(tenant)
    mentor = enroll(
        program,
        make_user(tenant),
        mentor=True,
        capacity_by_track={"research": 2, "career": 2},
        capacity_total=1,
    )
    a = enroll(program, make_user(tenant, LEARNER), mentee=True)
    b = enroll(program, make_user(tenant, LEARNER), mentee=True)
    for mentee, track in ((a, Track.RESEARCH), (b, Track.CAREER)):
        if mentee is b:
            with pytest.raises(CapacityFull):
                propose_relationship(
                    session,
                    program=program,
                    mentee=mentee,
                    mentor=mentor,
                    track=track,
                    origin=RelationshipOrigin.COORDINATOR,
                    actor=None,
                )
        else:
            propose_relationship(
                session,
                program=program,
                mentee=mentee,
                mentor=mentor,
                track=track,
                origin=RelationshipOrigin.COORDINATOR,
                actor=None,
            )


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("self", NotAllowed),
        ("not_a_mentor", NotAllowed),
        ("track_not_offered_by_program", NotAllowed),
        ("second_open_on_track", StateConflict),
        ("other_program", NotAllowed),
    ],
)
def test_ineligible_pairs_are_refused_and_change_nothing(
    case: str,
    error: type[Exception],
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> None:
    program = make_program(tenant, tracks=["research", "career"])
    mentee_user = make_user(tenant, LEARNER)
    mentee = enroll(program, mentee_user, mentee=True)
    mentor = enroll(program, make_user(tenant), mentor=True)
    track = Track.RESEARCH
    if case == "self":
        mentor = mentee
        mentee.is_mentor = True
    elif case == "not_a_mentor":
        mentor.is_mentor = False
    elif case == "track_not_offered_by_program":
        track = Track.WELLBEING
    elif case == "second_open_on_track":
        other_mentor = enroll(program, make_user(tenant), mentor=True)
        propose_relationship(
            session,
            program=program,
            mentee=mentee,
            mentor=other_mentor,
            track=track,
            origin=RelationshipOrigin.COORDINATOR,
            actor=None,
        )
    elif case == "other_program":
        mentor = enroll(make_program(tenant, title="Other"), make_user(tenant), mentor=True)
    before = session.scalars(select(Relationship)).all()
    with pytest.raises(error):
        propose_relationship(
            session,
            program=program,
            mentee=mentee,
            mentor=mentor,
            track=track,
            origin=RelationshipOrigin.REQUEST,
            actor=mentee,
        )
    assert session.scalars(select(Relationship)).all() == before


def test_only_the_requested_mentor_answers_and_only_once(
    session: Session, pair_setup: tuple[Program, Participant, Participant]
) -> None:
    program, mentee, mentor = pair_setup
    relationship = propose_relationship(
        session,
        program=program,
        mentee=mentee,
        mentor=mentor,
        track=Track.RESEARCH,
        origin=RelationshipOrigin.REQUEST,
        actor=mentee,
    )
    with pytest.raises(NotAllowed):
        respond_to_request(session, relationship, accept=True, actor=mentee)
    respond_to_request(session, relationship, accept=False, actor=mentor)
    assert relationship.close_reason == CloseReason.DECLINED
    with pytest.raises(StateConflict):
        respond_to_request(session, relationship, accept=True, actor=mentor)


@pytest.mark.postgres
def test_two_requests_racing_for_the_last_seat_cannot_both_succeed(
    committed_sessions: sessionmaker[Session],
) -> None:
    """Real concurrency on PostgreSQL: two transactions, two connections, one seat."""
    with committed_sessions() as setup:
        program, people = seed_program(
            setup, people=3, tracks_offered=["research"], capacity_by_track={"research": 1}
        )
        setup.commit()
        program_id, ids = program.id, [p.id for p in people]

    outcomes: list[str] = []

    def request_seat(mentee_id: int) -> None:
        with committed_sessions() as s:
            prog = s.get(Program, program_id)
            mentor = s.get(Participant, ids[0])
            mentee = s.get(Participant, mentee_id)
            assert prog is not None
            assert mentor is not None
            assert mentee is not None
            try:
                propose_relationship(
                    s,
                    program=prog,
                    mentee=mentee,
                    mentor=mentor,
                    track=Track.RESEARCH,
                    origin=RelationshipOrigin.REQUEST,
                    actor=mentee,
                )
                s.commit()
                outcomes.append("ok")
            except CapacityFull:
                s.rollback()
                outcomes.append("full")

    run_together(*(partial(request_seat, mentee_id) for mentee_id in ids[1:]))
    with committed_sessions() as check:
        held = check.scalars(select(Relationship).where(Relationship.mentor_id == ids[0])).all()
    assert sorted(outcomes) == ["full", "ok"]
    assert len(held) == 1
