"""Sentences a coordinator can read: why a pair was proposed, why a mentee was not matched.

Private opt-in preferences are never named: a reason says how many were met, not which.
"""

from __future__ import annotations

from collections.abc import Sequence

from plugin.matching.profiles import CRITERIA, MenteeProfile, MentorProfile, Weights
from plugin.matching.results import Contribution

__all__ = ["contributions", "pair_reasons"]

#: Reasons shown per pair.
TOP_REASONS = 3


def contributions(
    values: Sequence[float], normalised: dict[str, float]
) -> tuple[Contribution, ...]:
    """Per-criterion contributions of one pair, in CRITERIA order."""
    return tuple(
        Contribution(
            criterion=name,
            value=round(float(value), 4),
            weight=round(normalised[name], 4),
            contribution=round(float(value) * normalised[name], 4),
        )
        for name, value in zip(CRITERIA, values, strict=True)
    )


def pair_reasons(
    mentee: MenteeProfile,
    mentor: MentorProfile,
    track: str,
    parts: Sequence[Contribution],
    overlap_hours: float,
    weights: Weights,
) -> tuple[str, ...]:
    """The strongest contributions as sentences, with their share of the score."""
    ranked = sorted((p for p in parts if p.contribution > 0), key=lambda p: -p.contribution)
    return tuple(
        f"{_sentence(p.criterion, mentee, mentor, track, p.value, overlap_hours, weights)} "
        f"(+{p.contribution:.2f})"
        for p in ranked[:TOP_REASONS]
    )


def _sentence(
    criterion: str,
    mentee: MenteeProfile,
    mentor: MentorProfile,
    track: str,
    value: float,
    overlap_hours: float,
    weights: Weights,
) -> str:
    if criterion == "interests":
        shared = sorted(mentee.interests & mentor.interests)
        listed = ", ".join(shared[:4]) + (" ..." if len(shared) > 4 else "")
        return f"Shares {len(shared)} of the mentee's {len(mentee.interests)} interests ({listed})"
    if criterion == "text":
        return f"Goals and interests written in similar terms (similarity {value:.2f})"
    if criterion == "track":
        rank = mentee.tracks.index(track) + 1 if track in mentee.tracks else 0
        return f"Offers {track}, the mentee's choice #{rank}"
    if criterion == "availability":
        return f"{overlap_hours:g} h a week of common availability"
    if criterion == "format":
        return f"Meeting format fits ({mentee.format.value} / {mentor.format.value})"
    if criterion == "language":
        common = sorted(mentee.languages & mentor.languages)
        if common:
            return f"Speaks {', '.join(common)} with the mentee"
        return "No language restriction declared"
    if criterion == "stage":
        gap = mentor.stage - mentee.stage
        return f"Career stage {gap:+d} from the mentee (ideal {weights.ideal_stage_gap:+d})"
    met = len(mentee.preferences & mentor.attributes)
    return f"Meets {met} of the mentee's {len(mentee.preferences)} opt-in preferences"
