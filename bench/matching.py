"""Matching engine: the certified optimum against a greedy baseline, from 200 to 50,000 mentees.

Synthetic programs (mentees x mentors; 3 tracks; mentees want 1-2 tracks; mentors offer
1-3 with capacities 1-5 per track and 1-5 overall; availability drawn in local time in
seven time zones and converted to UTC). Each size runs in its own subprocess, so the peak
RSS reported is that size's alone. Greedy takes the same candidate pairs best first.

    python -m bench.matching [--quick] [--sizes 200x50,2000x500] [--k 12] [--threads 1]

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from typing import Any

from bench._harness import emit, table
from plugin.matching import (
    Format,
    MatchOptions,
    MenteeProfile,
    MentorProfile,
    Objective,
    TrackOffer,
    Window,
)
from plugin.matching.parallel import thread_count

__all__ = ["synthetic_program"]

SIZES = ("200x50", "2000x500", "10000x2000", "50000x10000")
QUICK_SIZES = ("200x50", "scarce:300x60")
SCARCE = "scarce:2000x500"
TRACKS = ("research", "career", "clinical")
#: UTC offsets in minutes: Pacific, Eastern, London, Berlin, India, Singapore, Sydney.
ZONES = (-480, -300, 0, 60, 330, 480, 600)
SPECIALTIES = [
    "cardiology",
    "oncology",
    "neurology",
    "pediatrics",
    "surgery",
    "psychiatry",
    "radiology",
    "dermatology",
    "nephrology",
    "endocrinology",
    "gastroenterology",
    "rheumatology",
    "urology",
    "anesthesiology",
    "ophthalmology",
    "obstetrics",
    "nursing",
    "pharmacy",
    "dentistry",
    "physiotherapy",
]
THEMES = [
    "research",
    "grant",
    "writing",
    "publication",
    "residency",
    "application",
    "leadership",
    "wellbeing",
    "burnout",
    "teaching",
    "global",
    "health",
    "equity",
    "quality",
    "improvement",
    "clinical",
    "trials",
    "statistics",
    "career",
    "family",
    "balance",
    "networking",
    "interviews",
    "ethics",
    "simulation",
    "informatics",
    "policy",
    "advocacy",
    "mentoring",
    "writing",
    "presentation",
    "conference",
    "fellowship",
]


def _windows(rng: random.Random, scarce: bool) -> tuple[Window, ...]:
    zone = rng.choice(ZONES)
    out = []
    patterns = [(12 * 60, 13 * 60), (18 * 60, 20 * 60), (7 * 60, 8 * 60), (16 * 60, 18 * 60)]
    days = rng.sample(range(7), 1 if scarce else rng.randint(2, 4))
    for day in days:
        start, end = rng.choice(patterns)
        utc = (day * 1440 + start - zone) % (7 * 1440)
        out.append(Window(utc, utc + end - start))
    return tuple(out)


def synthetic_program(
    n_mentees: int, n_mentors: int, *, seed: int = 0, scarce: bool = False
) -> tuple[list[MenteeProfile], list[MentorProfile]]:
    """A reproducible program; ``scarce`` gives capacity close to demand and narrow windows."""
    rng = random.Random(seed)
    codes = [f"{s}:{t}" for s in SPECIALTIES[:12] for t in ("clin", "res")] + THEMES[:20]

    def person() -> dict[str, Any]:
        specialty = rng.randrange(len(SPECIALTIES))
        words = [SPECIALTIES[specialty]] * 2 + rng.sample(THEMES, rng.randint(4, 9))
        return {
            "interests": frozenset(
                rng.sample(codes[specialty * 2 % len(codes) : specialty * 2 % len(codes) + 6], 2)
                + rng.sample(codes, rng.randint(0, 3))
            ),
            "text": " ".join(words),
            "availability": _windows(rng, scarce),
            "format": rng.choice((Format.VIRTUAL, Format.EITHER, Format.EITHER, Format.IN_PERSON)),
            "languages": frozenset(
                ["en"] + ([rng.choice(("es", "fr", "zh", "hi"))] if rng.random() < 0.3 else [])
            ),
        }

    mentees = [
        MenteeProfile(
            id=f"s{i}",
            tracks=tuple(rng.sample(TRACKS, 1 if rng.random() < 0.6 else 2)),
            stage=rng.randint(0, 3),
            preferences=frozenset(["first_gen"] if rng.random() < 0.1 else []),
            **person(),
        )
        for i in range(n_mentees)
    ]
    mentors = []
    for j in range(n_mentors):
        offers = tuple(
            TrackOffer(t, rng.randint(1, 5), rng.choice((1.0, 0.75, 0.5)))
            for t in rng.sample(TRACKS, rng.randint(1, 3))
        )
        mentors.append(
            MentorProfile(
                id=f"f{j}",
                offers=offers,
                capacity=rng.randint(1, 5) if not scarce else rng.randint(3, 5),
                stage=rng.randint(2, 6),
                attributes=frozenset(["first_gen"] if rng.random() < 0.2 else []),
                **person(),
            )
        )
    return mentees, mentors


def run_size(spec: str, k: int, milp_limit: float, threads: int = 0) -> dict[str, Any]:
    """One size, in this process: scores, assignment, explanations, greedy, peak memory."""
    from plugin.matching.engine import assign, build_result, generate_candidates, prepare_round
    from plugin.matching.greedy import greedy_assign

    scarce = spec.startswith("scarce:")
    n_mentees, n_mentors = (int(x) for x in spec.removeprefix("scarce:").split("x"))
    mentees, mentors = synthetic_program(n_mentees, n_mentors, seed=7, scarce=scarce)
    objective = Objective.MAX_MATCHED if scarce else Objective.BEST_TOTAL_FIT
    options = MatchOptions(
        objective=objective, candidates_per_track=k, milp_time_limit=milp_limit, threads=threads
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    round_ = prepare_round(mentees, mentors, options=options)
    pool = generate_candidates(round_)
    scored, cpu_scored = time.perf_counter(), time.process_time()
    net = round_.network
    greedy = greedy_assign(
        pool,
        round_.request_mentee,
        round_.request_track,
        round_.mentor_track_of,
        net.mentor_track_capacity,
        net.mentor_capacity,
    )
    greedy_done, cpu_greedy = time.perf_counter(), time.process_time()
    assignment = assign(round_, pool)
    assigned, cpu_assigned = time.perf_counter(), time.process_time()
    result = build_result(round_, assignment)
    explained = time.perf_counter()
    optimum = float(assignment.score.sum())
    return {
        "size": spec,
        "objective": objective.value,
        "requests": net.n_requests,
        "capacity": int(net.mentor_capacity.sum()),
        "score_s": round(scored - started, 3),
        "assign_s": round(assigned - greedy_done, 3),
        "explain_s": round(explained - assigned, 3),
        "greedy_assign_s": round(greedy_done - scored, 3),
        "total_s": round(scored - started + assigned - greedy_done, 3),
        "end_to_end_s": round(scored - started + explained - greedy_done, 3),
        "threads": thread_count(threads),
        # CPU seconds (all threads): a steadier figure than wall time on a shared machine.
        "score_cpu_s": round(cpu_scored - cpu_started, 3),
        "assign_cpu_s": round(cpu_assigned - cpu_greedy, 3),
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "optimum_matched": result.matched,
        "greedy_matched": len(greedy.request),
        "greedy_score_pct": round(100 * float(greedy.score.sum()) / optimum, 2)
        if optimum
        else 100.0,
        "bound_gap": assignment.bound_gap,
        "certified": result.optimality_certified,
        "candidates": assignment.candidate_pairs,
        "columns_added": assignment.columns_added,
        "rows_rescored": assignment.rows_rescored,
        "flow_solves": assignment.flow_solves,
        "milp_solves": assignment.milp_solves,
        "lp_solves": assignment.lp_solves,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.matching")
    parser.add_argument("--quick", action="store_true", help="two small sizes (smoke test)")
    parser.add_argument(
        "--sizes", help="comma-separated MENTEESxMENTORS, prefix scarce: for the scarce case"
    )
    parser.add_argument("--k", type=int, default=MatchOptions().candidates_per_track)
    parser.add_argument("--milp-limit", type=float, default=30.0, help="seconds per MILP")
    parser.add_argument(
        "--threads", type=int, default=0, help="scoring threads (default 0: one per CPU, <= 4)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(run_size(options.child, options.k, options.milp_limit, options.threads)))
        return
    sizes = (
        options.sizes.split(",")
        if options.sizes
        else list(QUICK_SIZES if options.quick else (*SIZES, SCARCE))
    )
    rows = []
    for spec in sizes:
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.matching",
                *("--child", spec, "--k", str(options.k)),
                *("--milp-limit", str(options.milp_limit)),
                *("--threads", str(options.threads)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    table(
        [
            "mentees x mentors",
            "requests",
            "score s",
            "assign s",
            "total s",
            "end-to-end s",
            "score cpu s",
            "assign cpu s",
            "explain s",
            "peak MB",
            "matched opt",
            "matched greedy",
            "greedy % of opt",
            "certified",
            "cols added",
            "flows",
            "MILPs",
            "LPs",
            "load",
        ],
        [
            [
                r["size"],
                r["requests"],
                r["score_s"],
                r["assign_s"],
                r["total_s"],
                r["end_to_end_s"],
                r["score_cpu_s"],
                r["assign_cpu_s"],
                r["explain_s"],
                r["peak_rss_mb"],
                r["optimum_matched"],
                r["greedy_matched"],
                r["greedy_score_pct"],
                r["certified"],
                r["columns_added"],
                r["flow_solves"],
                r["milp_solves"],
                r["lp_solves"],
                r["load_avg_1m"],
            ]
            for r in rows
        ],
    )
    emit({"bench": "matching", "k": options.k, "milp_limit_s": options.milp_limit, "sizes": rows})


if __name__ == "__main__":
    main()
