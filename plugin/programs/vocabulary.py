"""The interests vocabulary: a shipped data file, extended per program.

``plugin/programs/data/interests.json`` lists health-professions interests in groups
(clinical specialties, research areas, career paths, wellbeing topics) and the background
tags people may opt in to for identity-concordant matching. Codes are stable: profiles,
matching and exports store codes, never labels. The file is read on first use and kept for
the process (it is part of the package, so it cannot change while the process runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from plugin.models import Program

__all__ = [
    "EXTRA_GROUP_CODE",
    "Interest",
    "InterestGroup",
    "Vocabulary",
    "backgrounds",
    "program_vocabulary",
    "shipped_vocabulary",
]

#: Group code of the interests a program adds (``Program.extra_interests``).
EXTRA_GROUP_CODE = "program"


@dataclass(frozen=True)
class Interest:
    code: str
    label: str


@dataclass(frozen=True)
class InterestGroup:
    code: str
    label: str
    items: tuple[Interest, ...]


@dataclass(frozen=True)
class Vocabulary:
    """Interest groups in display order, with a lookup by code."""

    groups: tuple[InterestGroup, ...]

    @property
    def labels(self) -> dict[str, str]:
        return {item.code: item.label for group in self.groups for item in group.items}

    def __contains__(self, code: object) -> bool:
        return any(item.code == code for group in self.groups for item in group.items)

    def label(self, code: str) -> str:
        """The label of ``code``; a code no longer in the vocabulary shows as itself."""
        return self.labels.get(code, code)


@cache
def _load() -> tuple[tuple[InterestGroup, ...], tuple[Interest, ...]]:
    raw = resources.files("plugin.programs").joinpath("data/interests.json").read_text("utf-8")
    data = json.loads(raw)
    groups = tuple(
        InterestGroup(
            code=group["code"],
            label=group["label"],
            items=tuple(Interest(i["code"], i["label"]) for i in group["items"]),
        )
        for group in data["groups"]
    )
    tags = tuple(Interest(b["code"], b["label"]) for b in data["backgrounds"])
    return groups, tags


def shipped_vocabulary() -> Vocabulary:
    """The vocabulary as shipped, without any program's additions."""
    return Vocabulary(groups=_load()[0])


def backgrounds() -> tuple[Interest, ...]:
    """Background tags for opt-in, private identity-concordance preferences."""
    return _load()[1]


def program_vocabulary(program: Program) -> Vocabulary:
    """The shipped vocabulary plus ``program``'s own interests (last, as their own group)."""
    groups = _load()[0]
    shipped = {item.code for group in groups for item in group.items}
    extra = tuple(
        Interest(str(entry["code"]), str(entry.get("label") or entry["code"]))
        for entry in program.extra_interests
        if entry.get("code") and entry["code"] not in shipped
    )
    if extra:
        groups = (*groups, InterestGroup(EXTRA_GROUP_CODE, "This program's topics", extra))
    return Vocabulary(groups=groups)
