"""Peer circles from the coordinator's side: create, members in and out, close; audited."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import AuditEvent, Circle, CircleMember, Participant, Program, User
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant


def test_a_circle_is_created_filled_thinned_and_closed(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> None:
    program = make_program(tenant)
    coordinator = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    facilitator = enroll(program, make_user(tenant, INSTRUCTOR, name="Fi"), mentor=True)
    a = enroll(program, make_user(tenant, LEARNER, name="Ana"), mentee=True)
    b = enroll(program, make_user(tenant, LEARNER, name="Ben"), mentee=True)
    base = f"/programs/{program.id}/coordinator/circles"

    refused = coordinator.post(base, {"name": "", "track": "astrology", "facilitator_id": "x"})
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "Enter a name for the circle." in html
    assert "Choose one of the program" in html
    assert "Choose a mentor enrolled in this program" in html
    assert session.scalars(select(Circle)).all() == []

    created = coordinator.post(
        base, {"name": "M1 wellbeing", "track": "wellbeing", "facilitator_id": str(facilitator.id)}
    )
    assert created.status_code == 303
    circle = session.scalars(select(Circle)).one()
    assert circle.facilitator_id == facilitator.id
    # A mentor is not a mentee: refused, nothing added.
    wrong = coordinator.post(f"{base}/{circle.id}/members", {"members": [str(facilitator.id)]})
    assert wrong.status_code == 400
    added = coordinator.post(f"{base}/{circle.id}/members", {"members": [str(a.id), str(b.id)]})
    assert added.status_code == 303
    listing = coordinator.get(base).get_data(as_text=True)
    assert "M1 wellbeing" in listing
    removed = coordinator.post(f"{base}/{circle.id}/members/{a.id}/remove")
    assert removed.status_code == 303
    page = coordinator.get(f"{base}/{circle.id}").get_data(as_text=True)
    members = page[page.index("<h2>Members</h2>") : page.index("Add mentees")]
    assert "Ben" in members
    assert "Ana" not in members
    closed = coordinator.post(f"{base}/{circle.id}/close")
    assert closed.status_code == 303
    session.refresh(circle)
    assert circle.closed_at is not None
    assert coordinator.post(f"{base}/{circle.id}/close").status_code == 409
    left = session.scalars(select(CircleMember).where(CircleMember.participant_id == a.id)).one()
    assert left.left_at is not None
    assert session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all() == [
        "circle.created",
        "circle.members_added",
        "circle.member_removed",
        "circle.closed",
    ]
