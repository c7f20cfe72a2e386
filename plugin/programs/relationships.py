"""Relationship lifecycle: propose, accept or decline, pause, resume, close; seats enforced.

A mentor's seats are counted per track and overall. Two requests racing for a mentor's last
seat must not both succeed: every change that takes or frees a seat first bumps the
mentor's ``seats_version`` (an UPDATE, which holds the row lock until commit on PostgreSQL
and the write lock on SQLite), then counts. The second request waits for the first to
commit and then sees its seat taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.grades import queue_participation_score
from plugin.models import (
    CloseReason,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipEvent,
    RelationshipOrigin,
    RelationshipStatus,
    Track,
)
from plugin.models.relationships import SEAT_HOLDING
from plugin.programs.errors import CapacityFull, NotAllowed, StateConflict
from plugin.programs.goals import carry_over_goals
from plugin.programs.peers import peer_stage_allows_pair

__all__ = [
    "Seats",
    "close_relationship",
    "mentor_seats",
    "propose_relationship",
    "respond_to_request",
    "set_paused",
]


@dataclass(frozen=True)
class Seats:
    """A mentor's capacity and use on one track and overall."""

    track_capacity: int
    track_taken: int
    total_capacity: int
    total_taken: int

    @property
    def free(self) -> int:
        return max(
            0,
            min(self.track_capacity - self.track_taken, self.total_capacity - self.total_taken),
        )


def track_capacity(program: Program, mentor: Participant, track: Track) -> int:
    """How many mentees ``mentor`` takes on ``track`` (0 if they do not offer it).

    The mentor's own number for the track, else the program's default for the track, else
    the program's default for every track. Browsing, requests, pairing and match rounds
    all read it here, so they agree. A default lowered below the mentees a mentor already
    has leaves them no free seat: their relationships go on, new ones are refused.
    """
    profile = mentor.profile
    if profile is None or track.value not in profile.tracks_offered:
        return 0
    own = (profile.capacity_by_track or {}).get(track.value)
    return int(own) if own is not None else program.default_capacity(track)


def total_capacity(program: Program, mentor: Participant) -> int:
    profile = mentor.profile
    if profile is None:
        return 0
    if profile.capacity_total is not None:
        return profile.capacity_total
    return sum(
        track_capacity(program, mentor, Track(t))
        for t in profile.tracks_offered
        if t in Track._value2member_map_
    )


def mentor_seats(session: Session, program: Program, mentor: Participant, track: Track) -> Seats:
    """Seats of ``mentor`` as the database has them now (call after locking to decide)."""
    rows = session.execute(
        select(Relationship.track, func.count())
        .where(Relationship.mentor_id == mentor.id, Relationship.status.in_(SEAT_HOLDING))
        .group_by(Relationship.track)
    ).all()
    taken = {Track(t): int(n) for t, n in rows}
    return Seats(
        track_capacity=track_capacity(program, mentor, track),
        track_taken=taken.get(track, 0),
        total_capacity=total_capacity(program, mentor),
        total_taken=sum(taken.values()),
    )


def _lock_seats(session: Session, mentor: Participant) -> None:
    session.execute(
        update(Participant)
        .where(Participant.id == mentor.id)
        .values(seats_version=Participant.seats_version + 1)
        .execution_options(synchronize_session=False)
    )


def _record(
    session: Session,
    relationship: Relationship,
    kind: str,
    actor: Participant | None,
    before: str,
    note: str = "",
) -> None:
    session.add(
        RelationshipEvent(
            relationship=relationship,
            actor_id=actor.id if actor is not None else None,
            kind=kind,
            from_status=before,
            to_status=relationship.status.value,
            note=note,
        )
    )
    if relationship.status == RelationshipStatus.ACTIVE and relationship.carry_goal_ids:
        # A re-match became active: the goals the mentee chose come along.
        carry_over_goals(session, relationship, actor_id=actor.id if actor is not None else None)
    if before != relationship.status.value:
        # What follows from a status change, in the same transaction: the follow-ups
        # (introductions, nudges, check-ins) are planned again, and active relationships
        # count towards both sides' participation scores (AGS).
        if relationship.status == RelationshipStatus.CLOSED:
            _call_off_meetings(session, relationship)
        _plan_followups(session, relationship)
        for participant_id in (relationship.mentee_id, relationship.mentor_id):
            queue_participation_score(session, participant_id)


def did_not_work_out_with(mentee_id: int) -> Select[int]:
    """The mentors a relationship of this mentee closed as not working out with."""
    return select(Relationship.mentor_id).where(
        Relationship.mentee_id == mentee_id,
        Relationship.close_reason == CloseReason.NOT_WORKING,
    )


def not_working_mentor_ids(session: Session, mentee: Participant) -> set[int]:
    """Every mentor a relationship of ``mentee`` closed as not working out with."""
    return set(session.scalars(did_not_work_out_with(mentee.id)))


def propose_relationship(
    session: Session,
    *,
    program: Program,
    mentee: Participant,
    mentor: Participant,
    track: Track,
    origin: RelationshipOrigin,
    actor: Participant | None,
    note: str = "",
    activate: bool = False,
    rematch_of: Relationship | None = None,
    carry_goal_ids: Sequence[int] = (),
) -> Relationship:
    """Take one of ``mentor``'s seats on ``track`` for ``mentee``.

    A mentee's request stays PROPOSED until the mentor accepts; a coordinator's pairing or a
    published match is ACTIVE at once (``activate``). A re-match names the relationship it
    replaces and the goals to carry over when it becomes active. Raises CapacityFull when no seat is
    free, StateConflict when the mentee already has an open relationship on that track,
    NotAllowed for an ineligible pair (for a mentee's request also: a mentor it did not work
    out with, a peer mentor not at a later career stage than the mentee).
    """
    if mentee.program_id != program.id or mentor.program_id != program.id:
        raise NotAllowed("both people must be in this program")
    if mentee.id == mentor.id:
        raise NotAllowed("a person cannot mentor themselves")
    if not (mentee.is_mentee and mentee.status == ParticipantStatus.ACTIVE):
        raise NotAllowed("this person is not enrolled as a mentee")
    if not (mentor.is_mentor and mentor.status == ParticipantStatus.ACTIVE):
        raise NotAllowed("this person is not enrolled as a mentor")
    if track not in program.offered_tracks:
        raise NotAllowed(f"this program does not offer the {track.label} track")
    if origin == RelationshipOrigin.REQUEST and mentor.id in not_working_mentor_ids(
        session, mentee
    ):
        # The matcher never proposes such a pair; a coordinator may still pair them.
        raise NotAllowed(
            "a relationship with this mentor did not work out before; choose another mentor"
        )
    if origin == RelationshipOrigin.REQUEST and not peer_stage_allows_pair(
        session, program, mentee, mentor
    ):
        # As with the pair above: rounds never propose it, a coordinator may still make it.
        raise NotAllowed(
            f"{mentor.display_name} is a peer mentor, who mentors people at an earlier career "
            "stage than their own; choose another mentor"
        )

    _lock_seats(session, mentor)
    seats = mentor_seats(session, program, mentor, track)
    if seats.track_capacity == 0:
        raise CapacityFull(f"{mentor.display_name} does not mentor on the {track.label} track")
    if seats.free == 0:
        raise CapacityFull(
            f"{mentor.display_name} has no free place on the {track.label} track; "
            "choose another mentor or ask them to raise their capacity"
        )
    now = utcnow()
    relationship = Relationship(
        program_id=program.id,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        track=track,
        origin=origin,
        status=RelationshipStatus.ACTIVE if activate else RelationshipStatus.PROPOSED,
        started_at=now if activate else None,
        note=note,
        rematch_of_id=rematch_of.id if rematch_of is not None else None,
        carry_goal_ids=list(carry_goal_ids),
    )
    try:
        with session.begin_nested():
            session.add(relationship)
            session.flush()
    except IntegrityError:
        raise StateConflict(
            f"the mentee already has an open {track.label} relationship; "
            "close it before starting another on that track"
        ) from None
    _record(session, relationship, "proposed" if not activate else "started", actor, "")
    session.flush()
    return relationship


def respond_to_request(
    session: Session,
    relationship: Relationship,
    *,
    accept: bool,
    actor: Participant,
    note: str = "",
) -> Relationship:
    """The mentor accepts (ACTIVE) or declines (CLOSED, declined) a proposed relationship."""
    if actor.id != relationship.mentor_id:
        raise NotAllowed("only the requested mentor can answer this request")
    if relationship.status != RelationshipStatus.PROPOSED:
        raise StateConflict("this request has already been answered")
    before = relationship.status.value
    if accept:
        relationship.status = RelationshipStatus.ACTIVE
        relationship.started_at = utcnow()
        _record(session, relationship, "accepted", actor, before, note)
    else:
        _close(relationship, CloseReason.DECLINED)
        _record(session, relationship, "declined", actor, before, note)
    session.flush()
    return relationship


def set_paused(
    session: Session, relationship: Relationship, *, paused: bool, actor: Participant | None
) -> Relationship:
    """Pause an active relationship or resume a paused one (it keeps its seat)."""
    wanted_from = RelationshipStatus.ACTIVE if paused else RelationshipStatus.PAUSED
    if relationship.status != wanted_from:
        raise StateConflict(
            "only an active relationship can be paused"
            if paused
            else "only a paused relationship can be resumed"
        )
    before = relationship.status.value
    relationship.status = RelationshipStatus.PAUSED if paused else RelationshipStatus.ACTIVE
    _record(session, relationship, "paused" if paused else "resumed", actor, before)
    session.flush()
    return relationship


def _call_off_meetings(session: Session, relationship: Relationship) -> None:
    """A relationship closed: its meetings that have not started are cancelled."""
    from plugin.meetings.scheduling import cancel_meetings_of_relationship

    session.flush()
    cancel_meetings_of_relationship(session, relationship)


def _plan_followups(session: Session, relationship: Relationship) -> None:
    """A relationship's status changed: reconcile its follow-ups."""
    from plugin.followups.planner import reconcile

    session.flush()
    reconcile(session, relationship_id=relationship.id)


def _close(relationship: Relationship, reason: CloseReason) -> None:
    relationship.status = RelationshipStatus.CLOSED
    relationship.close_reason = reason
    relationship.closed_at = utcnow()


def close_relationship(
    session: Session,
    relationship: Relationship,
    *,
    reason: CloseReason,
    actor: Participant | None,
    note: str = "",
) -> Relationship:
    """Close an open relationship with a reason; the mentor's seat is freed."""
    if not relationship.is_open:
        raise StateConflict("this relationship is already closed")
    before = relationship.status.value
    _close(relationship, reason)
    _record(session, relationship, "closed", actor, before, note)
    from plugin.insights.feedback import invite_evaluation

    invite_evaluation(session, relationship)  # both sides, if it had started
    session.flush()
    return relationship
