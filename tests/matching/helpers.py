"""Small programs and a brute-force optimum to check the engine against."""

from __future__ import annotations

import itertools
import random

import numpy as np

from plugin.matching import (
    Exclusion,
    Format,
    LockedPair,
    MatchOptions,
    MenteeProfile,
    MentorProfile,
    Objective,
    TrackOffer,
    Weights,
    Window,
)
from plugin.matching.engine import prepare_round
from plugin.matching.scoring import SCALE

TRACKS = ("research", "career", "clinical")
CODES = ("cardio", "peds", "surg", "onc", "neuro", "gh")
WORDS = [
    "cardiology",
    "research",
    "surgery",
    "pediatrics",
    "oncology",
    "teaching",
    "global",
    "health",
    "ethics",
]


def random_program(
    seed: int, n_mentees: int, n_mentors: int
) -> tuple[list[MenteeProfile], list[MentorProfile]]:
    rng = random.Random(seed)

    def windows() -> tuple[Window, ...]:
        out = []
        for _ in range(rng.randint(0, 2)):
            start = rng.randrange(0, 7 * 24 * 2) * 30
            out.append(Window(start, start + rng.choice((60, 120, 180))))
        return tuple(out)

    mentees = [
        MenteeProfile(
            id=f"m{i}",
            tracks=tuple(rng.sample(TRACKS, rng.randint(1, 2))),
            interests=frozenset(rng.sample(CODES, rng.randint(0, 3))),
            text=" ".join(rng.sample(WORDS, 3)),
            stage=rng.randint(0, 3),
            availability=windows(),
            format=rng.choice(list(Format)),
            languages=frozenset(rng.sample(("en", "es", "fr"), rng.randint(0, 2))),
            preferences=frozenset(rng.sample(("first_gen", "woman"), rng.randint(0, 1))),
        )
        for i in range(n_mentees)
    ]
    mentors = [
        MentorProfile(
            id=f"f{j}",
            offers=tuple(
                TrackOffer(t, rng.randint(1, 2), rng.choice((1.0, 0.5)))
                for t in rng.sample(TRACKS, rng.randint(1, 3))
            ),
            capacity=rng.randint(1, 3),
            interests=frozenset(rng.sample(CODES, rng.randint(0, 3))),
            text=" ".join(rng.sample(WORDS, 3)),
            stage=rng.randint(1, 5),
            availability=windows(),
            format=rng.choice(list(Format)),
            languages=frozenset(rng.sample(("en", "es", "fr"), rng.randint(0, 2))),
            attributes=frozenset(rng.sample(("first_gen", "woman"), rng.randint(0, 2))),
        )
        for j in range(n_mentors)
    ]
    return mentees, mentors


def brute_force(
    mentees: list[MenteeProfile],
    mentors: list[MentorProfile],
    objective: Objective,
    *,
    exclusions: tuple[Exclusion, ...] = (),
    locked: tuple[LockedPair, ...] = (),
    weights: Weights | None = None,
) -> tuple[int, int]:
    """(matched, total integer score) of the best assignment, by enumeration."""
    round_ = prepare_round(
        mentees,
        mentors,
        exclusions=exclusions,
        locked=locked,
        weights=weights,
        options=MatchOptions(objective=objective),
    )
    net = round_.network
    options: list[list[tuple[int, int, int]]] = []  # per request: (mentor, mt node, score)
    for r in range(net.n_requests):
        t = int(round_.request_track[r])
        cols, scores = round_.scorer.block(t, np.array([round_.request_mentee[r]]))
        ints = np.floor(scores[0].astype(np.float64) * SCALE + 0.5).astype(np.int64)
        row = [
            (int(j), int(round_.mentor_track_of[t][j]), int(s))
            for j, s, ok in zip(cols, ints, scores[0] >= 0, strict=True)
            if ok
        ]
        options.append([(-1, -1, 0), *row])
    best = (-1, -1)
    for choice in itertools.product(*options):
        mt_used: dict[int, int] = {}
        used: dict[int, int] = {}
        pairs: set[tuple[int, int]] = set()
        ok = True
        for r, (j, node, _) in enumerate(choice):
            if j < 0:
                continue
            mt_used[node] = mt_used.get(node, 0) + 1
            used[j] = used.get(j, 0) + 1
            pair = (int(round_.request_mentee[r]), j)
            if (
                pair in pairs
                or mt_used[node] > net.mentor_track_capacity[node]
                or used[j] > net.mentor_capacity[j]
            ):
                ok = False
                break
            pairs.add(pair)
        if not ok:
            continue
        matched = sum(1 for j, _, _ in choice if j >= 0)
        total = sum(s for j, _, s in choice if j >= 0)
        key = (matched, total) if objective is Objective.MAX_MATCHED else (0, total)
        if key > (best if objective is Objective.MAX_MATCHED else (0, best[1])):
            best = (matched, total)
    return best
