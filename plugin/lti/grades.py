"""The participation score: a program's AGS line item, kept up to date per participant.

Optional per program: a program keeps a score when its ``participation_rule`` has a
positive ``maximum`` and a launch of its link offered the AGS endpoint with the score
scope. The rule is data, edited on the program's settings page::

    {"maximum": 100, "points_per_meeting": 10, "points_per_checkin": 5,
     "points_per_relationship": 0}

Each counter below counts what a participant did; the score is the sum of points times
counts, capped at ``maximum``. Points a rule does not name count nothing.

Whatever changes a counter calls :func:`queue_participation_score` in the same
transaction: the job is written to the outbox and queued only after the commit, at most
once while pending (key per participant). The job recomputes the whole score, so running
it twice posts the same score twice, which AGS treats as one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import requests
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin.jobs import QueueName, defer
from plugin.lti.deep_linking import PARTICIPATION_LABEL, PARTICIPATION_TAG, participation_maximum
from plugin.lti.errors import LtiError
from plugin.lti.services import service_connector
from plugin.models import Participant, Program
from plugin.models.goals import GoalUpdate
from plugin.models.relationships import Relationship, RelationshipStatus

__all__ = [
    "COUNTERS",
    "SCORE_MEDIA_TYPE",
    "GradeError",
    "ParticipationScore",
    "participation_score",
    "post_participation_score",
    "queue_participation_score",
]

#: AGS 2.0 score publish service media type (pylti1p3 sends it on every score POST).
SCORE_MEDIA_TYPE: Final = "application/vnd.ims.lis.v1.score+json"
SCOPE_SCORE: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/score"

Counter = Callable[[Session, Participant], int]


def _meetings_held(session: Session, participant: Participant) -> int:
    from plugin.models.meetings import MeetingAttendee

    return int(
        session.scalar(
            select(func.count(MeetingAttendee.id)).where(
                MeetingAttendee.participant_id == participant.id,
                MeetingAttendee.attended.is_(True),
            )
        )
        or 0
    )


def _active_relationships(session: Session, participant: Participant) -> int:
    return int(
        session.scalar(
            select(func.count(Relationship.id)).where(
                Relationship.status == RelationshipStatus.ACTIVE,
                or_(
                    Relationship.mentee_id == participant.id,
                    Relationship.mentor_id == participant.id,
                ),
            )
        )
        or 0
    )


def _goal_checkins(session: Session, participant: Participant) -> int:
    return int(
        session.scalar(
            select(func.count(GoalUpdate.id)).where(
                GoalUpdate.author_id == participant.id, GoalUpdate.kind == "checkin"
            )
        )
        or 0
    )


#: What a rule may award points for: the rule's key and what it counts.
COUNTERS: Final[dict[str, Counter]] = {
    "points_per_meeting": _meetings_held,
    "points_per_relationship": _active_relationships,
    "points_per_checkin": _goal_checkins,
}


class GradeError(LtiError):
    """The platform's gradebook could not be written; the job fails and RQ retries it."""


@dataclass(frozen=True)
class ParticipationScore:
    """One participant's score, as posted."""

    given: float
    maximum: float
    counts: dict[str, int]

    @property
    def activity_progress(self) -> str:
        if self.given >= self.maximum:
            return "Completed"
        return "InProgress" if self.given > 0 else "Initialized"


def _points(rule: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in rule.items()
        if name in COUNTERS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and value > 0
    }


def participation_score(session: Session, participant: Participant) -> ParticipationScore | None:
    """The participant's score under their program's rule, or None if it keeps no score."""
    maximum = participation_maximum(participant.program)
    if maximum is None:
        return None
    points = _points(participant.program.participation_rule)
    counts = {name: COUNTERS[name](session, participant) for name in sorted(points)}
    given = min(maximum, sum(points[name] * counts[name] for name in counts))
    return ParticipationScore(given=given, maximum=maximum, counts=counts)


def keeps_score(program: Program) -> bool:
    """Whether the program has a participation rule and a gradebook to post it to."""
    return (
        participation_maximum(program) is not None
        and SCOPE_SCORE in (program.ags_scopes or [])
        and bool(program.ags_lineitem_url or program.ags_lineitems_url)
    )


def queue_participation_score(session: Session, participant_id: int) -> None:
    """Post the participant's score after this transaction commits (if their program keeps one)."""
    participant = session.get(Participant, participant_id)
    if participant is None or participant.user_id is None or not keeps_score(participant.program):
        return
    defer(
        session,
        "workers.jobs.post_participation_score",
        participant_id,
        key=f"ags-score-{participant_id}",
        queue=QueueName.DEFAULT,
    )


def _grades_service(
    session: Session, program: Program, http: requests.Session
) -> AssignmentsGradesService:
    connector = service_connector(session, program.course.deployment.platform, http)
    return AssignmentsGradesService(
        connector,
        {
            "scope": cast(Any, list(program.ags_scopes)),
            "lineitems": program.ags_lineitems_url,
            "lineitem": program.ags_lineitem_url,
        },
    )


def _ensure_lineitem(session: Session, program: Program, service: AssignmentsGradesService) -> str:
    """The program's participation line item URL, found or created (once) if needed."""
    if program.ags_lineitem_url:
        return program.ags_lineitem_url
    # One creator per program: concurrent jobs of its participants wait here (PostgreSQL),
    # and the loser finds the URL the winner stored.
    stored = session.scalar(
        select(Program.ags_lineitem_url).where(Program.id == program.id).with_for_update()
    )
    if stored:
        program.ags_lineitem_url = stored
        return stored
    maximum = participation_maximum(program)
    assert maximum is not None
    wanted = (
        LineItem()
        .set_label(PARTICIPATION_LABEL)
        .set_score_maximum(maximum)
        .set_tag(PARTICIPATION_TAG)
        .set_resource_id(f"program-{program.id}")
    )
    if program.resource_link_id:
        wanted.set_resource_link_id(program.resource_link_id)
    found = service.find_or_create_lineitem(wanted, find_by="resource_id")
    url = found.get_id()
    if not url:
        raise GradeError("the platform created a line item without an id")
    program.ags_lineitem_url = url[:2048]
    session.flush()
    return program.ags_lineitem_url


def post_participation_score(
    session: Session, participant_id: int, http: requests.Session, now: datetime | None = None
) -> ParticipationScore | None:
    """Compute the participant's score and POST it to the program's line item."""
    participant = session.get(Participant, participant_id)
    if participant is None or participant.user is None:
        return None  # withdrawn and deleted, or an invited mentor the LMS does not know
    program = participant.program
    if not keeps_score(program):
        return None
    score = participation_score(session, participant)
    if score is None:
        return None
    stamp = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    grade = (
        Grade()
        .set_score_given(score.given)
        .set_score_maximum(score.maximum)
        .set_activity_progress(score.activity_progress)
        .set_grading_progress("FullyGraded")
        .set_timestamp(stamp)
        .set_user_id(participant.user.sub)
    )
    try:
        # One service (one access token) finds or creates the line item and posts.
        service = _grades_service(session, program, http)
        url = _ensure_lineitem(session, program, service)
        service.put_grade(grade, LineItem().set_id(url))
    except (LtiException, LtiServiceException, requests.RequestException) as exc:
        raise GradeError(f"the score could not be posted ({type(exc).__name__})") from None
    return score
