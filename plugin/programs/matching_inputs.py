"""Turn a program's participants into the matching engine's inputs.

Availability is converted from each person's IANA zone to UTC minutes of the week on a
reference week (the week the round runs in, so daylight-saving offsets are the current
ones); capacities are net of the seats a mentor already holds; exclusions list the pairs
that are active or closed as not working, the coordinator's, the round's rejections, and
peer mentors with mentees not at an earlier career stage (:mod:`plugin.programs.peers`).
Opt-in preferences are decoded here for the engine only and never stored in the snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from plugin.matching import (
    MINUTES_PER_WEEK,
    Exclusion,
    ExclusionReason,
    Format,
    LockedPair,
    MenteeProfile,
    MentorProfile,
    TrackOffer,
    Window,
)
from plugin.models import (
    CloseReason,
    MatchRound,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    ProposalState,
    Relationship,
    RelationshipStatus,
    Track,
)
from plugin.models.relationships import SEAT_HOLDING
from plugin.programs.peers import peer_mentor_ids, peer_stage_allows, stage_of
from plugin.programs.profile_form import private_preferences
from plugin.programs.relationships import Seats, total_capacity, track_capacity

__all__ = [
    "EngineInputs",
    "build_engine_inputs",
    "engine_id",
    "held_seats",
    "mentee_profile",
    "mentor_profile",
    "mentor_with_offers",
    "participant_id",
    "reference_monday",
    "utc_windows",
]


@dataclass(frozen=True)
class EngineInputs:
    """Everything ``match()`` needs for one round, plus the snapshot to store."""

    mentees: tuple[MenteeProfile, ...]
    mentors: tuple[MentorProfile, ...]
    exclusions: tuple[Exclusion, ...]
    locked: tuple[LockedPair, ...]
    snapshot: dict[str, Any]


def engine_id(participant_id: int) -> str:
    """The engine's id of a participant (one per person: the same on both sides)."""
    return f"p{participant_id}"


def participant_id(engine_id_: str) -> int:
    return int(engine_id_.removeprefix("p"))


def reference_monday(now: datetime) -> date:
    """The Monday (UTC) of the week ``now`` falls in."""
    day = now.date()
    return day - timedelta(days=day.weekday())


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # a bad stored zone should not stop a round


def _clock(value: Any) -> time | None:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return None


def utc_windows(windows: list[dict[str, Any]], zone_name: str, monday: date) -> tuple[Window, ...]:
    """Local weekly windows ({day, start, end}) as UTC minutes since ``monday`` 00:00 UTC.

    Each window is placed on the reference week in its zone, so its offset is the one in
    force that week; a window ending at or before its start runs past midnight.
    """
    zone = _zone(zone_name)
    week_start = datetime.combine(monday, time(0), tzinfo=ZoneInfo("UTC"))
    result: list[Window] = []
    for window in windows:
        start, end = _clock(window.get("start")), _clock(window.get("end"))
        try:
            day = int(window.get("day", -1))
        except (TypeError, ValueError):
            continue
        if start is None or end is None or not 0 <= day <= 6:
            continue
        local_start = datetime.combine(monday + timedelta(days=day), start, tzinfo=zone)
        local_end = datetime.combine(monday + timedelta(days=day), end, tzinfo=zone)
        if local_end <= local_start:
            local_end += timedelta(days=1)
        begin = int((local_start - week_start).total_seconds() // 60) % MINUTES_PER_WEEK
        length = int((local_end - local_start).total_seconds() // 60)
        if length > 0:
            result.append(Window(begin, begin + length))
    return tuple(sorted(result, key=lambda w: (w.start, w.end)))


def _format(profile: Profile) -> Format:
    return Format(str(profile.meeting_format))


def _stage(profile: Profile) -> int:
    return profile.career_stage.rank if profile.career_stage is not None else 0


def _open_tracks(session: Session, program: Program) -> dict[int, set[str]]:
    rows = session.execute(
        select(Relationship.mentee_id, Relationship.track).where(
            Relationship.program_id == program.id, Relationship.status.in_(SEAT_HOLDING)
        )
    ).all()
    taken: dict[int, set[str]] = defaultdict(set)
    for mentee, track in rows:
        taken[mentee].add(Track(track).value)
    return taken


def mentee_profile(
    participant: Participant, tracks: tuple[str, ...], monday: date
) -> MenteeProfile:
    """A mentee as the engine sees them, asking for ``tracks`` (priority order)."""
    profile = participant.profile or Profile()
    return MenteeProfile(
        id=engine_id(participant.id),
        tracks=tracks,
        interests=frozenset(profile.interests or []),
        text=" ".join(t for t in (profile.interests_text, profile.goals_text) if t),
        stage=_stage(profile),
        availability=utc_windows(profile.availability or [], profile.time_zone, monday),
        format=_format(profile),
        languages=frozenset(profile.languages or []),
        preferences=frozenset(private_preferences(profile.private_preferences)["seek"]),
    )


def held_seats(session: Session, program: Program) -> dict[int, dict[Track, int]]:
    """Seat-holding relationships per mentor and track, for the whole program at once.

    The same count as :func:`plugin.programs.relationships.mentor_seats`, in one query
    instead of one per mentor and track (a round reads every mentor).
    """
    held: dict[int, dict[Track, int]] = defaultdict(dict)
    for mentor, track, count in session.execute(
        select(Relationship.mentor_id, Relationship.track, func.count())
        .where(Relationship.program_id == program.id, Relationship.status.in_(SEAT_HOLDING))
        .group_by(Relationship.mentor_id, Relationship.track)
    ):
        held[mentor][Track(track)] = int(count)
    return held


def mentor_profile(
    program: Program, participant: Participant, held: Mapping[Track, int], monday: date
) -> MentorProfile | None:
    """A mentor with the seats they have left per track and overall (None: none left)."""
    profile = participant.profile
    if profile is None:
        return None
    offered = [t for t in program.offered_tracks if t.value in profile.tracks_offered]
    offers: list[TrackOffer] = []
    overall = 0
    for track in offered:
        seats = Seats(
            track_capacity=track_capacity(program, participant, track),
            track_taken=held.get(track, 0),
            total_capacity=total_capacity(program, participant),
            total_taken=sum(held.values()),
        )
        overall = max(0, seats.total_capacity - seats.total_taken)
        free = max(0, seats.track_capacity - seats.track_taken)
        if free:
            # The first track a mentor lists is their main one; later ones count a little less.
            strength = 1.0 if profile.tracks_offered.index(track.value) == 0 else 0.75
            offers.append(TrackOffer(track.value, capacity=free, strength=strength))
    if not offers or overall == 0:
        return None
    return mentor_with_offers(participant, tuple(offers), overall, monday)


def mentor_with_offers(
    participant: Participant, offers: tuple[TrackOffer, ...], capacity: int, monday: date
) -> MentorProfile:
    """A mentor as the engine sees them, with the given free places."""
    profile = participant.profile or Profile()
    return MentorProfile(
        id=engine_id(participant.id),
        offers=offers,
        capacity=capacity,
        interests=frozenset(profile.interests or []),
        text=" ".join(t for t in (profile.interests_text, profile.bio) if t),
        stage=_stage(profile),
        availability=utc_windows(profile.availability or [], profile.time_zone, monday),
        format=_format(profile),
        languages=frozenset(profile.languages or []),
        attributes=frozenset(private_preferences(profile.private_preferences)["identify_as"]),
    )


def _exclusions(session: Session, program: Program, round_: MatchRound) -> list[Exclusion]:
    found: list[Exclusion] = []
    for mentee, mentor, status, reason in session.execute(
        select(
            Relationship.mentee_id,
            Relationship.mentor_id,
            Relationship.status,
            Relationship.close_reason,
        ).where(Relationship.program_id == program.id)
    ):
        if status in SEAT_HOLDING:
            found.append(Exclusion(engine_id(mentee), engine_id(mentor), ExclusionReason.ACTIVE))
        elif status == RelationshipStatus.CLOSED and reason == CloseReason.NOT_WORKING:
            found.append(
                Exclusion(engine_id(mentee), engine_id(mentor), ExclusionReason.NOT_WORKING)
            )
    for mentee, mentor in round_.exclusions or []:
        found.append(Exclusion(engine_id(mentee), engine_id(mentor), ExclusionReason.COORDINATOR))
    for proposal in round_.proposals:
        if proposal.state == ProposalState.REJECTED:
            found.append(
                Exclusion(
                    engine_id(proposal.mentee_id),
                    engine_id(proposal.mentor_id),
                    ExclusionReason.REJECTED,
                    track=proposal.track.value,
                )
            )
    return found


def _stage_exclusions(
    session: Session, program: Program, mentees: list[Participant], mentors: list[Participant]
) -> list[Exclusion]:
    """Each peer mentor with each mentee they may not take (see plugin.programs.peers)."""
    peers = peer_mentor_ids(session, program, mentors)
    return [
        Exclusion(engine_id(mentee.id), engine_id(mentor.id), ExclusionReason.STAGE)
        for mentor in mentors
        if mentor.id in peers
        for mentee in mentees
        if mentee.id != mentor.id
        and not peer_stage_allows(program, stage_of(mentor), stage_of(mentee))
    ]


def _people(session: Session, program: Program) -> list[Participant]:
    return list(
        session.scalars(
            select(Participant)
            .where(
                Participant.program_id == program.id,
                Participant.status == ParticipantStatus.ACTIVE,
            )
            .options(selectinload(Participant.profile))
            .order_by(Participant.id)
        )
    )


def build_engine_inputs(session: Session, round_: MatchRound, *, now: datetime) -> EngineInputs:
    """The engine's inputs for ``round_`` from the database as it is now."""
    program = round_.program
    monday = reference_monday(now)
    offered = [t.value for t in program.offered_tracks]
    open_tracks = _open_tracks(session, program)
    held = held_seats(session, program)
    mentees: list[MenteeProfile] = []
    mentors: list[MentorProfile] = []
    round_mentees: list[Participant] = []
    round_mentors: list[Participant] = []
    for person in _people(session, program):
        if person.is_mentee and person.profile is not None:
            tracks = tuple(
                t
                for t in dict.fromkeys(person.profile.tracks_wanted)
                if t in offered and t not in open_tracks[person.id]
            )
            if tracks:
                mentees.append(mentee_profile(person, tracks, monday))
                round_mentees.append(person)
        if person.is_mentor:
            mentor = mentor_profile(program, person, held.get(person.id, {}), monday)
            if mentor is not None:
                mentors.append(mentor)
                round_mentors.append(person)
    asked = {(m.id, t) for m in mentees for t in m.tracks}
    offering = {(m.id, o.track) for m in mentors for o in m.offers}
    locked = [
        LockedPair(engine_id(p.mentee_id), engine_id(p.mentor_id), p.track.value)
        for p in round_.proposals
        if p.state == ProposalState.LOCKED
        and (engine_id(p.mentee_id), p.track.value) in asked
        and (engine_id(p.mentor_id), p.track.value) in offering
    ]
    return EngineInputs(
        mentees=tuple(mentees),
        mentors=tuple(mentors),
        exclusions=(
            *_exclusions(session, program, round_),
            *_stage_exclusions(session, program, round_mentees, round_mentors),
        ),
        locked=tuple(locked),
        snapshot=_snapshot(mentees, mentors, monday),
    )


def _windows(windows: tuple[Window, ...]) -> list[list[int]]:
    return [[w.start, w.end] for w in windows]


def _snapshot(
    mentees: list[MenteeProfile], mentors: list[MentorProfile], monday: date
) -> dict[str, Any]:
    # Ids and features only: no names or e-mails; opt-in preferences only as counts.
    return {
        "reference_week": monday.isoformat(),
        "mentees": [
            {
                "id": m.id,
                "tracks": list(m.tracks),
                "interests": sorted(m.interests),
                "text": m.text,
                "stage": m.stage,
                "availability": _windows(m.availability),
                "format": m.format.value,
                "languages": sorted(m.languages),
                "preferences": len(m.preferences),
            }
            for m in mentees
        ],
        "mentors": [
            {
                "id": m.id,
                "offers": [[o.track, o.capacity, o.strength] for o in m.offers],
                "capacity": m.capacity,
                "interests": sorted(m.interests),
                "text": m.text,
                "stage": m.stage,
                "availability": _windows(m.availability),
                "format": m.format.value,
                "languages": sorted(m.languages),
                "attributes": len(m.attributes),
            }
            for m in mentors
        ],
    }
