"""The exact assignment: a min-cost flow (OR-Tools) and its node potentials.

Network, one unit of flow per proposed pair::

    source -> request (mentee, track)   capacity 1
    request -> mentor-track             capacity 1, cost -(score [+ BIG])  one arc per candidate
    mentor-track -> mentor              capacity: the mentor's capacity on that track
    mentor -> sink                      capacity: the mentor's overall capacity
    source -> sink                      bypass for requests left unmatched, cost 0

The request node enforces one mentor per mentee per track; the mentor-track and mentor
nodes enforce both capacities. "Match as many as possible first" adds BIG to every pair:
BIG exceeds any total score, so one more matched request always outweighs any score.

Node potentials (shortest-path distances in the residual graph, Bellman-Ford) are the
optimality certificate: an arc not in the network can only improve the solution if its
reduced cost ``cost + pi[tail] - pi[head]`` is negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from ortools.graph.python import min_cost_flow

__all__ = ["FlowNetwork", "FlowSolution", "MatchingSolverError", "ranges", "solve_flow"]

I64 = npt.NDArray[np.int64]


class MatchingSolverError(RuntimeError):
    """The solver failed on a network that should always be feasible (a bug: report it)."""


@dataclass(frozen=True, slots=True)
class FlowNetwork:
    """Requests, mentor-track nodes and mentors with their remaining capacities."""

    n_requests: int
    mentor_track_capacity: I64  # per mentor-track node
    mentor_track_mentor: I64  # the mentor of each mentor-track node
    mentor_capacity: I64  # per mentor
    big: int  # 0 for best total fit, > any total score for max matched

    @property
    def n_nodes(self) -> int:
        return 2 + self.n_requests + len(self.mentor_track_capacity) + len(self.mentor_capacity)

    def request_node(self, request: I64) -> I64:
        return 2 + request

    def mentor_track_node(self, mentor_track: I64) -> I64:
        return 2 + self.n_requests + mentor_track


@dataclass(frozen=True, slots=True)
class FlowSolution:
    """Which candidate arcs carry flow, the objective, and the node potentials."""

    chosen: npt.NDArray[np.bool_]  # per candidate arc given to solve_flow
    cost: int  # min-cost flow objective (negated scores, BIG included)
    potential: I64  # per node


def solve_flow(network: FlowNetwork, request: I64, mentor_track: I64, score: I64) -> FlowSolution:
    """Solve exactly over the given candidate arcs and compute the potentials."""
    nr, nmt = network.n_requests, len(network.mentor_track_capacity)
    n_mentors = len(network.mentor_capacity)
    source, sink = 0, 1
    req_nodes = network.request_node(np.arange(nr, dtype=np.int64))
    mt_nodes = network.mentor_track_node(np.arange(nmt, dtype=np.int64))
    mentor_nodes = 2 + nr + nmt + np.arange(n_mentors, dtype=np.int64)
    tails = np.concatenate(
        [
            np.full(nr, source),
            network.request_node(request),
            mt_nodes,
            mentor_nodes,
            [source],
        ]
    ).astype(np.int64)
    heads = np.concatenate(
        [
            req_nodes,
            network.mentor_track_node(mentor_track),
            mentor_nodes[network.mentor_track_mentor],
            np.full(n_mentors, sink),
            [sink],
        ]
    ).astype(np.int64)
    caps = np.concatenate(
        [
            np.ones(nr),
            np.ones(len(request)),
            network.mentor_track_capacity,
            network.mentor_capacity,
            [nr],
        ]
    ).astype(np.int64)
    costs = np.concatenate(
        [
            np.zeros(nr),
            -(score + network.big),
            np.zeros(nmt),
            np.zeros(n_mentors),
            [0],
        ]
    ).astype(np.int64)
    solver = min_cost_flow.SimpleMinCostFlow()
    arcs = solver.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supplies = np.zeros(network.n_nodes, dtype=np.int64)
    supplies[source], supplies[sink] = nr, -nr
    solver.set_nodes_supplies(np.arange(network.n_nodes, dtype=np.int64), supplies)
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise MatchingSolverError(f"min-cost flow returned status {status}")
    flows = np.asarray(solver.flows(arcs), dtype=np.int64)
    potential = _potentials(network.n_nodes, tails, heads, caps, costs, flows)
    first = nr
    chosen = flows[first : first + len(request)] > 0
    return FlowSolution(chosen=chosen, cost=int(solver.optimal_cost()), potential=potential)


def _potentials(n: int, tails: I64, heads: I64, caps: I64, costs: I64, flows: I64) -> I64:
    """Shortest distances from a virtual root (0-cost arc to every node), residual graph.

    Vectorised Bellman-Ford that only relaxes arcs leaving nodes changed in the previous
    pass. Every residual arc then has a non-negative reduced cost; a negative cycle (a
    non-optimal flow) would never settle and raises.
    """
    forward = flows < caps
    backward = flows > 0
    t = np.concatenate([tails[forward], heads[backward]])
    h = np.concatenate([heads[forward], tails[backward]])
    c = np.concatenate([costs[forward], -costs[backward]])
    order = np.argsort(t, kind="stable")
    t, h, c = t[order], h[order], c[order]
    starts = np.searchsorted(t, np.arange(n + 1))
    distance = np.zeros(n, dtype=np.int64)
    active = np.arange(n, dtype=np.int64)
    for _ in range(n + 1):
        lengths = starts[active + 1] - starts[active]
        if not lengths.sum():
            return distance
        arcs = ranges(starts[active], lengths)
        candidate = distance[t[arcs]] + c[arcs]
        target = h[arcs]
        better = candidate < distance[target]
        if not better.any():
            return distance
        target, candidate = target[better], candidate[better]
        before = distance.copy()
        np.minimum.at(distance, target, candidate)
        active = np.flatnonzero(distance < before)
    raise MatchingSolverError("residual graph has a negative cycle: the flow is not optimal")


def ranges(starts: I64, lengths: I64) -> I64:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])``, vectorised."""
    total = int(lengths.sum())
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.asarray(offsets + np.arange(total, dtype=np.int64), dtype=np.int64)
