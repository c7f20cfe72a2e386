"""Peer circles: sizes as set, everyone placed once, like with like."""

from __future__ import annotations

import pytest

from plugin.matching import MatchingInputError, MenteeProfile, Window, form_circles

MORNING = (Window(9 * 60, 11 * 60),)
EVENING = (Window(19 * 60, 21 * 60),)


def _mentees() -> list[MenteeProfile]:
    out = []
    for i in range(12):
        cardio = i % 2 == 0
        out.append(
            MenteeProfile(
                f"m{i}",
                ("research",),
                interests=frozenset({"cardio"} if cardio else {"neuro"}),
                text="cardiology heart" if cardio else "neurology brain",
                availability=MORNING if cardio else EVENING,
            )
        )
    out.append(MenteeProfile("other-track", ("career",)))
    return out


def test_circles_have_the_set_size_and_cover_the_track() -> None:
    circles = form_circles(_mentees(), "research", 4)
    assert [len(c.member_ids) for c in circles] == [4, 4, 4]
    members = [m for c in circles for m in c.member_ids]
    assert sorted(members) == sorted(f"m{i}" for i in range(12))


def test_circles_group_similar_and_available_together() -> None:
    for circle in form_circles(_mentees(), "research", 3):
        parities = {int(m[1:]) % 2 for m in circle.member_ids}
        assert len(parities) == 1
        assert circle.common_hours == 2.0
        assert circle.mean_affinity > 0.9


def test_uneven_counts_split_evenly() -> None:
    sizes = sorted(len(c.member_ids) for c in form_circles(_mentees()[:11], "research", 4))
    assert sizes == [3, 4, 4]


def test_bad_size_is_refused() -> None:
    with pytest.raises(MatchingInputError):
        form_circles(_mentees(), "research", 1)
    assert form_circles(_mentees(), "wellbeing", 3) == ()
