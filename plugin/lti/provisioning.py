"""What a validated launch records: the person, the course and their course roles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.jobs import QueueName, defer
from plugin.lti.launch import ValidatedLaunch
from plugin.lti.roles import CourseRole
from plugin.lti.roster import NRPS_CLAIM
from plugin.models import Course, CourseMembership, MembershipSource, User

__all__ = ["LaunchIdentity", "record_launch"]

T = TypeVar("T")

#: Optional OpenID Connect claims we keep when the platform shares them (its privacy level).
PERSON_CLAIMS = ("name", "given_name", "family_name", "email", "locale")


@dataclass(frozen=True)
class LaunchIdentity:
    """Who launched, into which course, as what: what the launch token carries."""

    user_id: int
    course_id: int | None
    deployment_id: int
    roles: frozenset[CourseRole]
    resource_link_id: str


def _get_or_create(session: Session, find: Callable[[], T | None], make: Callable[[], T]) -> T:
    # Two first launches of the same person or course can race; the loser re-reads the row
    # the winner inserted instead of failing the launch.
    found = find()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            created = make()
            session.add(created)
        return created
    except IntegrityError:
        found = find()
        assert found is not None
        return found


def record_launch(session: Session, launch: ValidatedLaunch) -> LaunchIdentity:
    """Upsert the user, course and membership a launch describes."""
    platform_id = launch.platform.id
    user = _get_or_create(
        session,
        lambda: session.scalar(
            select(User).where(User.platform_id == platform_id, User.sub == launch.sub)
        ),
        lambda: User(platform_id=platform_id, sub=launch.sub),
    )
    for claim in PERSON_CLAIMS:
        value = launch.claims.get(claim)
        if isinstance(value, str) and value.strip():
            setattr(user, claim, value.strip()[:255])

    course: Course | None = None
    context = launch.context
    context_id = context.get("id")
    if isinstance(context_id, str) and context_id:
        deployment_pk = launch.deployment.id
        course = _get_or_create(
            session,
            lambda: session.scalar(
                select(Course).where(
                    Course.deployment_id == deployment_pk, Course.context_id == context_id
                )
            ),
            lambda: Course(deployment_id=deployment_pk, context_id=context_id),
        )
        _update_text(course, "title", context.get("title"))
        _update_text(course, "label", context.get("label"), 255)
        _note_roster_service(session, course, launch.claims.get(NRPS_CLAIM))
        membership = _get_or_create(
            session,
            lambda: session.scalar(
                select(CourseMembership).where(
                    CourseMembership.course_id == course.id, CourseMembership.user_id == user.id
                )
            ),
            lambda: CourseMembership(course_id=course.id, user_id=user.id),
        )
        roles = launch.claims.get("https://purl.imsglobal.org/spec/lti/claim/roles")
        membership.roles = (
            [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
        )
        membership.active = True
        membership.source = MembershipSource.LAUNCH
        membership.updated_at = utcnow()
    session.flush()
    return LaunchIdentity(
        user_id=user.id,
        course_id=course.id if course is not None else None,
        deployment_id=launch.deployment.id,
        roles=launch.roles,
        resource_link_id=launch.resource_link_id,
    )


def _note_roster_service(session: Session, course: Course, claim: object) -> None:
    """Remember the course's NRPS URL; the first time, pull the roster (after commit)."""
    if not isinstance(claim, dict):
        return
    url = claim.get("context_memberships_url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 2048:
        return
    first_time = not course.nrps_url
    course.nrps_url = url
    if first_time:
        session.flush()
        defer(
            session,
            "workers.jobs.sync_course_roster",
            course.id,
            key=f"roster-{course.id}",
            queue=QueueName.LOW,
        )


def _update_text(target: Any, attribute: str, value: object, limit: int = 2000) -> None:
    if isinstance(value, str) and value.strip():
        setattr(target, attribute, value.strip()[:limit])
