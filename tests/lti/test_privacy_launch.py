"""The LTI data-privacy launch lands the person on their privacy page in the course."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.devplatform.signer import DevPlatform
from plugin.lti.launch import CLAIM, DATA_PRIVACY
from plugin.models import Course, Participant, Program, User
from tests.lti.conftest import TOOL, Browser, home_path, launch_token

PRIVACY: dict[str, Any] = {f"{CLAIM}message_type": DATA_PRIVACY}


def _privacy_launch(agent: Browser, lms: DevPlatform) -> tuple[str, Any]:
    """A data-privacy launch, then the landing page's continue: (token, page)."""
    landing = agent.full_launch(lms, **PRIVACY)
    assert landing.status_code == 200, landing.get_data(as_text=True)
    token = launch_token(landing)
    page = agent.client.get(home_path(landing), query_string={"lt": token}, base_url=TOOL)
    return token, page


def _enroll(session: Session, lms: DevPlatform, agent: Browser, *titles: str) -> list[Program]:
    """Launch once (the user and course now exist), then enroll them in new programs."""
    assert agent.full_launch(lms).status_code == 200
    user = session.scalars(select(User).where(User.sub == "user-1")).one()
    course = session.scalars(select(Course).where(Course.context_id == "course-1")).one()
    programs = []
    for title in titles:
        program = Program(course_id=course.id, title=title, tracks=["research"])
        session.add(program)
        session.flush()
        session.add(Participant(program_id=program.id, user_id=user.id, is_mentee=True))
        programs.append(program)
    session.commit()
    return programs


def test_a_privacy_launch_opens_the_privacy_page_of_the_persons_one_program(
    session: Session, lms: DevPlatform, agent: Browser
) -> None:
    (program,) = _enroll(session, lms, agent, "Mentorship")
    token, page = _privacy_launch(agent, lms)
    assert page.status_code == 302
    assert page.headers["Location"].startswith(f"/programs/{program.id}/privacy?")
    privacy = agent.client.get(page.headers["Location"], base_url=TOOL)
    assert privacy.status_code == 200
    text = privacy.get_data(as_text=True)
    assert "Download my data" in text
    assert "Ask for deletion" in text
    assert token in text  # the links keep the launch token


def test_a_privacy_launch_lists_the_privacy_pages_when_there_are_several_programs(
    session: Session, lms: DevPlatform, agent: Browser
) -> None:
    first, second = _enroll(session, lms, agent, "Research mentoring", "Wellbeing circles")
    _, page = _privacy_launch(agent, lms)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for program in (first, second):
        assert f"/programs/{program.id}/privacy?lt=" in text
        assert program.title in text


@pytest.mark.usefixtures("app")
def test_a_privacy_launch_by_someone_in_no_program_says_so(
    lms: DevPlatform, agent: Browser
) -> None:
    _, page = _privacy_launch(agent, lms)
    assert page.status_code == 200
    assert "No mentorship program in this course holds data about you" in page.get_data(
        as_text=True
    )


def test_the_course_privacy_page_of_another_course_is_refused(
    session: Session, lms: DevPlatform, agent: Browser
) -> None:
    _enroll(session, lms, agent, "Mentorship")
    token, _ = _privacy_launch(agent, lms)
    course = session.scalars(select(Course).where(Course.context_id == "course-1")).one()
    other = Course(deployment_id=course.deployment_id, context_id="course-2")
    session.add(other)
    session.commit()
    response = agent.client.get(
        f"/courses/{other.id}/privacy", query_string={"lt": token}, base_url=TOOL
    )
    assert response.status_code == 403  # launch_required: a token for another course
