"""Profiles turned into matrices once per round, so every score is a few matrix products.

Most criteria are linear in one-hot or normalised indicator features, so their weighted sum
for a whole block of pairs is one dense product ``L[rows] @ R[cols].T``: interests
(coverage of the mentee's codes), opt-in preferences (coverage of the mentee's tags),
career stage and format (a small lookup table folded into the mentee side). The rest are
one product each plus an element-wise step: free text (sparse TF-IDF cosine), availability
(30-minute slots, capped at the target hours) and language (any language in common).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from plugin.matching.profiles import (
    CRITERIA,
    MINUTES_PER_WEEK,
    Format,
    MenteeProfile,
    MentorProfile,
    Weights,
)

__all__ = [
    "SLOT_MINUTES",
    "ProgramFeatures",
    "build_features",
    "finite_products",
    "slot_matrix",
]


def finite_products() -> np.errstate:
    """Context for BLAS products of finite inputs: ignore a spurious "invalid" flag.

    OpenBLAS kernels can leave the CPU's invalid-operation flag set on finite inputs
    (numpy#24067, OpenBLAS#1924: padding lanes read whatever memory holds), which numpy
    turns into ``RuntimeWarning: invalid value encountered in matmul``, at random, as CI
    saw once. Every matrix here is built finite from validated profiles and weights, so
    the flag carries no information; overflow and division still warn.
    """
    return np.errstate(invalid="ignore")


#: Availability resolution: windows are reduced to the whole 30-minute slots they cover
#: (a window 09:10-10:00 counts 09:30-10:00), which keeps :30 time-zone offsets exact.
SLOT_MINUTES = 30
SLOTS_PER_WEEK = MINUTES_PER_WEEK // SLOT_MINUTES

F32 = npt.NDArray[np.float32]

_FORMATS = (Format.VIRTUAL, Format.IN_PERSON, Format.EITHER)
#: Format compatibility: same format or either side flexible scores 1.
_FORMAT_TABLE = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class ProgramFeatures:
    """Per-person matrices of one round (rows: mentees, or mentors; ``w`` = normalised weights)."""

    tracks: tuple[str, ...]
    w: dict[str, float]
    #: Unweighted; each column belongs to one criterion (``linear_groups``), and
    #: ``(linear_mentee * linear_column_weight) @ linear_mentor.T`` is their weighted sum.
    linear_mentee: F32
    linear_mentor: F32
    linear_column_weight: F32
    linear_groups: dict[str, slice]
    text_mentee: sparse.csr_matrix  # L2-normalised TF-IDF rows
    text_mentor: sparse.csr_matrix
    slots_mentee: F32  # 0/1 per 30-minute slot of the week
    slots_mentor: F32
    has_slots_mentee: npt.NDArray[np.bool_]
    has_slots_mentor: npt.NDArray[np.bool_]
    language_mentee: F32  # languages plus "declared none" columns; dot > 0 means compatible
    language_mentor: F32
    track_priority: F32  # mentees x tracks: 1, 0.75, 0.5... in the mentee's order, 0 = not wanted
    track_strength: F32  # mentors x tracks: the offer's strength, 0 = not offered
    target_slots: float  # availability target in slots


def slot_matrix(windows_per_person: Sequence[Sequence[tuple[int, int]]]) -> F32:
    """0/1 matrix of the whole 30-minute slots each person's windows cover."""
    pairs = [(row, w) for row, windows in enumerate(windows_per_person) for w in windows]
    rows = np.array([row for row, _ in pairs], dtype=np.int64)
    bounds = np.array([w for _, w in pairs], dtype=np.int64).reshape(len(pairs), 2)
    first = -(-bounds[:, 0] // SLOT_MINUTES)  # ceil: only whole slots count
    last = bounds[:, 1] // SLOT_MINUTES
    wraps = last > SLOTS_PER_WEEK  # past Sunday midnight: the rest from Monday 00:00
    rows = np.concatenate([rows, rows[wraps]])
    first = np.concatenate([first, np.zeros(int(wraps.sum()), dtype=np.int64)])
    last = np.concatenate([np.minimum(last, SLOTS_PER_WEEK), last[wraps] - SLOTS_PER_WEEK])
    real = first < last
    # +1 where each window starts, -1 where it ends: a running sum > 0 is covered.
    edges = np.zeros((len(windows_per_person), SLOTS_PER_WEEK + 1), dtype=np.int32)
    np.add.at(edges, (rows[real], first[real]), 1)
    np.add.at(edges, (rows[real], last[real]), -1)
    return (np.cumsum(edges[:, :SLOTS_PER_WEEK], axis=1) > 0).astype(np.float32)


def _coverage(sets: Sequence[frozenset[str]], vocabulary: dict[str, int]) -> F32:
    """Rows of 1/|set| on each member: dot with an indicator row = fraction covered."""
    out = np.zeros((len(sets), max(len(vocabulary), 1)), dtype=np.float32)
    for row, codes in enumerate(sets):
        for code in codes:
            out[row, vocabulary[code]] = 1.0 / len(codes)
    return out


def _indicator(sets: Sequence[frozenset[str]], vocabulary: dict[str, int]) -> F32:
    out = np.zeros((len(sets), max(len(vocabulary), 1)), dtype=np.float32)
    for row, codes in enumerate(sets):
        for code in codes:
            if code in vocabulary:
                out[row, vocabulary[code]] = 1.0
    return out


def _vocabulary(*groups: Sequence[frozenset[str]]) -> dict[str, int]:
    codes = sorted({code for group in groups for codes in group for code in codes})
    return {code: index for index, code in enumerate(codes)}


def _stage_table(mentee: Sequence[int], mentor: Sequence[int], weights: Weights) -> F32:
    """Lookup of stage scores: 1 at the ideal gap, minus 1/span per step away, floor 0."""
    gaps = np.subtract.outer(np.asarray(mentor), np.asarray(mentee)).T
    table = np.clip(1.0 - np.abs(gaps - weights.ideal_stage_gap) / weights.stage_span, 0.0, 1.0)
    return np.asarray(table, dtype=np.float32)


def _text_matrices(
    mentees: Sequence[MenteeProfile], mentors: Sequence[MentorProfile]
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """TF-IDF fitted over this program's own texts (both sides), rows L2-normalised."""
    texts = [m.text for m in mentees] + [m.text for m in mentors]
    if not any(text.strip() for text in texts):
        empty_m = sparse.csr_matrix((len(mentees), 1), dtype=np.float32)
        return empty_m, sparse.csr_matrix((len(mentors), 1), dtype=np.float32)
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, dtype=np.float32)
    try:
        matrix = sparse.csr_matrix(vectorizer.fit_transform(texts), dtype=np.float32)
    except ValueError:  # only stop words in the whole program
        matrix = sparse.csr_matrix((len(texts), 1), dtype=np.float32)
    return matrix[: len(mentees)].tocsr(), matrix[len(mentees) :].tocsr()


def build_features(
    mentees: Sequence[MenteeProfile], mentors: Sequence[MentorProfile], weights: Weights
) -> ProgramFeatures:
    """Every per-person matrix the scorer needs, built once per round."""
    raw = weights.as_dict()
    total = sum(raw.values())
    w = {name: raw[name] / total for name in CRITERIA}

    tracks = tuple(
        sorted(
            {t for m in mentees for t in m.tracks} | {o.track for j in mentors for o in j.offers}
        )
    )
    track_index = {t: i for i, t in enumerate(tracks)}
    priority = np.zeros((len(mentees), len(tracks)), dtype=np.float32)
    for row, mentee in enumerate(mentees):
        for rank, track in enumerate(mentee.tracks):
            priority[row, track_index[track]] = max(1.0 - 0.25 * rank, 0.25)
    strength = np.zeros((len(mentors), len(tracks)), dtype=np.float32)
    for row, mentor in enumerate(mentors):
        for offer in mentor.offers:
            strength[row, track_index[offer.track]] = min(max(float(offer.strength), 0.0), 1.0)

    interests = _vocabulary([m.interests for m in mentees], [j.interests for j in mentors])
    tags = _vocabulary([m.preferences for m in mentees])
    stages = sorted({m.stage for m in mentees} | {j.stage for j in mentors})
    stage_index = {s: i for i, s in enumerate(stages)}
    stage_table = _stage_table(stages, stages, weights)
    stage_m = np.zeros((len(mentees), len(stages)), dtype=np.float32)
    stage_m[np.arange(len(mentees)), [stage_index[m.stage] for m in mentees]] = 1.0
    stage_j = np.zeros((len(mentors), len(stages)), dtype=np.float32)
    stage_j[np.arange(len(mentors)), [stage_index[j.stage] for j in mentors]] = 1.0
    format_m = np.zeros((len(mentees), 3), dtype=np.float32)
    format_m[np.arange(len(mentees)), [_FORMATS.index(m.format) for m in mentees]] = 1.0
    format_j = np.zeros((len(mentors), 3), dtype=np.float32)
    format_j[np.arange(len(mentors)), [_FORMATS.index(j.format) for j in mentors]] = 1.0

    blocks = {
        "interests": _coverage([m.interests for m in mentees], interests),
        "preferences": _coverage([m.preferences for m in mentees], tags),
    }
    with finite_products():
        blocks["stage"] = stage_m @ stage_table
        blocks["format"] = format_m @ _FORMAT_TABLE
    groups: dict[str, slice] = {}
    start = 0
    for name, block in blocks.items():
        groups[name] = slice(start, start + block.shape[1])
        start += block.shape[1]
    linear_mentee = np.hstack(list(blocks.values())).astype(np.float32)
    column_weight = np.concatenate(
        [np.full(block.shape[1], w[name], dtype=np.float32) for name, block in blocks.items()]
    )
    linear_mentor = np.hstack(
        [
            _indicator([j.interests for j in mentors], interests),
            _indicator([j.attributes for j in mentors], tags),
            stage_j,
            format_j,
        ]
    ).astype(np.float32)

    text_m, text_j = _text_matrices(mentees, mentors)
    languages = _vocabulary([m.languages for m in mentees], [j.languages for j in mentors])
    lang_m = _indicator([m.languages for m in mentees], languages)
    lang_j = _indicator([j.languages for j in mentors], languages)
    # Someone who declared no language is compatible with everyone: two extra columns.
    none_m = np.array([[not m.languages, 1.0] for m in mentees], dtype=np.float32)
    none_j = np.array([[1.0, not j.languages] for j in mentors], dtype=np.float32)

    slots_m = slot_matrix([[(w_.start, w_.end) for w_ in m.availability] for m in mentees])
    slots_j = slot_matrix([[(w_.start, w_.end) for w_ in j.availability] for j in mentors])
    return ProgramFeatures(
        tracks=tracks,
        w=w,
        linear_mentee=linear_mentee.reshape(len(mentees), start),
        linear_mentor=linear_mentor.reshape(len(mentors), start),
        linear_column_weight=column_weight,
        linear_groups=groups,
        text_mentee=text_m,
        text_mentor=text_j,
        slots_mentee=slots_m,
        slots_mentor=slots_j,
        has_slots_mentee=np.asarray(slots_m.any(axis=1), dtype=bool),
        has_slots_mentor=np.asarray(slots_j.any(axis=1), dtype=bool),
        language_mentee=np.hstack([lang_m, none_m.reshape(len(mentees), 2)]),
        language_mentor=np.hstack([lang_j, none_j.reshape(len(mentors), 2)]),
        track_priority=priority,
        track_strength=strength,
        target_slots=weights.availability_target_hours * 60 / SLOT_MINUTES,
    )
