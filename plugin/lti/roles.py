"""Course roles from an LTI roles claim: course-level membership URIs only.

Canvas gives everyone ``lis/v2/system/person#User`` and sends an Observer as
``membership#Mentor``; institution roles can make a learner look like staff. None of that
grants anything here: only the context (course) membership roles below count, and the
LTI Mentor role is not a program mentor. Program roles (mentee, mentor, coordinator) are
decided by the program, starting from these.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["CourseRole", "course_roles"]

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTRUCTOR_SUBROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#"


class CourseRole(StrEnum):
    """What a person is in the course, as far as Preceptor cares."""

    INSTRUCTOR = "instructor"
    TEACHING_ASSISTANT = "teaching_assistant"
    CONTENT_DEVELOPER = "content_developer"
    LEARNER = "learner"
    ADMINISTRATOR = "administrator"


_CONTEXT_ROLES = {
    f"{MEMBERSHIP}Instructor": CourseRole.INSTRUCTOR,
    f"{MEMBERSHIP}ContentDeveloper": CourseRole.CONTENT_DEVELOPER,
    f"{MEMBERSHIP}Learner": CourseRole.LEARNER,
    f"{MEMBERSHIP}Administrator": CourseRole.ADMINISTRATOR,
    f"{INSTRUCTOR_SUBROLE}TeachingAssistant": CourseRole.TEACHING_ASSISTANT,
}


def course_roles(claim: Iterable[object] | None) -> frozenset[CourseRole]:
    """The course roles in a roles claim; anything else (system, institution, Mentor) is ignored."""
    if claim is None:
        return frozenset()
    return frozenset(_CONTEXT_ROLES[r] for r in claim if isinstance(r, str) and r in _CONTEXT_ROLES)
