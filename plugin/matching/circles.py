"""Peer circles: mentees of one track grouped into circles of a coordinator-set size.

Heuristic (partitioning into groups is NP-hard; this is fast and good in practice):

1. Affinity between two mentees = ``(1 - a) * similarity + a * availability``, where
   similarity is the weighted mean of interest cosine and TF-IDF text cosine, and
   availability is their common weekly hours over the target, capped at 1.
2. ``round(n / size)`` circles, sizes as even as possible. Seeds are picked farthest-first,
   starting from the hardest mentee to place (lowest total affinity).
3. The others, hardest first, join the circle with room whose members they fit best.
4. Pairwise swaps between circles while one raises the total within-circle affinity.

Memory and time grow with the square of the track's mentees (a few thousand is fine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import TfidfVectorizer

from plugin.matching.features import SLOT_MINUTES, finite_products, slot_matrix
from plugin.matching.profiles import MatchingInputError, MenteeProfile, Weights

__all__ = ["Circle", "form_circles"]

F64 = npt.NDArray[np.float64]

#: Swap passes are bounded so a huge track cannot run away.
MAX_SWAPS_PER_MEMBER = 4


@dataclass(frozen=True, slots=True)
class Circle:
    """A peer circle: members, the weekly hours all of them share, their mean affinity."""

    track: str
    member_ids: tuple[str, ...]
    common_hours: float
    mean_affinity: float


def _affinity(
    mentees: Sequence[MenteeProfile], weights: Weights, availability_share: float
) -> tuple[F64, npt.NDArray[np.float32]]:
    n = len(mentees)
    codes = sorted({c for m in mentees for c in m.interests})
    at = {c: i for i, c in enumerate(codes)}
    interests = np.zeros((n, max(len(codes), 1)))
    for row, m in enumerate(mentees):
        for c in m.interests:
            interests[row, at[c]] = 1.0
    norms = np.linalg.norm(interests, axis=1, keepdims=True)
    interests = np.divide(interests, norms, out=np.zeros_like(interests), where=norms > 0)
    with finite_products():
        similarity = weights.interests * (interests @ interests.T)
    texts = [m.text for m in mentees]
    if any(t.strip() for t in texts):
        try:
            tfidf = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts)
            similarity += weights.text * (tfidf @ tfidf.T).toarray()
        except ValueError:  # only stop words
            pass
    total = weights.interests + weights.text
    similarity = similarity / total if total > 0 else similarity * 0
    slots = slot_matrix([[(w.start, w.end) for w in m.availability] for m in mentees])
    target = weights.availability_target_hours * 60 / SLOT_MINUTES
    with finite_products():
        availability = np.minimum((slots @ slots.T) / target, 1.0)
    affinity = (1 - availability_share) * similarity + availability_share * availability
    np.fill_diagonal(affinity, 0.0)
    return affinity, slots


def form_circles(
    mentees: Sequence[MenteeProfile],
    track: str,
    size: int,
    *,
    weights: Weights | None = None,
    availability_share: float = 0.5,
) -> tuple[Circle, ...]:
    """Group the mentees who want ``track`` into circles of about ``size`` members."""
    if size < 2:
        raise MatchingInputError("a circle needs at least 2 members")
    if not 0 <= availability_share <= 1:
        raise MatchingInputError("availability_share must be between 0 and 1")
    members = [m for m in mentees if track in m.tracks]
    n = len(members)
    if not n:
        return ()
    affinity, slots = _affinity(members, weights or Weights(), availability_share)
    n_circles = max(1, round(n / size))
    capacity = np.full(n_circles, n // n_circles)
    capacity[: n % n_circles] += 1
    circle_of = _seed_and_fill(affinity, capacity)
    _improve_by_swaps(affinity, circle_of, n_circles)
    circles = []
    for c in range(n_circles):
        idx = np.flatnonzero(circle_of == c)
        common = slots[idx].min(axis=0).sum() * SLOT_MINUTES / 60 if len(idx) else 0.0
        pairs = len(idx) * (len(idx) - 1)
        mean = float(affinity[np.ix_(idx, idx)].sum() / pairs) if pairs else 0.0
        circles.append(
            Circle(
                track=track,
                member_ids=tuple(members[i].id for i in idx),
                common_hours=float(common),
                mean_affinity=round(mean, 4),
            )
        )
    return tuple(circles)


def _seed_and_fill(affinity: F64, capacity: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    n, n_circles = len(affinity), len(capacity)
    circle_of = np.full(n, -1, dtype=np.int64)
    hardness = affinity.sum(axis=1)
    seeds = [int(np.argmin(hardness))]
    while len(seeds) < n_circles:
        closeness = affinity[:, seeds].max(axis=1)
        closeness[seeds] = np.inf
        seeds.append(int(np.argmin(closeness)))
    sums = np.zeros((n, n_circles))
    count = np.zeros(n_circles, dtype=np.int64)
    for c, s in enumerate(seeds):
        circle_of[s] = c
        sums[:, c] += affinity[:, s]
        count[c] = 1
    for i in np.argsort(hardness, kind="stable"):
        if circle_of[i] >= 0:
            continue
        fit = np.where(count < capacity, sums[i] / np.maximum(count, 1), -np.inf)
        c = int(np.argmax(fit))
        circle_of[i] = c
        sums[:, c] += affinity[:, i]
        count[c] += 1
    return circle_of


def _improve_by_swaps(affinity: F64, circle_of: npt.NDArray[np.int64], n_circles: int) -> None:
    n = len(affinity)
    if n_circles < 2:
        return
    onehot = np.zeros((n, n_circles))
    onehot[np.arange(n), circle_of] = 1.0
    with finite_products():
        sums = affinity @ onehot  # sums[i, c]: i's affinity to the members of circle c
    for _ in range(MAX_SWAPS_PER_MEMBER * n):
        own = sums[np.arange(n), circle_of]
        # gain[a, b] of swapping a and b (different circles)
        cross = sums[:, circle_of]  # cross[a, b] = sums[a, circle of b]
        gain = cross + cross.T - 2 * affinity - own[:, None] - own[None, :]
        gain[circle_of[:, None] == circle_of[None, :]] = -np.inf
        a, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if gain[a, b] <= 1e-9:
            return
        ca, cb = circle_of[a], circle_of[b]
        sums[:, ca] += affinity[:, b] - affinity[:, a]
        sums[:, cb] += affinity[:, a] - affinity[:, b]
        circle_of[a], circle_of[b] = cb, ca
