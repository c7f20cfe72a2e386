"""The course's program list, program creation and the tenant boundary of program pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import AuditEvent, Program, User
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant
from tests.programs.forms import database_snapshot, field_error


def test_a_coordinator_creates_the_first_program_which_becomes_the_default(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    as_person: Callable[..., Person],
) -> None:
    teacher = make_user(tenant, INSTRUCTOR)
    person = as_person(tenant, teacher, CourseRole.INSTRUCTOR)
    page = person.get(f"/courses/{tenant.course.id}/")
    assert "Create a program" in page.get_data(as_text=True)
    response = person.post(
        f"/courses/{tenant.course.id}/programs",
        {"title": "Research mentoring", "tracks": ["research", "career"]},
    )
    assert response.status_code == 303
    program = session.scalars(select(Program)).one()
    assert program.is_default
    assert program.tracks == ["research", "career"]
    audit = session.scalars(select(AuditEvent)).one()
    assert (audit.action, audit.actor_user_id) == ("program.created", teacher.id)


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"title": " "}, "title", "Enter a name for the program."),
        ({"title": "t" * 201}, "title", "Use at most 200 characters."),
        ({"tracks": []}, "tracks", "Choose at least one track."),
        ({"tracks": ["astrology"]}, "tracks", "Choose tracks from the list."),
        ({"tracks": ["research", "astrology"]}, "tracks", "Choose tracks from the list."),
    ],
)
def test_bad_program_input_is_refused_at_the_field_and_changes_nothing(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    as_person: Callable[..., Person],
    change: dict[str, Any],
    field: str,
    says: str,
) -> None:
    person = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    before = database_snapshot(session)
    response = person.post(
        f"/courses/{tenant.course.id}/programs",
        {"title": "Research mentoring", "tracks": ["research"], **change},
    )
    assert response.status_code == 400
    assert says in field_error(response.get_data(as_text=True), field)
    assert database_snapshot(session) == before
    assert session.scalars(select(Program)).all() == []


def test_a_learner_cannot_create_a_program(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    as_person: Callable[..., Person],
) -> None:
    person = as_person(tenant, make_user(tenant, LEARNER), CourseRole.LEARNER)
    response = person.post(
        f"/courses/{tenant.course.id}/programs", {"title": "Mine", "tracks": ["career"]}
    )
    assert response.status_code == 403
    assert session.scalars(select(Program)).all() == []


def test_a_cross_site_form_post_is_refused(
    tenant: Tenant, make_user: Callable[..., User], as_person: Callable[..., Person]
) -> None:
    person = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
    response = person.post(
        f"/courses/{tenant.course.id}/programs",
        {"title": "Evil", "tracks": ["career"]},
        headers={"Origin": "https://attacker.example"},
    )
    assert response.status_code == 403


def test_a_learner_with_one_program_goes_straight_to_it(
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    as_person: Callable[..., Person],
) -> None:
    program = make_program(tenant)
    person = as_person(tenant, make_user(tenant, LEARNER), CourseRole.LEARNER)
    response = person.get(f"/courses/{tenant.course.id}/")
    assert response.status_code == 302
    assert f"/programs/{program.id}/" in response.headers["Location"]


def test_a_program_of_another_course_or_platform_is_not_found(
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    as_person: Callable[..., Person],
) -> None:
    home, other = make_tenant(), make_tenant()
    foreign = make_program(other, title="Elsewhere")
    own = make_program(home)
    person = as_person(home, make_user(home, INSTRUCTOR), CourseRole.INSTRUCTOR)
    assert person.get(f"/programs/{own.id}/").status_code == 200
    assert person.get(f"/programs/{foreign.id}/").status_code == 404
    assert person.get(f"/courses/{other.course.id}/").status_code == 403


def test_program_pages_need_a_launch(tenant: Tenant, make_program: Callable[..., Program]) -> None:
    from flask import current_app

    program = make_program(tenant)
    assert current_app.test_client().get(f"/programs/{program.id}/").status_code == 401
