"""Goals as a service: circles share goals with their members and facilitator, and nobody
outside a goal's scope can see, agree to or check in on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import (
    Circle,
    CircleMember,
    GoalStatus,
    Notification,
    Participant,
    Program,
    User,
)
from plugin.programs.enrollment import export_participant_data
from plugin.programs.errors import FormInvalid, NotAllowed
from plugin.programs.goals import (
    add_checkin,
    agree_goal,
    create_goal,
    goal_agreers,
    goal_viewers,
    goals_visible_to,
)
from tests.programs.conftest import INSTRUCTOR, LEARNER, Tenant

TODAY = date(2026, 11, 24)


@pytest.fixture
def circle_world(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> tuple[Circle, list[Participant], Participant, Participant]:
    program = make_program(tenant)
    members = [enroll(program, make_user(tenant, LEARNER), mentee=True) for _ in range(3)]
    facilitator = enroll(program, make_user(tenant, INSTRUCTOR), mentor=True)
    outsider = enroll(program, make_user(tenant, LEARNER), mentee=True)
    circle = Circle(program_id=program.id, name="M3 circle", facilitator_id=facilitator.id)
    session.add(circle)
    session.flush()
    for member in members:
        session.add(CircleMember(circle_id=circle.id, participant_id=member.id))
    session.flush()
    session.refresh(circle)
    return circle, members, facilitator, outsider


def test_a_circle_goal_is_shared_with_members_and_agreed_by_the_facilitator(
    session: Session, circle_world: tuple[Circle, list[Participant], Participant, Participant]
) -> None:
    circle, members, facilitator, outsider = circle_world
    owner, peer, _ = members
    goal = create_goal(
        session,
        owner=owner,
        scope=f"c{circle.id}",
        title="Pass Step 1",
        measure="Score report",
        target_date="2027-06-01",
        today=TODAY,
    )
    assert goal_viewers(goal) == {m.id for m in members} | {facilitator.id}
    assert goal in goals_visible_to(session, peer)
    assert goal in goals_visible_to(session, facilitator)
    assert goal not in goals_visible_to(session, outsider)
    with pytest.raises(NotAllowed):
        agree_goal(session, goal, actor=peer)
    agree_goal(session, goal, actor=facilitator)
    add_checkin(session, goal, actor=peer, progress="20", note="Study group started")
    with pytest.raises(NotAllowed):
        add_checkin(session, goal, actor=outsider, progress="50", note="Not mine")
    assert [u.kind for u in goal.updates] == ["created", "agreed", "checkin"]
    peer_data = export_participant_data(session, peer)
    assert peer_data["notes_on_partners_goals"][0]["note"] == "Study group started"


def test_a_member_who_left_no_longer_sees_the_circle_goal(
    session: Session, circle_world: tuple[Circle, list[Participant], Participant, Participant]
) -> None:
    from plugin.db import utcnow

    circle, members, _facilitator, _outsider = circle_world
    owner, leaver, _ = members
    goal = create_goal(
        session,
        owner=owner,
        scope=f"c{circle.id}",
        title="Run a journal club",
        measure="Two sessions held",
        target_date="2027-01-15",
        today=TODAY,
    )
    membership = next(m for m in circle.members if m.participant_id == leaver.id)
    membership.left_at = utcnow()
    session.flush()
    session.refresh(circle)
    assert leaver.id not in goal_viewers(goal)
    assert goal not in goals_visible_to(session, leaver)


def test_goals_need_a_scope_the_owner_belongs_to(
    session: Session, circle_world: tuple[Circle, list[Participant], Participant, Participant]
) -> None:
    circle, _members, _facilitator, outsider = circle_world
    with pytest.raises(FormInvalid) as refused:
        create_goal(
            session,
            owner=outsider,
            scope=f"c{circle.id}",
            title="Sneak in",
            measure="m",
            target_date="2027-01-01",
            today=TODAY,
        )
    assert set(refused.value.errors) == {"scope"}


def test_in_a_circle_without_a_facilitator_another_member_agrees_and_the_goal_can_finish(
    session: Session, circle_world: tuple[Circle, list[Participant], Participant, Participant]
) -> None:
    circle, members, _facilitator, outsider = circle_world
    circle.facilitator_id = None
    session.flush()
    session.refresh(circle)
    owner, peer, other = members
    goal = create_goal(
        session,
        owner=owner,
        scope=f"c{circle.id}",
        title="Teach a skills session",
        measure="Session held",
        target_date="2027-03-01",
        today=TODAY,
    )
    assert goal_agreers(goal) == {peer.id, other.id}
    told = session.scalars(select(Notification).where(Notification.kind == "goal.proposed")).all()
    assert sorted(n.recipient_id for n in told) == sorted([peer.id, other.id])
    for stranger in (owner, outsider):
        with pytest.raises(NotAllowed):
            agree_goal(session, goal, actor=stranger)
    agree_goal(session, goal, actor=peer)
    assert goal.agreed_by_id == peer.id
    add_checkin(session, goal, actor=owner, progress="100", note="Held it")
    assert goal.status == GoalStatus.ACHIEVED


def test_a_lone_member_of_a_circle_without_a_facilitator_has_no_one_to_agree(
    session: Session, circle_world: tuple[Circle, list[Participant], Participant, Participant]
) -> None:
    from plugin.db import utcnow

    circle, members, _facilitator, _outsider = circle_world
    circle.facilitator_id = None
    for membership in circle.members[1:]:
        membership.left_at = utcnow()
    session.flush()
    session.refresh(circle)
    goal = create_goal(
        session,
        owner=members[0],
        scope=f"c{circle.id}",
        title="Shadow a night shift",
        measure="One shift",
        target_date="2027-03-01",
        today=TODAY,
    )
    assert goal_agreers(goal) == set()  # it waits for someone to join
