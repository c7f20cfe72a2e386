"""Feature matrices: availability slots."""

from __future__ import annotations

import random

import numpy as np
import pytest

from plugin.matching.features import SLOT_MINUTES, SLOTS_PER_WEEK, slot_matrix


def _covered(windows: list[tuple[int, int]]) -> set[int]:
    """Slot numbers a person's windows cover whole, one slot at a time."""
    week = SLOTS_PER_WEEK * SLOT_MINUTES
    out = set()
    for start, end in windows:
        for slot in range(2 * SLOTS_PER_WEEK):
            if start <= slot * SLOT_MINUTES and (slot + 1) * SLOT_MINUTES <= end:
                out.add(slot % SLOTS_PER_WEEK)
        assert end - start <= week
    return out


def test_slots_are_the_whole_half_hours_covered_including_past_sunday_midnight() -> None:
    rng = random.Random(3)
    people = [
        [
            (start, start + rng.choice([0, 10, 29, 30, 31, 60, 95, 600, 3000]))
            for start in (rng.randrange(0, SLOTS_PER_WEEK * SLOT_MINUTES) for _ in range(n))
        ]
        for n in [rng.randint(0, 4) for _ in range(200)]
    ]
    matrix = slot_matrix(people)
    assert matrix.shape == (200, SLOTS_PER_WEEK)
    for row, windows in enumerate(people):
        assert set(np.flatnonzero(matrix[row]).tolist()) == _covered(windows)
    assert slot_matrix([]).shape == (0, SLOTS_PER_WEEK)
    # Sunday 23:00 to Monday 01:00 (UTC, minutes from Monday 00:00): 4 slots on both ends.
    wrap = slot_matrix([[(SLOTS_PER_WEEK * SLOT_MINUTES - 60, SLOTS_PER_WEEK * SLOT_MINUTES + 60)]])
    assert np.flatnonzero(wrap[0]).tolist() == [0, 1, SLOTS_PER_WEEK - 2, SLOTS_PER_WEEK - 1]


def test_language_folded_into_the_linear_product_scores_like_the_separate_product(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With few distinct language sets, language compatibility is one-hot columns of the
    linear product; past FOLDED_LANGUAGE_SETS it is its own product. Same scores."""
    from bench.matching import synthetic_program
    from plugin.matching import scoring
    from plugin.matching.engine import prepare_round

    mentees, mentors = synthetic_program(300, 60, seed=2)
    rows = np.arange(len(mentees), dtype=np.int64)
    folded = prepare_round(mentees, mentors).scorer
    monkeypatch.setattr(scoring, "FOLDED_LANGUAGE_SETS", 0)
    separate = prepare_round(mentees, mentors).scorer
    assert folded._fold_language
    assert not separate._fold_language
    for t in folded.cols:
        _, a = folded.block(t, rows)
        _, b = separate.block(t, rows)
        assert ((a < 0) == (b < 0)).all()
        assert np.abs(a - b).max() < 1e-6
