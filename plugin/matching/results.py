"""Outputs of a matching round: proposals with their reasons, unmatched mentees with theirs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from plugin.matching.profiles import Objective

__all__ = [
    "Certificate",
    "Contribution",
    "MatchResult",
    "Proposal",
    "UnmatchedReason",
    "UnmatchedRequest",
]


@dataclass(frozen=True, slots=True)
class Contribution:
    """One criterion of a pair: its 0..1 value, its normalised weight, and their product."""

    criterion: str
    value: float
    weight: float
    contribution: float


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposed (or locked) pair on one track.

    ``score`` is 0..1, the sum of ``contributions``; ``reasons`` are the top criteria as
    sentences a coordinator can read, strongest first.
    """

    mentee_id: str
    mentor_id: str
    track: str
    score: float
    contributions: tuple[Contribution, ...]
    reasons: tuple[str, ...]
    locked: bool = False


class UnmatchedReason(StrEnum):
    """Why a (mentee, track) request got no mentor, most fundamental first."""

    NO_MENTOR_FOR_TRACK = "no_mentor_for_track"  # nobody offers the track
    NO_CAPACITY_ON_TRACK = "no_capacity_on_track"  # all mentors of the track are full already
    #: conflicts, exclusions, past or active pairs, rejections, peers not senior enough
    ALL_EXCLUDED = "all_excluded"
    NO_COMMON_AVAILABILITY = "no_common_availability"
    CAPACITY_TAKEN = "capacity_taken"  # suitable mentors' places went to other mentees
    SAME_MENTOR_OTHER_TRACK = "same_mentor_other_track"  # the only free one mentors them already
    NO_POSITIVE_FIT = "no_positive_fit"  # only zero-score pairs were left (best total fit)


@dataclass(frozen=True, slots=True)
class UnmatchedRequest:
    """A mentee's track request that got no mentor, with the reason and the counts behind it."""

    mentee_id: str
    track: str
    reason: UnmatchedReason
    detail: str
    mentors_on_track: int = 0
    admissible_mentors: int = 0


@dataclass(frozen=True, slots=True)
class Certificate:
    """Evidence that the assignment is optimal for the full (unpruned) problem.

    ``certified`` is true when no pruned pair has a negative reduced cost against the final
    potentials (checked exactly, through an upper bound per request or by re-scoring its
    row) and, when the flow gave a mentee the same mentor twice, the MILP over every pair
    that could still improve the result finished within its time limit.
    """

    certified: bool
    candidate_pairs: int  # pairs in the network at the end
    columns_added: int  # pruned pairs the pricing step brought back
    pricing_rounds: int
    rows_rescored: int  # requests whose pruned pairs were re-scored exactly
    flow_solves: int  # min-cost flow solves (relaxation, repairs of "same mentor twice")
    milp_solves: int  # exact MILPs needed for "the same mentor at most once per mentee"
    bound_gap: float  # best bound minus result (0 when certified), in score units
    lp_solves: int = 0  # LPs with "same mentor at most once" (see matching/lpbound.py)


@dataclass(frozen=True, slots=True)
class MatchResult:
    """A round's result: proposals (locked pairs included), unmatched requests, evidence."""

    objective: Objective
    proposals: tuple[Proposal, ...]
    unmatched: tuple[UnmatchedRequest, ...]
    total_score: float
    certificate: Certificate

    @property
    def optimality_certified(self) -> bool:
        return self.certificate.certified

    @property
    def matched(self) -> int:
        return len(self.proposals)
