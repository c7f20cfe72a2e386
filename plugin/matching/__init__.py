"""Matching engine: scores, exact assignment under capacities, explanations, peer circles.

Pure functions over frozen dataclasses: no database, no network, no Flask. The service
layer converts a program's participants into ``MenteeProfile`` / ``MentorProfile`` and
stores the ``MatchResult``. See docs/matching.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugin.matching.profiles import (
    CRITERIA,
    MINUTES_PER_WEEK,
    Exclusion,
    ExclusionReason,
    Format,
    LockedPair,
    MatchingInputError,
    MatchOptions,
    MenteeProfile,
    MentorProfile,
    Objective,
    ProgressCallback,
    Stage,
    TrackOffer,
    Weights,
    Window,
)
from plugin.matching.results import (
    Certificate,
    Contribution,
    MatchResult,
    Proposal,
    UnmatchedReason,
    UnmatchedRequest,
)

if TYPE_CHECKING:
    from plugin.matching.circles import Circle, form_circles
    from plugin.matching.engine import match, rank_mentors
    from plugin.matching.greedy import greedy_match
else:
    # The engine needs NumPy, SciPy and scikit-learn: seconds of imports that every web
    # process, worker and `preceptor` command would pay at start-up although only a match
    # round or a mentor ranking uses them. The profiles and results above are plain
    # dataclasses; the functions below import the engine on their first call.

    def match(*args: Any, **kwargs: Any) -> Any:
        from plugin.matching.engine import match as engine_match

        return engine_match(*args, **kwargs)

    def rank_mentors(*args: Any, **kwargs: Any) -> Any:
        from plugin.matching.engine import rank_mentors as engine_rank_mentors

        return engine_rank_mentors(*args, **kwargs)

    def greedy_match(*args: Any, **kwargs: Any) -> Any:
        from plugin.matching.greedy import greedy_match as engine_greedy_match

        return engine_greedy_match(*args, **kwargs)

    def form_circles(*args: Any, **kwargs: Any) -> Any:
        from plugin.matching.circles import form_circles as engine_form_circles

        return engine_form_circles(*args, **kwargs)

    def __getattr__(name: str) -> Any:
        if name == "Circle":
            from plugin.matching.circles import Circle

            return Circle
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CRITERIA",
    "MINUTES_PER_WEEK",
    "Certificate",
    "Circle",
    "Contribution",
    "Exclusion",
    "ExclusionReason",
    "Format",
    "LockedPair",
    "MatchOptions",
    "MatchResult",
    "MatchingInputError",
    "MenteeProfile",
    "MentorProfile",
    "Objective",
    "ProgressCallback",
    "Proposal",
    "Stage",
    "TrackOffer",
    "UnmatchedReason",
    "UnmatchedRequest",
    "Weights",
    "Window",
    "form_circles",
    "greedy_match",
    "match",
    "rank_mentors",
]
