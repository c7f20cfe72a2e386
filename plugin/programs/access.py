"""Who may do what in a program: the tenant check and the program roles.

Every program page goes through :func:`program_view`: the launch token must be for the
program's course (a token from another course or platform never opens it), and the
person's program roles come from their enrollment plus the program policy:

* coordinators: course instructors, teaching assistants and administrators, and anyone a
  coordinator made one (``Participant.is_coordinator``);
* mentors: enrolled as mentor; eligible to enroll as one are course instructors and TAs,
  learners too when the program allows peer mentors (from the program's career stage on,
  which the profile form checks: see :mod:`plugin.programs.peers`), and invited external
  mentors;
* mentees: enrolled as mentee; eligible are learners (others can be added by a coordinator).

Forms are protected against cross-site requests by the launch token itself (it is never a
cookie, so another site cannot make the browser send it) and by an Origin check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import abort, g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.provisioning import LaunchIdentity
from plugin.lti.roles import CourseRole
from plugin.lti.session import current_identity, launch_required
from plugin.models import CareerStage, MentorPolicy, Participant, ParticipantStatus, Program, User
from plugin.programs.peers import FACULTY_COURSE_ROLES, is_peer

__all__ = [
    "ProgramAccess",
    "current_access",
    "load_access",
    "program_view",
    "same_origin",
]

P = ParamSpec("P")
R = TypeVar("R")

#: Course roles that make someone a coordinator of every program in the course.
COORDINATOR_COURSE_ROLES = frozenset(
    {CourseRole.INSTRUCTOR, CourseRole.TEACHING_ASSISTANT, CourseRole.ADMINISTRATOR}
)


@dataclass(frozen=True)
class ProgramAccess:
    """A person in a program: their user, enrollment (if any) and what they may do."""

    program: Program
    user: User
    participant: Participant | None
    course_roles: frozenset[CourseRole]

    @property
    def enrolled(self) -> bool:
        return self.participant is not None and self.participant.status == ParticipantStatus.ACTIVE

    @property
    def is_coordinator(self) -> bool:
        if self.course_roles & COORDINATOR_COURSE_ROLES:
            return True
        return self.enrolled and self.participant is not None and self.participant.is_coordinator

    @property
    def is_mentee(self) -> bool:
        return self.enrolled and self.participant is not None and self.participant.is_mentee

    @property
    def is_mentor(self) -> bool:
        return self.enrolled and self.participant is not None and self.participant.is_mentor

    @property
    def is_peer(self) -> bool:
        """A learner here (not faculty, not an invited mentor): a mentor would be a peer."""
        invited = self.participant is not None and bool(self.participant.invite_email)
        return is_peer(self.course_roles, invited=invited)

    @property
    def peer_mentor_min_stage(self) -> CareerStage | None:
        """The career stage this person must declare to offer mentoring (None: no bar)."""
        return self.program.peer_mentor_min_stage if self.is_peer else None

    @property
    def may_enroll_as_mentor(self) -> bool:
        """The program lets this person offer mentoring (a peer's stage is checked by the form)."""
        if self.course_roles & FACULTY_COURSE_ROLES:
            return True
        if self.participant is not None and self.participant.invite_email:
            return True  # an invited external mentor
        return self.is_peer and self.program.mentor_policy == MentorPolicy.FACULTY_AND_PEERS

    @property
    def may_enroll_as_mentee(self) -> bool:
        return CourseRole.LEARNER in self.course_roles


def load_access(
    session: Session, identity: LaunchIdentity, program_id: int
) -> ProgramAccess | None:
    """The person's access to ``program_id``, or None if the program is not in their course."""
    program = session.get(Program, program_id)
    if program is None or identity.course_id is None or program.course_id != identity.course_id:
        return None
    user = session.get(User, identity.user_id)
    if user is None:
        return None
    participant = session.scalar(
        select(Participant).where(
            Participant.program_id == program.id, Participant.user_id == user.id
        )
    )
    return ProgramAccess(
        program=program, user=user, participant=participant, course_roles=identity.roles
    )


def current_access() -> ProgramAccess:
    """The access of the request (only inside a @program_view view)."""
    access: ProgramAccess = g.program_access
    return access


def same_origin() -> bool:
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        # Browsers send Origin on every cross-site POST; a request without one is not a
        # browser form from another site (the launch token still has to be valid).
        return origin is None
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def program_view(
    *, coordinator: bool = False
) -> Callable[[Callable[Concatenate[ProgramAccess, P], R]], Callable[P, R]]:
    """Open a program page: launch token for this program's course, optional coordinator role.

    The view receives the :class:`ProgramAccess` as its first argument; the URL must have a
    ``program_id``. A program of another course answers 404 (its existence is not revealed).
    """

    def decorate(view: Callable[Concatenate[ProgramAccess, P], R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            from plugin.db import request_session

            if request.method not in ("GET", "HEAD", "OPTIONS") and not same_origin():
                abort(403)
            program_id = kwargs.get("program_id")
            if not isinstance(program_id, int):
                abort(404)
            access = load_access(request_session(), current_identity(), program_id)
            if access is None:
                abort(404)
            if coordinator and not access.is_coordinator:
                abort(403)
            g.program_access = access
            return view(access, *args, **kwargs)

        return launch_required(wrapped)

    return decorate
