"""The engine's optimum equals brute force, with and without pruning, for both objectives."""

from __future__ import annotations

import pytest

from plugin.matching import (
    Exclusion,
    ExclusionReason,
    MatchOptions,
    MenteeProfile,
    MentorProfile,
    Objective,
    TrackOffer,
    Weights,
    match,
)
from plugin.matching.scoring import SCALE
from tests.matching.helpers import brute_force, random_program

SEEDS = range(24)


def _total(result_score: float) -> int:
    return round(result_score * SCALE)


@pytest.mark.parametrize("objective", list(Objective))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 12])
def test_random_small_programs_match_brute_force(objective: Objective, seed: int, k: int) -> None:
    mentees, mentors = random_program(seed, n_mentees=4, n_mentors=3)
    result = match(
        mentees, mentors, options=MatchOptions(objective=objective, candidates_per_track=k)
    )
    matched, total = brute_force(mentees, mentors, objective)
    assert result.optimality_certified
    assert _total(result.total_score) == total
    if objective is Objective.MAX_MATCHED:
        assert result.matched == matched
    # the same mentor at most once per mentee, across tracks
    pairs = [(p.mentee_id, p.mentor_id) for p in result.proposals]
    assert len(pairs) == len(set(pairs))


def test_max_matched_trades_score_for_one_more_mentee() -> None:
    """A is the best fit for X; B can only take X. Best fit gives X to A, max-matched to B."""
    only_interests = Weights(
        interests=1, text=0, track=0, availability=0, format=0, language=0, stage=0, preferences=0
    )

    x = MentorProfile("x", (TrackOffer("research", 1),), 1, interests=frozenset({"a", "b"}))
    mentees = [
        MenteeProfile("A", ("research",), interests=frozenset({"a", "b"})),
        MenteeProfile("B", ("research",), interests=frozenset({"c"})),
    ]
    y = MentorProfile("y", (TrackOffer("research", 1),), 1, interests=frozenset({"z"}))
    exclusion = Exclusion("B", "y", ExclusionReason.CONFLICT_OF_INTEREST)
    best = match(mentees, [x, y], exclusions=[exclusion], weights=only_interests)
    most = match(
        mentees,
        [x, y],
        exclusions=[exclusion],
        weights=only_interests,
        options=MatchOptions(objective=Objective.MAX_MATCHED),
    )
    assert {(p.mentee_id, p.mentor_id) for p in most.proposals} == {("A", "y"), ("B", "x")}
    assert most.total_score == 0
    assert best.total_score == 1
    assert ("A", "x") in {(p.mentee_id, p.mentor_id) for p in best.proposals}
    assert ("B", "research") in {(u.mentee_id, u.track) for u in best.unmatched}


@pytest.mark.parametrize("seed", range(6))
def test_sparse_text_path_scores_like_the_dense_one(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plugin.matching import scoring

    mentees, mentors = random_program(seed, n_mentees=5, n_mentors=4)
    dense = match(mentees, mentors)
    monkeypatch.setattr(scoring, "DENSE_TEXT_TERMS", 0)
    sparse = match(mentees, mentors)
    assert abs(dense.total_score - sparse.total_score) < 1e-5
    assert len(dense.proposals) == len(sparse.proposals)


@pytest.mark.parametrize("objective", list(Objective))
def test_repeated_mentor_path_is_checked_against_brute_force(
    objective: Objective, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Programs where the flow gives a mentee the same mentor twice, solved by the MILP
    alone (no Lagrangian steps, so the widest reduced-cost window is exercised)."""
    from plugin.matching import lpbound, repeated

    monkeypatch.setattr(repeated, "LAGRANGIAN_STEPS", 0)
    monkeypatch.setattr(lpbound, "LP_ROUNDS", 0)  # no LP bound: the Lagrangian path
    exercised = 0
    for seed in range(60):
        mentees, mentors = random_program(5000 + seed, n_mentees=4, n_mentors=3)
        result = match(
            mentees, mentors, options=MatchOptions(objective=objective, candidates_per_track=1)
        )
        if not result.certificate.milp_solves:
            continue
        exercised += 1
        matched, total = brute_force(mentees, mentors, objective)
        assert result.optimality_certified
        assert _total(result.total_score) == total
        if objective is Objective.MAX_MATCHED:
            assert result.matched == matched
    assert exercised >= 3


@pytest.mark.parametrize("rounds", [1, 8])
def test_lp_bound_path_is_checked_against_brute_force(
    rounds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Best total fit with the flow repeating a mentor: the LP bound proves the optimum
    (8 rounds), or with one round hands a window MILP its duals and penalties."""
    from plugin.matching import lpbound

    monkeypatch.setattr(lpbound, "LP_ROUNDS", rounds)
    exercised = 0
    for seed in range(60):
        mentees, mentors = random_program(5000 + seed, n_mentees=4, n_mentors=3)
        result = match(mentees, mentors, options=MatchOptions(candidates_per_track=1))
        if not result.certificate.lp_solves:
            continue
        exercised += 1
        _, total = brute_force(mentees, mentors, Objective.BEST_TOTAL_FIT)
        assert result.optimality_certified
        assert result.certificate.bound_gap == 0.0
        assert _total(result.total_score) == total
    assert exercised >= 3


def test_fractional_lp_path_finishes_with_the_window_milp(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the LP were never integral: its bound and duals alone must lead the window
    MILP to the brute-force optimum, certified."""
    from plugin.matching import lpbound

    monkeypatch.setattr(lpbound, "feasible", lambda solver, rows: False)
    exercised = 0
    for seed in range(60):
        mentees, mentors = random_program(5000 + seed, n_mentees=4, n_mentors=3)
        result = match(mentees, mentors, options=MatchOptions(candidates_per_track=1))
        if not result.certificate.lp_solves:
            continue
        exercised += 1
        assert result.certificate.milp_solves >= 1
        _, total = brute_force(mentees, mentors, Objective.BEST_TOTAL_FIT)
        assert result.optimality_certified
        assert _total(result.total_score) == total
    assert exercised >= 3


def test_lp_that_stops_growing_is_priced_at_once_not_after_every_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rounded duals can leave the LP's own bound a unit or so below its value: nothing
    more joins from the pool, so the LP must be priced then, not re-solved unchanged until
    its last round (50,000 x 10,000 once priced only there: a bound 10^10 off and minutes
    in the window MILP). Simulated here by taking one unit off every LP bound."""
    from plugin.matching import lpbound

    exact_bound = lpbound._bound
    monkeypatch.setattr(lpbound, "_bound", lambda *args: exact_bound(*args) - 1)
    exercised = 0
    for seed in range(60):
        mentees, mentors = random_program(5000 + seed, n_mentees=4, n_mentors=3)
        result = match(mentees, mentors, options=MatchOptions(candidates_per_track=1))
        if not result.certificate.lp_solves:
            continue
        exercised += 1
        assert result.certificate.lp_solves < lpbound.LP_ROUNDS
        _, total = brute_force(mentees, mentors, Objective.BEST_TOTAL_FIT)
        assert result.optimality_certified
        assert _total(result.total_score) == total
    assert exercised >= 3
