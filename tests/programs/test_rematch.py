"""Re-matching after a relationship closed as not working out: the mentee's path, the
coordinator's, the goals that come along (and those that stay), the exclusion of the mentor
it did not work with, and who may use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import (
    AuditEvent,
    CloseReason,
    Goal,
    GoalStatus,
    GoalUpdate,
    Participant,
    Program,
    Relationship,
    RelationshipEvent,
    RelationshipOrigin,
    RelationshipStatus,
    User,
)
from plugin.programs.coordination import Actor
from plugin.programs.errors import NotAllowed
from plugin.programs.relationships import close_relationship
from plugin.programs.rematch import (
    rematch_case,
    rematch_mentors,
    request_rematch,
    waiting_rematches,
)
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant, coordinator_pair
from tests.programs.forms import database_snapshot, field_error


@dataclass
class Failed:
    """A mentee whose research relationship with ``old`` closed as not working out."""

    program: Program
    mentee: Participant
    mentee_user: User
    old: Participant
    nora: Participant
    omar: Participant
    closed: Relationship
    agreed: Goal  # agreed, with a check-in
    proposed: Goal
    achieved: Goal
    as_mentee: Person
    as_nora: Person
    as_coordinator: Person
    coordinator_user: User

    def path(self, rest: str) -> str:
        return f"/programs/{self.program.id}{rest}"


def _goal(session: Session, rel: Relationship, title: str, status: GoalStatus) -> Goal:
    goal = Goal(
        program_id=rel.program_id,
        owner_id=rel.mentee_id,
        relationship_id=rel.id,
        title=title,
        measure="Measured",
        status=status,
    )
    session.add(goal)
    session.add(GoalUpdate(goal=goal, author_id=rel.mentee_id, kind="created", status="proposed"))
    session.flush()
    return goal


@pytest.fixture
def failed(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> Failed:
    program = make_program(tenant, tracks=["research"])
    mentee_user = make_user(tenant, LEARNER, name="Mia Mentee")
    mentee = enroll(program, mentee_user, mentee=True, interests=["specialty.cardiology"])
    mentors = []
    for name, interest in (
        ("Dr Max Old", "specialty.cardiology"),
        ("Dr Nora New", "specialty.cardiology"),
        ("Dr Omar Other", "specialty.neurology"),
    ):
        user = make_user(tenant, INSTRUCTOR, name=name)
        mentors.append(
            (
                enroll(
                    program,
                    user,
                    mentor=True,
                    interests=[interest],
                    capacity_by_track={"research": 2},
                ),
                user,
            )
        )
    (old, _), (nora, nora_user), (omar, _) = mentors
    closed = coordinator_pair(session, program, mentee, old)
    agreed = _goal(session, closed, "Submit an abstract", GoalStatus.AGREED)
    session.add(
        GoalUpdate(goal=agreed, author_id=mentee.id, kind="checkin", progress=40, note="Draft")
    )
    proposed = _goal(session, closed, "Learn R", GoalStatus.PROPOSED)
    achieved = _goal(session, closed, "Read the protocol", GoalStatus.ACHIEVED)
    close_relationship(session, closed, reason=CloseReason.NOT_WORKING, actor=None)
    coordinator_user = make_user(tenant, INSTRUCTOR, name="Cora Coordinator")
    session.commit()
    return Failed(
        program=program,
        mentee=mentee,
        mentee_user=mentee_user,
        old=old,
        nora=nora,
        omar=omar,
        closed=closed,
        agreed=agreed,
        proposed=proposed,
        achieved=achieved,
        as_mentee=as_person(tenant, mentee_user, CourseRole.LEARNER),
        as_nora=as_person(tenant, nora_user, CourseRole.INSTRUCTOR),
        as_coordinator=as_person(tenant, coordinator_user, CourseRole.INSTRUCTOR),
        coordinator_user=coordinator_user,
    )


def _new_relationships(session: Session, f: Failed) -> list[Relationship]:
    session.expire_all()
    return list(
        session.scalars(
            select(Relationship)
            .where(Relationship.mentee_id == f.mentee.id, Relationship.id != f.closed.id)
            .order_by(Relationship.id)
        )
    )


def _kinds(goal: Goal) -> list[str]:
    return [u.kind for u in goal.updates]


def test_a_mentee_finds_a_new_mentor_and_brings_the_goals_they_choose(
    session: Session, failed: Failed
) -> None:
    f = failed
    home = f.as_mentee.get(f.path("/")).get_data(as_text=True)
    assert f"/programs/{f.program.id}/rematch/{f.closed.id}" in home

    page = f.as_mentee.get(f.path(f"/rematch/{f.closed.id}"))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'id="mentor-{f.nora.id}"' in html
    assert f'id="mentor-{f.omar.id}"' in html
    assert f'id="mentor-{f.old.id}"' not in html
    assert "Shared interests" in html
    assert "fit" in html
    assert "Submit an abstract" in html
    assert "Learn R" in html
    assert "Read the protocol" not in html  # finished goals stay behind

    answer = f.as_mentee.post(
        f.path(f"/rematch/{f.closed.id}"),
        {"mentor_id": str(f.nora.id), "goals": [str(f.agreed.id)], "note": "Hello"},
    )
    assert answer.status_code == 303
    (new,) = _new_relationships(session, f)
    assert (new.mentor_id, new.status, new.origin) == (
        f.nora.id,
        RelationshipStatus.PROPOSED,
        RelationshipOrigin.REQUEST,
    )
    assert (new.rematch_of_id, new.carry_goal_ids) == (f.closed.id, [f.agreed.id])
    waiting_goal = session.get(Goal, f.agreed.id)
    assert waiting_goal is not None
    assert waiting_goal.relationship_id == f.closed.id  # not active yet
    events = session.execute(
        select(RelationshipEvent.relationship_id, RelationshipEvent.kind).where(
            RelationshipEvent.kind.in_(["rematch", "rematched"])
        )
    ).all()
    assert sorted(map(tuple, events)) == sorted([(new.id, "rematch"), (f.closed.id, "rematched")])
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "relationship.rematch")
    ).one()
    assert (audit.target_id, audit.actor_user_id) == (new.id, f.mentee_user.id)
    assert audit.after["rematch_of"] == f.closed.id
    assert audit.after["reason"] == "not_working"
    waiting = f.as_coordinator.get(f.path("/coordinator/")).get_data(as_text=True)
    assert "Request to Dr Nora New waiting" in waiting

    accepted = f.as_nora.post(f.path(f"/requests/{new.id}"), {"decision": "accept"})
    assert accepted.status_code == 303
    session.expire_all()
    carried = session.get(Goal, f.agreed.id)
    assert carried is not None
    assert carried.relationship_id == new.id
    assert _kinds(carried) == ["created", "checkin", "carried_over"]  # history kept
    assert f"relationship {f.closed.id}" in carried.updates[-1].note
    assert carried.updates[-1].author_id == f.nora.id
    for stayed in (f.proposed, f.achieved):
        goal = session.get(Goal, stayed.id)
        assert goal is not None
        assert goal.relationship_id == f.closed.id
        assert "carried_over" not in _kinds(goal)
    session.refresh(new)
    assert new.carry_goal_ids == []
    # Dr Old agreed to it, not Dr New: it waits for the new mentor's agreement.
    assert (carried.status, carried.agreed_by_id) == (GoalStatus.PROPOSED, None)
    assert "waits for the new mentor's agreement" in carried.updates[-1].note
    agreed = f.as_nora.post(f.path(f"/goals/{f.agreed.id}/agree"), {})
    assert agreed.status_code == 303
    session.refresh(carried)
    assert (carried.status, carried.agreed_by_id) == (GoalStatus.AGREED, f.nora.id)

    goal_page = f.as_nora.get(f.path(f"/goals/{f.agreed.id}")).get_data(as_text=True)
    assert "started the new mentorship this goal was carried over to" in goal_page
    assert "Draft" in goal_page  # the new mentor sees the goal's earlier check-ins
    home = f.as_mentee.get(f.path("/")).get_data(as_text=True)
    assert f"/rematch/{f.closed.id}" not in home
    assert waiting_rematches(session, f.program) == []


def test_the_mentor_it_did_not_work_with_is_refused(session: Session, failed: Failed) -> None:
    f = failed
    answer = f.as_mentee.post(
        f.path(f"/rematch/{f.closed.id}"), {"mentor_id": str(f.old.id), "goals": []}
    )
    assert answer.status_code == 409
    assert "did not work out" in answer.get_data(as_text=True)
    assert _new_relationships(session, f) == []

    case = rematch_case(session, f.program, f.closed.id)
    assert case is not None
    assert f.old.id not in {c.mentor.id for c in rematch_mentors(session, f.program, case)}
    with pytest.raises(NotAllowed):
        request_rematch(
            session,
            f.program,
            case,
            Actor(user_id=f.coordinator_user.id, participant=None),
            mentor_id=str(f.old.id),
            goal_ids=[],
            by_coordinator=True,
        )


def test_browse_hides_the_mentor_it_did_not_work_with_and_a_request_is_refused(
    session: Session, failed: Failed
) -> None:
    f = failed
    browse = f.as_mentee.get(f.path("/mentors?track=research")).get_data(as_text=True)
    assert f"/mentors/{f.nora.id}/request" in browse
    # Dr Old has room (2 places, none taken), but it did not work out with him.
    assert f"/mentors/{f.old.id}/request" not in browse

    answer = f.as_mentee.post(f.path(f"/mentors/{f.old.id}/request"), {"track": "research"})
    assert answer.status_code == 409
    assert "did not work out before" in answer.get_data(as_text=True)
    assert _new_relationships(session, f) == []


def test_a_coordinator_re_matches_from_the_workspace_and_the_pair_is_active_at_once(
    session: Session, failed: Failed
) -> None:
    f = failed
    workspace = f.as_coordinator.get(f.path("/coordinator/")).get_data(as_text=True)
    assert "Waiting for a re-match" in workspace
    assert f"/coordinator/rematch/{f.closed.id}" in workspace
    page = f.as_coordinator.get(f.path(f"/coordinator/rematch/{f.closed.id}"))
    assert page.status_code == 200
    assert f'id="mentor-{f.old.id}"' not in page.get_data(as_text=True)

    answer = f.as_coordinator.post(
        f.path(f"/coordinator/rematch/{f.closed.id}"),
        {"mentor_id": str(f.omar.id), "goals": [str(f.proposed.id)]},
    )
    assert answer.status_code == 303
    (new,) = _new_relationships(session, f)
    assert (new.mentor_id, new.status) == (f.omar.id, RelationshipStatus.ACTIVE)
    moved = session.get(Goal, f.proposed.id)
    assert moved is not None
    assert moved.relationship_id == new.id
    assert _kinds(moved)[-1] == "carried_over"
    stayed = session.get(Goal, f.agreed.id)
    assert stayed is not None
    assert stayed.relationship_id == f.closed.id
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "relationship.rematch")
    ).one()
    assert audit.actor_user_id == f.coordinator_user.id
    assert audit.after["by"] == "coordinator"
    workspace = f.as_coordinator.get(f.path("/coordinator/")).get_data(as_text=True)
    assert "Waiting for a re-match" not in workspace


def test_a_goal_outside_the_closed_relationship_is_refused_and_nothing_changes(
    session: Session, failed: Failed
) -> None:
    f = failed
    for goals in ([str(f.achieved.id)], ["999999"], ["x"]):
        answer = f.as_mentee.post(
            f.path(f"/rematch/{f.closed.id}"), {"mentor_id": str(f.nora.id), "goals": goals}
        )
        assert answer.status_code == 400
        assert "Choose goals from this list only" in answer.get_data(as_text=True)
    assert _new_relationships(session, f) == []


@pytest.mark.parametrize("by", ["mentee", "coordinator"])
@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"mentor_id": ""}, "mentor_id", "Choose one of the mentors listed."),
        ({"mentor_id": "999999"}, "mentor_id", "Choose one of the mentors listed."),
        ({"mentor_id": "{mentee}"}, "mentor_id", "Choose one of the mentors listed."),
        ({"goals": ["x"]}, "goals", "Choose goals from this list only"),
        ({"goals": ["{achieved}"]}, "goals", "Choose goals from this list only"),
        ({"note": "n" * 1001}, "note", "at most 1000"),
    ],
)
def test_bad_rematch_input_is_refused_at_the_field_and_changes_nothing(
    session: Session,
    failed: Failed,
    by: str,
    change: dict[str, object],
    field: str,
    says: str,
) -> None:
    f = failed
    ids = {"mentee": f.mentee.id, "achieved": f.achieved.id}
    form: dict[str, object] = {"mentor_id": str(f.nora.id), "goals": [str(f.agreed.id)]}
    for key, value in change.items():
        form[key] = (
            [v.format(**ids) for v in value]
            if isinstance(value, list)
            else str(value).format(**ids)
        )
    person, path = (
        (f.as_mentee, f"/rematch/{f.closed.id}")
        if by == "mentee"
        else (f.as_coordinator, f"/coordinator/rematch/{f.closed.id}")
    )
    before = database_snapshot(session)
    answer = person.post(f.path(path), form)
    assert answer.status_code == 400
    assert says in field_error(answer.get_data(as_text=True), field)
    assert database_snapshot(session) == before


@pytest.mark.parametrize("who", ["other_mentee", "mentor", "other_course"])
def test_no_one_else_can_re_match_this_mentee(
    session: Session,
    who: str,
    failed: Failed,
    tenant: Tenant,
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    f = failed
    if who == "other_mentee":
        user = make_user(tenant, LEARNER)
        enroll(f.program, user, mentee=True)
        person = as_person(tenant, user, CourseRole.LEARNER)
        mine, coordinator = 404, 403
    elif who == "mentor":
        person, mine, coordinator = f.as_nora, 403, 200  # a course instructor coordinates
    else:
        elsewhere = make_tenant()
        person = as_person(elsewhere, make_user(elsewhere, INSTRUCTOR), CourseRole.INSTRUCTOR)
        mine, coordinator = 404, 404
    session.commit()
    data = {"mentor_id": str(f.nora.id), "goals": [str(f.agreed.id)]}
    assert person.get(f.path(f"/rematch/{f.closed.id}")).status_code == mine
    assert person.post(f.path(f"/rematch/{f.closed.id}"), data).status_code == mine
    if coordinator != 200:
        assert person.get(f.path(f"/coordinator/rematch/{f.closed.id}")).status_code == coordinator
        assert (
            person.post(f.path(f"/coordinator/rematch/{f.closed.id}"), data).status_code
            == coordinator
        )
    assert _new_relationships(session, f) == []


def test_only_a_not_working_close_of_this_program_opens_the_path(
    session: Session,
    failed: Failed,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> None:
    f = failed
    completed = coordinator_pair(session, f.program, f.mentee, f.omar)
    close_relationship(session, completed, reason=CloseReason.COMPLETED, actor=None)
    other = make_program(tenant, title="Other", tracks=["research"])
    elsewhere_mentee = enroll(other, make_user(tenant, LEARNER), mentee=True)
    elsewhere_mentor = enroll(other, make_user(tenant, INSTRUCTOR), mentor=True)
    foreign = coordinator_pair(session, other, elsewhere_mentee, elsewhere_mentor)
    close_relationship(session, foreign, reason=CloseReason.NOT_WORKING, actor=None)
    session.commit()
    # A later relationship that started (then completed) means the mentee was re-matched.
    assert f.as_mentee.get(f.path(f"/rematch/{f.closed.id}")).status_code == 404
    assert f.as_mentee.get(f.path(f"/rematch/{completed.id}")).status_code == 404
    assert f.as_coordinator.get(f.path(f"/coordinator/rematch/{foreign.id}")).status_code == 404
    assert waiting_rematches(session, f.program) == []
