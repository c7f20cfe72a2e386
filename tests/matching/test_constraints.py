"""Every hard constraint holds, and locked pairs are kept and counted."""

from __future__ import annotations

from collections import Counter

import pytest

from plugin.matching import (
    Exclusion,
    ExclusionReason,
    LockedPair,
    MatchingInputError,
    MatchOptions,
    MenteeProfile,
    MentorProfile,
    Objective,
    TrackOffer,
    UnmatchedReason,
    Weights,
    Window,
    match,
)
from tests.matching.helpers import brute_force, random_program

LUNCH = (Window(12 * 60, 13 * 60),)


def _mentee(i: str, *tracks: str, **kw: object) -> MenteeProfile:
    return MenteeProfile(i, tracks or ("research",), availability=LUNCH, **kw)  # type: ignore[arg-type]


def _mentor(i: str, capacity: int, **offers: int) -> MentorProfile:
    return MentorProfile(
        i,
        tuple(TrackOffer(t, c) for t, c in (offers or {"research": capacity}).items()),
        capacity,
        availability=LUNCH,
    )


def _pairs(result: object) -> set[tuple[str, str, str]]:
    return {(p.mentee_id, p.mentor_id, p.track) for p in result.proposals}  # type: ignore[attr-defined]


@pytest.mark.parametrize("objective", list(Objective))
def test_capacity_per_track_and_overall(objective: Objective) -> None:
    mentees = [_mentee(f"m{i}", "research", "career") for i in range(5)]
    mentor = _mentor("f", 3, research=2, career=2)
    result = match(mentees, [mentor], options=MatchOptions(objective=objective))
    per_track = Counter(p.track for p in result.proposals)
    assert result.matched == 3  # overall capacity binds before 2 + 2
    assert max(per_track.values()) <= 2
    assert len(result.unmatched) == 10 - 3
    assert all(u.reason is UnmatchedReason.CAPACITY_TAKEN for u in result.unmatched if u.track)


def test_no_self_match() -> None:
    person = _mentee("same-person")
    result = match([person], [_mentor("same-person", 1)])
    assert result.proposals == ()
    assert result.unmatched[0].reason is UnmatchedReason.ALL_EXCLUDED


@pytest.mark.parametrize("reason", list(ExclusionReason))
def test_exclusions_of_every_kind(reason: ExclusionReason) -> None:
    result = match([_mentee("m")], [_mentor("f", 1)], exclusions=[Exclusion("m", "f", reason)])
    assert result.proposals == ()
    assert result.unmatched[0].reason is UnmatchedReason.ALL_EXCLUDED


def test_track_specific_rejection_leaves_other_tracks() -> None:
    rejected = Exclusion("m", "f", ExclusionReason.REJECTED, track="research")
    result = match(
        [_mentee("m", "research", "career")],
        [_mentor("f", 2, research=1, career=1)],
        exclusions=[rejected],
    )
    assert _pairs(result) == {("m", "f", "career")}


def test_locked_pair_is_kept_and_counts_against_capacity() -> None:
    mentees = [_mentee("a"), _mentee("b", interests=frozenset({"x"}))]
    mentor = MentorProfile(
        "f", (TrackOffer("research", 1),), 1, interests=frozenset({"x"}), availability=LUNCH
    )
    result = match(mentees, [mentor], locked=[LockedPair("a", "f", "research")])
    assert _pairs(result) == {("a", "f", "research")}
    assert result.proposals[0].locked
    assert result.unmatched[0].mentee_id == "b"
    assert result.unmatched[0].reason is UnmatchedReason.NO_CAPACITY_ON_TRACK


def test_locked_mentor_not_given_again_on_another_track() -> None:
    result = match(
        [_mentee("m", "research", "career")],
        [_mentor("f", 2, research=1, career=1)],
        locked=[LockedPair("m", "f", "research")],
    )
    assert _pairs(result) == {("m", "f", "research")}
    assert result.unmatched[0].track == "career"


def test_locked_pair_naming_someone_absent_is_refused() -> None:
    with pytest.raises(MatchingInputError, match="not in this round"):
        match([_mentee("m")], [_mentor("f", 1)], locked=[LockedPair("m", "ghost", "research")])


def test_no_common_availability_is_refused_and_explained() -> None:
    night = MentorProfile(
        "f", (TrackOffer("research", 1),), 1, availability=(Window(2 * 60, 3 * 60),)
    )
    result = match([_mentee("m")], [night])
    assert result.proposals == ()
    assert result.unmatched[0].reason is UnmatchedReason.NO_COMMON_AVAILABILITY
    relaxed = match(
        [_mentee("m")], [night], options=MatchOptions(require_availability_overlap=False)
    )
    assert len(relaxed.proposals) == 1


def test_no_mentor_for_track() -> None:
    result = match([_mentee("m", "wellbeing")], [_mentor("f", 1)])
    assert result.unmatched[0].reason is UnmatchedReason.NO_MENTOR_FOR_TRACK


@pytest.mark.parametrize("objective", list(Objective))
def test_same_mentor_at_most_once_needs_branching(objective: Objective) -> None:
    """Both tracks' best mentor is f; the flow alone would give f twice."""
    star = MentorProfile(
        "f",
        (TrackOffer("research", 1), TrackOffer("career", 1)),
        2,
        interests=frozenset({"x", "y"}),
        availability=LUNCH,
    )
    other = MentorProfile(
        "g", (TrackOffer("research", 1), TrackOffer("career", 1)), 2, availability=LUNCH
    )
    mentee = _mentee("m", "research", "career", interests=frozenset({"x", "y"}))
    result = match([mentee], [star, other], options=MatchOptions(objective=objective))
    assert len(result.proposals) == 2
    assert {p.mentor_id for p in result.proposals} == {"f", "g"}
    side_rule = result.certificate
    assert side_rule.flow_solves > 1 or side_rule.milp_solves + side_rule.lp_solves >= 1
    assert result.optimality_certified


@pytest.mark.parametrize("seed", range(40))
def test_random_constraints_against_brute_force(seed: int) -> None:
    mentees, mentors = random_program(1000 + seed, n_mentees=4, n_mentors=3)
    exclusions = (
        Exclusion(mentees[0].id, mentors[0].id, ExclusionReason.CONFLICT_OF_INTEREST),
        Exclusion(mentees[1].id, mentors[1].id, ExclusionReason.NOT_WORKING),
    )
    first = mentees[2]
    offering = [j for j in mentors if first.tracks[0] in {o.track for o in j.offers}]
    locked = (LockedPair(first.id, offering[0].id, first.tracks[0]),) if offering else ()
    for objective in Objective:
        result = match(
            mentees,
            mentors,
            exclusions=exclusions,
            locked=locked,
            options=MatchOptions(objective=objective, candidates_per_track=1),
        )
        matched, total = brute_force(
            mentees, mentors, objective, exclusions=exclusions, locked=locked
        )
        free = [p for p in result.proposals if not p.locked]
        assert round(sum(p.score for p in free) * 1_000_000) == total
        assert result.optimality_certified
        if objective is Objective.MAX_MATCHED:
            assert len(free) == matched
        pairs = {(p.mentee_id, p.mentor_id) for p in result.proposals}
        assert not pairs & {(e.mentee_id, e.mentor_id) for e in exclusions}


@pytest.mark.parametrize(("n_mentees", "n_mentors"), [(0, 0), (1, 0), (0, 1)])
def test_empty_sides(n_mentees: int, n_mentors: int) -> None:
    result = match([_mentee("m")][:n_mentees], [_mentor("f", 1)][:n_mentors])
    assert result.proposals == ()
    assert result.optimality_certified
    assert len(result.unmatched) == (1 if n_mentees else 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"interests": float("nan")},
        {"text": float("inf")},
        {"availability_target_hours": float("inf")},
        {"language": -1.0},
    ],
)
def test_weights_that_are_not_finite_and_non_negative_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(MatchingInputError):
        Weights(**bad)  # type: ignore[arg-type]
