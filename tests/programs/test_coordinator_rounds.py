"""Match rounds from the coordinator's pages: start, review, lock/reject, publish; access."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import (
    MatchRound,
    Participant,
    Program,
    ProposalState,
    Relationship,
    RoundStatus,
    User,
)
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant


def _program(
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> Program:
    program = make_program(tenant, tracks=["research"])
    for name, code in (("Ana", "cardio"), ("Ben", "neuro")):
        enroll(program, make_user(tenant, LEARNER, name=name), mentee=True, interests=[code])
    for name, code in (("Dr Cole", "cardio"), ("Dr Diaz", "neuro")):
        enroll(
            program,
            make_user(tenant, INSTRUCTOR, name=name),
            mentor=True,
            interests=[code],
            capacity_by_track={"research": 1},
        )
    return program


def test_a_coordinator_runs_reviews_and_publishes_a_round(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = _program(tenant, make_user, make_program, enroll)
    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    base = f"/programs/{program.id}/coordinator/rounds"

    form = coordinator.get(base).get_data(as_text=True)
    assert "Match as many mentees as possible first" in form
    refused = coordinator.post(base, {"objective": "max_matched", "interests": "lots"})
    assert refused.status_code == 400
    assert 'id="interests-error"' in refused.get_data(as_text=True)
    assert session.scalars(select(MatchRound)).all() == []

    started = coordinator.post(base, {"objective": "max_matched", "interests": "4"})
    assert started.status_code == 303
    round_ = session.scalars(select(MatchRound)).one()
    assert round_.status == RoundStatus.READY
    assert round_.weights["interests"] == 4.0
    page = coordinator.get(f"{base}/{round_.id}").get_data(as_text=True)
    assert "Ana" in page
    assert "Dr Cole" in page
    assert "Shares" in page
    assert 'http-equiv="refresh"' not in page
    assert "<script" not in page

    first, second = round_.proposals
    bad = coordinator.post(f"{base}/{round_.id}/proposals/{first.id}", {"action": "explode"})
    assert bad.status_code == 400
    assert (
        coordinator.post(f"{base}/{round_.id}/proposals/{first.id}", {"action": "lock"}).status_code
        == 303
    )
    assert (
        coordinator.post(
            f"{base}/{round_.id}/proposals/{second.id}", {"action": "reject"}
        ).status_code
        == 303
    )
    assert coordinator.post(f"{base}/{round_.id}/rerun").status_code == 303
    session.expire_all()
    assert {p.state for p in round_.proposals} == {ProposalState.LOCKED, ProposalState.REJECTED}
    page = coordinator.get(f"{base}/{round_.id}").get_data(as_text=True)
    assert "Mentees without a mentor" in page

    assert coordinator.post(f"{base}/{round_.id}/publish").status_code == 303
    session.expire_all()
    assert session.scalars(select(MatchRound.status)).one() == RoundStatus.PUBLISHED
    (relationship,) = session.scalars(select(Relationship)).all()
    assert (relationship.mentee_id, relationship.mentor_id) == (first.mentee_id, first.mentor_id)
    assert coordinator.post(f"{base}/{round_.id}/publish").status_code == 409


def test_a_running_round_refreshes_itself_without_scripts(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = _program(tenant, make_user, make_program, enroll)
    round_ = MatchRound(program_id=program.id, status=RoundStatus.RUNNING, progress=40)
    session.add(round_)
    session.flush()
    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    page = coordinator.get(f"/programs/{program.id}/coordinator/rounds/{round_.id}")
    html = page.get_data(as_text=True)
    assert 'http-equiv="refresh"' in html
    assert 'value="40"' in html
    assert "<script" not in html


@pytest.mark.parametrize("who", ["mentee", "other_coordinator", "other_course"])
def test_only_this_programs_coordinators_see_its_rounds(
    session: Session,
    who: str,
    tenant: Tenant,
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = _program(tenant, make_user, make_program, enroll)
    round_ = MatchRound(program_id=program.id, status=RoundStatus.READY)
    session.add(round_)
    session.flush()
    if who == "mentee":
        user = make_user(tenant, LEARNER)
        enroll(program, user, mentee=True)
        person, expected = as_person(tenant, user, CourseRole.LEARNER), 403
    elif who == "other_coordinator":
        # A learner made coordinator of another program in the same course.
        other = make_program(tenant, title="Other")
        user = make_user(tenant, LEARNER)
        enroll(other, user, coordinator=True)
        person, expected = as_person(tenant, user, CourseRole.LEARNER), 403
    else:
        elsewhere = make_tenant()
        person = as_person(elsewhere, make_user(elsewhere, INSTRUCTOR), CourseRole.INSTRUCTOR)
        expected = 404
    base = f"/programs/{program.id}/coordinator/rounds"
    assert person.get(base).status_code == expected
    assert person.get(f"{base}/{round_.id}").status_code == expected
    assert person.post(base, {"objective": "max_matched"}).status_code == expected
    assert person.post(f"{base}/{round_.id}/publish").status_code == expected
    session.expire_all()
    assert session.scalars(select(MatchRound)).all() == [round_]
    assert round_.status == RoundStatus.READY


def test_a_round_of_another_program_answers_404(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = _program(tenant, make_user, make_program, enroll)
    other = make_program(tenant, title="Other")
    foreign = MatchRound(program_id=other.id, status=RoundStatus.READY)
    session.add(foreign)
    session.flush()
    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    base = f"/programs/{program.id}/coordinator/rounds/{foreign.id}"
    assert coordinator.get(base).status_code == 404
    assert coordinator.post(f"{base}/publish").status_code == 404


def test_a_running_round_says_its_stage_in_a_live_region(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = _program(tenant, make_user, make_program, enroll)
    round_ = MatchRound(
        program_id=program.id, status=RoundStatus.RUNNING, progress=35, progress_stage="candidates"
    )
    session.add(round_)
    session.flush()
    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    html = coordinator.get(f"/programs/{program.id}/coordinator/rounds/{round_.id}").get_data(
        as_text=True
    )
    assert 'aria-live="polite"' in html
    assert "Scoring the best mentors for each mentee" in html
    assert 'value="35"' in html
