"""Course rosters from LTI Names and Role Provisioning Services (NRPS 2.0).

Coordinators need to see who in the course has not enrolled in the program yet, and a
person who left the course must stop counting. The roster is pulled (paged, through
pylti1p3's NRPS client) with a service token the tool obtains by signing a client
assertion with its own key; members become users and course memberships (source
"roster"); members no longer listed become inactive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlencode

import requests
from pylti1p3.exception import LtiServiceException
from pylti1p3.names_roles import NamesRolesProvisioningService
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.errors import LtiError
from plugin.lti.services import service_connector
from plugin.models import Course, CourseMembership, MembershipSource, Platform, Program, User

__all__ = ["NRPS_CLAIM", "RosterError", "RosterReport", "sync_link_roster", "sync_roster"]

NRPS_CLAIM: Final = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
#: Users looked up per query while matching a roster (bounded IN lists).
LOOKUP_CHUNK: Final = 500
#: NRPS member statuses that mean "in the course now".
ACTIVE_STATUSES: Final = frozenset({"Active", ""})


class RosterError(LtiError):
    """The platform's roster could not be read; the job fails and RQ retries it."""


@dataclass(frozen=True)
class RosterReport:
    """What one roster pull changed."""

    members: int
    added: int
    deactivated: int


def _fetch_members(
    session: Session, platform: Platform, url: str, http: requests.Session
) -> list[dict[str, Any]]:
    connector = service_connector(session, platform, http)
    service = NamesRolesProvisioningService(connector, {"context_memberships_url": url})
    try:
        members = cast(list[dict[str, Any]], service.get_members())
    except (LtiServiceException, requests.RequestException) as exc:
        raise RosterError(f"the roster could not be read ({type(exc).__name__})") from None
    return members


def _with_rlid(url: str, resource_link_id: str) -> str:
    # NRPS 2.0: ?rlid= limits the roster to the members who can see that resource link.
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'rlid': resource_link_id})}"


def _upsert_members(
    session: Session, course: Course, platform: Platform, members: list[dict[str, Any]]
) -> tuple[dict[str, User], dict[str, CourseMembership], set[str], int]:
    """Users and course memberships for ``members``; (users, memberships, seen subs, added)."""
    existing = {
        m.user.sub: m
        for m in session.scalars(
            select(CourseMembership).join(User).where(CourseMembership.course_id == course.id)
        )
    }
    listed = [m["user_id"] for m in members if isinstance(m.get("user_id"), str) and m["user_id"]]
    users: dict[str, User] = {}
    # Only the people this roster names: a platform can hold far more users than a course.
    for start in range(0, len(listed), LOOKUP_CHUNK):
        chunk = listed[start : start + LOOKUP_CHUNK]
        query = select(User).where(User.platform_id == platform.id, User.sub.in_(chunk))
        users.update((u.sub, u) for u in session.scalars(query))
    seen: set[str] = set()
    added = 0
    for member in members:
        sub = member.get("user_id")
        if not isinstance(sub, str) or not sub or sub in seen:
            continue
        seen.add(sub)
        user = users.get(sub)
        if user is None:
            user = users[sub] = User(platform_id=platform.id, sub=sub)
            session.add(user)
        for claim in ("name", "given_name", "family_name", "email"):
            value = member.get(claim)
            if isinstance(value, str) and value.strip() and not getattr(user, claim):
                setattr(user, claim, value.strip()[:255])
        membership = existing.get(sub)
        if membership is None:
            membership = existing[sub] = CourseMembership(
                course=course, user=user, source=MembershipSource.ROSTER
            )
            session.add(membership)
            added += 1
        roles = member.get("roles")
        membership.roles = (
            [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
        )
        membership.active = str(member.get("status", "Active")) in ACTIVE_STATUSES
    return users, existing, seen, added


def sync_roster(session: Session, course_id: int, http: requests.Session) -> RosterReport:
    """Pull the course's roster and bring memberships in line with it."""
    course = session.get(Course, course_id)
    if course is None or not course.nrps_url:
        return RosterReport(0, 0, 0)
    platform = course.deployment.platform
    members = _fetch_members(session, platform, course.nrps_url, http)
    _, memberships, seen, added = _upsert_members(session, course, platform, members)
    deactivated = 0
    for sub, membership in memberships.items():
        if sub not in seen and membership.active:
            membership.active = False  # left the course
            deactivated += 1
    course.roster_synced_at = utcnow()
    session.flush()
    return RosterReport(members=len(seen), added=added, deactivated=deactivated)


def sync_link_roster(session: Session, program_id: int, http: requests.Session) -> RosterReport:
    """Pull the members of the program's resource link (NRPS ``rlid``) into the program.

    The course-level pull stays the source of who is in the course; this one records who
    can see the program's link (``Program.link_member_ids``) and deactivates no one.
    """
    program = session.get(Program, program_id)
    if program is None or not program.resource_link_id or not program.course.nrps_url:
        return RosterReport(0, 0, 0)
    course = program.course
    platform = course.deployment.platform
    url = _with_rlid(course.nrps_url, program.resource_link_id)
    members = _fetch_members(session, platform, url, http)
    users, _, seen, added = _upsert_members(session, course, platform, members)
    session.flush()
    active = {m["user_id"] for m in members if str(m.get("status", "Active")) in ACTIVE_STATUSES}
    program.link_member_ids = sorted(users[sub].id for sub in seen if sub in active)
    program.link_roster_synced_at = utcnow()
    session.flush()
    return RosterReport(members=len(seen), added=added, deactivated=0)
