"""``match()``: one round from profiles to certified, explained proposals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plugin.matching.explain import contributions, pair_reasons
from plugin.matching.features import ProgramFeatures, build_features
from plugin.matching.flow import FlowNetwork
from plugin.matching.parallel import in_order, thread_count
from plugin.matching.profiles import (
    Exclusion,
    LockedPair,
    MatchingInputError,
    MatchOptions,
    MenteeProfile,
    MentorProfile,
    Objective,
    ProgressCallback,
    Stage,
    Weights,
)
from plugin.matching.results import Certificate, MatchResult, Proposal, UnmatchedRequest
from plugin.matching.scoring import SCALE, Scorer, to_int
from plugin.matching.solve import Assignment, CandidatePool, solve_round
from plugin.matching.unmatched import explain_unmatched

__all__ = [
    "ProgressCallback",
    "Round",
    "Stage",
    "assign",
    "build_result",
    "generate_candidates",
    "match",
    "prepare_round",
    "rank_mentors",
]

I64 = npt.NDArray[np.int64]


def _no_progress(_stage: Stage, _fraction: float) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Round:
    """A round's inputs in index form, ready to score and solve (no solving done yet)."""

    mentees: tuple[MenteeProfile, ...]
    mentors: tuple[MentorProfile, ...]
    weights: Weights
    options: MatchOptions
    features: ProgramFeatures
    scorer: Scorer
    locked: tuple[tuple[int, int, int], ...]  # (mentee, mentor, track) indices
    request_mentee: I64
    request_track: I64
    network: FlowNetwork
    mentor_track_of: dict[int, I64]  # track -> per mentor: mentor-track node or -1
    offered_by: dict[int, int]  # track -> number of mentors offering it at all
    excluded: dict[tuple[int, int], dict[int | None, str]]  # (mentee, mentor) -> track -> why


def prepare_round(
    mentees: Sequence[MenteeProfile],
    mentors: Sequence[MentorProfile],
    *,
    weights: Weights | None = None,
    exclusions: Sequence[Exclusion] = (),
    locked: Sequence[LockedPair] = (),
    options: MatchOptions | None = None,
) -> Round:
    """Validate the inputs and index them: requests, capacities left, exclusions per track."""
    weights = weights or Weights()
    options = options or MatchOptions()
    mentee_at = _index([m.id for m in mentees], "mentee")
    mentor_at = _index([j.id for j in mentors], "mentor")
    features = build_features(mentees, mentors, weights)
    track_at = {t: i for i, t in enumerate(features.tracks)}

    capacity = np.array([j.capacity for j in mentors], dtype=np.int64)
    track_capacity = {
        (j_index, track_at[o.track]): o.capacity
        for j_index, j in enumerate(mentors)
        for o in j.offers
    }
    excluded: dict[tuple[int, int], dict[int | None, str]] = defaultdict(dict)
    for ex in exclusions:
        if ex.mentee_id not in mentee_at or ex.mentor_id not in mentor_at:
            continue  # someone no longer in the round
        track = track_at.get(ex.track) if ex.track is not None else None
        if ex.track is not None and track is None:
            continue
        excluded[(mentee_at[ex.mentee_id], mentor_at[ex.mentor_id])][track] = ex.reason.value
    for m_id, m_index in mentee_at.items():
        if m_id in mentor_at:
            excluded[(m_index, mentor_at[m_id])][None] = "self"

    locked_idx: list[tuple[int, int, int]] = []
    locked_requests: set[tuple[int, int]] = set()
    for pair in locked:
        try:
            m, j, t = mentee_at[pair.mentee_id], mentor_at[pair.mentor_id], track_at[pair.track]
        except KeyError as missing:
            raise MatchingInputError(
                f"locked pair {pair}: {missing} is not in this round; unlock it or add them"
            ) from None
        if (m, t) in locked_requests:
            raise MatchingInputError(
                f"two locked pairs for mentee {pair.mentee_id} on {pair.track}"
            )
        locked_idx.append((m, j, t))
        locked_requests.add((m, t))
        capacity[j] -= 1
        track_capacity[(j, t)] = track_capacity.get((j, t), 0) - 1
        excluded[(m, j)].setdefault(None, "locked_other_track")  # same mentor at most once
    capacity = np.maximum(capacity, 0)

    request_pairs = [
        (m_index, track_at[t])
        for m_index, mentee in enumerate(mentees)
        for t in mentee.tracks
        if (m_index, track_at[t]) not in locked_requests
    ]
    request_mentee = np.array([r[0] for r in request_pairs], dtype=np.int64)
    request_track = np.array([r[1] for r in request_pairs], dtype=np.int64)

    mt_mentor: list[int] = []
    mt_cap: list[int] = []
    mentor_track_of: dict[int, I64] = {}
    for t in range(len(features.tracks)):
        table = np.full(len(mentors), -1, dtype=np.int64)
        for j in range(len(mentors)):
            cap = min(track_capacity.get((j, t), 0), int(capacity[j]))
            if cap > 0:
                table[j] = len(mt_mentor)
                mt_mentor.append(j)
                mt_cap.append(cap)
        mentor_track_of[t] = table
    n_requests = len(request_pairs)
    big = 0
    if options.objective is Objective.MAX_MATCHED:
        big = min(n_requests, int(capacity.sum())) * SCALE + 1
    network = FlowNetwork(
        n_requests=n_requests,
        mentor_track_capacity=np.array(mt_cap, dtype=np.int64),
        mentor_track_mentor=np.array(mt_mentor, dtype=np.int64),
        mentor_capacity=capacity,
        big=big,
    )
    scorer = Scorer(
        features,
        {t: np.flatnonzero(table >= 0) for t, table in mentor_track_of.items()},
        _exclusion_arrays(excluded, len(features.tracks)),
        require_overlap=options.require_availability_overlap,
        n_mentees=len(mentees),
    )
    return Round(
        mentees=tuple(mentees),
        mentors=tuple(mentors),
        weights=weights,
        options=options,
        features=features,
        scorer=scorer,
        locked=tuple(locked_idx),
        request_mentee=request_mentee,
        request_track=request_track,
        network=network,
        mentor_track_of=mentor_track_of,
        offered_by={
            t: sum(1 for j in mentors for o in j.offers if o.track == name)
            for t, name in enumerate(features.tracks)
        },
        excluded=dict(excluded),
    )


def _index(ids: list[str], side: str) -> dict[str, int]:
    index = {identifier: position for position, identifier in enumerate(ids)}
    if len(index) != len(ids):
        raise MatchingInputError(f"two {side}s share an id; ids must be unique per side")
    return index


def _exclusion_arrays(
    excluded: dict[tuple[int, int], dict[int | None, str]], n_tracks: int
) -> dict[int, tuple[I64, I64]]:
    per_track: dict[int, tuple[list[int], list[int]]] = {t: ([], []) for t in range(n_tracks)}
    for (m, j), tracks in excluded.items():
        for t in range(n_tracks) if None in tracks else [t for t in tracks if t is not None]:
            per_track[t][0].append(m)
            per_track[t][1].append(j)
    return {
        t: (np.array(ms, dtype=np.int64), np.array(js, dtype=np.int64))
        for t, (ms, js) in per_track.items()
    }


def generate_candidates(round_: Round, progress: ProgressCallback = _no_progress) -> CandidatePool:
    """Top candidates of every request (vectorised per track and block of mentees)."""
    k = round_.options.candidates_per_track
    total = max(1, round_.network.n_requests)
    done = 0
    rows_per_block = round_.options.block_rows
    requests: list[I64] = []
    mentors: list[I64] = []
    scores: list[I64] = []
    bound = np.full(round_.network.n_requests, -1, dtype=np.int64)
    blocks: list[tuple[int, I64]] = []
    for t in range(len(round_.features.tracks)):
        reqs = np.flatnonzero(round_.request_track == t)
        if not len(reqs) or not (round_.mentor_track_of[t] >= 0).any():
            continue
        blocks.extend(
            (t, reqs[start : start + rows_per_block])
            for start in range(0, len(reqs), rows_per_block)
        )

    def score(block: tuple[int, I64]) -> tuple[I64, I64, I64, I64]:
        t, chunk = block
        return round_.scorer.candidates(t, round_.request_mentee[chunk], k)

    threads = thread_count(round_.options.threads)
    for (_, chunk), (r, j, s, b) in zip(blocks, in_order(score, blocks, threads), strict=True):
        requests.append(chunk[r])
        mentors.append(j)
        scores.append(s)
        bound[chunk] = b
        done += len(chunk)
        progress(Stage.CANDIDATES, min(1.0, done / total))
    empty = np.empty(0, dtype=np.int64)
    return CandidatePool(
        request=np.concatenate(requests) if requests else empty,
        mentor=np.concatenate(mentors) if mentors else empty,
        score=np.concatenate(scores) if scores else empty,
        bound=bound,
    )


def assign(round_: Round, pool: CandidatePool) -> Assignment:
    """The certified optimal assignment of a prepared round."""
    return solve_round(
        round_.network,
        pool,
        round_.scorer,
        round_.request_mentee,
        round_.request_track,
        round_.mentor_track_of,
        len(round_.mentors),
        block_rows=round_.options.block_rows,
        deepen=round_.options.candidates_per_track,
        milp_time_limit=round_.options.milp_time_limit,
        threads=thread_count(round_.options.threads),
    )


def match(
    mentees: Sequence[MenteeProfile],
    mentors: Sequence[MentorProfile],
    *,
    weights: Weights | None = None,
    exclusions: Sequence[Exclusion] = (),
    locked: Sequence[LockedPair] = (),
    options: MatchOptions | None = None,
    progress: ProgressCallback | None = None,
) -> MatchResult:
    """Run one round: score, assign optimally under every constraint, explain.

    Locked pairs come back as proposals with ``locked=True``; every mentee track request
    not matched is in ``unmatched`` with its reason. ``progress`` hears each stage start
    (0.0) and end (1.0), and the candidate stage block by block.
    """
    report = progress or _no_progress
    report(Stage.FEATURES, 0.0)
    round_ = prepare_round(
        mentees, mentors, weights=weights, exclusions=exclusions, locked=locked, options=options
    )
    report(Stage.FEATURES, 1.0)
    report(Stage.CANDIDATES, 0.0)
    pool = generate_candidates(round_, report)
    report(Stage.CANDIDATES, 1.0)
    report(Stage.SOLVING, 0.0)
    assignment = assign(round_, pool)
    report(Stage.SOLVING, 1.0)
    report(Stage.EXPLAINING, 0.0)
    result = build_result(round_, assignment)
    report(Stage.EXPLAINING, 1.0)
    return result


def build_result(round_: Round, assignment: Assignment) -> MatchResult:
    """Proposals with contributions and reasons, unmatched requests with theirs.

    In a round of more than one block, the unmatched requests' reasons start first, on
    their own thread: their blocks are matrix work that releases the GIL while this thread
    builds the proposals in Python.
    """
    if round_.network.n_requests <= round_.options.block_rows:
        return _with_proposals(round_, assignment, lambda: explain_unmatched(round_, assignment))
    with ThreadPoolExecutor(1) as background:
        unmatched = background.submit(explain_unmatched, round_, assignment)
        return _with_proposals(round_, assignment, unmatched.result)


def _with_proposals(
    round_: Round, assignment: Assignment, unmatched: Callable[[], tuple[UnmatchedRequest, ...]]
) -> MatchResult:
    m_idx = np.concatenate(
        [round_.request_mentee[assignment.request], [m for m, _, _ in round_.locked]]
    ).astype(np.int64)
    j_idx = np.concatenate([assignment.mentor, [j for _, j, _ in round_.locked]]).astype(np.int64)
    t_idx = np.concatenate(
        [round_.request_track[assignment.request], [t for _, _, t in round_.locked]]
    ).astype(np.int64)
    values = round_.scorer.criteria(m_idx, j_idx, t_idx)
    hours = round_.scorer.overlap_hours(m_idx, j_idx)
    rows_of_values = values.tolist()  # Python floats: rounding them is 3x faster than numpy's
    w = round_.features.w
    proposals = []
    n_chosen = len(assignment.request)
    for row in range(len(m_idx)):
        mentee, mentor = round_.mentees[m_idx[row]], round_.mentors[j_idx[row]]
        track = round_.features.tracks[t_idx[row]]
        parts = contributions(rows_of_values[row], w)
        score = (
            assignment.score[row] / SCALE
            if row < n_chosen
            else round(sum(p.contribution for p in parts), 6)
        )
        proposals.append(
            Proposal(
                mentee_id=mentee.id,
                mentor_id=mentor.id,
                track=track,
                score=float(score),
                contributions=parts,
                reasons=pair_reasons(
                    mentee, mentor, track, parts, float(hours[row]), round_.weights
                ),
                locked=row >= n_chosen,
            )
        )
    certificate = Certificate(
        certified=assignment.certified,
        candidate_pairs=assignment.candidate_pairs,
        columns_added=assignment.columns_added,
        pricing_rounds=assignment.pricing_rounds,
        rows_rescored=assignment.rows_rescored,
        flow_solves=assignment.flow_solves,
        milp_solves=assignment.milp_solves,
        bound_gap=assignment.bound_gap,
        lp_solves=assignment.lp_solves,
    )
    return MatchResult(
        objective=round_.options.objective,
        proposals=tuple(proposals),
        unmatched=unmatched(),
        total_score=float(assignment.score.sum()) / SCALE,
        certificate=certificate,
    )


def rank_mentors(
    mentee: MenteeProfile,
    mentors: Sequence[MentorProfile],
    track: str,
    *,
    weights: Weights | None = None,
    exclusions: Sequence[Exclusion] = (),
    limit: int = 10,
) -> tuple[Proposal, ...]:
    """Mentors with room on ``track`` ranked for one mentee, with the same explanations.

    For a mentee browsing mentors to request one; TF-IDF is fitted on this mentee and
    these mentors, so scores can differ slightly from a full round's.
    """
    only = MenteeProfile(
        id=mentee.id,
        tracks=(track,),
        interests=mentee.interests,
        text=mentee.text,
        stage=mentee.stage,
        availability=mentee.availability,
        format=mentee.format,
        languages=mentee.languages,
        preferences=mentee.preferences,
    )
    round_ = prepare_round([only], mentors, weights=weights, exclusions=exclusions)
    if not round_.network.n_requests or track not in round_.features.tracks:
        return ()
    t = round_.features.tracks.index(track)
    cols, scores = round_.scorer.block(t, np.zeros(1, dtype=np.int64))
    order = [int(c) for c in np.argsort(-scores[0], kind="stable") if scores[0][c] >= 0][:limit]
    ints = to_int(scores[0][order])
    assignment = Assignment(
        request=np.zeros(len(order), dtype=np.int64),
        mentor=cols[order],
        score=ints,
        certified=False,
        candidate_pairs=len(cols),
        columns_added=0,
        pricing_rounds=0,
        rows_rescored=0,
        flow_solves=0,
        milp_solves=0,
        bound_gap=0.0,
    )
    return build_result(round_, assignment).proposals
