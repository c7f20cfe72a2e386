"""Goals that evolve: the mentee who wrote a goal changes its what, measure or target date,
or drops it.

The rules (issue #4, "goals agreed by both sides that evolve over time"):

* only the goal's owner edits or drops it, and only while it is open (proposed or agreed);
  achieved and dropped goals are read-only, history included;
* changing the measure or the target date of an agreed goal changes what was agreed, so it
  goes back to proposed for the mentor (or facilitator) to agree again, as a goal carried
  over to a new mentor does (:func:`plugin.programs.goals.carry_over_goals`). Rewording
  the "what" keeps the agreement: the partners are told and the history shows both texts;
* every change writes a :class:`GoalUpdate` with what it changed, before and after, tells
  the other people the goal is shared with, and re-plans the goal's check-in follow-ups
  in the same transaction (a new date moves the check-in, a dropped goal cancels it);
* an edit that changes nothing writes nothing, so a form sent twice is one edit.

Marking a goal achieved stays what it was: a check-in at 100 % on an agreed goal, by
either side (:func:`plugin.programs.goals.add_checkin`).
"""

from __future__ import annotations

from datetime import date
from typing import Final

from sqlalchemy.orm import Session

from plugin.models import Goal, GoalStatus, GoalUpdate, Participant
from plugin.programs.errors import FormInvalid, NotAllowed, StateConflict
from plugin.programs.goals import (
    NOTE_MAX,
    notify_goal_viewers,
    read_target_date,
    read_title_and_measure,
)

__all__ = [
    "CHANGE_LABELS",
    "OPEN_STATUSES",
    "REAGREE_FIELDS",
    "content_version",
    "drop_goal",
    "edit_goal",
]

#: Statuses in which a goal can still change; the others are read-only.
OPEN_STATUSES: Final = (GoalStatus.PROPOSED, GoalStatus.AGREED)
#: Fields whose change on an agreed goal sends it back to proposed.
REAGREE_FIELDS: Final = frozenset({"measure", "target_date"})
#: How the history names each field an edit can change.
CHANGE_LABELS: Final = {"title": "What", "measure": "Measure", "target_date": "Target date"}
#: History kinds that change what a goal says (an agreement is to the latest of these).
_CONTENT_KINDS: Final = ("created", "edited", "carried_over")


def content_version(goal: Goal) -> int:
    """The id of the latest history entry that changed what ``goal`` says (0 if none).

    The agree form carries it, so a mentor never agrees to a version they did not see.
    """
    return max((u.id for u in goal.updates if u.kind in _CONTENT_KINDS and u.id), default=0)


def _require_open_and_owner(goal: Goal, actor: Participant, verb: str) -> None:
    if actor.id != goal.owner_id:
        raise NotAllowed(f"only the mentee who wrote this goal can {verb} it")
    if goal.status not in OPEN_STATUSES:
        raise StateConflict(
            f"this goal is {goal.status.value} and can no longer be changed; "
            "write a new one to keep going"
        )


def _replan(session: Session, goal: Goal) -> None:
    from plugin.followups.planner import reconcile

    reconcile(session, goal_id=goal.id)


def edit_goal(
    session: Session,
    goal: Goal,
    *,
    actor: Participant,
    title: str,
    measure: str,
    target_date: str,
    today: date,
) -> GoalUpdate | None:
    """The owner changes what, measure or target date; None when nothing changed.

    A new target date must be in the future (``today`` is the owner's); an unchanged one
    may have passed (an overdue goal can still be reworded or re-dated).
    """
    _require_open_and_owner(goal, actor, "change")
    errors: dict[str, str] = {}
    title, measure = read_title_and_measure(errors, title, measure)
    old_date = goal.target_date.isoformat() if goal.target_date else ""
    if old_date and target_date.strip() == old_date:
        when: date | None = goal.target_date
    else:
        when = read_target_date(errors, target_date, today)
    if errors:
        raise FormInvalid(errors)
    before = {"title": goal.title, "measure": goal.measure, "target_date": old_date}
    after = {"title": title, "measure": measure, "target_date": when.isoformat() if when else ""}
    changes = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
    if not changes:
        return None
    goal.title, goal.measure, goal.target_date = title, measure, when
    note = ""
    if goal.status == GoalStatus.AGREED and REAGREE_FIELDS & changes.keys():
        goal.status = GoalStatus.PROPOSED
        goal.agreed_by_id = None
        goal.agreed_at = None
        note = "What was agreed changed, so the goal waits to be agreed again."
    update = GoalUpdate(
        goal=goal,
        author_id=actor.id,
        kind="edited",
        progress=goal.progress,
        status=goal.status.value,
        note=note,
        changes=changes,
    )
    session.add(update)
    again = "; it waits to be agreed again" if note else ""
    notify_goal_viewers(
        session,
        goal,
        actor,
        kind="goal.edited",
        text=f"{actor.display_name} changed the goal “{goal.title}”{again}",
    )
    session.flush()
    _replan(session, goal)
    return update


def drop_goal(session: Session, goal: Goal, *, actor: Participant, note: str) -> GoalUpdate:
    """The owner drops an open goal, with an optional note on why; it becomes read-only."""
    _require_open_and_owner(goal, actor, "drop")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise FormInvalid({"note": f"Use at most {NOTE_MAX} characters."})
    goal.status = GoalStatus.DROPPED
    update = GoalUpdate(
        goal=goal,
        author_id=actor.id,
        kind="dropped",
        progress=goal.progress,
        status=goal.status.value,
        note=note,
    )
    session.add(update)
    notify_goal_viewers(
        session,
        goal,
        actor,
        kind="goal.dropped",
        text=f"{actor.display_name} dropped the goal “{goal.title}”",
    )
    session.flush()
    _replan(session, goal)
    return update
