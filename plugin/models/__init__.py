"""All models, imported here so Alembic and ``Base.metadata`` see every table."""

from __future__ import annotations

from plugin.models.keys import ToolKey
from plugin.models.outbox import OutboxJob, OutboxState
from plugin.models.people import CourseMembership, MembershipSource, User
from plugin.models.tenancy import Course, Deployment, Platform

__all__ = [
    "Course",
    "CourseMembership",
    "Deployment",
    "MembershipSource",
    "OutboxJob",
    "OutboxState",
    "Platform",
    "ToolKey",
    "User",
]
