"""The same mentor at most once per mentee: the side constraint no flow expresses.

Limits on (mentee, track), (mentee, mentor) and (mentor, track) together form a 3-index
assignment. When the flow repeats a mentor for a mentee:

1. a repaired flow (each repeated mentor kept on the mentee's best track) is feasible;
2. Lagrangian penalties on repeated pairs raise the lower bound (each step one flow);
3. every solution is worth at most ``bound - sum of its pairs' reduced costs`` (LP
   duality with the penalised potentials as duals), so a MILP (HiGHS via SciPy) over the
   pairs whose reduced cost is below a window tau is exact once its optimum is within
   tau of the bound; pruned pairs below tau join first, by the same pricing step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from plugin.matching.pricing import Node, Solver, contains_sorted
from plugin.matching.scoring import SCALE

__all__ = [
    "LAGRANGIAN_GAP",
    "LAGRANGIAN_STEPS",
    "LagrangianResult",
    "lagrangian",
    "reduced_cost",
    "repair",
    "solve_milp",
]

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LagrangianResult:
    cost: int  # best feasible cost found (or the incumbent's)
    request: I64
    mentor: I64
    score: I64
    bound: int  # best lower bound on the cost of any feasible solution
    node: Node
    penalty: tuple[I64, I64]
    certified: bool


#: Subgradient steps on "same mentor at most once"; each is one flow solve.
LAGRANGIAN_STEPS = 12
#: Stop the steps once the bound is this close (in SCALE units) to the best feasible value.
LAGRANGIAN_GAP = SCALE // 500


def lagrangian(solver: Solver, root: Node, incumbent: int) -> LagrangianResult:
    """Price "same mentor twice" into the flow (penalty per mentee-mentor pair).

    For penalties lam >= 0 the penalised flow's cost minus sum(lam) bounds every feasible
    solution from below (once pricing has certified that flow for all pairs); a repaired
    penalised solution is feasible. Polyak steps toward the incumbent; the steps solve over
    the pool only and the best penalties are then re-solved with pricing for the bound.
    """
    pool = solver.pool
    empty = np.empty(0, dtype=np.int64)
    keys, lam = empty, np.empty(0, dtype=np.float64)
    node, theta, step_bound = root, 1.0, root.solution.cost
    best_penalty: tuple[I64, I64] = (empty, empty)
    incumbent_rows: I64 | None = None
    for step in range(LAGRANGIAN_STEPS):
        chosen = node.active[node.solution.chosen]
        pair = solver.request_mentee[pool.request[chosen]] * solver.n_mentors + pool.mentor[chosen]
        used, count = np.unique(pair, return_counts=True)
        keys_new = np.union1d(keys, used[count > 1])
        grown = np.zeros(len(keys_new))
        grown[np.searchsorted(keys_new, keys)] = lam
        keys, lam = keys_new, grown
        usage = np.zeros(len(keys))
        hit = contains_sorted(keys, used)
        usage[np.searchsorted(keys, used[hit])] = count[hit]
        subgradient = usage - 1.0
        if step % 3 == 2 or not (count > 1).any():
            feasible = repair(solver, node, best_penalty)
            rows = feasible.active[feasible.solution.chosen]
            true_cost = int(-(pool.score[rows].sum()) - solver.network.big * len(rows))
            if true_cost < incumbent:
                incumbent, incumbent_rows = true_cost, rows
        if incumbent - step_bound <= LAGRANGIAN_GAP:
            break  # reduced-cost fixing leaves a small exact MILP from here
        norm = float((subgradient**2).sum())
        if norm == 0:
            break
        lam = np.maximum(0.0, lam + theta * (incumbent - step_bound) / norm * subgradient)
        penalty = (keys, np.round(lam).astype(np.int64))
        node = solver.relax(empty, penalty, price=False)
        lower = node.solution.cost - int(penalty[1].sum())
        if lower > step_bound:
            step_bound, best_penalty = lower, penalty
        else:
            theta /= 2  # halving at once converged best on the benchmark programs
    # The bound must hold for every pair, pruned ones too: re-solve with pricing.
    final = solver.relax(empty, best_penalty)
    bound = final.solution.cost - int(best_penalty[1].sum())
    feasible = repair(solver, final, best_penalty)
    rows = feasible.active[feasible.solution.chosen]
    true_cost = int(-(pool.score[rows].sum()) - solver.network.big * len(rows))
    if true_cost < incumbent:
        incumbent, incumbent_rows = true_cost, rows
    if incumbent_rows is None:
        return LagrangianResult(
            incumbent + 1, empty, empty, empty, bound, final, best_penalty, final.certified
        )
    return LagrangianResult(
        incumbent,
        pool.request[incumbent_rows],
        pool.mentor[incumbent_rows],
        pool.score[incumbent_rows],
        bound,
        final,
        best_penalty,
        final.certified,
    )


def reduced_cost(solver: Solver, potential: I64, penalty: tuple[I64, I64]) -> I64:
    """Reduced cost of every pool pair against a (penalised) flow's potentials."""
    net, pool = solver.network, solver.pool
    mt = solver._mentor_track(pool.request, pool.mentor)
    cost = -(pool.score + net.big) + solver._penalty(pool.request, pool.mentor, penalty)
    return cost + potential[net.request_node(pool.request)] - potential[net.mentor_track_node(mt)]


def solve_milp(solver: Solver, columns: I64, time_limit: float) -> tuple[I64, int, bool] | None:
    """Exact optimum over ``columns`` with "same mentor once per mentee".

    Returns (pool rows, flow cost, proven optimal); on time-out the best solution HiGHS
    found (not proven), or None if it found none.

    Returns the chosen pool rows and the solution's flow cost (BIG included), so it compares
    with the relaxation. With BIG (max matched) it solves two MILPs: the largest number
    matched, then the best score at that number; never one MILP with BIG coefficients.
    """
    net, pool = solver.network, solver.pool
    req, men, sc = pool.request[columns], pool.mentor[columns], pool.score[columns]
    n = len(columns)
    mt = solver._mentor_track(req, men)
    mentee = solver.request_mentee[req]
    pair_key = mentee * solver.n_mentors + men
    _, pair_row, pair_count = np.unique(pair_key, return_inverse=True, return_counts=True)
    shared = pair_count[pair_row] > 1  # only pairs with two or more tracks need a row
    _, shared_row = np.unique(pair_row[shared], return_inverse=True)
    n_req, n_mt, n_men = net.n_requests, len(net.mentor_track_capacity), len(net.mentor_capacity)
    n_shared = int(shared_row.max()) + 1 if shared.any() else 0
    cols = np.arange(n)
    rows = np.concatenate([req, n_req + mt, n_req + n_mt + men, n_req + n_mt + n_men + shared_row])
    matrix = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, np.concatenate([cols, cols, cols, cols[shared]]))),
        shape=(n_req + n_mt + n_men + n_shared, n),
    )
    upper = np.concatenate(
        [np.ones(n_req), net.mentor_track_capacity, net.mentor_capacity, np.ones(n_shared)]
    )
    constraints = [LinearConstraint(matrix, -np.inf, upper)]
    # HiGHS's presolve spent 2 of the 3.8 s of the 50,000 x 10,000 window MILP (45,000
    # columns) and the solve without it is as exact: 1.7-2.4 s.
    options = {"time_limit": time_limit, "mip_rel_gap": 0.0, "presolve": False}
    bounds = Bounds(0, 1)
    integral = np.ones(n)
    if net.big:
        most = milp(
            -np.ones(n),
            integrality=integral,
            bounds=bounds,
            constraints=constraints,
            options=options,
        )
        if most.status != 0:
            return None  # no fallback: a count that is not the largest breaks the objective
        count = round(-most.fun)
        constraints.append(LinearConstraint(np.ones((1, n)), count, count))
    found = milp(
        -sc.astype(np.float64),
        integrality=integral,
        bounds=bounds,
        constraints=constraints,
        options=options,
    )
    if found.x is None:
        return None
    picked = np.flatnonzero(found.x > 0.5)
    cost = -int(sc[picked].sum()) - net.big * len(picked)
    return columns[picked], cost, found.status == 0


def repair(solver: Solver, node: Node, penalty: tuple[I64, I64] | None = None) -> Node:
    """A feasible node: keep each repeated mentor on its best-scoring track, re-solve."""
    forbidden = np.empty(0, dtype=np.int64)
    while True:
        found = solver.violations(node)
        if not found:
            return node
        for mentor, requests, mentee in found:
            others = solver.requests_of(mentee)
            others = others[others != int(requests[0])]
            forbidden = np.union1d(forbidden, others * solver.n_mentors + mentor)
        node = solver.relax(forbidden, penalty, price=False, focused=True)
