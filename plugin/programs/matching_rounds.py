"""Match rounds: start, run (inline or as a job), lock and reject, re-run, publish.

A round is run by the pure engine (:mod:`plugin.matching`) over inputs built from the
database (:mod:`plugin.programs.matching_inputs`). Small programs run inline in the
coordinator's request; larger ones are deferred to ``workers.jobs.run_match_round``
through the outbox, which updates ``progress`` as it goes. Publishing turns the kept
proposals into active relationships in one transaction: a pair that no longer fits
(mentor full, mentee already paired on the track) is reported per pair.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.db import begin_write, utcnow
from plugin.jobs import QueueName, defer
from plugin.matching import (
    MatchingInputError,
    MatchOptions,
    MatchResult,
    Objective,
    Stage,
    Weights,
    match,
)
from plugin.models import (
    MatchProposal,
    MatchRound,
    Participant,
    ParticipantStatus,
    Program,
    ProposalState,
    RelationshipOrigin,
    RoundObjective,
    RoundStatus,
    Track,
)
from plugin.programs.errors import FormInvalid, ProgramError, StateConflict
from plugin.programs.matching_inputs import build_engine_inputs, participant_id
from plugin.programs.relationships import propose_relationship

__all__ = [
    "INLINE_LIMIT",
    "ROUND_STAGES",
    "WEIGHT_FIELDS",
    "ProgressRecorder",
    "PublishOutcome",
    "RoundProgress",
    "execute_round",
    "parse_round_form",
    "publish_round",
    "queue_run",
    "round_in_program",
    "set_proposal_state",
    "start_round",
]

#: Rounds with at most this many active mentees and mentors together run inline in the
#: request (well under a second); larger ones run as a job with progress on the page.
INLINE_LIMIT: Final = 300
#: The weights a coordinator may set on the form (criteria and the two tuning values).
WEIGHT_FIELDS: Final = tuple(f.name for f in fields(Weights))
#: Largest weight accepted on the form: weights are relative, this keeps them readable.
MAX_WEIGHT: Final = 100.0

#: ``progress(stage, percent)``: a running round reached ``percent`` (0-100) in ``stage``.
RoundProgress = Callable[[str, int], None]

#: A round's stages in order, with what the round page says while it is in each.
ROUND_STAGES: Final = {
    "queued": "Waiting for a worker to start",
    "inputs": "Reading profiles, seats and exclusions",
    Stage.FEATURES.value: "Comparing every mentee with every mentor",
    Stage.CANDIDATES.value: "Scoring the best mentors for each mentee",
    Stage.SOLVING.value: "Finding the best assignment under every constraint",
    Stage.EXPLAINING.value: "Explaining each pair and each unmatched mentee",
    "saving": "Saving the proposals",
    "done": "Done",
}
#: Where each stage sits on the round's 0-100 bar (start, end): candidate scoring and the
#: solve take most of the time of a large round.
_STAGE_SPAN: Final = {
    "inputs": (0, 10),
    Stage.FEATURES.value: (10, 20),
    Stage.CANDIDATES.value: (20, 60),
    Stage.SOLVING.value: (60, 90),
    Stage.EXPLAINING.value: (90, 96),
    "saving": (96, 100),
}
#: Least seconds between two progress writes within one stage (a new stage always writes).
PROGRESS_INTERVAL: Final = 1.0


class ProgressRecorder:
    """Store a running round's stage and percent, each write in its own short transaction.

    Throttled: a write when the stage changes, else only when the percent grew and at least
    ``interval`` seconds passed since the last write. The update touches a RUNNING round
    only, so a late report never overwrites a finished or failed one.
    """

    def __init__(
        self,
        open_session: Callable[[], AbstractContextManager[Session]],
        round_id: int,
        *,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_session = open_session
        self._round_id = round_id
        self._interval = interval
        self._clock = clock
        self._stage = ""
        self._percent = -1
        self._written_at = 0.0

    def __call__(self, stage: str, percent: int) -> None:
        now = self._clock()
        if stage == self._stage and (
            percent <= self._percent or now - self._written_at < self._interval
        ):
            return
        with self._open_session() as session:
            session.execute(
                update(MatchRound)
                .where(MatchRound.id == self._round_id, MatchRound.status == RoundStatus.RUNNING)
                .values(progress=percent, progress_stage=stage)
            )
            session.commit()
        self._stage, self._percent, self._written_at = stage, percent, now


def round_in_program(session: Session, program: Program, round_id: int) -> MatchRound | None:
    """The round ``round_id`` if it belongs to ``program`` (else None: answer 404)."""
    round_ = session.get(MatchRound, round_id)
    return round_ if round_ is not None and round_.program_id == program.id else None


def parse_round_form(form: Mapping[str, str]) -> tuple[RoundObjective, dict[str, Any]]:
    """Objective and weights from a form; FormInvalid names each bad field."""
    errors: dict[str, str] = {}
    objective = RoundObjective.BEST_TOTAL_FIT
    raw_objective = form.get("objective", RoundObjective.BEST_TOTAL_FIT.value)
    if raw_objective in RoundObjective._value2member_map_:
        objective = RoundObjective(raw_objective)
    else:
        errors["objective"] = "Choose one of the objectives listed."
    defaults = Weights()
    weights: dict[str, Any] = {}
    for name in WEIGHT_FIELDS:
        raw = (form.get(name) or "").strip()
        default = getattr(defaults, name)
        if raw == "":
            weights[name] = default
            continue
        try:
            value = int(raw) if isinstance(default, int) else float(raw)
        except ValueError:
            errors[name] = "Enter a number, e.g. " + str(default) + "."
            continue
        if value < 0 or value > MAX_WEIGHT or value != value:  # NaN is not a weight
            errors[name] = f"Enter a number from 0 to {MAX_WEIGHT:g}."
            continue
        weights[name] = value
    if not errors:
        try:
            Weights(**weights)
        except (MatchingInputError, TypeError) as exc:
            errors["interests"] = f"These weights cannot be used: {exc}."
    if errors:
        raise FormInvalid(errors)
    return objective, weights


def start_round(
    session: Session,
    program: Program,
    *,
    objective: RoundObjective,
    weights: Mapping[str, Any],
    created_by_user_id: int | None,
    exclusions: list[list[int]] | None = None,
    inline_limit: int = INLINE_LIMIT,
) -> MatchRound:
    """Create a round and run it (inline for a small program, else as a job after commit).

    Without ``exclusions`` the coordinator's exclusions of the program's latest round carry
    over: a pair excluded once stays excluded.
    """
    if exclusions is None:
        exclusions = session.scalar(
            select(MatchRound.exclusions)
            .where(MatchRound.program_id == program.id)
            .order_by(MatchRound.id.desc())
            .limit(1)
        )
    round_ = MatchRound(
        program_id=program.id,
        objective=objective,
        weights=dict(weights),
        exclusions=list(exclusions or []),
        created_by_user_id=created_by_user_id,
        status=RoundStatus.DRAFT,
    )
    session.add(round_)
    session.flush()
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        action="match_round.started",
        actor_user_id=created_by_user_id,
        target_type="match_round",
        target_id=round_.id,
        after={"objective": objective.value, "weights": dict(weights)},
    )
    queue_run(session, round_, inline_limit=inline_limit)
    return round_


def _program_size(session: Session, program: Program) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(
                Participant.program_id == program.id,
                Participant.status == ParticipantStatus.ACTIVE,
                Participant.is_mentee.is_(True) | Participant.is_mentor.is_(True),
            )
        )
        or 0
    )


def queue_run(session: Session, round_: MatchRound, *, inline_limit: int = INLINE_LIMIT) -> None:
    """(Re-)run ``round_``: inline when the program is small, else deferred as a job."""
    if round_.status in (RoundStatus.RUNNING, RoundStatus.PUBLISHED):
        raise StateConflict(
            "this round is running or already published; wait for it or start a new round"
        )
    round_.status = RoundStatus.RUNNING
    round_.progress = 0
    round_.progress_stage = "queued"
    round_.error = ""
    session.flush()
    if _program_size(session, round_.program) <= inline_limit:
        execute_round(session, round_.id)
    else:
        defer(
            session,
            "workers.jobs.run_match_round",
            round_.id,
            key=f"match-round-{round_.id}-{round_.runs}",
            queue=QueueName.LOW,
        )


def execute_round(
    session: Session,
    round_id: int,
    progress: RoundProgress | None = None,
    *,
    checkpoint: Callable[[], None] | None = None,
) -> bool:
    """Run the engine for a RUNNING round and store its proposals; False if not running.

    Locked proposals are kept (the engine keeps them as locked pairs), rejected ones stay
    as exclusions, and the previous run's other proposals are replaced. Inputs the engine
    refuses mark the round FAILED with the reason. ``progress`` hears each stage with the
    round's percent; ``checkpoint`` (a job: commit) is called once the inputs are read, so
    no transaction stays open while the engine runs and the progress writes go through.
    """
    report = progress or (lambda _stage, _pct: None)
    report("inputs", 0)  # before this session reads: its snapshot then includes the write
    round_ = session.get(MatchRound, round_id)
    if round_ is None or round_.status != RoundStatus.RUNNING:
        return False
    inputs = build_engine_inputs(session, round_, now=utcnow())
    round_.inputs = inputs.snapshot
    weights, objective = dict(round_.weights), Objective(round_.objective.value)
    if checkpoint is not None:
        checkpoint()

    def engine_progress(stage: Stage, fraction: float) -> None:
        start, end = _STAGE_SPAN[stage.value]
        report(stage.value, start + int((end - start) * max(0.0, min(1.0, fraction))))

    try:
        result = match(
            inputs.mentees,
            inputs.mentors,
            weights=Weights(**weights),
            exclusions=inputs.exclusions,
            locked=inputs.locked,
            options=MatchOptions(objective=objective),
            progress=engine_progress,
        )
    except MatchingInputError as exc:
        _begin_store(session, checkpoint)
        round_ = session.get(MatchRound, round_id, populate_existing=checkpoint is not None)
        if round_ is None or round_.status != RoundStatus.RUNNING:
            return False
        round_.status = RoundStatus.FAILED
        round_.error = str(exc)
        round_.finished_at = utcnow()
        session.flush()
        return True
    report("saving", _STAGE_SPAN["saving"][0])
    _begin_store(session, checkpoint)
    round_ = session.get(MatchRound, round_id, populate_existing=checkpoint is not None)
    if round_ is None or round_.status != RoundStatus.RUNNING:
        return False  # changed while the engine ran: leave it as it is now
    _store_result(session, round_, result)
    return True


def _begin_store(session: Session, checkpoint: Callable[[], None] | None) -> None:
    # After a checkpoint, the results are written in a new transaction that takes the
    # write lock at once (SQLite would otherwise refuse a write after the progress writes).
    if checkpoint is not None:
        begin_write(session)


def _store_result(session: Session, round_: MatchRound, result: MatchResult) -> None:
    by_key = {(p.mentee_id, p.mentor_id, p.track.value): p for p in round_.proposals}
    for stale in [p for p in round_.proposals if p.state == ProposalState.PROPOSED]:
        round_.proposals.remove(stale)
    for proposal in result.proposals:
        mentee, mentor = participant_id(proposal.mentee_id), participant_id(proposal.mentor_id)
        row = by_key.get((mentee, mentor, proposal.track))
        if row is None or row.state == ProposalState.PROPOSED:
            row = MatchProposal(mentee_id=mentee, mentor_id=mentor, track=Track(proposal.track))
            round_.proposals.append(row)
        row.score = proposal.score
        row.contributions = [
            {
                "criterion": c.criterion,
                "value": c.value,
                "weight": c.weight,
                "contribution": c.contribution,
            }
            for c in proposal.contributions
        ]
        row.reasons = list(proposal.reasons)
    round_.unmatched = [
        {
            "mentee_id": participant_id(u.mentee_id),
            "track": u.track,
            "reason": u.reason.value,
            "detail": u.detail,
            "mentors_on_track": u.mentors_on_track,
            "admissible_mentors": u.admissible_mentors,
        }
        for u in result.unmatched
    ]
    cert = result.certificate
    round_.certificate = {f.name: getattr(cert, f.name) for f in fields(cert)}
    round_.total_score = result.total_score
    round_.status = RoundStatus.READY
    round_.progress = 100
    round_.progress_stage = "done"
    round_.runs += 1
    round_.finished_at = utcnow()
    session.flush()


def set_proposal_state(
    session: Session,
    proposal: MatchProposal,
    state: ProposalState,
    *,
    actor_user_id: int | None,
    never_again: bool = False,
) -> None:
    """Lock, reject, or return to proposed one pair of a round under review.

    ``never_again`` (with a rejection) also adds the pair to the coordinator's exclusions,
    on every track and in every later round (e.g. a conflict of interest).
    """
    round_ = proposal.round
    if round_.status != RoundStatus.READY:
        raise StateConflict("only a round that is ready for review can be changed")
    if state == ProposalState.PUBLISHED or proposal.state == ProposalState.PUBLISHED:
        raise StateConflict("a published pair cannot be changed here")
    before = proposal.state.value
    proposal.state = state
    pair = [proposal.mentee_id, proposal.mentor_id]
    if never_again and state == ProposalState.REJECTED and pair not in round_.exclusions:
        round_.exclusions = [*round_.exclusions, pair]  # a new list: JSON is not mutable-tracked
    record_audit(
        session,
        course_id=round_.program.course_id,
        program_id=round_.program_id,
        action="match_round.proposal",
        actor_user_id=actor_user_id,
        target_type="match_proposal",
        target_id=proposal.id,
        before={"state": before},
        after={"state": state.value, **({"excluded": True} if never_again else {})},
    )
    session.flush()


@dataclass(frozen=True)
class PublishOutcome:
    """What publishing did: relationships created, and the pairs refused with why."""

    created: int
    refused: list[tuple[MatchProposal, str]]


def publish_round(
    session: Session, round_: MatchRound, *, actor: Participant | None, actor_user_id: int | None
) -> PublishOutcome:
    """Create an active relationship for every kept pair; refusals are reported per pair.

    All in the caller's transaction: each pair runs in its own savepoint so a mentor who
    filled up since the round ran refuses that pair only.
    """
    if round_.status != RoundStatus.READY:
        raise StateConflict("only a round that is ready for review can be published")
    program = round_.program
    created = 0
    refused: list[tuple[MatchProposal, str]] = []
    report: list[dict[str, Any]] = []
    for proposal in round_.proposals:
        if proposal.state not in (ProposalState.PROPOSED, ProposalState.LOCKED):
            continue
        try:
            with session.begin_nested():
                relationship = propose_relationship(
                    session,
                    program=program,
                    mentee=proposal.mentee,
                    mentor=proposal.mentor,
                    track=proposal.track,
                    origin=RelationshipOrigin.MATCH_ROUND,
                    actor=actor,
                    note=f"Match round {round_.id}",
                    activate=True,
                )
        except ProgramError as exc:
            refused.append((proposal, str(exc)))
            report.append({"proposal_id": proposal.id, "ok": False, "message": str(exc)})
            continue
        proposal.state = ProposalState.PUBLISHED
        proposal.relationship_id = relationship.id
        report.append({"proposal_id": proposal.id, "ok": True, "message": ""})
        created += 1
    round_.status = RoundStatus.PUBLISHED
    round_.published_at = utcnow()
    round_.publish_report = report
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        action="match_round.published",
        actor_user_id=actor_user_id,
        target_type="match_round",
        target_id=round_.id,
        after={"created": created, "refused": len(refused)},
    )
    session.flush()
    return PublishOutcome(created=created, refused=refused)
