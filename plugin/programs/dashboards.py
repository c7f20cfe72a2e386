"""What a mentee's and a mentor's home pages show, and the list of mentors to ask.

Read-only queries: they return plain dataclasses that templates render.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from plugin.db import utcnow
from plugin.matching import TrackOffer, rank_mentors
from plugin.models import (
    Circle,
    Goal,
    GoalStatus,
    HealthCheck,
    Meeting,
    MeetingStatus,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
)
from plugin.models.relationships import SEAT_HOLDING
from plugin.programs.matching_inputs import (
    mentee_profile,
    mentor_with_offers,
    participant_id,
    reference_monday,
)
from plugin.programs.peers import peer_mentor_ids, peer_stage_allows, stage_of
from plugin.programs.relationships import (
    did_not_work_out_with,
    total_capacity,
    track_capacity,
)

__all__ = [
    "MenteeHome",
    "MentorCard",
    "MentorHome",
    "TrackSeats",
    "browse_mentors",
    "mentee_home",
    "mentor_home",
    "next_circle_meetings",
    "next_meetings",
    "partner_ids",
]


@dataclass
class MenteeHome:
    #: Open relationships (proposed, active, paused) per track.
    by_track: dict[Track, Relationship] = field(default_factory=dict)
    #: Tracks the mentee wants (and the program offers) with no open relationship.
    missing: list[Track] = field(default_factory=list)
    #: The next scheduled meeting of each relationship that has one.
    next_meetings: dict[int, Meeting] = field(default_factory=dict)
    #: Relationships whose health check is open and not answered by this person yet.
    health_due: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class TrackSeats:
    track: Track
    capacity: int
    taken: int

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.taken)


@dataclass
class MentorHome:
    mentees: list[Relationship] = field(default_factory=list)
    requests: list[Relationship] = field(default_factory=list)
    seats: list[TrackSeats] = field(default_factory=list)
    total_capacity: int = 0
    total_taken: int = 0
    goals_to_agree: list[Goal] = field(default_factory=list)
    #: The next scheduled meeting of each relationship that has one.
    next_meetings: dict[int, Meeting] = field(default_factory=dict)
    #: Relationships whose health check is open and not answered by this person yet.
    health_due: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class MentorCard:
    mentor: Participant
    free_seats: int
    shared_interests: list[str]
    #: The matching engine's fit (0..1) and its top reasons; None when the engine does not
    #: rank this mentor for the mentee (e.g. no common availability).
    score: float | None = None
    reasons: tuple[str, ...] = ()


def _open_relationships(session: Session, **where: int) -> list[Relationship]:
    query = select(Relationship).where(Relationship.status.in_(SEAT_HOLDING))
    for column, value in where.items():
        query = query.where(getattr(Relationship, column) == value)
    return list(session.scalars(query.order_by(Relationship.id)))


def mentee_home(session: Session, program: Program, mentee: Participant) -> MenteeHome:
    """The mentee's mentors by track and the tracks they still have no mentor on."""
    home = MenteeHome()
    for relationship in _open_relationships(session, mentee_id=mentee.id):
        home.by_track[relationship.track] = relationship
    wanted = mentee.profile.tracks_wanted if mentee.profile else []
    home.missing = [
        t for t in program.offered_tracks if t.value in wanted and t not in home.by_track
    ]
    home.next_meetings = next_meetings(session, [r.id for r in home.by_track.values()])
    home.health_due = open_health_checks(session, program, mentee, home.by_track.values())
    return home


def mentor_home(session: Session, program: Program, mentor: Participant) -> MentorHome:
    """The mentor's mentees, open requests, seats per track and goals waiting for them."""
    home = MentorHome()
    taken: dict[Track, int] = defaultdict(int)
    for relationship in _open_relationships(session, mentor_id=mentor.id):
        taken[relationship.track] += 1
        if relationship.status == RelationshipStatus.PROPOSED:
            home.requests.append(relationship)
        else:
            home.mentees.append(relationship)
    offered = mentor.profile.tracks_offered if mentor.profile else []
    home.seats = [
        TrackSeats(track=t, capacity=track_capacity(program, mentor, t), taken=taken[t])
        for t in program.offered_tracks
        if t.value in offered or taken[t]
    ]
    home.next_meetings = next_meetings(session, [r.id for r in home.mentees])
    home.health_due = open_health_checks(session, program, mentor, home.mentees)
    home.total_capacity = total_capacity(program, mentor)
    home.total_taken = sum(taken.values())
    mentored = select(Relationship.id).where(Relationship.mentor_id == mentor.id)
    facilitated = select(Circle.id).where(Circle.facilitator_id == mentor.id)
    home.goals_to_agree = list(
        session.scalars(
            select(Goal)
            .where(
                Goal.status == GoalStatus.PROPOSED,
                or_(Goal.relationship_id.in_(mentored), Goal.circle_id.in_(facilitated)),
            )
            .order_by(Goal.id)
        )
    )
    return home


def open_health_checks(
    session: Session,
    program: Program,
    me: Participant,
    relationships: Iterable[Relationship],
    *,
    now: datetime | None = None,
) -> set[int]:
    """Active relationships whose current health check ``me`` has not answered (one query)."""
    from plugin.insights.feedback import health_period

    now = now or utcnow()
    periods = {
        rel.id: health_period(rel, program, now)
        for rel in relationships
        if rel.status == RelationshipStatus.ACTIVE
    }
    periods = {rid: period for rid, period in periods.items() if period >= 1}
    if not periods:
        return set()
    answered = {
        (rid, period)
        for rid, period in session.execute(
            select(HealthCheck.relationship_id, HealthCheck.period).where(
                HealthCheck.author_id == me.id, HealthCheck.relationship_id.in_(periods)
            )
        )
    }
    return {rid for rid, period in periods.items() if (rid, period) not in answered}


def next_meetings(
    session: Session, relationship_ids: list[int], *, now: datetime | None = None
) -> dict[int, Meeting]:
    """Each relationship's next scheduled meeting that has not ended (one query for all)."""
    return _next_meetings_of(session, Meeting.relationship_id, relationship_ids, now)


def next_circle_meetings(
    session: Session, circle_ids: list[int], *, now: datetime | None = None
) -> dict[int, Meeting]:
    """Each circle's next scheduled meeting that has not ended (one query for all)."""
    return _next_meetings_of(session, Meeting.circle_id, circle_ids, now)


def _next_meetings_of(
    session: Session,
    owner: InstrumentedAttribute[int | None],
    owner_ids: list[int],
    now: datetime | None,
) -> dict[int, Meeting]:
    """The soonest upcoming scheduled meeting per value of ``owner`` (a meeting column)."""
    if not owner_ids:
        return {}
    now = now or utcnow()
    upcoming = (Meeting.status == MeetingStatus.SCHEDULED) & (Meeting.ends_at > now)
    soonest = (
        select(owner.label("owner_id"), func.min(Meeting.starts_at).label("starts_at"))
        .where(owner.in_(owner_ids), upcoming)
        .group_by(owner)
        .subquery()
    )
    found: dict[int, Meeting] = {}
    for meeting in session.scalars(
        select(Meeting)
        .join(
            soonest,
            (soonest.c.owner_id == owner) & (soonest.c.starts_at == Meeting.starts_at),
        )
        .where(upcoming)
        .order_by(Meeting.id)
    ):
        key = getattr(meeting, owner.key)
        if key is not None:
            found.setdefault(key, meeting)  # two at once: the first made
    return found


def partner_ids(session: Session, participant: Participant) -> dict[int, RelationshipStatus]:
    """Everyone ``participant`` has an open relationship with, and its status."""
    rows = session.execute(
        select(Relationship.mentee_id, Relationship.mentor_id, Relationship.status).where(
            or_(
                Relationship.mentee_id == participant.id,
                Relationship.mentor_id == participant.id,
            ),
            Relationship.status.in_(SEAT_HOLDING),
        )
    ).all()
    return {
        (mentor if mentee == participant.id else mentee): RelationshipStatus(status)
        for mentee, mentor, status in rows
    }


def browse_mentors(
    session: Session, program: Program, mentee: Participant, track: Track
) -> list[MentorCard]:
    """Mentors with a free seat on ``track``, best fit first by the matching engine.

    The engine ranks with the program's default weights and explains each rank; mentors it
    cannot rank (no common availability) follow, most shared interests first, so a mentee
    still sees everyone with room. A mentor a relationship of this mentee closed as not
    working out with is not listed: the mentee cannot ask them again (a coordinator can
    still pair them). Nor is a peer mentor not at a later career stage than the mentee.
    """
    mentors = session.scalars(
        select(Participant).where(
            Participant.program_id == program.id,
            Participant.is_mentor.is_(True),
            Participant.status == ParticipantStatus.ACTIVE,
            Participant.id != mentee.id,
            Participant.id.not_in(did_not_work_out_with(mentee.id)),
        )
    ).all()
    peers = peer_mentor_ids(session, program, mentors)
    mentee_stage = stage_of(mentee)
    taken: dict[tuple[int, str], int] = defaultdict(int)
    totals: dict[int, int] = defaultdict(int)
    for mentor_id, track_value, count in session.execute(
        select(Relationship.mentor_id, Relationship.track, func.count())
        .where(Relationship.program_id == program.id, Relationship.status.in_(SEAT_HOLDING))
        .group_by(Relationship.mentor_id, Relationship.track)
    ):
        taken[(mentor_id, Track(track_value).value)] += int(count)
        totals[mentor_id] += int(count)
    mine = set(mentee.profile.interests if mentee.profile else [])
    cards: dict[int, MentorCard] = {}
    for mentor in mentors:
        if mentor.id in peers and not peer_stage_allows(program, stage_of(mentor), mentee_stage):
            continue
        free = min(
            track_capacity(program, mentor, track) - taken[(mentor.id, track.value)],
            total_capacity(program, mentor) - totals[mentor.id],
        )
        if free <= 0:
            continue
        theirs = mentor.profile.interests if mentor.profile else []
        cards[mentor.id] = MentorCard(
            mentor=mentor,
            free_seats=free,
            shared_interests=[code for code in theirs if code in mine],
        )
    ranked = _rank(session, program, mentee, track, cards)
    rest = sorted(
        (c for mentor_id, c in cards.items() if mentor_id not in ranked),
        key=lambda c: (-len(c.shared_interests), c.mentor.display_name.lower()),
    )
    return list(ranked.values()) + rest


def _rank(
    session: Session,
    program: Program,
    mentee: Participant,
    track: Track,
    cards: dict[int, MentorCard],
) -> dict[int, MentorCard]:
    """The cards the engine ranks, in its order, with its score and reasons."""
    if not cards:
        return {}
    monday = reference_monday(utcnow())
    profiles = [
        mentor_with_offers(
            card.mentor, (TrackOffer(track.value, card.free_seats),), card.free_seats, monday
        )
        for card in cards.values()
    ]
    ranked = rank_mentors(  # browse_mentors has left out the pairs that may not be made
        mentee_profile(mentee, (track.value,), monday),
        profiles,
        track.value,
        limit=len(profiles),
    )
    result: dict[int, MentorCard] = {}
    for proposal in ranked:
        card = cards[participant_id(proposal.mentor_id)]
        result[card.mentor.id] = replace(card, score=proposal.score, reasons=proposal.reasons)
    return result
