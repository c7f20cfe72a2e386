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

import requests
from pylti1p3.exception import LtiServiceException
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import ServiceConnector
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.errors import LtiError
from plugin.lti.tool_conf import registration_for
from plugin.lti.tool_keys import ensure_signing_key
from plugin.models import Course, CourseMembership, MembershipSource, Platform, User

__all__ = ["NRPS_CLAIM", "RosterError", "RosterReport", "sync_roster"]

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
    connector = ServiceConnector(registration_for(platform, ensure_signing_key(session)), http)
    service = NamesRolesProvisioningService(connector, {"context_memberships_url": url})
    try:
        members = cast(list[dict[str, Any]], service.get_members())
    except (LtiServiceException, requests.RequestException) as exc:
        raise RosterError(f"the roster could not be read ({type(exc).__name__})") from None
    return members


def sync_roster(session: Session, course_id: int, http: requests.Session) -> RosterReport:
    """Pull the course's roster and bring memberships in line with it."""
    course = session.get(Course, course_id)
    if course is None or not course.nrps_url:
        return RosterReport(0, 0, 0)
    platform = course.deployment.platform
    members = _fetch_members(session, platform, course.nrps_url, http)

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
            membership = CourseMembership(course=course, user=user, source=MembershipSource.ROSTER)
            session.add(membership)
            added += 1
        roles = member.get("roles")
        membership.roles = (
            [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
        )
        membership.active = str(member.get("status", "Active")) in ACTIVE_STATUSES
    deactivated = 0
    for sub, membership in existing.items():
        if sub not in seen and membership.active:
            membership.active = False  # left the course
            deactivated += 1
    course.roster_synced_at = utcnow()
    session.flush()
    return RosterReport(members=len(seen), added=added, deactivated=deactivated)
