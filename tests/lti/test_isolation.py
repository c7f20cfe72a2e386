"""Tenant isolation and role mapping after a launch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.devplatform.signer import CLAIM, MEMBERSHIP, DevPlatform
from plugin.lti.roles import CourseRole, course_roles
from plugin.models import Course
from tests.lti.conftest import Browser, home_path, launch_token

pytestmark = pytest.mark.usefixtures("app")

SYSTEM_USER = "http://purl.imsglobal.org/vocab/lis/v2/system/person#User"
INSTITUTION_STAFF = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Staff"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def course_id(session: Session, context_id: str) -> int:
    return session.scalars(select(Course.id).where(Course.context_id == context_id)).one()


def test_a_token_opens_its_own_course(agent: Browser, lms: DevPlatform) -> None:
    landing = agent.full_launch(lms)
    page = agent.client.get(home_path(landing), query_string={"lt": launch_token(landing)})
    assert page.status_code == 200
    assert "Clinical Skills I" in page.get_data(as_text=True)
    assert "You are here as: learner." in page.get_data(as_text=True)


def test_a_token_for_course_a_cannot_open_course_b(
    agent: Browser, new_agent: Callable[[], Browser], lms: DevPlatform, session: Session
) -> None:
    token_a = launch_token(agent.full_launch(lms))
    other = new_agent()
    other.full_launch(
        lms, **{f"{CLAIM}context": {"id": "course-2", "title": "Pharmacology"}, "sub": "user-2"}
    )
    b = course_id(session, "course-2")
    response = agent.client.get(f"/courses/{b}/", query_string={"lt": token_a})
    assert response.status_code == 403
    assert "Pharmacology" not in response.get_data(as_text=True)


def test_a_token_from_one_platform_cannot_open_another_platforms_course(
    agent: Browser,
    new_agent: Callable[[], Browser],
    lms: DevPlatform,
    register_platform: Callable[..., DevPlatform],
    session: Session,
) -> None:
    moodle = register_platform("moodle", client_id="m-1", deployment_id="m-d")
    # The same context id on another platform is another course, another tenant.
    new_agent().full_launch(moodle, **{f"{CLAIM}context": {"id": "course-1", "title": "Moodle CS"}})
    token = launch_token(agent.full_launch(lms))
    courses = session.scalars(select(Course).order_by(Course.id)).all()
    assert len(courses) == 2
    moodle_course = next(c for c in courses if c.title == "Moodle CS")
    response = agent.client.get(f"/courses/{moodle_course.id}/", query_string={"lt": token})
    assert response.status_code == 403


@pytest.mark.parametrize("token", ["", "garbage", "eyJ1IjoxfQ.forged.signature"])
def test_pages_refuse_a_missing_or_forged_token(
    client: FlaskClient, agent: Browser, lms: DevPlatform, token: str
) -> None:
    landing = agent.full_launch(lms)
    response = client.get(home_path(landing), query_string={"lt": token} if token else {})
    assert response.status_code == 401


def test_a_tampered_token_is_refused(agent: Browser, lms: DevPlatform) -> None:
    landing = agent.full_launch(lms)
    token = launch_token(landing)
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert agent.client.get(home_path(landing), query_string={"lt": tampered}).status_code == 401


def test_the_token_also_works_as_a_bearer_header(agent: Browser, lms: DevPlatform) -> None:
    landing = agent.full_launch(lms)
    response = agent.client.get(
        home_path(landing), headers={"Authorization": f"Bearer {launch_token(landing)}"}
    )
    assert response.status_code == 200


def test_canvas_catch_all_roles_grant_nothing(agent: Browser, lms: DevPlatform) -> None:
    # Canvas gives everyone system/person#User; an Observer arrives as membership#Mentor.
    landing = agent.full_launch(
        lms, **{f"{CLAIM}roles": [SYSTEM_USER, INSTITUTION_STAFF, f"{MEMBERSHIP}Mentor"]}
    )
    page = agent.client.get(home_path(landing), query_string={"lt": launch_token(landing)})
    assert "does not give access" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ([f"{MEMBERSHIP}Instructor", SYSTEM_USER], {CourseRole.INSTRUCTOR}),
        ([f"{MEMBERSHIP}Instructor", TA], {CourseRole.INSTRUCTOR, CourseRole.TEACHING_ASSISTANT}),
        (
            [f"{MEMBERSHIP}Learner", "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"],
            {CourseRole.LEARNER},
        ),
        ([f"{MEMBERSHIP}ContentDeveloper"], {CourseRole.CONTENT_DEVELOPER}),
        ([f"{MEMBERSHIP}Administrator"], {CourseRole.ADMINISTRATOR}),
        ([f"{MEMBERSHIP}Mentor", SYSTEM_USER, INSTITUTION_STAFF], set()),
        (["Instructor", "Learner"], set()),  # short names are not course membership URIs
        (None, set()),
        ([42, None], set()),
    ],
)
def test_only_course_membership_roles_count(
    claim: list[object] | None, expected: set[CourseRole]
) -> None:
    assert course_roles(claim) == expected
