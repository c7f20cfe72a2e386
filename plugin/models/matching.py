"""Match rounds: a coordinator's run of the matching engine, its inputs and its proposals.

A :class:`MatchRound` keeps what the engine was given (ids and features only: no names,
no e-mails, opt-in preferences only as counts) and what it answered, so a coordinator can
see later why a pair was made. Each :class:`MatchProposal` is one pair on one track with
its score, per-criterion contributions and reasons; the coordinator locks or rejects it,
and publishing turns the kept ones into relationships.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base, enum_column, utcnow
from plugin.models.program import Participant, Program, Track

__all__ = [
    "MatchProposal",
    "MatchRound",
    "ProposalState",
    "RoundObjective",
    "RoundStatus",
]


class RoundStatus(StrEnum):
    DRAFT = "draft"  #: created, not run yet
    RUNNING = "running"  #: the engine is running (inline or as a job)
    READY = "ready"  #: proposals are there to review, lock, reject
    PUBLISHED = "published"  #: relationships created; the round is read-only
    FAILED = "failed"  #: the engine refused the inputs (``error`` says why)

    @property
    def label(self) -> str:
        return self.value.capitalize()


class RoundObjective(StrEnum):
    """Mirrors :class:`plugin.matching.Objective` (models do not import the engine)."""

    BEST_TOTAL_FIT = "best_total_fit"
    MAX_MATCHED = "max_matched"

    @property
    def label(self) -> str:
        return {
            "best_total_fit": "Best total fit",
            "max_matched": "Match as many mentees as possible first",
        }[self.value]


class ProposalState(StrEnum):
    PROPOSED = "proposed"  #: the engine's proposal; replaced on a re-run
    LOCKED = "locked"  #: kept as is by re-runs
    REJECTED = "rejected"  #: never proposed again in this round
    PUBLISHED = "published"  #: a relationship was created from it


class MatchRound(Base):
    """One run (and re-runs) of the matching engine over a program."""

    __tablename__ = "match_round"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), index=True
    )
    objective: Mapped[RoundObjective] = mapped_column(
        enum_column(RoundObjective), default=RoundObjective.BEST_TOTAL_FIT
    )
    #: Criterion weights as given to the engine (``Weights`` field names).
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[RoundStatus] = mapped_column(enum_column(RoundStatus), default=RoundStatus.DRAFT)
    #: 0-100, updated by the job while it runs.
    progress: Mapped[int] = mapped_column(default=0)
    #: The stage the run is in (``ROUND_STAGES`` in plugin.programs.matching_rounds).
    progress_stage: Mapped[str] = mapped_column(String(20), default="")
    #: Coordinator exclusions: [[mentee participant id, mentor participant id], ...].
    exclusions: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    #: The engine's inputs of the last run: ids and features only.
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The optimality certificate of the last run (``Certificate`` fields).
    certificate: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Unmatched (mentee, track) requests: [{mentee_id, track, reason, detail, ...}].
    unmatched: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: Per-pair outcome of publishing: [{proposal_id, ok, message}].
    publish_report: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    total_score: Mapped[float] = mapped_column(default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")
    runs: Mapped[int] = mapped_column(default=0)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    program: Mapped[Program] = relationship()
    proposals: Mapped[list[MatchProposal]] = relationship(
        back_populates="round", cascade="all, delete-orphan", order_by="MatchProposal.id"
    )

    def __repr__(self) -> str:
        return f"<MatchRound {self.id} program={self.program_id} {self.status}>"


class MatchProposal(Base):
    """A proposed pair on one track, with the score and the reasons behind it."""

    __tablename__ = "match_proposal"
    __table_args__ = (Index("ix_match_proposal_round_state", "round_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("match_round.id", ondelete="CASCADE"))
    mentee_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    mentor_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    track: Mapped[Track] = mapped_column(enum_column(Track))
    score: Mapped[float] = mapped_column(default=0.0)
    #: [{criterion, value, weight, contribution}], in ``CRITERIA`` order.
    contributions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: The top reasons as sentences, strongest first.
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[ProposalState] = mapped_column(
        enum_column(ProposalState), default=ProposalState.PROPOSED
    )
    relationship_id: Mapped[int | None] = mapped_column(
        ForeignKey("relationship.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    round: Mapped[MatchRound] = relationship(back_populates="proposals")
    mentee: Mapped[Participant] = relationship(foreign_keys=[mentee_id])
    mentor: Mapped[Participant] = relationship(foreign_keys=[mentor_id])

    @property
    def top_contributions(self) -> list[dict[str, Any]]:
        return sorted(self.contributions, key=lambda c: -float(c.get("contribution", 0)))[:3]
