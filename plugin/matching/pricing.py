"""Column generation: the flow over the candidate pool, priced against every pruned pair.

Solve the min-cost flow over the pool, compute potentials, then price every pruned pair. A
request whose pruning bound already satisfies the reduced-cost test is settled without
re-scoring; the others have their rows re-scored exactly and every pair with a negative
reduced cost joins the pool. Repeat until no pair can improve: the flow is then optimal
for all admissible pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plugin.matching.flow import FlowNetwork, FlowSolution, ranges, solve_flow
from plugin.matching.parallel import in_order
from plugin.matching.scoring import INADMISSIBLE, SCALE, Scorer, cells, to_int

__all__ = ["CandidatePool", "Node", "Solver", "contains_sorted"]

I64 = npt.NDArray[np.int64]

#: Pricing rounds per node before giving up on the certificate (never reached in practice).
MAX_PRICING_ROUNDS = 50
#: Mentor-track potentials above this percentile of the track's are priced per pair.
HOT_PERCENTILE = 95


@dataclass(slots=True)
class CandidatePool:
    """Candidate arcs (request, mentor, integer score) and the bound on pruned ones."""

    request: I64
    mentor: I64
    score: I64
    bound: I64  # per request


@dataclass(slots=True)
class Stats:
    columns_added: int = 0
    pricing_rounds: int = 0
    rows_rescored: int = 0
    nodes: int = 0
    milp_solves: int = 0
    lp_solves: int = 0


@dataclass(frozen=True, slots=True)
class Node:
    solution: FlowSolution
    active: I64  # pool indices given to the flow
    certified: bool


class Solver:
    def __init__(
        self,
        network: FlowNetwork,
        pool: CandidatePool,
        scorer: Scorer,
        request_mentee: I64,
        request_track: I64,
        mentor_track_of: Mapping[int, I64],
        n_mentors: int,
        block_rows: int,
        deepen: int,
        threads: int = 1,
    ) -> None:
        self.network = network
        self.pool = pool
        self.scorer = scorer
        self.request_mentee = request_mentee
        self.request_track = request_track
        self.mentor_track_of = mentor_track_of
        self.n_mentors = n_mentors
        self.block_rows = block_rows
        #: Threads re-scoring blocks at once (see plugin.matching.parallel).
        self.threads = threads
        self.stats = Stats()
        self.keys = pool.request * n_mentors + pool.mentor
        #: Pairs a re-scored row adds beyond the improving ones.
        self.deepen = deepen
        #: Pool rows that focused solves use (None: the whole pool). Any subset still gives
        #: feasible flows; bounds always come from priced solves over the whole pool.
        self.focus: I64 | None = None

    def relax(
        self,
        forbidden: I64,
        penalty: tuple[I64, I64] | None = None,
        *,
        price: bool = True,
        focused: bool = False,
    ) -> Node:
        """Column generation under forbidden arcs (keys request*n + mentor) and optional
        Lagrangian penalties (sorted mentee*n + mentor keys, integer amounts).

        ``price=False`` solves over the pool only: fine for a feasible solution, never for
        a bound (the node is then not certified). ``focused`` (only without pricing)
        solves over ``self.focus`` when it is set.
        """
        for _ in range(MAX_PRICING_ROUNDS if price else 1):
            self.stats.pricing_rounds += 1
            self.stats.nodes += 1
            if price or not focused or self.focus is None:
                active = np.flatnonzero(~contains_sorted(forbidden, self.keys))
            else:
                active = self.focus[~contains_sorted(forbidden, self.keys[self.focus])]
            req, men = self.pool.request[active], self.pool.mentor[active]
            mt = self._mentor_track(req, men)
            score = self.pool.score[active] - self._penalty(req, men, penalty)
            solution = solve_flow(self.network, req, mt, score)
            # Pricing ignores penalties: it can only add more pairs than needed, never fewer.
            if not price:
                break
            added = self._price(solution.potential, forbidden)
            if not added:
                return Node(solution, active, certified=True)
        return Node(solution, active, certified=False)

    def _penalty(self, request: I64, mentor: I64, penalty: tuple[I64, I64] | None) -> I64:
        if penalty is None or not len(penalty[0]):
            return np.zeros(len(request), dtype=np.int64)
        keys, amounts = penalty
        pair = self.request_mentee[request] * self.n_mentors + mentor
        at = np.clip(np.searchsorted(keys, pair), 0, len(keys) - 1)
        return np.where(keys[at] == pair, amounts[at], 0)

    def _mentor_track(self, request: I64, mentor: I64) -> I64:
        out = np.empty(len(request), dtype=np.int64)
        tracks = self.request_track[request]
        for t, table in self.mentor_track_of.items():
            sel = tracks == t
            out[sel] = table[mentor[sel]]
        return out

    def _price(self, potential: I64, forbidden: I64, gap: int = 0) -> int:
        """Add every pruned pair whose reduced cost is below ``gap``; return how many.

        With ``gap=0`` these are the pairs that could improve the flow. A request whose
        bound cannot rule them out has its row re-scored exactly; the row is then also
        deepened (its next best pairs join the pool and its bound drops) so later rounds
        rarely need to re-score it again.
        """
        net, pool = self.network, self.pool
        requests = np.arange(net.n_requests, dtype=np.int64)
        slack = potential[net.request_node(requests)] - pool.bound - net.big - gap
        # A pruned pair (r, j) can have a reduced cost below gap only if its mentor-track
        # potential exceeds slack[r]. The few mentors above a high percentile ("hot") are
        # scored exactly for the rows only they could improve; a row that some other
        # mentor could improve is re-scored whole.
        level = np.full(net.n_requests, np.iinfo(np.int64).min, dtype=np.int64)
        hot_added = 0
        # Built before the hot rows add their pairs: the rows re-scored whole below are
        # others (slack < cut there, >= cut for hot rows), so what it lists stays right.
        by_request = _PoolByRequest(pool, net.n_requests)
        for t, table in self.mentor_track_of.items():
            if t not in self.scorer.cols or not len(self.scorer.cols[t]):
                continue
            nodes = table[self.scorer.cols[t]]  # the block's columns, in block order
            p = potential[net.mentor_track_node(nodes)]
            cut = int(
                np.partition(p, (len(p) - 1) * HOT_PERCENTILE // 100)[
                    (len(p) - 1) * HOT_PERCENTILE // 100
                ]
            )
            on_track = self.request_track == t
            level[on_track] = cut
            hot = np.flatnonzero(p > cut)
            rows = np.flatnonzero(on_track & (pool.bound >= 0) & (slack >= cut) & (slack < p.max()))
            if len(hot) and len(rows):
                hot_added += self._price_hot(t, rows, hot, potential, forbidden, gap, by_request)
        unsettled = np.flatnonzero((pool.bound >= 0) & (slack < level))
        if not len(unsettled):
            return hot_added
        self.stats.rows_rescored += len(unsettled)
        # Grouped by track, so every block below is rows of one track.
        unsettled = unsettled[np.argsort(self.request_track[unsettled], kind="stable")]
        blocks = [
            (int(t), reqs[start : start + self.block_rows])
            for t in np.unique(self.request_track[unsettled])
            for reqs in [unsettled[self.request_track[unsettled] == t]]
            for start in range(0, len(reqs), self.block_rows)
        ]

        def rescore(block: tuple[int, I64]) -> _Rescored:
            return self._rescore(block[0], block[1], potential, forbidden, gap, by_request)

        new_r: list[I64] = []
        new_j: list[I64] = []
        new_s: list[I64] = []
        improving_total = 0
        for (_, chunk), done in zip(blocks, in_order(rescore, blocks, self.threads), strict=True):
            pool.bound[chunk] = done.bound
            new_r.append(chunk[done.row])
            new_j.append(done.mentor)
            new_s.append(done.score)
            improving_total += done.improving
        added = sum(len(x) for x in new_r)
        if added:
            pool.request = np.concatenate([pool.request, *new_r])
            pool.mentor = np.concatenate([pool.mentor, *new_j])
            pool.score = np.concatenate([pool.score, *new_s])
            self.keys = pool.request * self.n_mentors + pool.mentor
            self.stats.columns_added += added
        return improving_total + hot_added

    def _rescore(
        self,
        t: int,
        chunk: I64,
        potential: I64,
        forbidden: I64,
        gap: int,
        by_request: _PoolByRequest,
    ) -> _Rescored:
        """One block of whole rows re-scored: its improving pairs, its next ``deepen`` best
        pairs, and each row's new bound. Reads shared state only (runs on any thread).

        Floats choose, integers decide: a pair improves when ``score_int + big > p[r] -
        p[c] - gap``. A float32 test with a margin wider than its rounding finds a superset
        in one pass over the block, and the exact integer test runs on that superset only.
        """
        net = self.network
        cols, scores = self.scorer.block(t, self.request_mentee[chunk])
        col_at = np.full(self.n_mentors, -1, dtype=np.int64)
        col_at[cols] = np.arange(len(cols))
        at, mentor = by_request.pairs_of(chunk)
        col = col_at[mentor]
        scores[at[col >= 0], col[col >= 0]] = INADMISSIBLE  # in the pool: not pruned
        p_row = potential[net.request_node(chunk)] - gap - net.big  # int64
        p_col = potential[net.mentor_track_node(self.mentor_track_of[t][cols])]
        shift = int(np.median(p_col)) if len(p_col) else 0
        col_f = ((p_col - shift) / SCALE).astype(np.float32)
        row_f = ((p_row - shift + 0.5) / SCALE).astype(np.float32)
        size = 1.0 + 2.0 * float(np.abs(col_f).max(initial=0.0)) + float(np.abs(row_f).max())
        margin = np.float32(8 * np.finfo(np.float32).eps * size + 4.0 / SCALE)
        lifted = scores + col_f[None, :]
        maybe = lifted >= (row_f - margin)[:, None]
        del lifted
        r, c = cells(maybe)
        del maybe
        ints = to_int(scores[r, c])
        exact = (scores[r, c] >= 0) & (ints > p_row[r] - p_col[c])
        r, c = r[exact], c[exact]
        if len(forbidden):
            improving = int(
                (~contains_sorted(forbidden, chunk[r] * self.n_mentors + cols[c])).sum()
            )
        else:
            improving = len(r)
        take = np.zeros(scores.shape, dtype=bool)
        take[r, c] = True
        n = scores.shape[1]
        depth = min(self.deepen, n)
        if depth < n:
            # The depth-th best score of each row is where deepening stops (ties join too);
            # the next one bounds every pair still pruned.
            kth = np.partition(scores, [n - depth - 1, n - depth], axis=1)
            stop, below = kth[:, n - depth], kth[:, n - depth - 1]
            del kth
            take |= scores >= np.maximum(stop, 0.0)[:, None]
            bound = np.where(below >= 0, to_int(below), -1)
        else:
            take |= scores >= 0
            bound = np.full(len(chunk), -1, dtype=np.int64)
        r, c = cells(take)
        return _Rescored(r, cols[c], to_int(scores[r, c]), bound, improving)

    def _price_hot(
        self,
        t: int,
        rows: I64,
        hot: I64,
        potential: I64,
        forbidden: I64,
        gap: int,
        by_request: _PoolByRequest,
    ) -> int:
        """Exact pricing of ``rows`` against the track's mentors at positions ``hot``."""
        net, pool = self.network, self.pool
        new_r: list[I64] = []
        new_j: list[I64] = []
        new_s: list[I64] = []
        improving = 0
        hot_at = np.full(self.n_mentors, -1, dtype=np.int64)
        hot_at[self.scorer.cols[t][hot]] = np.arange(len(hot))
        for start in range(0, len(rows), self.block_rows):
            chunk = rows[start : start + self.block_rows]
            cols, scores = self.scorer.block(t, self.request_mentee[chunk], hot)
            ints = to_int(scores)
            ints[scores < 0] = -1
            at, mentor = by_request.pairs_of(chunk)
            col = hot_at[mentor]
            ints[at[col >= 0], col[col >= 0]] = -1  # in the pool already: not pruned
            mt_nodes = net.mentor_track_node(self.mentor_track_of[t][cols])
            rhs = potential[net.request_node(chunk)][:, None] - potential[mt_nodes][None, :] - gap
            take = (ints >= 0) & (ints + net.big > rhs)
            r, c = cells(take)
            if len(forbidden):
                improving += int(
                    (~contains_sorted(forbidden, chunk[r] * self.n_mentors + cols[c])).sum()
                )
            else:
                improving += len(r)
            new_r.append(chunk[r])
            new_j.append(cols[c])
            new_s.append(ints[r, c])
        added = sum(len(x) for x in new_r)
        if added:
            # The rows' bounds stay valid: they bound what is still pruned, now fewer pairs.
            pool.request = np.concatenate([pool.request, *new_r])
            pool.mentor = np.concatenate([pool.mentor, *new_j])
            pool.score = np.concatenate([pool.score, *new_s])
            self.keys = pool.request * self.n_mentors + pool.mentor
            self.stats.columns_added += added
        return improving

    def violations(self, node: Node) -> list[tuple[int, I64, int]]:
        """(mentor, requests of one mentee given that mentor twice or more, the first)."""
        chosen = node.active[node.solution.chosen]
        mentee = self.request_mentee[self.pool.request[chosen]]
        pair = mentee * self.n_mentors + self.pool.mentor[chosen]
        unique, counts = np.unique(pair, return_counts=True)
        out = []
        for key in unique[counts > 1]:
            rows = chosen[pair == key]
            rows = rows[np.argsort(-self.pool.score[rows], kind="stable")]  # best track first
            out.append(
                (int(key % self.n_mentors), self.pool.request[rows], int(key // self.n_mentors))
            )
        return out

    def requests_of(self, mentee: int) -> I64:
        return np.flatnonzero(self.request_mentee == mentee)


@dataclass(frozen=True, slots=True)
class _Rescored:
    row: I64  # position in the block
    mentor: I64
    score: I64
    bound: I64  # per row of the block
    improving: int


class _PoolByRequest:
    """The pool's pairs grouped by request, to find a block's pairs without a search per cell.

    Built once per pricing (the pool only grows after the blocks are scored).
    """

    def __init__(self, pool: CandidatePool, n_requests: int) -> None:
        order = np.argsort(pool.request, kind="stable")
        self.mentor = pool.mentor[order]
        self.starts = np.searchsorted(pool.request[order], np.arange(n_requests + 1))

    def pairs_of(self, requests: I64) -> tuple[I64, I64]:
        """(position in ``requests``, mentor) of every pool pair of these requests."""
        lo = self.starts[requests]
        lengths = self.starts[requests + 1] - lo
        at = np.repeat(np.arange(len(requests), dtype=np.int64), lengths)
        return at, self.mentor[ranges(lo, lengths)]


def contains_sorted(sorted_keys: I64, keys: I64) -> npt.NDArray[np.bool_]:
    """Membership of ``keys`` (any shape) in a sorted array, by binary search."""
    if not len(sorted_keys):
        return np.zeros(np.shape(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.asarray(sorted_keys[at] == keys)
