"""Scores for blocks of (mentee, mentor) pairs on one track, and candidate pruning.

A block is ``rows`` mentees against every open mentor of a track: three matrix products
(linear criteria, availability slots, languages), one sparse product (TF-IDF), and a few
in-place element-wise steps, so no Python loop ever runs per pair. Scores are 0..1; the
assignment works on integers ``round(score * SCALE)`` so its optimum is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from plugin.matching.features import ProgramFeatures, finite_products
from plugin.matching.profiles import CRITERIA

__all__ = ["INADMISSIBLE", "SCALE", "Candidates", "Scorer", "cells", "to_int"]

#: Scores are compared as integers in units of 1e-6: ties and optimality are exact.
SCALE = 1_000_000
#: The value a block holds for a pair that may not be proposed.
INADMISSIBLE = -1.0

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Vocabularies up to this many terms are scored densely (see Scorer.__init__).
DENSE_TEXT_TERMS = 1024
#: Distinct mentee language sets up to this many are folded into the linear product.
FOLDED_LANGUAGE_SETS = 64
#: Columns sampled per block to guess each row's pruning threshold.
_SAMPLE = 256


@dataclass(frozen=True, slots=True)
class Candidates:
    """Pairs kept for the solver, plus, per request, an upper bound on every pruned pair.

    ``bound[r]`` is -1 when nothing admissible was pruned for request ``r``.
    """

    request: I64
    mentor: I64
    score: I64
    bound: I64


class Scorer:
    """Scores pairs of one round; ``exclusions[t]`` are (mentee, mentor) index arrays."""

    def __init__(
        self,
        features: ProgramFeatures,
        open_mentors: Mapping[int, I64],
        exclusions: Mapping[int, tuple[I64, I64]],
        *,
        require_overlap: bool,
        n_mentees: int,
    ) -> None:
        self.f = features
        self.cols = {t: np.asarray(c, dtype=np.int64) for t, c in open_mentors.items()}
        self.exclusions = exclusions
        self.require_overlap = require_overlap
        self.n_mentees = n_mentees
        w = features.w
        self._lin_m = features.linear_mentee * features.linear_column_weight
        self._text_m = (features.text_mentee * np.float32(w["text"])).tocsr()
        self._has_text = features.text_mentee.nnz > 0
        # A small vocabulary is cheaper as dense columns of the one linear product than
        # as a sparse product per block.
        self._dense_text = self._has_text and features.text_mentee.shape[1] <= DENSE_TEXT_TERMS
        if self._dense_text:
            self._lin_m = np.hstack([self._lin_m, self._text_m.toarray()])
            self._has_text = False
        # Language compatibility, min(languages in common, 1), is not linear, but it is a
        # lookup on the mentee's language set: with few distinct sets it becomes one-hot
        # columns of the linear product (mentor side: compatible with that set or not).
        patterns, which = np.unique(features.language_mentee, axis=0, return_inverse=True)
        self._fold_language = len(patterns) <= FOLDED_LANGUAGE_SETS
        lookup = np.empty((0, len(features.language_mentor)), np.float32)
        if self._fold_language:
            one_hot = np.zeros((n_mentees, len(patterns)), dtype=np.float32)
            one_hot[np.arange(n_mentees), np.asarray(which).ravel()] = np.float32(w["language"])
            self._lin_m = np.hstack([self._lin_m, one_hot])
            with finite_products():
                lookup = np.minimum(patterns @ features.language_mentor.T, 1.0)
        self._has_slots_everywhere = bool(
            features.has_slots_mentee.all() and features.has_slots_mentor.all()
        )
        # Per-track mentor-side matrices, transposed once so each block is one product.
        self._lin_j: dict[int, F32] = {}
        self._text_j: dict[int, sparse.csc_matrix] = {}
        self._slots_j: dict[int, F32] = {}
        self._lang_j: dict[int, F32] = {}
        for t, cols in self.cols.items():
            strength = features.track_strength[cols, t : t + 1]
            text = (
                features.text_mentor[cols].toarray()
                if self._dense_text
                else np.empty((len(cols), 0), np.float32)
            )
            self._lin_j[t] = np.ascontiguousarray(
                np.hstack(
                    [features.linear_mentor[cols], text, lookup[:, cols].T, strength]
                ).T.astype(np.float32)
            )
            self._text_j[t] = features.text_mentor[cols].T.tocsc()
            self._slots_j[t] = np.ascontiguousarray(features.slots_mentor[cols].T)
            self._lang_j[t] = np.ascontiguousarray(features.language_mentor[cols].T)

    def block(self, t: int, rows: I64, positions: I64 | None = None) -> tuple[I64, F32]:
        """Scores of ``rows`` against the track's open mentors (or those at ``positions``
        among them); INADMISSIBLE where refused."""
        f, w = self.f, self.f.w
        cols = self.cols[t]
        lin_j, text_j, slots_j, lang_j = (
            self._lin_j[t],
            self._text_j[t],
            self._slots_j[t],
            self._lang_j[t],
        )
        if positions is not None:
            cols = cols[positions]
            lin_j, text_j = lin_j[:, positions], text_j[:, positions]
            slots_j, lang_j = slots_j[:, positions], lang_j[:, positions]
        track_col = f.track_priority[rows, t : t + 1] * np.float32(w["track"])
        lin_m = np.hstack([self._lin_m[rows], track_col])
        with finite_products():
            scores: F32 = lin_m @ lin_j
            if self._has_text:
                scores += (self._text_m[rows] @ text_j).toarray()
            overlap: F32 = f.slots_mentee[rows] @ slots_j
            if not self._fold_language:
                shared: F32 = f.language_mentee[rows] @ lang_j
                np.minimum(shared, 1.0, out=shared)
                shared *= np.float32(w["language"])
                scores += shared
        refused = self._no_common_slot(overlap, rows, cols) if self.require_overlap else None
        # weight * min(overlap / target, 1), in place: min(overlap * weight / target, weight)
        weight = np.float32(w["availability"])
        overlap *= np.float32(w["availability"] / f.target_slots)
        np.minimum(overlap, weight, out=overlap)
        scores += overlap
        np.clip(scores, 0.0, 1.0, out=scores)
        if refused is not None:
            np.copyto(scores, np.float32(INADMISSIBLE), where=refused)
        self._apply_exclusions(t, rows, cols, scores)
        return cols, scores

    def admissible(self, t: int, rows: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
        """Which of the track's open mentors ``rows`` may be proposed at all: what ``block``
        marks INADMISSIBLE, without computing the scores (one product, not three)."""
        f = self.f
        cols = self.cols[t]
        if self.require_overlap:
            with finite_products():
                overlap: F32 = f.slots_mentee[rows] @ self._slots_j[t]
            allowed = ~self._no_common_slot(overlap, rows, cols)
        else:
            allowed = np.ones((len(rows), len(cols)), dtype=bool)
        r, c = self._excluded_cells(t, rows, cols)
        allowed[r, c] = False
        return cols, allowed

    def _no_common_slot(self, overlap: F32, rows: I64, cols: I64) -> npt.NDArray[np.bool_]:
        """Pairs refused for want of a common slot: both sides declared availability and
        none of it is shared (``overlap`` is the slot product of ``rows`` and ``cols``)."""
        refused: npt.NDArray[np.bool_] = np.equal(overlap, 0)
        if not self._has_slots_everywhere:
            refused &= self.f.has_slots_mentee[rows][:, None]
            refused &= self.f.has_slots_mentor[cols][None, :]
        return refused

    def _apply_exclusions(self, t: int, rows: I64, cols: I64, scores: F32) -> None:
        r, c = self._excluded_cells(t, rows, cols)
        scores[r, c] = INADMISSIBLE

    def _excluded_cells(self, t: int, rows: I64, cols: I64) -> tuple[I64, I64]:
        """(row, column) positions of the block's excluded pairs."""
        ex_m, ex_j = self.exclusions.get(t, (np.empty(0, np.int64), np.empty(0, np.int64)))
        if not len(ex_m):
            return ex_m, ex_j
        row_pos = np.full(self.n_mentees, -1, dtype=np.int64)
        row_pos[rows] = np.arange(len(rows))
        col_pos = np.full(int(self.f.track_strength.shape[0]), -1, dtype=np.int64)
        col_pos[cols] = np.arange(len(cols))
        r, c = row_pos[ex_m], col_pos[ex_j]
        keep = (r >= 0) & (c >= 0)
        return r[keep], c[keep]

    def candidates(self, t: int, rows: I64, k: int) -> tuple[I64, I64, I64, I64]:
        """Top pairs of each row: (row position, mentor, score int, bound per row).

        Rows keep every pair at or above a threshold guessed from a column sample (about
        2k pairs); a row where the guess keeps more than 6k keeps its best k of those, a
        row where it keeps fewer than k has its k-th best score found exactly. The bound is
        a score no pruned pair of the row exceeds.
        """
        cols, scores = self.block(t, rows)
        n_rows, n_cols = scores.shape
        if n_cols <= k:
            r, c = cells(scores >= 0)
            return r, cols[c], to_int(scores[r, c]), np.full(n_rows, -1, dtype=np.int64)
        # Seeded by the block, so results never depend on which thread scores which block.
        rng = np.random.default_rng([t, int(rows[0]) if len(rows) else 0, len(rows)])
        sample = rng.choice(n_cols, size=min(_SAMPLE, n_cols), replace=False)
        rank = min(max(1, math.ceil(2 * k * len(sample) / n_cols)), len(sample))
        tau = np.partition(scores[:, sample], len(sample) - rank, axis=1)[:, len(sample) - rank]
        tau = np.maximum(tau, 0.0)
        mask = scores >= tau[:, None]
        counts = np.count_nonzero(mask, axis=1)
        bound = to_int(tau) + 1  # pruned pairs are strictly below tau
        under = np.flatnonzero(counts < k)
        mask[under] = False
        r, c = cells(mask)
        over = counts[r] > 6 * k
        if over.any():
            # Too many above the guess: the row's best k are among them, so they are
            # ranked there (a few dozen cells a row), not across every mentor.
            rest = ~over
            ro, co = r[over], c[over]
            so = scores[ro, co]
            order = np.lexsort((-so, ro))
            ro, co, so = ro[order], co[order], so[order]
            first = np.searchsorted(ro, ro)  # where each cell's row starts
            place = np.arange(len(ro)) - first
            kept = place < k
            bound[ro[place == k]] = to_int(so[place == k])  # the best pair left out
            r = np.concatenate([r[rest], ro[kept]])
            c = np.concatenate([c[rest], co[kept]])
        if len(under):
            # Too few above the guess: the row's k-th best score is found exactly (values
            # only); ties with it join, and the next score bounds what stays out.
            sub = scores[under]
            kth = np.partition(sub, [n_cols - k - 1, n_cols - k], axis=1)
            stop, below = kth[:, n_cols - k], kth[:, n_cols - k - 1]
            ur, uc = cells(sub >= np.maximum(stop, 0.0)[:, None])
            r = np.concatenate([r, under[ur]])
            c = np.concatenate([c, uc])
            bound[under] = np.where(below >= 0, to_int(below), -1)
        bound[bound < 0] = -1
        return r, cols[c], to_int(scores[r, c]), bound

    def criteria(self, mentee: I64, mentor: I64, track: I64) -> F64:
        """Unweighted criterion values (pairs x CRITERIA), each 0..1, for explanations."""
        f = self.f
        out = np.zeros((len(mentee), len(CRITERIA)), dtype=np.float64)
        lin = f.linear_mentee[mentee] * f.linear_mentor[mentor]
        for name, columns in f.linear_groups.items():
            out[:, CRITERIA.index(name)] = lin[:, columns].sum(axis=1)
        if f.text_mentee.nnz:
            text = f.text_mentee[mentee].multiply(f.text_mentor[mentor])
            out[:, CRITERIA.index("text")] = np.asarray(text.sum(axis=1)).ravel()
        out[:, CRITERIA.index("track")] = (
            f.track_priority[mentee, track] * f.track_strength[mentor, track]
        )
        overlap = (f.slots_mentee[mentee] * f.slots_mentor[mentor]).sum(axis=1)
        out[:, CRITERIA.index("availability")] = np.minimum(overlap / f.target_slots, 1.0)
        shared = (f.language_mentee[mentee] * f.language_mentor[mentor]).sum(axis=1)
        out[:, CRITERIA.index("language")] = np.minimum(shared, 1.0)
        return np.clip(out, 0.0, 1.0)

    def overlap_hours(self, mentee: I64, mentor: I64) -> F64:
        """Weekly hours of common availability per pair."""
        f = self.f
        slots = (f.slots_mentee[mentee] * f.slots_mentor[mentor]).sum(axis=1)
        return np.asarray(slots, dtype=np.float64) * (30 / 60)


def cells(mask: npt.NDArray[np.bool_]) -> tuple[I64, I64]:
    """(row, column) of each True cell of a 2-D mask, row by row: ``np.nonzero``, but
    ten times faster on a block (numpy's 2-D nonzero unravels index by index)."""
    row, col = np.divmod(np.flatnonzero(mask), mask.shape[1])
    return row, col


def to_int(values: npt.NDArray[np.floating]) -> I64:
    """Scores (0..1, or INADMISSIBLE) as the integers the assignment compares exactly."""
    return np.floor(np.asarray(values, dtype=np.float64) * SCALE + 0.5).astype(np.int64)
