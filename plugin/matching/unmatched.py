"""Why each unmatched (mentee, track) request got no mentor, from the most basic cause up."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from plugin.matching.parallel import in_order, thread_count
from plugin.matching.results import UnmatchedReason, UnmatchedRequest

if TYPE_CHECKING:
    from plugin.matching.engine import Round
    from plugin.matching.solve import Assignment

__all__ = ["explain_unmatched"]

I64 = npt.NDArray[np.int64]


def explain_unmatched(round_: Round, assignment: Assignment) -> tuple[UnmatchedRequest, ...]:
    """One entry per request left unmatched, with counts a coordinator can act on."""
    net = round_.network
    matched = np.zeros(net.n_requests, dtype=bool)
    matched[assignment.request] = True
    unmatched = np.flatnonzero(~matched)
    if not len(unmatched):
        return ()
    mt_used = np.zeros(len(net.mentor_track_capacity), dtype=np.int64)
    mentor_used = np.zeros(len(net.mentor_capacity), dtype=np.int64)
    mentor_of_mentee: dict[int, set[int]] = defaultdict(set)
    for request, mentor in zip(assignment.request, assignment.mentor, strict=True):
        mt_used[round_.mentor_track_of[int(round_.request_track[request])][mentor]] += 1
        mentor_used[mentor] += 1
        mentor_of_mentee[int(round_.request_mentee[request])].add(int(mentor))
    for m, j, _ in round_.locked:
        mentor_of_mentee[m].add(j)
    excluded_for: dict[int, list[tuple[int, set[int | None]]]] = defaultdict(list)
    for (m, j), tracks in round_.excluded.items():
        excluded_for[m].append((j, set(tracks)))

    out: list[UnmatchedRequest] = []
    for t in np.unique(round_.request_track[unmatched]):
        t = int(t)
        track = round_.features.tracks[t]
        offered = round_.offered_by.get(t, 0)
        reqs = unmatched[round_.request_track[unmatched] == t]
        if offered == 0 or not (round_.mentor_track_of[t] >= 0).any():
            reason = (
                UnmatchedReason.NO_MENTOR_FOR_TRACK
                if offered == 0
                else UnmatchedReason.NO_CAPACITY_ON_TRACK
            )
            for request in reqs:
                mentee_id = round_.mentees[int(round_.request_mentee[request])].id
                out.append(_entry(mentee_id, track, reason, offered, 0))
            continue
        chunks = [
            reqs[start : start + round_.options.block_rows]
            for start in range(0, len(reqs), round_.options.block_rows)
        ]

        def check(chunk: I64, t: int = t) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
            cols, admissible = round_.scorer.admissible(t, round_.request_mentee[chunk])
            nodes = round_.mentor_track_of[t][cols]
            room = (mt_used[nodes] < net.mentor_track_capacity[nodes]) & (
                mentor_used[cols] < net.mentor_capacity[cols]
            )
            return cols, admissible.sum(axis=1), admissible & room[None, :]

        threads = thread_count(round_.options.threads)
        col_at = np.full(len(net.mentor_capacity), -1, dtype=np.int64)
        for chunk, (cols, n_ok, free) in zip(chunks, in_order(check, chunks, threads), strict=True):
            col_at[cols] = np.arange(len(cols))
            mentees = round_.request_mentee[chunk]
            # Free mentors other than the mentee's own (from another track) per row.
            free_count = np.count_nonzero(free, axis=1)
            others = free_count.copy()
            for row, m in enumerate(mentees.tolist()):
                for j in mentor_of_mentee.get(m, ()):
                    if col_at[j] >= 0 and free[row, col_at[j]]:
                        others[row] -= 1
            col_at[cols] = -1
            any_free = free_count > 0
            col_set: set[int] | None = None
            for row, m in enumerate(mentees.tolist()):
                mentee_id = round_.mentees[m].id
                if not n_ok[row]:
                    col_set = col_set if col_set is not None else set(cols.tolist())
                    n_excluded = sum(
                        1
                        for j, tracks in excluded_for[m]
                        if j in col_set and (None in tracks or t in tracks)
                    )
                    reason = (
                        UnmatchedReason.ALL_EXCLUDED
                        if n_excluded >= len(cols)
                        else UnmatchedReason.NO_COMMON_AVAILABILITY
                    )
                    out.append(
                        _entry(
                            mentee_id,
                            track,
                            reason,
                            offered,
                            0,
                            open_=len(cols),
                            n_excluded=n_excluded,
                        )
                    )
                    continue
                if not any_free[row]:
                    reason = UnmatchedReason.CAPACITY_TAKEN
                elif not others[row]:
                    reason = UnmatchedReason.SAME_MENTOR_OTHER_TRACK
                else:
                    reason = UnmatchedReason.NO_POSITIVE_FIT
                out.append(
                    _entry(mentee_id, track, reason, offered, int(n_ok[row]), open_=len(cols))
                )
    return tuple(out)


def _entry(
    mentee_id: str,
    track: str,
    reason: UnmatchedReason,
    offered: int,
    admissible: int,
    *,
    open_: int = 0,
    n_excluded: int = 0,
) -> UnmatchedRequest:
    return UnmatchedRequest(
        mentee_id=mentee_id,
        track=track,
        reason=reason,
        detail=_detail(reason, track, offered, admissible, open_, n_excluded),
        mentors_on_track=offered,
        admissible_mentors=admissible,
    )


def _detail(
    reason: UnmatchedReason, track: str, offered: int, admissible: int, open_: int, n_excluded: int
) -> str:
    """The sentence for one reason (only that one is formatted: 40,000 requests at 50,000)."""
    match reason:
        case UnmatchedReason.NO_MENTOR_FOR_TRACK:
            return f"No mentor offers {track} in this program."
        case UnmatchedReason.NO_CAPACITY_ON_TRACK:
            return f"All {offered} mentors offering {track} are already at capacity."
        case UnmatchedReason.ALL_EXCLUDED:
            return (
                f"All {open_} mentors with room on {track} are excluded for this mentee "
                "(conflicts of interest, exclusions, current or past pairs, rejections, "
                "peer mentors not at a later career stage)."
            )
        case UnmatchedReason.NO_COMMON_AVAILABILITY:
            return (
                f"None of the {open_ - n_excluded} eligible mentors with room on {track} shares "
                f"a 30-minute slot of weekly availability with this mentee ({n_excluded} more "
                "are excluded)."
            )
        case UnmatchedReason.CAPACITY_TAKEN:
            return (
                f"{admissible} mentors on {track} would suit, but all their places went to "
                "other mentees (the assignment that is best for the program as a whole)."
            )
        case UnmatchedReason.SAME_MENTOR_OTHER_TRACK:
            return (
                f"The only suitable mentors on {track} with room already mentor this mentee "
                "on another track."
            )
        case UnmatchedReason.NO_POSITIVE_FIT:
            return f"The mentors on {track} still with room fit this mentee with a score of 0."
