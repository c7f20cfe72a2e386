"""The same-mentor-once LP: an exact bound (and usually the optimum) in a few LP solves.

The flow relaxation ignores "the same mentor at most once per mentee"; the LP with that
rule added (one row per mentee-mentor pair offered on two tracks) is integral on the
benchmark programs up to 10,000 mentees and its value is the optimum. It is solved
(highspy, re-solved warm as pairs join) over the pairs near the root flow's optimum, then
priced against every pair, pruned ones included:

* its duals, rounded to integers (rows <= 0), give node potentials and pair penalties;
* for any feasible solution x, ``cost(x) >= D + sum of x's pairs' reduced costs`` where
  ``D = b.y`` (weak duality: the identity holds for any y <= 0). With every pair priced,
  ``bound = D + sum over requests of min(0, its pairs' least reduced cost)`` is exact
  integer arithmetic, so float error in HiGHS can only cost tightness, never validity;
* pairs whose reduced cost is small join the LP and it is solved again, a few rounds.

An integral LP solution that is feasible and reaches the bound is proven optimal; else the
bound, potentials and penalties feed the reduced-cost window MILP in ``solve``.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

from plugin.matching.pricing import Node, Solver
from plugin.matching.repeated import reduced_cost
from plugin.matching.scoring import SCALE

__all__ = ["LP_ROUNDS", "LP_WINDOW", "LpBound", "feasible", "lp_bound"]

I64 = npt.NDArray[np.int64]

#: Pairs whose reduced cost is below this join the LP (root potentials, then LP duals).
#: At 50,000 x 10,000, SCALE // 20 started the LP with 158,000 columns (2.8 s cold);
#: SCALE // 50 starts it with 75,000 (1.5 s) and warm rounds add what is missing.
LP_WINDOW = SCALE // 50
#: LP solves before handing the rest of the proof to the window MILP (a warm one is
#: 0.05-0.4 s at 50,000 x 10,000; that program takes 8 with the window above).
LP_ROUNDS = 12


@dataclass(frozen=True, slots=True)
class LpBound:
    bound: int  # lower bound on the cost of every feasible solution (all pairs priced)
    potential: I64  # node potentials from the duals (request and mentor-track nodes)
    penalty: tuple[I64, I64]  # sorted mentee*n + mentor keys, integer amounts >= 0
    rows: I64 | None  # pool rows of the best feasible LP solution, if one was integral
    cost: int  # its cost (flow objective), or 0 when rows is None
    lp_solves: int


def lp_bound(solver: Solver, root: Node, time_limit: float) -> LpBound | None:
    """Bound the round with the LP (BEST_TOTAL_FIT only: no BIG coefficients in an LP).

    None if HiGHS fails (the caller then proves optimality another way).
    """
    pool = solver.pool
    empty = np.empty(0, dtype=np.int64)
    in_lp = reduced_cost(solver, root.solution.potential, (empty, empty)) < LP_WINDOW
    best: tuple[int, I64] | None = None  # (cost, pool rows) of the best integral LP optimum
    found: LpBound | None = None  # the best bound so far, every pair priced
    solves = 0
    lp = _Lp(solver, time_limit)
    in_model = np.zeros(len(pool.request), dtype=bool)
    for round_ in range(LP_ROUNDS):
        lp.add(np.flatnonzero(in_lp & ~in_model))
        in_model = in_lp.copy()
        columns = lp.columns
        solved = lp.solve()
        solves += 1
        if solved is None:
            break
        x, potential, penalty, dual_value = solved
        if (np.abs(x - np.round(x)) <= 1e-6).all():
            rows = columns[x > 0.5]
            if feasible(solver, rows):
                cost = -int(pool.score[rows].sum())
                if best is None or cost < best[0]:
                    best = (cost, rows)
        rc = reduced_cost(solver, potential, penalty)
        bound = _bound(solver, rc, dual_value)
        # With no pool pair pricing out, the LP is optimal over the pool: only pricing
        # can still raise the bound, so this is the moment to price, even if fractional.
        # "Stalled" says the same when rounding the duals leaves a few pool pairs at a
        # reduced cost of -1 or so: the LP has nothing left to take from the pool. (Waiting
        # for an exact tie there once spent every round re-solving the same LP, priced
        # only at the last one, and left a bound 10^10 off: minutes in the window MILP.)
        complete = bound == dual_value
        stalled = not (rc[~in_model] < LP_WINDOW).any()
        if (
            complete
            or stalled
            or (best is not None and best[0] <= bound)
            or round_ == LP_ROUNDS - 1
        ):
            # Every pruned pair with a negative reduced cost joins the pool (penalties are
            # ignored there: that only adds pairs), so the bound then covers all pairs.
            # Earlier rounds only grow the LP from the pool: pricing re-scores rows, and
            # a wider pricing window re-scored far more rows than the extra warm LP
            # rounds it saved cost (50k x 10k).
            improving = solver._price(potential, empty, 0)
            rc = reduced_cost(solver, potential, penalty)  # the pool may have grown
            bound = _bound(solver, rc, dual_value)
            if found is None or bound > found.bound:
                found = LpBound(bound, potential, penalty, None, 0, 0)
            if (best is not None and best[0] <= bound) or bound == dual_value:
                break  # proven, or the LP is optimal over every pair: more rounds won't help
            if stalled and not improving:
                break  # nothing can join the LP: more rounds would solve the same LP again
        grown = np.zeros(len(pool.request), dtype=bool)
        grown[: len(in_lp)] = in_lp
        in_lp = grown | (rc < LP_WINDOW)
        in_model = np.concatenate([in_model, np.zeros(len(in_lp) - len(in_model), dtype=bool)])
    if found is None:
        return None
    return LpBound(
        found.bound,
        found.potential,
        found.penalty,
        best[1] if best else None,
        best[0] if best else 0,
        solves,
    )


def _bound(solver: Solver, rc: I64, dual_value: int) -> int:
    """b.y plus, per request, its least negative pool reduced cost (exact integers)."""
    least = np.zeros(solver.network.n_requests, dtype=np.int64)
    np.minimum.at(least, solver.pool.request, rc)
    return dual_value + int(least.sum())


class _Lp:
    """The LP over a growing set of pool pairs, re-solved warm (HiGHS keeps its basis).

    Rows: one per request (<= 1), mentor-track and mentor (<= capacity left), and one per
    mentee-mentor pair that two or more of the LP's columns share (<= 1), added as needed.
    """

    def __init__(self, solver: Solver, time_limit: float) -> None:
        net = solver.network
        self.solver = solver
        self.n_req, self.n_mt = net.n_requests, len(net.mentor_track_capacity)
        self.n_men = len(net.mentor_capacity)
        self.base_upper = np.concatenate(
            [np.ones(self.n_req, dtype=np.int64), net.mentor_track_capacity, net.mentor_capacity]
        )
        self.columns = np.empty(0, dtype=np.int64)  # pool rows, in LP column order
        self.column_keys = np.empty(0, dtype=np.int64)
        self.row_keys = np.empty(0, dtype=np.int64)  # key of each shared-pair row, in order
        self.highs = highspy.Highs()  # type: ignore[no-untyped-call]
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("time_limit", max(float(time_limit), 0.5))
        n = len(self.base_upper)
        self.highs.addRows(
            n,
            np.full(n, -highspy.kHighsInf),
            self.base_upper.astype(np.float64),
            0,
            np.zeros(n, dtype=np.int32),
            np.empty(0, dtype=np.int32),
            np.empty(0, dtype=np.float64),
        )

    def add(self, columns: I64) -> None:
        solver, pool = self.solver, self.solver.pool
        if not len(columns):
            return
        req, men = pool.request[columns], pool.mentor[columns]
        mt = solver._mentor_track(req, men)
        keys = solver.request_mentee[req] * solver.n_mentors + men
        n_base = len(self.base_upper)
        key_row = np.full(len(columns), -1, dtype=np.int64)
        if len(self.row_keys):
            order = np.argsort(self.row_keys)
            sorted_keys = self.row_keys[order]
            at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
            hit = sorted_keys[at] == keys
            key_row[hit] = n_base + order[at[hit]]
        cells = np.stack([req, self.n_req + mt, self.n_req + self.n_mt + men, key_row], axis=1)
        counts = (cells >= 0).sum(axis=1)
        index = cells[cells >= 0].astype(np.int32)  # row-major: each column's rows together
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        m = len(columns)
        self.highs.addCols(
            m,
            -pool.score[columns].astype(np.float64),
            np.zeros(m),
            np.full(m, highspy.kHighsInf),  # x <= 1 follows from the request rows
            len(index),
            starts,
            index,
            np.ones(len(index)),
        )
        self.columns = np.concatenate([self.columns, columns])
        self.column_keys = np.concatenate([self.column_keys, keys])
        # Pairs now shared by two or more columns get their row, over all their columns.
        unique, count = np.unique(self.column_keys, return_counts=True)
        shared = unique[count > 1]
        missing = shared[~np.isin(shared, self.row_keys)]
        if not len(missing):
            return
        order = np.argsort(self.column_keys, kind="stable")
        sorted_keys = self.column_keys[order]
        lo = np.searchsorted(sorted_keys, missing, side="left")
        hi = np.searchsorted(sorted_keys, missing, side="right")
        index = np.concatenate([order[a:b] for a, b in zip(lo, hi, strict=True)]).astype(np.int32)
        starts = np.concatenate([[0], np.cumsum(hi - lo)[:-1]]).astype(np.int32)
        k = len(missing)
        self.highs.addRows(
            k,
            np.full(k, -highspy.kHighsInf),
            np.ones(k),
            len(index),
            starts,
            index,
            np.ones(len(index)),
        )
        self.row_keys = np.concatenate([self.row_keys, missing])

    def solve(self) -> tuple[npt.NDArray[np.float64], I64, tuple[I64, I64], int] | None:
        """(x, potentials, penalties, b.y) with integer duals y <= 0, or None on failure."""
        net = self.solver.network
        self.highs.run()
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        solution = self.highs.getSolution()
        x = np.asarray(solution.col_value, dtype=np.float64)
        y = np.minimum(np.round(np.asarray(solution.row_dual)), 0).astype(np.int64)
        n_req, n_mt, n_men = self.n_req, self.n_mt, self.n_men
        y_req, y_mt = y[:n_req], y[n_req : n_req + n_mt]
        y_men, y_key = y[n_req + n_mt : n_req + n_mt + n_men], y[n_req + n_mt + n_men :]
        potential = np.zeros(net.n_nodes, dtype=np.int64)
        potential[net.request_node(np.arange(n_req, dtype=np.int64))] = -y_req
        mt_all = np.arange(n_mt, dtype=np.int64)
        potential[net.mentor_track_node(mt_all)] = y_mt + y_men[net.mentor_track_mentor]
        order = np.argsort(self.row_keys)
        penalty = (self.row_keys[order], -y_key[order])
        dual_value = int(self.base_upper @ y[: len(self.base_upper)]) + int(y_key.sum())
        return x, potential, penalty, dual_value


def feasible(solver: Solver, rows: I64) -> bool:
    """Whether pool ``rows`` respect every limit, the same-mentor-once rule included."""
    net, pool = solver.network, solver.pool
    req, men = pool.request[rows], pool.mentor[rows]
    mt = solver._mentor_track(req, men)
    key = solver.request_mentee[req] * solver.n_mentors + men
    if (mt < 0).any() or len(np.unique(req)) < len(req) or len(np.unique(key)) < len(key):
        return False
    per_mt = np.bincount(mt, minlength=len(net.mentor_track_capacity))
    per_mentor = np.bincount(men, minlength=len(net.mentor_capacity))
    return bool(
        (per_mt <= net.mentor_track_capacity).all() and (per_mentor <= net.mentor_capacity).all()
    )
