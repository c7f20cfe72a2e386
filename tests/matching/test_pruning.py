"""Pruning to top-K is only for speed: the certificate brings back what pruning lost."""

from __future__ import annotations

import numpy as np

from plugin.matching import (
    MatchOptions,
    MenteeProfile,
    MentorProfile,
    Objective,
    TrackOffer,
    Weights,
    match,
)
from plugin.matching.engine import generate_candidates, prepare_round
from plugin.matching.flow import solve_flow
from plugin.matching.scoring import SCALE

ONLY_INTERESTS = Weights(
    interests=1, text=0, track=0, availability=0, format=0, language=0, stage=0, preferences=0
)


def _codes(prefix: str, n: int) -> frozenset[str]:
    return frozenset(f"{prefix}{i}" for i in range(n))


def _program() -> tuple[list[MenteeProfile], list[MentorProfile]]:
    """A and C each have a clear favourite (X, Z); B likes X and Z a bit more than Y.

    Every candidate list keeps only X and Z, so a solver that trusts the lists matches
    two mentees. The optimum gives X to A, Z to C and Y (pruned everywhere) to B.
    """
    mentees = [
        MenteeProfile("A", ("research",), interests=_codes("a", 10)),
        MenteeProfile("B", ("research",), interests=_codes("b", 10)),
        MenteeProfile("C", ("research",), interests=_codes("c", 10)),
    ]
    offer = (TrackOffer("research", 1),)
    mentors = [
        MentorProfile("X", offer, 1, interests=_codes("a", 10) | _codes("b", 9) | _codes("c", 5)),
        MentorProfile("Y", offer, 1, interests=_codes("b", 8)),
        MentorProfile("Z", offer, 1, interests=_codes("a", 9) | _codes("b", 9) | _codes("c", 10)),
    ]
    return mentees, mentors


def test_naive_top_k_is_suboptimal_and_column_generation_fixes_it() -> None:
    mentees, mentors = _program()
    options = MatchOptions(candidates_per_track=1)
    round_ = prepare_round(mentees, mentors, weights=ONLY_INTERESTS, options=options)
    pool = generate_candidates(round_)
    assert 1 not in set(pool.mentor.tolist())  # Y is pruned from every list
    mt = round_.mentor_track_of[0][pool.mentor]
    naive = solve_flow(round_.network, pool.request, mt, pool.score)
    assert -naive.cost / SCALE == 2.0  # two mentees matched

    result = match(mentees, mentors, weights=ONLY_INTERESTS, options=options)
    assert {(p.mentee_id, p.mentor_id) for p in result.proposals} == {
        ("A", "X"),
        ("B", "Y"),
        ("C", "Z"),
    }
    assert result.total_score == 2.8
    assert result.optimality_certified
    assert result.certificate.columns_added >= 1
    assert result.certificate.pricing_rounds >= 2


def test_certificate_holds_on_a_larger_random_program_for_both_objectives() -> None:
    from bench.matching import synthetic_program

    mentees, mentors = synthetic_program(300, 60, seed=3)
    for objective in Objective:
        small = match(
            mentees, mentors, options=MatchOptions(objective=objective, candidates_per_track=2)
        )
        large = match(
            mentees, mentors, options=MatchOptions(objective=objective, candidates_per_track=60)
        )
        assert small.optimality_certified
        assert large.optimality_certified
        assert np.isclose(small.total_score, large.total_score, atol=1e-6)
        assert small.matched == large.matched


def test_match_reports_each_stage_in_order_and_candidates_block_by_block() -> None:
    mentees, mentors = _program()
    heard: list[tuple[str, float]] = []
    result = match(
        mentees,
        mentors,
        weights=ONLY_INTERESTS,
        options=MatchOptions(block_rows=1),
        progress=lambda stage, fraction: heard.append((stage.value, fraction)),
    )
    assert result.matched == 3
    stages = list(dict.fromkeys(stage for stage, _ in heard))
    assert stages == ["features", "candidates", "solving", "explaining"]
    candidates = [f for stage, f in heard if stage == "candidates"]
    assert candidates == [0.0, 1 / 3, 2 / 3, 1.0, 1.0]  # one report per block of one mentee
    assert all(0.0 <= f <= 1.0 for _, f in heard)
