"""Peer mentors (issue #4): the program's career-stage bar on offering to mentor, and the
seniority rule that match rounds, the browse page and requests respect (a coordinator's
pairing is the override)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.matching import ExclusionReason
from plugin.models import (
    CareerStage,
    MatchRound,
    MentorPolicy,
    Participant,
    Program,
    Relationship,
    RelationshipOrigin,
    RelationshipStatus,
    RoundObjective,
    Track,
    User,
)
from plugin.programs.access import ProgramAccess
from plugin.programs.errors import NotAllowed
from plugin.programs.matching_inputs import build_engine_inputs, engine_id
from plugin.programs.matching_rounds import start_round
from plugin.programs.peers import peer_stage_allows
from plugin.programs.relationships import propose_relationship
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant
from tests.programs.forms import database_snapshot, field_error, page_alert
from tests.programs.test_coordinator_settings import valid_form as settings_form
from tests.programs.test_enrollment import mentor_form, participant_of

MakeUser = Callable[..., User]
Enroll = Callable[..., Participant]
AsPerson = Callable[..., Person]
BELOW_BAR = "Peer mentors in this program are at the “Resident” stage or later"


@pytest.fixture
def program(tenant: Tenant, make_program: Callable[..., Program]) -> Program:
    return make_program(
        tenant,
        tracks=["research"],
        mentor_policy=MentorPolicy.FACULTY_AND_PEERS,
        peer_mentor_min_stage=CareerStage.RESIDENT,
    )


def _learner(tenant: Tenant, make_user: MakeUser, as_person: AsPerson) -> tuple[User, Person]:
    user = make_user(tenant, LEARNER, name="Lee Learner")
    return user, as_person(tenant, user, CourseRole.LEARNER)


def _offer(**changes: Any) -> dict[str, Any]:
    """The enrollment form of someone offering mentoring on the research track."""
    return mentor_form(
        tracks_offered=["research"], **{"capacity-research": "2", "capacity_total": ""}, **changes
    )


# --- the bar on offering to mentor ----------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"roles": ["mentee", "mentor"], "tracks_wanted": ["research"], "goals_text": "Learn."},
    ],
    ids=["mentor", "mentee-and-mentor"],
)
@pytest.mark.parametrize("stage", ["preclinical", "clinical_student"])
def test_a_learner_below_the_bar_may_not_offer_mentoring_and_nothing_changes(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: MakeUser,
    as_person: AsPerson,
    stage: str,
    extra: dict[str, Any],
) -> None:
    user, person = _learner(tenant, make_user, as_person)
    form_page = person.get(f"/programs/{program.id}/profile").get_data(as_text=True)
    assert 'value="mentor"' in form_page  # peers are allowed: the option is there
    assert "from the “Resident” stage on" in form_page  # and the bar is said up front
    before = database_snapshot(session)
    response = person.post(f"/programs/{program.id}/profile", _offer(career_stage=stage, **extra))
    assert response.status_code == 400
    assert BELOW_BAR in field_error(response.get_data(as_text=True), "career_stage")
    assert database_snapshot(session) == before
    assert participant_of(session, program, user) is None
    # The same learner may join as a mentee at that stage.
    mentee_only = {"roles": ["mentee"], "tracks_wanted": ["research"], "goals_text": "Learn."}
    answer = person.post(
        f"/programs/{program.id}/profile", _offer(career_stage=stage, **mentee_only)
    )
    assert answer.status_code == 303


@pytest.mark.parametrize("stage", [CareerStage.RESIDENT, CareerStage.SENIOR])
def test_a_learner_at_or_above_the_bar_becomes_a_peer_mentor(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: MakeUser,
    as_person: AsPerson,
    stage: CareerStage,
) -> None:
    user, person = _learner(tenant, make_user, as_person)
    response = person.post(f"/programs/{program.id}/profile", _offer(career_stage=stage.value))
    assert response.status_code == 303
    participant = participant_of(session, program, user)
    assert participant is not None
    assert participant.is_mentor
    assert participant.profile is not None
    assert participant.profile.career_stage == stage


def test_faculty_are_not_held_to_the_peer_bar(
    session: Session, tenant: Tenant, program: Program, make_user: MakeUser, as_person: AsPerson
) -> None:
    user = make_user(tenant, INSTRUCTOR)
    person = as_person(tenant, user, CourseRole.INSTRUCTOR)
    assert "from the “Resident” stage on" not in person.get(
        f"/programs/{program.id}/profile"
    ).get_data(as_text=True)
    response = person.post(f"/programs/{program.id}/profile", _offer(career_stage="preclinical"))
    assert response.status_code == 303
    participant = participant_of(session, program, user)
    assert participant is not None
    assert participant.is_mentor


def test_a_faculty_only_program_refuses_every_learner_offer(
    session: Session, tenant: Tenant, program: Program, make_user: MakeUser, as_person: AsPerson
) -> None:
    program.mentor_policy = MentorPolicy.FACULTY_ONLY
    session.flush()
    user, person = _learner(tenant, make_user, as_person)
    assert 'value="mentor"' not in person.get(f"/programs/{program.id}/profile").get_data(
        as_text=True
    )
    before = database_snapshot(session)
    response = person.post(f"/programs/{program.id}/profile", _offer(career_stage="senior"))
    assert response.status_code == 400
    assert "mentors are faculty" in field_error(response.get_data(as_text=True), "roles")
    assert database_snapshot(session) == before
    assert participant_of(session, program, user) is None


@pytest.mark.parametrize(
    ("roles", "invited", "peer"),
    [
        ({CourseRole.LEARNER}, False, True),
        ({CourseRole.LEARNER, CourseRole.TEACHING_ASSISTANT}, False, False),
        ({CourseRole.INSTRUCTOR}, False, False),
        ({CourseRole.LEARNER}, True, False),  # an invited external mentor
        (set(), False, False),
    ],
)
def test_who_is_held_to_the_peer_bar(
    program: Program, roles: set[CourseRole], invited: bool, peer: bool
) -> None:
    participant = Participant(program_id=program.id, invite_email="a@b.org" if invited else "")
    access = ProgramAccess(
        program=program, user=User(), participant=participant, course_roles=frozenset(roles)
    )
    assert access.is_peer is peer
    assert access.peer_mentor_min_stage == (CareerStage.RESIDENT if peer else None)


def test_raising_the_bar_keeps_current_peer_mentors_but_refuses_new_offers(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: MakeUser,
    as_person: AsPerson,
    enroll: Enroll,
) -> None:
    program.peer_mentor_min_stage = CareerStage.CLINICAL_STUDENT
    session.flush()
    peer_user, peer = _learner(tenant, make_user, as_person)
    enrolled = peer.post(f"/programs/{program.id}/profile", _offer(career_stage="clinical_student"))
    assert enrolled.status_code == 303
    mentor = participant_of(session, program, peer_user)
    assert mentor is not None
    assert mentor.is_mentor
    mentee = enroll(
        program, make_user(tenant, LEARNER), mentee=True, career_stage=CareerStage.PRECLINICAL
    )
    relationship = propose_relationship(
        session,
        program=program,
        mentee=mentee,
        mentor=mentor,
        track=Track.RESEARCH,
        origin=RelationshipOrigin.REQUEST,
        actor=mentee,
        activate=True,
    )
    session.commit()
    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    raised = settings_form(
        tracks=["research"], mentor_policy="faculty_and_peers", peer_mentor_min_stage="resident"
    )
    assert (
        coordinator.post(f"/programs/{program.id}/coordinator/settings", raised).status_code == 303
    )
    session.refresh(program)
    assert program.peer_mentor_min_stage == CareerStage.RESIDENT

    session.refresh(relationship)
    assert relationship.status == RelationshipStatus.ACTIVE  # nobody's relationship ends
    edited = _offer(career_stage="clinical_student", bio="Still here.")
    assert peer.post(f"/programs/{program.id}/profile", edited).status_code == 303
    session.refresh(mentor)
    assert mentor.is_mentor  # a current peer mentor keeps the role and can edit
    newcomer_user, newcomer = _learner(tenant, make_user, as_person)
    response = newcomer.post(
        f"/programs/{program.id}/profile", _offer(career_stage="clinical_student")
    )
    assert response.status_code == 400
    assert BELOW_BAR in field_error(response.get_data(as_text=True), "career_stage")
    assert participant_of(session, program, newcomer_user) is None

    # Below the raised bar, the current peer mentor takes no new mentees: not listed, and a
    # request is refused (a coordinator's pairing remains the override).
    other_user = make_user(tenant, LEARNER)
    enroll(program, other_user, mentee=True, career_stage=CareerStage.PRECLINICAL)
    other = as_person(tenant, other_user, CourseRole.LEARNER)
    listed = other.get(f"/programs/{program.id}/mentors?track=research").get_data(as_text=True)
    assert f"Ask {mentor.display_name} to mentor me" not in listed
    asked = other.post(f"/programs/{program.id}/mentors/{mentor.id}/request", {"track": "research"})
    assert asked.status_code == 409


# --- seniority in matching -----------------------------------------------------------------


def test_only_a_strictly_more_senior_peer_at_the_bar_may_take_a_new_mentee() -> None:
    program = Program(
        mentor_policy=MentorPolicy.FACULTY_AND_PEERS,
        peer_mentor_min_stage=CareerStage.CLINICAL_STUDENT,
    )
    assert peer_stage_allows(program, CareerStage.RESIDENT, CareerStage.CLINICAL_STUDENT)
    assert not peer_stage_allows(program, CareerStage.RESIDENT, CareerStage.RESIDENT)
    assert not peer_stage_allows(program, CareerStage.RESIDENT, CareerStage.FELLOW)
    assert not peer_stage_allows(program, None, CareerStage.PRECLINICAL)
    assert not peer_stage_allows(program, CareerStage.SENIOR, None)
    program.peer_mentor_min_stage = CareerStage.FELLOW  # the bar, raised later
    assert not peer_stage_allows(program, CareerStage.RESIDENT, CareerStage.PRECLINICAL)
    assert peer_stage_allows(program, CareerStage.FELLOW, CareerStage.PRECLINICAL)
    program.mentor_policy = MentorPolicy.FACULTY_ONLY  # peers allowed no more
    assert not peer_stage_allows(program, CareerStage.SENIOR, CareerStage.PRECLINICAL)


class Cohort:
    """A peer mentor (resident), a faculty mentor, and mentees at four stages."""

    def __init__(self, program: Program, people: dict[str, Participant]) -> None:
        self.program = program
        self.people = people

    def __getitem__(self, name: str) -> Participant:
        return self.people[name]


@pytest.fixture
def cohort(tenant: Tenant, program: Program, make_user: MakeUser, enroll: Enroll) -> Cohort:
    def mentor(name: str, role: str, stage: CareerStage) -> Participant:
        return enroll(
            program,
            make_user(tenant, role, name=name),
            mentor=True,
            bio="Hello",
            career_stage=stage,
            interests=["specialty.cardiology"],
            capacity_by_track={"research": 2},
        )

    def mentee(name: str, stage: CareerStage | None) -> Participant:
        return enroll(
            program,
            make_user(tenant, LEARNER, name=name),
            mentee=True,
            career_stage=stage,
            interests=["specialty.cardiology"],
        )

    people = {
        "peer": mentor("Pat Peer", LEARNER, CareerStage.RESIDENT),
        "faculty": mentor("Dr Fay Faculty", INSTRUCTOR, CareerStage.MID_CAREER),
        "student": mentee("Sam Student", CareerStage.CLINICAL_STUDENT),
        "resident": mentee("Rae Resident", CareerStage.RESIDENT),
        "fellow": mentee("Fen Fellow", CareerStage.FELLOW),
        "unknown": mentee("Una Unknown", None),
    }
    return Cohort(program, people)


def test_a_round_pairs_a_peer_mentor_only_with_earlier_stage_mentees(
    session: Session, cohort: Cohort
) -> None:
    round_ = MatchRound(program_id=cohort.program.id)
    session.add(round_)
    session.flush()
    inputs = build_engine_inputs(session, round_, now=round_.created_at)
    staged = {
        (e.mentee_id, e.mentor_id) for e in inputs.exclusions if e.reason == ExclusionReason.STAGE
    }
    peer = engine_id(cohort["peer"].id)
    assert staged == {(engine_id(cohort[n].id), peer) for n in ("resident", "fellow", "unknown")}

    ran = start_round(
        session,
        cohort.program,
        objective=RoundObjective.MAX_MATCHED,
        weights={},
        created_by_user_id=None,
    )
    pairs = {(p.mentee_id, p.mentor_id) for p in ran.proposals}
    # The peer can take only the student; the faculty mentor's two places go to two of the
    # three others, and the one left over is told why.
    assert (cohort["student"].id, cohort["peer"].id) in pairs
    assert {mentee for mentee, mentor in pairs if mentor == cohort["peer"].id} == {
        cohort["student"].id
    }
    assert len(pairs) == 3
    (unmatched,) = ran.unmatched
    assert unmatched["mentee_id"] in {cohort[n].id for n in ("resident", "fellow", "unknown")}


def _as(tenant: Tenant, participant: Participant, as_person: AsPerson) -> Person:
    assert participant.user is not None
    return as_person(tenant, participant.user, CourseRole.LEARNER)


def test_browse_and_requests_keep_a_peer_mentor_to_earlier_stage_mentees(
    session: Session, tenant: Tenant, cohort: Cohort, as_person: AsPerson
) -> None:
    base = f"/programs/{cohort.program.id}"
    student = _as(tenant, cohort["student"], as_person)
    resident = _as(tenant, cohort["resident"], as_person)
    listed = student.get(f"{base}/mentors?track=research").get_data(as_text=True)
    assert "Ask Pat Peer to mentor me" in listed
    assert "Ask Dr Fay Faculty to mentor me" in listed
    listed = resident.get(f"{base}/mentors?track=research").get_data(as_text=True)
    assert "Ask Pat Peer to mentor me" not in listed
    assert "Ask Dr Fay Faculty to mentor me" in listed

    before = database_snapshot(session)
    refused = resident.post(f"{base}/mentors/{cohort['peer'].id}/request", {"track": "research"})
    assert refused.status_code == 409
    assert "Pat Peer is a peer mentor" in page_alert(refused.get_data(as_text=True))
    assert database_snapshot(session) == before
    with pytest.raises(NotAllowed):  # the service refuses it too, whoever calls it
        propose_relationship(
            session,
            program=cohort.program,
            mentee=cohort["unknown"],
            mentor=cohort["peer"],
            track=Track.RESEARCH,
            origin=RelationshipOrigin.REQUEST,
            actor=cohort["unknown"],
        )

    asked = student.post(f"{base}/mentors/{cohort['peer'].id}/request", {"track": "research"})
    assert asked.status_code == 303
    relationship = session.scalars(
        select(Relationship).where(Relationship.mentee_id == cohort["student"].id)
    ).one()
    assert (relationship.mentor_id, relationship.status) == (
        cohort["peer"].id,
        RelationshipStatus.PROPOSED,
    )


def test_a_coordinator_may_still_pair_a_peer_with_a_mentee_at_the_same_stage(
    session: Session, tenant: Tenant, cohort: Cohort, make_user: MakeUser, as_person: AsPerson
) -> None:
    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    response = coordinator.post(
        f"/programs/{cohort.program.id}/coordinator/people/{cohort['resident'].id}/pair",
        {"mentor_id": str(cohort["peer"].id), "track": "research"},
    )
    assert response.status_code == 303
    relationship = session.scalars(select(Relationship)).one()
    assert (relationship.mentor_id, relationship.status, relationship.origin) == (
        cohort["peer"].id,
        RelationshipStatus.ACTIVE,
        RelationshipOrigin.COORDINATOR,
    )
