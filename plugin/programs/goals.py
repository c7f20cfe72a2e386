"""Goals: a mentee writes a SMART goal inside a relationship or circle, the mentor (or the
circle's facilitator; in a circle without one, another member) agrees to it, and either
side checks in on its progress.

A goal is visible to its owner and to their partners in that relationship or circle, and to
no one else (coordinators see goals in aggregate, on their own pages). Every change writes
a :class:`GoalUpdate`, which is the goal's history.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.grades import queue_participation_score
from plugin.models import (
    Circle,
    CircleMember,
    Goal,
    GoalStatus,
    GoalUpdate,
    Participant,
    Relationship,
    RelationshipStatus,
)
from plugin.programs.errors import FormInvalid, NotAllowed, StateConflict
from plugin.programs.notifications import notify

__all__ = [
    "CARRYABLE",
    "add_checkin",
    "agree_goal",
    "carry_over_goals",
    "create_goal",
    "goal_agreers",
    "goal_viewers",
    "goals_visible_to",
    "notify_goal_viewers",
    "read_target_date",
    "read_title_and_measure",
    "shareable_scopes",
]

TITLE_MAX = 200
MEASURE_MAX = 1000
NOTE_MAX = 2000
#: Relationship statuses in which goals can be written and checked in on.
_WORKING = (RelationshipStatus.ACTIVE, RelationshipStatus.PAUSED)
#: Goal statuses a mentee may carry over to a new mentor (finished goals stay behind).
CARRYABLE = (GoalStatus.PROPOSED, GoalStatus.AGREED)


def shareable_scopes(
    session: Session, owner: Participant
) -> tuple[list[Relationship], list[Circle]]:
    """Where ``owner`` may write a goal: their working relationships as mentee, their circles."""
    relationships = session.scalars(
        select(Relationship)
        .where(Relationship.mentee_id == owner.id, Relationship.status.in_(_WORKING))
        .order_by(Relationship.id)
    ).all()
    circles = session.scalars(
        select(Circle)
        .join(CircleMember)
        .where(
            CircleMember.participant_id == owner.id,
            CircleMember.left_at.is_(None),
            Circle.closed_at.is_(None),
        )
        .order_by(Circle.id)
    ).all()
    return list(relationships), list(circles)


def _circle_member_ids(circle: Circle) -> set[int]:
    return {m.participant_id for m in circle.members if m.left_at is None}


def goal_viewers(goal: Goal) -> set[int]:
    """Participant ids who may see ``goal``: the owner and their partners in its scope."""
    viewers = {goal.owner_id}
    if goal.pair is not None:
        viewers |= {goal.pair.mentee_id, goal.pair.mentor_id}
    if goal.circle is not None:
        viewers |= _circle_member_ids(goal.circle)
        if goal.circle.facilitator_id is not None:
            viewers.add(goal.circle.facilitator_id)
    return viewers


def goal_agreers(goal: Goal) -> set[int]:
    """Who may agree to ``goal``: the pair's mentor, or the circle's facilitator.

    A peer circle without a facilitator agrees among itself: any current member other
    than the owner may agree (else no goal there could ever be agreed, nor achieved).
    """
    if goal.pair is not None:
        return {goal.pair.mentor_id}
    if goal.circle is not None:
        if goal.circle.facilitator_id is not None:
            return {goal.circle.facilitator_id}
        return _circle_member_ids(goal.circle) - {goal.owner_id}
    return set()


def goals_visible_to(session: Session, participant: Participant) -> list[Goal]:
    """Goals ``participant`` may see in their program, newest first."""
    circle_ids = select(CircleMember.circle_id).where(
        CircleMember.participant_id == participant.id, CircleMember.left_at.is_(None)
    )
    facilitated = select(Circle.id).where(Circle.facilitator_id == participant.id)
    pair_ids = select(Relationship.id).where(
        or_(Relationship.mentee_id == participant.id, Relationship.mentor_id == participant.id)
    )
    return list(
        session.scalars(
            select(Goal)
            .where(
                Goal.program_id == participant.program_id,
                or_(
                    Goal.owner_id == participant.id,
                    Goal.relationship_id.in_(pair_ids),
                    Goal.circle_id.in_(circle_ids),
                    Goal.circle_id.in_(facilitated),
                ),
            )
            .order_by(Goal.id.desc())
        )
    )


def read_target_date(errors: dict[str, str], value: str, today: date) -> date | None:
    """A goal's target date from form text: a date after ``today``, else a message in
    ``errors["target_date"]`` and None."""
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        errors["target_date"] = "Enter a target date as YYYY-MM-DD."
        return None
    if parsed <= today:
        errors["target_date"] = "Choose a target date in the future."
        return None
    return parsed


def read_title_and_measure(errors: dict[str, str], title: str, measure: str) -> tuple[str, str]:
    """A goal's what and measure, stripped; a message in ``errors`` for each that is empty
    or too long."""
    title = title.strip()
    if not title:
        errors["title"] = "Say what you want to achieve."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Use at most {TITLE_MAX} characters."
    measure = measure.strip()
    if not measure:
        errors["measure"] = "Say how you will know you got there."
    elif len(measure) > MEASURE_MAX:
        errors["measure"] = f"Use at most {MEASURE_MAX} characters."
    return title, measure


def create_goal(
    session: Session,
    *,
    owner: Participant,
    scope: str,
    title: str,
    measure: str,
    target_date: str,
    today: date,
) -> Goal:
    """A new goal (status proposed) by mentee ``owner``; ``scope`` is "r<id>" or "c<id>"."""
    if not owner.is_mentee:
        raise NotAllowed("only mentees write goals")
    errors: dict[str, str] = {}
    relationships, circles = shareable_scopes(session, owner)
    pair = next((r for r in relationships if f"r{r.id}" == scope), None)
    circle = next((c for c in circles if f"c{c.id}" == scope), None)
    if pair is None and circle is None:
        errors["scope"] = "Choose one of your mentors or circles to share this goal with."
    title, measure = read_title_and_measure(errors, title, measure)
    when = read_target_date(errors, target_date, today)
    if errors:
        raise FormInvalid(errors)
    goal = Goal(
        program_id=owner.program_id,
        owner_id=owner.id,
        relationship_id=pair.id if pair else None,
        circle_id=circle.id if circle else None,
        title=title,
        measure=measure,
        target_date=when,
    )
    goal.pair = pair
    goal.circle = circle
    session.add(goal)
    session.add(GoalUpdate(goal=goal, author_id=owner.id, kind="created", status="proposed"))
    session.flush()
    for agreer_id in sorted(goal_agreers(goal)):
        agreer = session.get(Participant, agreer_id)
        if agreer is not None:
            notify(
                session,
                agreer,
                kind="goal.proposed",
                text=f"{owner.display_name} proposed a goal: {title}",
                link=f"/programs/{owner.program_id}/goals/{goal.id}",
            )
    return goal


def agree_goal(session: Session, goal: Goal, *, actor: Participant) -> Goal:
    """The mentor (or facilitator, or a peer in a circle without one) agrees to a goal."""
    if actor.id not in goal_agreers(goal):
        raise NotAllowed(
            "only the mentor or facilitator this goal is shared with (in a circle without "
            "a facilitator, another member) can agree to it"
        )
    if goal.status != GoalStatus.PROPOSED:
        raise StateConflict("this goal has already been agreed")
    goal.status = GoalStatus.AGREED
    goal.agreed_by_id = actor.id
    goal.agreed_at = utcnow()
    session.add(GoalUpdate(goal=goal, author_id=actor.id, kind="agreed", status="agreed"))
    notify(
        session,
        goal.owner,
        kind="goal.agreed",
        text=f"{actor.display_name} agreed to your goal: {goal.title}",
        link=f"/programs/{goal.program_id}/goals/{goal.id}",
    )
    session.flush()
    return goal


def add_checkin(
    session: Session, goal: Goal, *, actor: Participant, progress: str, note: str
) -> GoalUpdate:
    """A progress check-in (0-100, with a note) by the owner or a partner."""
    if actor.id not in goal_viewers(goal):
        raise NotAllowed("only the people this goal is shared with can check in on it")
    if goal.status in (GoalStatus.ACHIEVED, GoalStatus.DROPPED):
        raise StateConflict("this goal is finished; write a new one to keep going")
    errors: dict[str, str] = {}
    value: int | None = None
    try:
        value = int(progress.strip())
    except ValueError:
        errors["progress"] = "Enter progress as a whole number from 0 to 100."
    else:
        if not 0 <= value <= 100:
            errors["progress"] = "Enter progress as a whole number from 0 to 100."
    note = note.strip()
    if not note:
        errors["note"] = "Write a short note on what happened since the last check-in."
    elif len(note) > NOTE_MAX:
        errors["note"] = f"Use at most {NOTE_MAX} characters."
    if errors:
        raise FormInvalid(errors)
    assert value is not None
    goal.progress = value
    if value == 100 and goal.status == GoalStatus.AGREED:
        goal.status = GoalStatus.ACHIEVED
    update = GoalUpdate(
        goal=goal,
        author_id=actor.id,
        kind="checkin",
        progress=value,
        status=goal.status.value,
        note=note,
    )
    session.add(update)
    notify_goal_viewers(
        session,
        goal,
        actor,
        kind="goal.checkin",
        text=f"{actor.display_name} checked in on “{goal.title}”: {value}%",
    )
    session.flush()
    queue_participation_score(session, actor.id)  # check-ins count towards participation
    return update


def notify_goal_viewers(
    session: Session, goal: Goal, actor: Participant, *, kind: str, text: str
) -> None:
    """Tell everyone the goal is shared with, but ``actor``, with a link to the goal."""
    for viewer_id in sorted(goal_viewers(goal) - {actor.id}):
        viewer = session.get(Participant, viewer_id)
        if viewer is not None:
            notify(
                session,
                viewer,
                kind=kind,
                text=text,
                link=f"/programs/{goal.program_id}/goals/{goal.id}",
            )


def carry_over_goals(session: Session, relationship: Relationship, *, actor_id: int | None) -> int:
    """Link the goals chosen for a re-match to ``relationship`` now that it is active.

    Only goals still in the closed relationship, owned by the mentee and still unfinished
    (one dropped or achieved since it was chosen stays behind) move; each keeps its history
    and gains a "carried_over" entry naming the relationship it came from. The choice is
    then emptied, so running this again changes nothing.
    """
    chosen = list(relationship.carry_goal_ids or [])
    previous = relationship.rematch_of_id
    if not chosen or previous is None or relationship.status != RelationshipStatus.ACTIVE:
        return 0
    moved = 0
    for goal in session.scalars(
        select(Goal)
        .where(
            Goal.id.in_(chosen),
            Goal.relationship_id == previous,
            Goal.owner_id == relationship.mentee_id,
            Goal.status.in_(CARRYABLE),
        )
        .order_by(Goal.id)
    ):
        goal.relationship_id = relationship.id
        goal.pair = relationship
        note = (
            f"Carried over from relationship {previous} "
            f"({relationship.track.label}, closed as not working out)."
        )
        if goal.status == GoalStatus.AGREED:
            # The earlier mentor agreed to it, not this one: it waits for their agreement.
            goal.status = GoalStatus.PROPOSED
            goal.agreed_by_id = None
            goal.agreed_at = None
            note += " It waits for the new mentor's agreement."
        session.add(
            GoalUpdate(
                goal=goal,
                author_id=actor_id,
                kind="carried_over",
                progress=goal.progress,
                status=goal.status.value,
                note=note,
            )
        )
        moved += 1
    relationship.carry_goal_ids = []
    session.flush()
    return moved
