"""Declarative rules: from the state of a program, which follow-ups must exist.

A rule is a pure function of loaded state and ``now``; it returns :class:`Planned`
entries, each under a deterministic dedupe key. The planner compares them with the stored
rows; rules never read or write follow-ups themselves. Keys are chosen so that:

* a change that moves a message keeps its key (the stored row is rescheduled);
* a change that makes a message a different one changes its key (the old one is
  cancelled, the new one created), e.g. a new meeting restarts the nudge series.

Meeting-dependent rules (nudges, escalation) need ``RuleSet.last_meeting_at``
(:func:`plugin.meetings.history.last_meeting_at` in the default rule set); a rule set
without it plans none of them, so nobody is told "you have not met yet" by a tool that
cannot know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from plugin.followups.policy import FollowUpPolicy, local_moment, zone_named
from plugin.models import (
    AttendeeResponse,
    FollowUpKind,
    Goal,
    GoalStatus,
    Meeting,
    MeetingStatus,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
)

__all__ = [
    "GoalRule",
    "LastMeetingAt",
    "LastMeetingLookup",
    "MeetingRule",
    "Planned",
    "ProgramRule",
    "RelationshipRule",
    "RuleContext",
    "RuleSet",
    "coordinator_digest",
    "default_rule_set",
    "goal_checkin",
    "health_check",
    "introduction",
    "meeting_feedback",
    "meeting_nudges",
    "meeting_reminders",
]

#: When a relationship's last meeting was (None: never met), bound to a session.
LastMeetingAt = Callable[[Relationship], datetime | None]
#: The same, as the meetings work supplies it: ``last_meeting_at(session, relationship)``.
LastMeetingLookup = Callable[[Session, Relationship], datetime | None]


@dataclass(frozen=True)
class Planned:
    """One follow-up a rule says must exist."""

    key: str
    kind: FollowUpKind
    program_id: int
    recipient_id: int
    due_at: datetime
    relationship_id: int | None = None
    goal_id: int | None = None
    meeting_id: int | None = None
    refs: dict[str, object] = field(default_factory=dict)
    #: False: a message whose time has already passed when it is first derived is not
    #: created at all (a reminder "24 h before" a meeting booked 2 h ahead).
    create_late: bool = True


@dataclass(frozen=True)
class RuleContext:
    """What every rule may read: the time, the program, its policy and people."""

    now: datetime
    program: Program
    policy: FollowUpPolicy
    #: Active participants of the program by id (recipients must be among them).
    people: dict[int, Participant]
    last_meeting_at: LastMeetingAt | None = None

    @property
    def coordinators(self) -> list[Participant]:
        return [p for p in self.people.values() if p.is_coordinator]

    def zone_of(self, participant_id: int) -> str:
        person = self.people.get(participant_id)
        return person.profile.time_zone if person and person.profile else "UTC"


RelationshipRule = Callable[[RuleContext, Relationship], Iterable[Planned]]
GoalRule = Callable[[RuleContext, Goal], Iterable[Planned]]
ProgramRule = Callable[[RuleContext], Iterable[Planned]]
MeetingRule = Callable[[RuleContext, Meeting], Iterable[Planned]]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M")


def introduction(ctx: RuleContext, rel: Relationship) -> Iterable[Planned]:
    """Both sides get an introduction when the relationship is active."""
    if rel.status != RelationshipStatus.ACTIVE or rel.started_at is None:
        return
    for me, partner in ((rel.mentee_id, rel.mentor_id), (rel.mentor_id, rel.mentee_id)):
        yield Planned(
            key=f"intro:{rel.id}:{me}",
            kind=FollowUpKind.INTRODUCTION,
            program_id=rel.program_id,
            recipient_id=me,
            due_at=rel.started_at,
            relationship_id=rel.id,
            refs={"partner_id": partner},
        )


def health_check(ctx: RuleContext, rel: Relationship) -> Iterable[Planned]:
    """Every ``health_check_days`` of an active relationship, both sides are asked how it goes.

    The current period's check and the next one are planned: a current one not yet sent
    stays due, and one from a period already over is cancelled as superseded.
    """
    if rel.status != RelationshipStatus.ACTIVE or rel.started_at is None:
        return
    every = timedelta(days=ctx.policy.health_check_days)
    period = max(0, (ctx.now - rel.started_at) // every)
    for n in (period, period + 1):
        if n < 1:
            continue
        for me in (rel.mentee_id, rel.mentor_id):
            yield Planned(
                key=f"health:{rel.id}:{n}:{me}",
                kind=FollowUpKind.HEALTH_CHECK,
                program_id=rel.program_id,
                recipient_id=me,
                due_at=rel.started_at + n * every,
                relationship_id=rel.id,
                refs={"period": n},
            )


def meeting_nudges(ctx: RuleContext, rel: Relationship) -> Iterable[Planned]:
    """ "No meeting yet" / "no meeting for N days" nudges to both sides, at most
    ``nudge_cap`` of them, then one escalation to each coordinator.

    The series is anchored on the last meeting (or the start): a new meeting changes the
    anchor, so the old series is cancelled and a new one planned from that meeting.
    """
    if ctx.last_meeting_at is None:
        return  # meetings are not known: never claim that people have not met
    if rel.status != RelationshipStatus.ACTIVE or rel.started_at is None:
        return
    last = ctx.last_meeting_at(rel)
    anchor = last or rel.started_at
    first_gap = timedelta(
        days=ctx.policy.first_meeting_days if last is None else (ctx.policy.meeting_gap_days or 30)
    )
    repeat = timedelta(days=ctx.policy.nudge_repeat_days)
    series = f"{rel.id}:{_stamp(anchor)}"
    refs: dict[str, object] = {"met": last is not None, "anchor": anchor.isoformat()}
    for n in range(1, ctx.policy.nudge_cap + 1):
        for me in (rel.mentee_id, rel.mentor_id):
            yield Planned(
                key=f"nudge:{series}:{n}:{me}",
                kind=FollowUpKind.NO_MEETING_NUDGE,
                program_id=rel.program_id,
                recipient_id=me,
                due_at=anchor + first_gap + (n - 1) * repeat,
                relationship_id=rel.id,
                refs={**refs, "nudge": n},
            )
    escalate_at = anchor + first_gap + ctx.policy.nudge_cap * repeat
    for coordinator in ctx.coordinators:
        yield Planned(
            key=f"escalate:{series}:{coordinator.id}",
            kind=FollowUpKind.ESCALATION,
            program_id=rel.program_id,
            recipient_id=coordinator.id,
            due_at=escalate_at,
            relationship_id=rel.id,
            refs=refs,
        )


def _expected(meeting: Meeting) -> list[int]:
    """Attendees still expected at ``meeting``: not declined, not recorded as absent."""
    return [
        a.participant_id
        for a in meeting.attendees
        if a.response != AttendeeResponse.DECLINED and a.attended is not False
    ]


def _pair_closed(meeting: Meeting) -> bool:
    rel = meeting.relation
    return rel is not None and rel.status == RelationshipStatus.CLOSED


def meeting_reminders(ctx: RuleContext, meeting: Meeting) -> Iterable[Planned]:
    """A reminder ``reminder_offsets_hours`` (24 h and 1 h) before a scheduled meeting, to
    every attendee who has not declined.

    The key names the meeting and the offset, not the meeting's version: moving the meeting
    reschedules the same reminder, cancelling it cancels the reminder, and a reminder already
    sent is never sent again for the new time. A reminder whose time had passed when it was
    first derived is not created (``create_late``).
    """
    if meeting.status != MeetingStatus.SCHEDULED or meeting.starts_at <= ctx.now:
        return
    if _pair_closed(meeting):
        return
    for hours in ctx.policy.reminder_offsets_hours:
        for me in _expected(meeting):
            yield Planned(
                key=f"remind:{meeting.id}:{hours}h:{me}",
                kind=FollowUpKind.MEETING_REMINDER,
                program_id=meeting.program_id,
                recipient_id=me,
                due_at=meeting.starts_at - timedelta(hours=hours),
                relationship_id=meeting.relationship_id,
                meeting_id=meeting.id,
                refs={"offset_hours": hours},
                create_late=False,
            )


def meeting_feedback(ctx: RuleContext, meeting: Meeting) -> Iterable[Planned]:
    """After a meeting ends, each attendee is asked for feedback on it.

    Not for cancelled or missed meetings (marking one missed cancels the request), nor once
    the meeting ended more than ``feedback_window_hours`` ago.
    """
    if meeting.status not in (MeetingStatus.SCHEDULED, MeetingStatus.HELD):
        return
    if ctx.now > meeting.ends_at + timedelta(hours=ctx.policy.feedback_window_hours):
        return
    if _pair_closed(meeting):
        return
    for me in _expected(meeting):
        yield Planned(
            key=f"feedback:{meeting.id}:{me}",
            kind=FollowUpKind.MEETING_FEEDBACK,
            program_id=meeting.program_id,
            recipient_id=me,
            due_at=meeting.ends_at + timedelta(minutes=ctx.policy.feedback_after_minutes),
            relationship_id=meeting.relationship_id,
            meeting_id=meeting.id,
        )


def goal_checkin(ctx: RuleContext, goal: Goal) -> Iterable[Planned]:
    """A check-in ``goal_checkin_days_before`` the target date of an open goal, to its owner
    and, for a goal shared in an active relationship, the mentor.

    The key does not hold the date: moving the target date reschedules the same check-in.
    """
    if goal.status not in (GoalStatus.PROPOSED, GoalStatus.AGREED) or goal.target_date is None:
        return
    recipients = [goal.owner_id]
    pair = goal.pair
    if pair is not None and pair.status == RelationshipStatus.ACTIVE:
        recipients.append(pair.mentor_id)
    for me in recipients:
        zone = zone_named(ctx.zone_of(me))
        if goal.target_date < ctx.now.astimezone(zone).date():
            continue  # the date has passed: a check-in "before" it is no longer possible
        day = goal.target_date - timedelta(days=ctx.policy.goal_checkin_days_before)
        hour = datetime.min.time().replace(hour=ctx.policy.send_hour)
        yield Planned(
            key=f"goal:{goal.id}:{me}",
            kind=FollowUpKind.GOAL_CHECKIN,
            program_id=goal.program_id,
            recipient_id=me,
            due_at=local_moment(day, hour, zone),
            relationship_id=goal.relationship_id,
            goal_id=goal.id,
            refs={"target_date": goal.target_date.isoformat()},
        )


def coordinator_digest(ctx: RuleContext) -> Iterable[Planned]:
    """A weekly digest to each coordinator: this week's (if not long past) and next week's."""
    if ctx.program.archived_at is not None:
        return
    policy = ctx.policy
    hour = datetime.min.time().replace(hour=policy.digest_hour)
    for coordinator in ctx.coordinators:
        zone = zone_named(ctx.zone_of(coordinator.id))
        today = ctx.now.astimezone(zone).date()
        this_week = today - timedelta(days=today.isoweekday() - policy.digest_weekday)
        if this_week > today:
            this_week -= timedelta(days=7)
        for day in (this_week, this_week + timedelta(days=7)):
            due = local_moment(day, hour, zone)
            if due < ctx.now - timedelta(days=1):
                continue  # a coordinator enrolled mid-week waits for the next one
            year, week, _ = day.isocalendar()
            yield Planned(
                key=f"digest:{ctx.program.id}:{year}-W{week:02d}:{coordinator.id}",
                kind=FollowUpKind.COORDINATOR_DIGEST,
                program_id=ctx.program.id,
                recipient_id=coordinator.id,
                due_at=due,
                refs={"week": f"{year}-W{week:02d}"},
            )


@dataclass(frozen=True)
class RuleSet:
    """The rules the planner applies. Extension point: add rules, or a meeting lookup."""

    relationship_rules: Sequence[RelationshipRule] = (introduction, health_check, meeting_nudges)
    goal_rules: Sequence[GoalRule] = (goal_checkin,)
    program_rules: Sequence[ProgramRule] = (coordinator_digest,)
    meeting_rules: Sequence[MeetingRule] = (meeting_reminders, meeting_feedback)
    #: Supplied by the meetings work (e.g. ``plugin.meetings.last_meeting_at``); None turns
    #: the meeting-dependent rules off.
    last_meeting_at: LastMeetingLookup | None = None


def default_rule_set() -> RuleSet:
    """The rules in force, with meetings known (so "no meeting yet" nudges are planned)."""
    from plugin.meetings.history import last_meeting_at

    return RuleSet(last_meeting_at=last_meeting_at)
