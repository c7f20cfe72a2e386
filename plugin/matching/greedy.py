"""The baseline the benchmark compares against: pairs by descending score, capacities kept.

This is what most mentoring tools do. It never revisits a choice, so a mentee whose
favourite mentor went to someone with other options can be stranded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from plugin.matching.profiles import (
    Exclusion,
    LockedPair,
    MatchOptions,
    MenteeProfile,
    MentorProfile,
    Weights,
)
from plugin.matching.results import MatchResult
from plugin.matching.solve import Assignment, CandidatePool

__all__ = ["greedy_assign", "greedy_match"]

I64 = npt.NDArray[np.int64]


def greedy_assign(
    pool: CandidatePool,
    request_mentee: I64,
    request_track: I64,
    mentor_track_of: dict[int, I64],
    mentor_track_capacity: I64,
    mentor_capacity: I64,
) -> Assignment:
    """Take candidate pairs best first while the request, both capacities and the
    "same mentor at most once per mentee" rule allow."""
    order = np.argsort(-pool.score, kind="stable")
    mt_left = mentor_track_capacity.copy()
    left = mentor_capacity.copy()
    done = np.zeros(len(request_mentee), dtype=bool)
    pairs: set[tuple[int, int]] = set()
    chosen: list[int] = []
    requests, mentors = pool.request.tolist(), pool.mentor.tolist()
    tracks, mentees = request_track.tolist(), request_mentee.tolist()
    tables = {t: table.tolist() for t, table in mentor_track_of.items()}
    for arc in order.tolist():
        r, j = requests[arc], mentors[arc]
        if done[r]:
            continue
        node = tables[tracks[r]][j]
        if mt_left[node] <= 0 or left[j] <= 0 or (mentees[r], j) in pairs:
            continue
        done[r] = True
        mt_left[node] -= 1
        left[j] -= 1
        pairs.add((mentees[r], j))
        chosen.append(arc)
    picked = np.array(chosen, dtype=np.int64)
    return Assignment(
        request=pool.request[picked],
        mentor=pool.mentor[picked],
        score=pool.score[picked],
        certified=False,
        candidate_pairs=len(pool.request),
        columns_added=0,
        pricing_rounds=0,
        rows_rescored=0,
        flow_solves=0,
        milp_solves=0,
        bound_gap=0.0,
    )


def greedy_match(
    mentees: Sequence[MenteeProfile],
    mentors: Sequence[MentorProfile],
    *,
    weights: Weights | None = None,
    exclusions: Sequence[Exclusion] = (),
    locked: Sequence[LockedPair] = (),
    options: MatchOptions | None = None,
) -> MatchResult:
    """The greedy baseline over the same candidates and constraints as ``match``."""
    from plugin.matching.engine import build_result, generate_candidates, prepare_round

    round_ = prepare_round(
        mentees, mentors, weights=weights, exclusions=exclusions, locked=locked, options=options
    )
    pool = generate_candidates(round_)
    net = round_.network
    assignment = greedy_assign(
        pool,
        round_.request_mentee,
        round_.request_track,
        round_.mentor_track_of,
        net.mentor_track_capacity,
        net.mentor_capacity,
    )
    return build_result(round_, assignment)
