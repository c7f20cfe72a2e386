"""What a validated launch records: the person, the course and their course roles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, TypeVar

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.db import OneRowRead, begin_write
from plugin.jobs import QueueName, defer
from plugin.lti.launch import CLAIM, ValidatedLaunch
from plugin.lti.roles import CourseRole
from plugin.lti.roster import NRPS_CLAIM
from plugin.models import Course, CourseMembership, MembershipSource, Program, User

__all__ = ["LaunchIdentity", "RecordedLaunch", "record_launch", "record_launch_and_link"]

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


@dataclass(frozen=True)
class RecordedLaunch:
    """A recorded launch and, when it was read with the person's rows, its link's program."""

    identity: LaunchIdentity
    #: Whether :attr:`link_program` was read (in the returning member's query).
    link_program_read: bool = False
    #: The course's live program whose resource link is the launch's, or None.
    link_program: Program | None = None


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


@cache
def _returning_member_query() -> Select[User, Course, CourseMembership]:
    # Built once per process: constructing a statement costs more than running it.
    return (
        select(User, Course, CourseMembership)
        .join(CourseMembership, CourseMembership.user_id == User.id)
        .join(Course, Course.id == CourseMembership.course_id)
        .where(
            User.platform_id == bindparam("platform_id"),
            User.sub == bindparam("sub"),
            Course.deployment_id == bindparam("deployment_id"),
            Course.context_id == bindparam("context_id"),
        )
        .execution_options(populate_existing=True)
    )


def _member_params(launch: ValidatedLaunch, context_id: str) -> dict[str, Any]:
    return {
        "platform_id": launch.platform.id,
        "sub": launch.sub,
        "deployment_id": launch.deployment.id,
        "context_id": context_id,
        "resource_link_id": launch.resource_link_id,
    }


def _returning_member(
    session: Session, launch: ValidatedLaunch, context_id: str
) -> tuple[User, Course, CourseMembership] | None:
    # One query finds all three rows, where looking each up in turn took three.
    row = session.execute(
        _returning_member_query(), _member_params(launch, context_id)
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


#: The values a launch may change, per table, as the unchanged-check query labels them.
_CHECKED: Final = {
    "user": (User, ("id", *PERSON_CLAIMS)),
    "course": (Course, ("id", "title", "label", "nrps_url")),
    "membership": (CourseMembership, ("roles", "active", "source")),
}


@cache
def _unchanged_check_query() -> Select[Any]:
    # Most launches are by people already enrolled in the course whose names, roles and
    # course titles have not changed: one query reads just the values a launch compares
    # (no ORM objects are built for them), and the id of the program the launch's link
    # opens (see plugin.lti.placement): at most one per (course, link) by the unique index
    # uq_program_course_link.
    columns = [
        getattr(model, name).label(f"{prefix}_{name}")
        for prefix, (model, names) in _CHECKED.items()
        for name in names
    ]
    return (
        select(*columns, Program.id.label("program_id"))
        .select_from(User)
        .join(CourseMembership, CourseMembership.user_id == User.id)
        .join(Course, Course.id == CourseMembership.course_id)
        .outerjoin(
            Program,
            and_(
                Program.course_id == Course.id,
                Program.resource_link_id == bindparam("resource_link_id"),
                Program.resource_link_id != "",
                Program.archived_at.is_(None),
            ),
        )
        .where(
            User.platform_id == bindparam("platform_id"),
            User.sub == bindparam("sub"),
            Course.deployment_id == bindparam("deployment_id"),
            Course.context_id == bindparam("context_id"),
        )
    )


_UNCHANGED_CHECK: Final = OneRowRead(_unchanged_check_query)


def _unchanged(row: dict[str, Any], prefix: str, values: dict[str, Any]) -> bool:
    return all(row[f"{prefix}_{name}"] == value for name, value in values.items())


def _user_row(session: Session, launch: ValidatedLaunch) -> User:
    platform_id = launch.platform.id
    return _get_or_create(
        session,
        lambda: session.scalar(
            select(User)
            .where(User.platform_id == platform_id, User.sub == launch.sub)
            .execution_options(populate_existing=True)
        ),
        lambda: User(platform_id=platform_id, sub=launch.sub),
    )


def _member_rows(
    session: Session, launch: ValidatedLaunch, context_id: str
) -> tuple[User, Course, CourseMembership]:
    # A first launch (of this person, or into this course): each row found or created.
    user = _user_row(session, launch)
    deployment_pk = launch.deployment.id
    course = _get_or_create(
        session,
        lambda: session.scalar(
            select(Course)
            .where(Course.deployment_id == deployment_pk, Course.context_id == context_id)
            .execution_options(populate_existing=True)
        ),
        lambda: Course(deployment_id=deployment_pk, context_id=context_id),
    )
    membership = _get_or_create(
        session,
        lambda: session.scalar(
            select(CourseMembership)
            .where(CourseMembership.course_id == course.id, CourseMembership.user_id == user.id)
            .execution_options(populate_existing=True)
        ),
        lambda: CourseMembership(course_id=course.id, user_id=user.id),
    )
    return user, course, membership


def _text(value: object, limit: int) -> str | None:
    return value.strip()[:limit] if isinstance(value, str) and value.strip() else None


def _person_values(claims: dict[str, Any]) -> dict[str, Any]:
    values = {claim: _text(claims.get(claim), 255) for claim in PERSON_CLAIMS}
    return {name: value for name, value in values.items() if value is not None}


def _course_values(context: dict[str, Any], nrps: object) -> dict[str, Any]:
    values = {"title": _text(context.get("title"), 2000), "label": _text(context.get("label"), 255)}
    if isinstance(nrps, dict):
        url = nrps.get("context_memberships_url")
        if isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 2048:
            values["nrps_url"] = url
    return {name: value for name, value in values.items() if value is not None}


def _membership_values(claims: dict[str, Any]) -> dict[str, Any]:
    roles = claims.get(f"{CLAIM}roles")
    return {
        "roles": [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else [],
        "active": True,
        "source": MembershipSource.LAUNCH,
    }


def _differs(row: Any, values: dict[str, Any]) -> bool:
    return any(getattr(row, name) != value for name, value in values.items())


def _assign(row: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(row, name, value)


def _identity(launch: ValidatedLaunch, user: User, course: Course | None) -> LaunchIdentity:
    return LaunchIdentity(
        user_id=user.id,
        course_id=course.id if course is not None else None,
        deployment_id=launch.deployment.id,
        roles=launch.roles,
        resource_link_id=launch.resource_link_id,
    )


def record_launch(session: Session, launch: ValidatedLaunch) -> LaunchIdentity:
    """Upsert the user, course and membership a launch describes.

    A launch that changes nothing (a returning member, same roles, same names) only reads;
    otherwise the rows are read again in a writing transaction (see ``begin_write``) and
    updated. ``updated_at`` therefore says when a row last changed, not the last launch.
    """
    return record_launch_and_link(session, launch).identity


def record_launch_and_link(session: Session, launch: ValidatedLaunch) -> RecordedLaunch:
    """:func:`record_launch`, also handing over the link's program when it read it."""
    person = _person_values(launch.claims)
    context = launch.context
    context_id = context.get("id")
    if not isinstance(context_id, str) or not context_id:
        user = session.scalar(
            select(User).where(User.platform_id == launch.platform.id, User.sub == launch.sub)
        )
        if user is None or _differs(user, person):
            begin_write(session)
            user = _user_row(session, launch)
            _assign(user, person)
            session.flush()
        return RecordedLaunch(_identity(launch, user, None))

    course_values = _course_values(context, launch.claims.get(NRPS_CLAIM))
    member_values = _membership_values(launch.claims)
    row = _UNCHANGED_CHECK.run(session, _member_params(launch, context_id))
    if (
        row is not None
        and _unchanged(row, "user", person)
        and _unchanged(row, "course", course_values)
        and _unchanged(row, "membership", member_values)
    ):
        program_id = row["program_id"]
        identity = LaunchIdentity(
            user_id=row["user_id"],
            course_id=row["course_id"],
            deployment_id=launch.deployment.id,
            roles=launch.roles,
            resource_link_id=launch.resource_link_id,
        )
        program = None if program_id is None else session.get(Program, program_id)
        return RecordedLaunch(identity, True, program)
    begin_write(session)
    user, course, membership = _returning_member(session, launch, context_id) or _member_rows(
        session, launch, context_id
    )
    first_roster = "nrps_url" in course_values and not course.nrps_url
    _assign(user, person)
    _assign(course, course_values)
    _assign(membership, member_values)
    session.flush()
    if first_roster:
        # The first launch that names the course's roster service pulls it (after commit).
        defer(
            session,
            "workers.jobs.sync_course_roster",
            course.id,
            key=f"roster-{course.id}",
            queue=QueueName.LOW,
        )
    return RecordedLaunch(_identity(launch, user, course))
