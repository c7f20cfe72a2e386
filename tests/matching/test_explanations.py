"""Proposals say why, with numbers that add up; private preferences are never named."""

from __future__ import annotations

import pytest

from plugin.matching import (
    CRITERIA,
    Format,
    MenteeProfile,
    MentorProfile,
    TrackOffer,
    Weights,
    Window,
    match,
)

LUNCH = (Window(12 * 60, 15 * 60),)


@pytest.fixture
def result():  # type: ignore[no-untyped-def]
    mentee = MenteeProfile(
        "m",
        ("research",),
        interests=frozenset({"cardio", "peds", "gh"}),
        text="pediatric cardiology research in global health",
        stage=1,
        availability=LUNCH,
        format=Format.VIRTUAL,
        languages=frozenset({"es"}),
        preferences=frozenset({"first_gen"}),
    )
    mentor = MentorProfile(
        "f",
        (TrackOffer("research", 1),),
        1,
        interests=frozenset({"cardio", "peds"}),
        text="my lab does pediatric cardiology research",
        stage=3,
        availability=LUNCH,
        format=Format.EITHER,
        languages=frozenset({"en", "es"}),
        attributes=frozenset({"first_gen"}),
    )
    other = MentorProfile("g", (TrackOffer("research", 1),), 1, text="surgery")
    return match([mentee], [mentor, other])


def test_contributions_add_up_to_the_score(result) -> None:  # type: ignore[no-untyped-def]
    proposal = result.proposals[0]
    assert proposal.mentor_id == "f"
    assert [c.criterion for c in proposal.contributions] == list(CRITERIA)
    assert sum(c.contribution for c in proposal.contributions) == pytest.approx(
        proposal.score, abs=1e-3
    )
    assert sum(c.weight for c in proposal.contributions) == pytest.approx(1.0, abs=1e-3)
    for c in proposal.contributions:
        assert 0 <= c.value <= 1


def test_reasons_are_sentences_with_numbers(result) -> None:  # type: ignore[no-untyped-def]
    reasons = result.proposals[0].reasons
    assert len(reasons) == 3
    assert reasons[0].startswith("Shares 2 of the mentee's 3 interests (cardio, peds)")
    assert all("(+0." in r for r in reasons)
    text = " ".join(reasons)
    assert "first_gen" not in text  # private opt-in preferences are never named


def test_every_criterion_has_a_sentence() -> None:
    weights = Weights(
        interests=1, text=1, track=1, availability=1, format=1, language=1, stage=1, preferences=1
    )
    mentee = MenteeProfile(
        "m",
        ("research",),
        interests=frozenset({"a"}),
        text="cardiology",
        stage=0,
        availability=LUNCH,
        languages=frozenset({"fr"}),
        preferences=frozenset({"w"}),
    )
    mentor = MentorProfile(
        "f",
        (TrackOffer("research", 1),),
        1,
        interests=frozenset({"a"}),
        text="cardiology",
        stage=2,
        availability=LUNCH,
        languages=frozenset({"fr"}),
        attributes=frozenset({"w"}),
    )
    from plugin.matching import explain

    parts = match([mentee], [mentor], weights=weights).proposals[0].contributions
    sentences = [
        explain._sentence(p.criterion, mentee, mentor, "research", p.value, 3.0, weights)
        for p in parts
    ]
    assert sentences == [
        "Shares 1 of the mentee's 1 interests (a)",
        "Goals and interests written in similar terms (similarity 1.00)",
        "Offers research, the mentee's choice #1",
        "3 h a week of common availability",
        "Meeting format fits (either / either)",
        "Speaks fr with the mentee",
        "Career stage +2 from the mentee (ideal +2)",
        "Meets 1 of the mentee's 1 opt-in preferences",
    ]
    assert all(p.value == pytest.approx(1.0, abs=1e-4) for p in parts)


def test_rank_mentors_for_a_mentee_best_first_with_reasons() -> None:
    from plugin.matching import Exclusion, ExclusionReason, rank_mentors

    mentee = MenteeProfile("m", ("research",), interests=frozenset({"a", "b"}), availability=LUNCH)
    mentors = [
        MentorProfile(
            f"f{i}",
            (TrackOffer("research", 1),),
            1,
            interests=frozenset("ab"[:i]),
            availability=LUNCH,
        )
        for i in range(3)
    ]
    full = MentorProfile("full", (TrackOffer("research", 0),), 1, availability=LUNCH)
    ranked = rank_mentors(
        mentee,
        [*mentors, full],
        "research",
        exclusions=[Exclusion("m", "f0", ExclusionReason.COORDINATOR)],
    )
    assert [p.mentor_id for p in ranked] == ["f2", "f1"]
    assert ranked[0].score > ranked[1].score
    assert ranked[0].reasons[0].startswith("Shares 2 of the mentee's 2 interests")


def test_unmatched_reasons_use_the_same_admissibility_as_the_scores() -> None:
    """``Scorer.admissible`` (one product, for the unmatched reasons) refuses exactly the
    pairs ``Scorer.block`` marks inadmissible: no common slot, exclusions, self."""
    import numpy as np

    from plugin.matching import Exclusion, ExclusionReason
    from plugin.matching.engine import prepare_round
    from tests.matching.helpers import random_program

    for seed in range(8):
        mentees, mentors = random_program(700 + seed, n_mentees=30, n_mentors=12)
        exclusions = [
            Exclusion(mentees[i].id, mentors[i % 12].id, ExclusionReason.CONFLICT_OF_INTEREST)
            for i in range(0, 30, 4)
        ]
        round_ = prepare_round(mentees, mentors, exclusions=exclusions)
        rows = np.arange(len(mentees), dtype=np.int64)
        for t in round_.scorer.cols:
            cols, scores = round_.scorer.block(t, rows)
            same_cols, allowed = round_.scorer.admissible(t, rows)
            assert (cols == same_cols).all()
            assert (allowed == (scores >= 0)).all()
            assert not allowed.all()  # something is refused in every track
