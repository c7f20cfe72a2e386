"""A large round's job reports its stage and percent on the round row, throttled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from plugin.db import get_db
from plugin.models import MatchRound, Participant, RoundObjective, RoundStatus
from plugin.programs.matching_rounds import ROUND_STAGES, ProgressRecorder, start_round
from tests.programs.conftest import INSTRUCTOR, LEARNER, Tenant

Enroll = Callable[..., Participant]


def _program_with_pairs(tenant: Tenant, make_user: Any, make_program: Any, enroll: Enroll) -> Any:
    program = make_program(tenant, tracks=["research"])
    for code in ("cardio", "neuro", "onco"):
        enroll(program, make_user(tenant, LEARNER), mentee=True, interests=[code])
        enroll(
            program,
            make_user(tenant, INSTRUCTOR),
            mentor=True,
            interests=[code],
            capacity_by_track={"research": 1},
        )
    return program


def _stage_writes(app: Flask) -> tuple[list[tuple[str, int]], Callable[[], None]]:
    """(stage, percent) of every UPDATE of a round's progress, as the database receives it."""
    seen: list[tuple[str, int]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        if not statement.startswith("UPDATE match_round") or "progress_stage" not in statement:
            return
        values = list(params.values()) if isinstance(params, dict) else list(params)
        stage = next(v for v in values if isinstance(v, str) and v in ROUND_STAGES)
        percent = next(v for v in values if isinstance(v, int) and not isinstance(v, bool))
        seen.append((stage, percent))

    engine = get_db(app).engine
    event.listen(engine, "before_cursor_execute", listen)
    return seen, lambda: event.remove(engine, "before_cursor_execute", listen)


def test_a_worker_run_records_every_stage_in_order(
    app: Flask,
    session: Session,
    tenant: Tenant,
    make_user: Any,
    make_program: Any,
    enroll: Enroll,
    drain_jobs: Callable[..., int],
) -> None:
    program = _program_with_pairs(tenant, make_user, make_program, enroll)
    round_ = start_round(
        session,
        program,
        objective=RoundObjective.MAX_MATCHED,
        weights={},
        created_by_user_id=None,
        inline_limit=0,
    )
    assert (round_.status, round_.progress_stage) == (RoundStatus.RUNNING, "queued")
    session.commit()

    seen, stop = _stage_writes(app)
    try:
        assert drain_jobs() == 1
    finally:
        stop()

    stages = list(dict.fromkeys(stage for stage, _ in seen))
    assert stages == [
        "inputs",
        "features",
        "candidates",
        "solving",
        "explaining",
        "saving",
        "done",
    ]
    percents = [percent for _, percent in seen]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    session.expire_all()
    ran = session.get(MatchRound, round_.id)
    assert ran is not None
    assert (ran.status, ran.progress, ran.progress_stage) == (RoundStatus.READY, 100, "done")
    assert len(ran.proposals) == 3


def test_progress_is_throttled_within_a_stage_and_never_touches_a_finished_round(
    app: Flask,
    session: Session,
    tenant: Tenant,
    make_user: Any,
    make_program: Any,
    enroll: Enroll,
) -> None:
    program = _program_with_pairs(tenant, make_user, make_program, enroll)
    round_ = MatchRound(program_id=program.id, status=RoundStatus.RUNNING)
    session.add(round_)
    session.commit()
    database = get_db(app)
    now = [100.0]

    @contextmanager
    def scope() -> Iterator[Session]:
        with database.session_scope() as own:
            yield own

    record = ProgressRecorder(scope, round_.id, interval=1.0, clock=lambda: now[0])

    def stored() -> tuple[str, int]:
        session.expire_all()
        row = session.get(MatchRound, round_.id)
        assert row is not None
        return row.progress_stage, row.progress

    record("candidates", 20)
    assert stored() == ("candidates", 20)
    now[0] += 0.5
    record("candidates", 40)  # same stage, too soon: not written
    assert stored() == ("candidates", 20)
    now[0] += 0.6
    record("candidates", 40)
    assert stored() == ("candidates", 40)
    record("solving", 60)  # a new stage is written at once
    assert stored() == ("solving", 60)

    row = session.get(MatchRound, round_.id)
    assert row is not None
    row.status = RoundStatus.FAILED
    session.commit()
    now[0] += 5
    record("explaining", 90)
    assert stored() == ("solving", 60)
