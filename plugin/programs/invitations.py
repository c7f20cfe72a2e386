"""Invitation links for external mentors: signed, expiring, single use.

The token is signed (itsdangerous, the app's secret, its own salt) and names the invited
participant and a digest of the address it was sent to; it expires after INVITATION_TTL.
It is single use without a table of tokens: accepting moves the participant out of
INVITED with one conditional UPDATE, so a second use (or two racing uses) finds nothing
to accept. Changing the invited address makes older links invalid too.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Final

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.db import utcnow
from plugin.lti.provisioning import LaunchIdentity
from plugin.models import Participant, ParticipantStatus, Program, User
from plugin.programs.errors import ProgramError, StateConflict

__all__ = [
    "INVITATION_TTL",
    "InvitationInvalid",
    "accept_invitation",
    "invitation_token",
    "read_invitation",
]

#: How long an invitation link works (seconds): two weeks to find the e-mail and answer.
INVITATION_TTL: Final = 14 * 24 * 3600
_SALT: Final = "preceptor.invitation.v1"
#: Prefix of the ``sub`` of users created for external mentors (never an LMS's sub format).
LOCAL_SUB_PREFIX: Final = "preceptor:invited:"
BIO_MAX: Final = 2000


class InvitationInvalid(ProgramError):
    """The link is unknown, expired, altered or already used."""


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


def _digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def invitation_token(secret_key: str, participant: Participant) -> str:
    """A token for the invited ``participant`` (new each call; each expires on its own)."""
    if participant.status != ParticipantStatus.INVITED or not participant.invite_email:
        raise StateConflict("only an invited mentor who has not accepted has an invitation")
    return _serializer(secret_key).dumps(
        {"p": participant.id, "e": _digest(participant.invite_email)}
    )


def read_invitation(session: Session, secret_key: str, token: str) -> Participant:
    """The invited participant a token names, or InvitationInvalid saying what to do."""
    try:
        data: dict[str, Any] = _serializer(secret_key).loads(token, max_age=INVITATION_TTL)
    except SignatureExpired:
        raise InvitationInvalid(
            "This invitation has expired. Ask the program coordinator for a new link."
        ) from None
    except BadSignature:
        raise InvitationInvalid(
            "This invitation link is not valid. Check that you copied all of it."
        ) from None
    participant = session.get(Participant, int(data.get("p", 0)))
    if participant is None or _digest(participant.invite_email) != data.get("e"):
        raise InvitationInvalid(
            "This invitation is no longer valid. Ask the program coordinator for a new link."
        )
    if participant.status != ParticipantStatus.INVITED:
        raise InvitationInvalid(
            "This invitation has already been used. Open Preceptor from your course, or ask "
            "the program coordinator for a new link."
        )
    return participant


@dataclass(frozen=True)
class Accepted:
    participant: Participant
    identity: LaunchIdentity


def accept_invitation(
    session: Session,
    participant: Participant,
    *,
    name: str,
    bio: str,
    launched: LaunchIdentity | None,
) -> Accepted:
    """Activate the invited mentor; returns the identity their pages will carry.

    A mentor who opened the link from a launch in the program's course is bound to that
    user; otherwise a user local to Preceptor is created for them on the course's platform.
    """
    from plugin.programs.errors import FormInvalid

    name = name.strip()
    bio = bio.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Enter your name as mentees should see it."
    elif len(name) > 255:
        errors["name"] = "Use at most 255 characters."
    if len(bio) > BIO_MAX:
        errors["bio"] = f"Use at most {BIO_MAX} characters."
    if errors:
        raise FormInvalid(errors)
    program = session.get(Program, participant.program_id)
    assert program is not None
    course = program.course
    if launched is not None and launched.course_id == course.id:
        user = session.get(User, launched.user_id)
        assert user is not None
        already = session.scalar(
            select(Participant.id).where(
                Participant.program_id == program.id, Participant.user_id == user.id
            )
        )
        if already is not None:
            raise StateConflict(
                "You are already in this program. Open it from your course; ask the "
                "coordinator to remove the invitation if you no longer need it."
            )
        roles = launched.roles
    else:
        user = User(
            platform_id=course.deployment.platform_id,
            sub=LOCAL_SUB_PREFIX + secrets.token_urlsafe(16),
            name=name,
            email=participant.invite_email,
        )
        session.add(user)
        session.flush()
        roles = frozenset()
    # The single-use step: only one request can move this row out of INVITED.
    taken = session.execute(
        update(Participant)
        .where(Participant.id == participant.id, Participant.status == ParticipantStatus.INVITED)
        .values(status=ParticipantStatus.ACTIVE, user_id=user.id, enrolled_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise InvitationInvalid("This invitation has already been used.")
    session.refresh(participant)
    participant.invite_name = name
    if participant.profile is not None and bio:
        participant.profile.bio = bio
    record_audit(
        session,
        course_id=course.id,
        program_id=program.id,
        actor_user_id=user.id,
        action="invitation.accepted",
        target_type="participant",
        target_id=participant.id,
        before={"status": ParticipantStatus.INVITED.value},
        after={"status": ParticipantStatus.ACTIVE.value},
    )
    session.flush()
    return Accepted(
        participant=participant,
        identity=LaunchIdentity(
            user_id=user.id,
            course_id=course.id,
            deployment_id=course.deployment_id,
            roles=roles,
            resource_link_id=launched.resource_link_id if launched else "",
        ),
    )
