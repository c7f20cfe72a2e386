"""Inputs of a matching round: who asks, who offers, what must not happen, what matters.

Everything here is a frozen, typed value with no reference to the database: the service
layer converts Participants and Profiles into these (availability converted from each
person's IANA zone to UTC minutes of the week, capacities reduced by the relationships a
mentor already carries) and the engine never looks back at where they came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "MINUTES_PER_WEEK",
    "Exclusion",
    "ExclusionReason",
    "Format",
    "LockedPair",
    "MatchOptions",
    "MatchingInputError",
    "MenteeProfile",
    "MentorProfile",
    "Objective",
    "ProgressCallback",
    "Stage",
    "TrackOffer",
    "Weights",
    "Window",
]

#: Availability is expressed in minutes since Monday 00:00 UTC.
MINUTES_PER_WEEK = 7 * 24 * 60


class MatchingInputError(ValueError):
    """The round's inputs are inconsistent; the message says which value and why."""


class Format(StrEnum):
    """How a person wants to meet."""

    VIRTUAL = "virtual"
    IN_PERSON = "in_person"
    EITHER = "either"


class Objective(StrEnum):
    """What the assignment maximises."""

    #: The largest sum of pair scores (a mentee may stay unmatched if that helps the total).
    BEST_TOTAL_FIT = "best_total_fit"
    #: As many (mentee, track) requests matched as possible; among those, the best total.
    MAX_MATCHED = "max_matched"


class ExclusionReason(StrEnum):
    """Why a pair may not be proposed (shown to the coordinator, never to the mentee)."""

    CONFLICT_OF_INTEREST = "conflict_of_interest"  # e.g. the mentor evaluates the mentee
    COORDINATOR = "coordinator"  # excluded by hand
    ACTIVE = "active"  # already in an active relationship
    NOT_WORKING = "not_working"  # a past relationship closed as not working
    REJECTED = "rejected"  # rejected in this round's preview
    STAGE = "stage"  # a peer mentor not at a later career stage than the mentee


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly availability window, ``start <= t < end`` in UTC minutes of the week.

    ``end`` may exceed ``MINUTES_PER_WEEK`` for a window that wraps past Sunday midnight.
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < MINUTES_PER_WEEK or not self.start < self.end:
            raise MatchingInputError(
                f"window {self.start}-{self.end}: start must be in [0, {MINUTES_PER_WEEK}) "
                "and before end"
            )
        if self.end - self.start > MINUTES_PER_WEEK:
            raise MatchingInputError(f"window {self.start}-{self.end} is longer than a week")


@dataclass(frozen=True, slots=True)
class TrackOffer:
    """A track a mentor offers, with how many mentees they take on it.

    ``strength`` (0..1) is how central the track is to the mentor (1 = primary focus).
    """

    track: str
    capacity: int
    strength: float = 1.0


@dataclass(frozen=True, slots=True)
class MenteeProfile:
    """What a mentee asks for.

    ``id`` identifies the person: someone enrolled both as mentee and mentor must carry the
    same id on both sides, which is how self-matches are refused. ``tracks`` are in the
    mentee's priority order (the first counts most for track fit).
    """

    id: str
    tracks: tuple[str, ...]
    interests: frozenset[str] = frozenset()  # codes from the program's controlled vocabulary
    text: str = ""  # free text: interests and goals
    stage: int = 0  # career-stage ordinal (e.g. 0 = first-year student)
    availability: tuple[Window, ...] = ()
    format: Format = Format.EITHER
    languages: frozenset[str] = frozenset()
    #: Opt-in, private preference tags (e.g. identity concordance) sought in a mentor.
    preferences: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if len(set(self.tracks)) != len(self.tracks):
            raise MatchingInputError(f"mentee {self.id}: a track is listed twice")


@dataclass(frozen=True, slots=True)
class MentorProfile:
    """What a mentor offers. ``capacity`` is the overall number of new mentees (all tracks)."""

    id: str
    offers: tuple[TrackOffer, ...]
    capacity: int
    interests: frozenset[str] = frozenset()
    text: str = ""
    stage: int = 0
    availability: tuple[Window, ...] = ()
    format: Format = Format.EITHER
    languages: frozenset[str] = frozenset()
    #: Opt-in tags the mentor chose to describe themselves with, matched to preferences.
    attributes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        tracks = [offer.track for offer in self.offers]
        if len(set(tracks)) != len(tracks):
            raise MatchingInputError(f"mentor {self.id}: a track is offered twice")
        if self.capacity < 0 or any(offer.capacity < 0 for offer in self.offers):
            raise MatchingInputError(f"mentor {self.id}: capacities cannot be negative")


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A pair that must not be proposed; ``track=None`` means on any track."""

    mentee_id: str
    mentor_id: str
    reason: ExclusionReason
    track: str | None = None


@dataclass(frozen=True, slots=True)
class LockedPair:
    """A pair the coordinator locked: kept as is and counted against the mentor's capacity."""

    mentee_id: str
    mentor_id: str
    track: str


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each criterion counts; set per program, defaults below.

    Every criterion is scored 0..1; a pair's score is the weighted mean, so it is 0..1 too
    and each criterion's contribution is ``weight * value / sum(weights)``.
    """

    interests: float = 3.0
    text: float = 2.0
    track: float = 1.0
    availability: float = 2.0
    format: float = 1.0
    language: float = 2.0
    stage: float = 1.0
    preferences: float = 1.0
    #: Weekly overlap at or above this many hours scores 1 for availability.
    availability_target_hours: float = 2.0
    #: Stage gap (mentor minus mentee) that scores 1; each step away loses ``1/stage_span``.
    ideal_stage_gap: int = 2
    stage_span: int = 4

    def __post_init__(self) -> None:
        values = self.as_dict().values()
        extras = (self.availability_target_hours, self.ideal_stage_gap, self.stage_span)
        if not all(math.isfinite(value) for value in (*values, *extras)):
            raise MatchingInputError("weights must be finite numbers")
        if any(value < 0 for value in values) or sum(values) <= 0:
            raise MatchingInputError("weights must be non-negative and not all zero")
        if self.availability_target_hours <= 0 or self.stage_span <= 0:
            raise MatchingInputError("availability_target_hours and stage_span must be > 0")

    def as_dict(self) -> dict[str, float]:
        """The criterion weights by criterion name (the order used everywhere)."""
        return {name: float(getattr(self, name)) for name in CRITERIA}


#: Criterion names, in the order of ``Weights`` and of every contribution vector.
CRITERIA: tuple[str, ...] = (
    "interests",
    "text",
    "track",
    "availability",
    "format",
    "language",
    "stage",
    "preferences",
)


@dataclass(frozen=True, slots=True)
class MatchOptions:
    """How a round is solved (not what is wanted: that is ``Weights``)."""

    objective: Objective = Objective.BEST_TOTAL_FIT
    #: Candidates kept per (mentee, track) before the exact solve; more are added by column
    #: generation whenever a pruned pair could improve the result, so this is speed only.
    candidates_per_track: int = 6
    #: Refuse pairs with no common availability slot (unless one side declared none).
    require_availability_overlap: bool = True
    #: Seconds the exact MILP for "the same mentor at most once per mentee" may take; past
    #: it the best feasible result is returned, not certified.
    milp_time_limit: float = 120.0
    #: Mentees scored per block (bounds memory: block x mentors float32 arrays).
    block_rows: int = 2048
    #: Threads scoring blocks at once; 0 = the CPUs available, at most 4. Results do not
    #: depend on it.
    threads: int = 0

    def __post_init__(self) -> None:
        if self.candidates_per_track < 1 or self.block_rows < 1:
            raise MatchingInputError("candidates_per_track and block_rows must be >= 1")
        if self.threads < 0:
            raise MatchingInputError("threads must be >= 0 (0: as many as there are CPUs)")


class Stage(StrEnum):
    """The steps of ``match()``, in order, as reported to a progress callback."""

    FEATURES = "features"  #: profiles to feature matrices and the flow network
    CANDIDATES = "candidates"  #: scoring each request's best mentors, block by block
    SOLVING = "solving"  #: the certified optimal assignment
    EXPLAINING = "explaining"  #: contributions, reasons and unmatched requests


#: ``progress(stage, fraction)``: ``fraction`` (0..1) of ``stage`` is done. A plain function
#: (the engine does no I/O: storing or throttling progress is the caller's business); it is
#: called at the start and end of every stage and after each candidate block.
ProgressCallback = Callable[[Stage, float], None]
