"""Exact assignment over pruned candidates, certified for the full problem.

Column generation (``pricing``) makes the flow optimal for every admissible pair; when the
flow gives a mentee the same mentor on two tracks, ``lpbound`` (best total fit) proves the
optimum with the LP that adds that rule, usually integral; otherwise (max matched, or an
LP that fails) ``repeated`` gives Lagrangian bounds. Either bound's potentials then feed
an exact MILP over the few pairs that could still improve, if a gap is left.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plugin.matching.flow import FlowNetwork
from plugin.matching.lpbound import lp_bound
from plugin.matching.pricing import CandidatePool, Node, Solver
from plugin.matching.repeated import lagrangian, reduced_cost, repair, solve_milp
from plugin.matching.scoring import SCALE, Scorer

__all__ = ["Assignment", "CandidatePool", "solve_round"]

I64 = npt.NDArray[np.int64]

#: Reduced cost (against the root potentials) below which a pair takes part in the
#: flow solves of the LP path's fallback repair.
FOCUS_WINDOW = SCALE // 10


@dataclass(frozen=True, slots=True)
class Assignment:
    """Chosen (request, mentor, score) triples and the proof figures."""

    request: I64
    mentor: I64
    score: I64
    certified: bool
    candidate_pairs: int
    columns_added: int
    pricing_rounds: int
    rows_rescored: int
    flow_solves: int  # flow solves (relaxation and repairs)
    milp_solves: int
    bound_gap: float
    lp_solves: int = 0


def solve_round(
    network: FlowNetwork,
    pool: CandidatePool,
    scorer: Scorer,
    request_mentee: I64,
    request_track: I64,
    mentor_track_of: Mapping[int, I64],
    n_mentors: int,
    *,
    block_rows: int,
    deepen: int,
    milp_time_limit: float,
    threads: int = 1,
) -> Assignment:
    """Certified optimum of the round (see the module docstring)."""
    solver = Solver(
        network,
        pool,
        scorer,
        request_mentee,
        request_track,
        mentor_track_of,
        n_mentors,
        block_rows,
        deepen,
        threads,
    )
    empty = np.empty(0, dtype=np.int64)
    root = solver.relax(empty, price=False)
    lp_path = not network.big and bool(solver.violations(root))
    if not lp_path:
        # Column generation certifies the flow; the LP path prices everything itself.
        if solver._price(root.solution.potential, empty):
            root = solver.relax(empty)
        else:
            root = Node(root.solution, root.active, certified=True)
    certified = root.certified
    chosen = root.active[root.solution.chosen]
    request, mentor, score = pool.request[chosen], pool.mentor[chosen], pool.score[chosen]
    best_cost = bound = root.solution.cost
    potential, bound_penalty = root.solution.potential, (empty, empty)
    found_lp = None
    if solver.violations(root):
        if lp_path:  # not for BIG: an LP with BIG coefficients is numerically unsafe
            # Its fallback repair only needs a feasible solution, so it solves over the
            # pairs near the root's optimum; bounds never come from these solves.
            near = reduced_cost(solver, root.solution.potential, (empty, empty)) < FOCUS_WINDOW
            solver.focus = np.flatnonzero(near)
            found_lp = lp_bound(solver, root, milp_time_limit)
        if found_lp is None:
            # The Lagrangian's repairs steer its steps: a narrower pool made them worse
            # (scarce 2,000x500: 3.1 -> 8.4 CPU-s), so they keep the whole pool.
            solver.focus = None
            if not root.certified:
                root = solver.relax(empty)  # the fallback's bounds need a priced root
                certified = root.certified
            best = repair(solver, root)
            chosen = best.active[best.solution.chosen]
            request, mentor, score = pool.request[chosen], pool.mentor[chosen], pool.score[chosen]
            best_cost = best.solution.cost
            found = lagrangian(solver, root, best_cost)
            certified &= found.certified
            if found.cost < best_cost:
                best_cost = found.cost
                request, mentor, score = found.request, found.mentor, found.score
            if found.bound > bound:
                bound, bound_penalty = found.bound, found.penalty
                potential = found.node.solution.potential
        else:
            certified = True  # the LP bound holds for every pair, pruned ones priced
            solver.stats.lp_solves += found_lp.lp_solves
            # A fractional LP leaves the incumbent to the window MILP below; matching
            # nobody (cost 0) is feasible meanwhile, and a repair is the fallback.
            rows = found_lp.rows if found_lp.rows is not None else empty
            best_cost = found_lp.cost
            request, mentor, score = pool.request[rows], pool.mentor[rows], pool.score[rows]
            bound, potential, bound_penalty = found_lp.bound, found_lp.potential, found_lp.penalty
    if best_cost > bound:
        # A solution using a pair whose reduced cost is >= tau costs >= bound + tau. So a
        # MILP over the pairs below tau (pruned ones included) is exact once its optimum
        # is within tau of the bound; tau starts small (small MILP) and grows if needed.
        gap = best_cost - bound
        # The LP bound is tight and its incumbent may be a mere repair: start small.
        tau = min(gap, SCALE // 200 if found_lp else max(SCALE // 200, gap // 16))
        deadline = time.monotonic() + milp_time_limit
        while True:
            solver._price(potential, empty, tau)
            keep = reduced_cost(solver, potential, bound_penalty) < tau
            left = deadline - time.monotonic()
            exact = solve_milp(solver, np.flatnonzero(keep), max(left, 0.5))
            solver.stats.milp_solves += 1
            if exact is not None:
                rows, exact_cost, optimal = exact
                if exact_cost < best_cost:
                    best_cost = exact_cost
                    request, mentor, score = pool.request[rows], pool.mentor[rows], pool.score[rows]
            if exact is None or not optimal:
                certified = False
                break
            gap = best_cost - bound
            if gap <= tau:
                bound = best_cost
                break
            if time.monotonic() >= deadline:
                certified = False
                break
            tau = min(gap, tau * 2)
    if found_lp is not None and not certified:
        repaired = repair(solver, root)
        rows = repaired.active[repaired.solution.chosen]
        if repaired.solution.cost < best_cost:
            best_cost = repaired.solution.cost
            request, mentor, score = pool.request[rows], pool.mentor[rows], pool.score[rows]
    return Assignment(
        request=request,
        mentor=mentor,
        score=score,
        certified=bool(certified),
        candidate_pairs=len(pool.request),
        columns_added=solver.stats.columns_added,
        pricing_rounds=solver.stats.pricing_rounds,
        rows_rescored=solver.stats.rows_rescored,
        flow_solves=solver.stats.nodes,
        milp_solves=solver.stats.milp_solves,
        lp_solves=solver.stats.lp_solves,
        bound_gap=(best_cost - bound) / SCALE,
    )
