"""Match rounds: inputs from the database, lock/reject/re-run, publish, the job."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.matching import ExclusionReason, Format, Window
from plugin.models import (
    AuditEvent,
    CareerStage,
    CloseReason,
    MatchRound,
    Participant,
    Program,
    ProposalState,
    Relationship,
    RelationshipOrigin,
    RelationshipStatus,
    RoundObjective,
    RoundStatus,
    Track,
)
from plugin.programs.errors import FormInvalid
from plugin.programs.matching_inputs import build_engine_inputs, engine_id, utc_windows
from plugin.programs.matching_rounds import (
    parse_round_form,
    publish_round,
    queue_run,
    set_proposal_state,
    start_round,
)
from plugin.programs.relationships import (
    close_relationship,
    mentor_seats,
)
from tests.programs.conftest import INSTRUCTOR, LEARNER, Tenant, coordinator_pair

Enroll = Callable[..., Participant]
#: A Tuesday in November: New York is on EST (UTC-5), Kolkata on IST (UTC+5:30).
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _start(session: Session, program: Program, **kwargs: Any) -> MatchRound:
    return start_round(
        session,
        program,
        objective=kwargs.pop("objective", RoundObjective.MAX_MATCHED),
        weights={},
        created_by_user_id=None,
        **kwargs,
    )


def test_local_windows_become_utc_minutes_of_the_reference_week() -> None:
    monday = NOW.date().replace(day=23)
    # 09:00-10:00 Monday in New York (EST) is 14:00-15:00 UTC.
    assert utc_windows(
        [{"day": 0, "start": "09:00", "end": "10:00"}], "America/New_York", monday
    ) == (Window(14 * 60, 15 * 60),)
    # 19:30 in Kolkata is 14:00 UTC: the :30 offset stays exact.
    assert utc_windows([{"day": 0, "start": "19:30", "end": "20:30"}], "Asia/Kolkata", monday) == (
        Window(14 * 60, 15 * 60),
    )
    # 03:00 Monday in Tokyo is Sunday 18:00 UTC: wraps to the end of the week.
    assert utc_windows([{"day": 0, "start": "03:00", "end": "04:00"}], "Asia/Tokyo", monday) == (
        Window(6 * 1440 + 18 * 60, 6 * 1440 + 19 * 60),
    )
    # A window past midnight runs into the next day.
    assert utc_windows([{"day": 6, "start": "23:00", "end": "01:00"}], "UTC", monday) == (
        Window(6 * 1440 + 23 * 60, 6 * 1440 + 25 * 60),
    )
    # In July New York is on EDT (UTC-4): the reference week decides the offset.
    july = monday.replace(month=7, day=6)
    assert utc_windows(
        [{"day": 0, "start": "09:00", "end": "10:00"}], "America/New_York", july
    ) == (Window(13 * 60, 14 * 60),)


def test_inputs_are_built_from_profiles_seats_and_history(
    session: Session, tenant: Tenant, make_user: Any, make_program: Any, enroll: Enroll
) -> None:
    program = make_program(tenant, tracks=["research", "career"])
    mentee = enroll(
        program,
        make_user(tenant, LEARNER),
        mentee=True,
        tracks_wanted=["career", "research", "wellbeing"],
        interests=["cardio"],
        goals_text="publish a paper",
        career_stage=CareerStage.CLINICAL_STUDENT,
        time_zone="America/New_York",
        availability=[{"day": 0, "start": "09:00", "end": "10:00"}],
        meeting_format="virtual",
        private_preferences=json.dumps({"seek": ["first_gen"], "identify_as": []}),
    )
    mentor = enroll(
        program,
        make_user(tenant, INSTRUCTOR),
        mentor=True,
        tracks_offered=["research", "career"],
        capacity_by_track={"research": 2, "career": 1},
        time_zone="Asia/Kolkata",
        availability=[{"day": 0, "start": "19:30", "end": "20:30"}],
        private_preferences=json.dumps({"seek": [], "identify_as": ["first_gen"]}),
    )
    other = enroll(program, make_user(tenant, LEARNER), mentee=True, tracks_wanted=["research"])
    gone = enroll(program, make_user(tenant, LEARNER), mentee=True, tracks_wanted=["career"])
    coordinator_pair(session, program, other, mentor)  # one research seat taken
    closed = coordinator_pair(session, program, gone, mentor)
    close_relationship(session, closed, reason=CloseReason.NOT_WORKING, actor=None)
    round_ = MatchRound(program_id=program.id, exclusions=[[gone.id, mentor.id]])
    session.add(round_)
    session.flush()

    inputs = build_engine_inputs(session, round_, now=NOW)

    by_id = {m.id: m for m in inputs.mentees}
    asked = by_id[engine_id(mentee.id)]
    assert asked.tracks == ("career", "research")  # wellbeing is not offered
    assert asked.availability == (Window(840, 900),)
    assert asked.format == Format.VIRTUAL
    assert asked.preferences == frozenset({"first_gen"})
    assert asked.stage == CareerStage.CLINICAL_STUDENT.rank
    assert "publish a paper" in asked.text
    assert engine_id(other.id) not in by_id  # already has a research mentor
    (offered,) = inputs.mentors
    assert offered.availability == (Window(840, 900),)
    assert {o.track: o.capacity for o in offered.offers} == {"research": 1, "career": 1}
    assert offered.capacity == 2  # 3 in all, 1 taken
    # The program-wide count agrees with the per-mentor one publishing will check.
    research = mentor_seats(session, program, mentor, Track.RESEARCH)
    assert research.track_capacity - research.track_taken == 1
    assert research.total_capacity - research.total_taken == offered.capacity
    assert offered.attributes == frozenset({"first_gen"})
    reasons = {(e.mentee_id, e.reason) for e in inputs.exclusions}
    assert (engine_id(other.id), ExclusionReason.ACTIVE) in reasons
    assert (engine_id(gone.id), ExclusionReason.NOT_WORKING) in reasons
    assert (engine_id(gone.id), ExclusionReason.COORDINATOR) in reasons
    # The stored snapshot has ids and features, never names, e-mails or preference tags.
    text = json.dumps(inputs.snapshot)
    assert "first_gen" not in text
    assert "@" not in text
    assert mentee.display_name not in text


def _two_by_two(
    tenant: Tenant, make_user: Any, make_program: Any, enroll: Enroll
) -> tuple[Program, list[Participant], list[Participant]]:
    program = make_program(tenant, tracks=["research"])
    mentees = [
        enroll(program, make_user(tenant, LEARNER), mentee=True, interests=[code])
        for code in ("cardio", "neuro")
    ]
    mentors = [
        enroll(
            program,
            make_user(tenant, INSTRUCTOR),
            mentor=True,
            interests=[code],
            capacity_by_track={"research": 1},
        )
        for code in ("cardio", "neuro")
    ]
    return program, mentees, mentors


def test_a_round_keeps_locks_and_never_proposes_a_rejected_pair_again(
    session: Session, tenant: Tenant, make_user: Any, make_program: Any, enroll: Enroll
) -> None:
    program, mentees, mentors = _two_by_two(tenant, make_user, make_program, enroll)
    round_ = _start(session, program)
    assert round_.status == RoundStatus.READY
    assert round_.progress == 100
    pairs = {(p.mentee_id, p.mentor_id) for p in round_.proposals}
    assert pairs == {(mentees[0].id, mentors[0].id), (mentees[1].id, mentors[1].id)}
    first = next(p for p in round_.proposals if p.mentee_id == mentees[0].id)
    second = next(p for p in round_.proposals if p.mentee_id == mentees[1].id)
    assert first.reasons
    assert sum(c["contribution"] for c in first.contributions) > 0
    set_proposal_state(session, first, ProposalState.LOCKED, actor_user_id=None)
    set_proposal_state(session, second, ProposalState.REJECTED, actor_user_id=None)

    queue_run(session, round_)

    assert round_.status == RoundStatus.READY
    assert round_.runs == 2
    states = {(p.mentee_id, p.mentor_id): p.state for p in round_.proposals}
    assert states == {
        (mentees[0].id, mentors[0].id): ProposalState.LOCKED,
        (mentees[1].id, mentors[1].id): ProposalState.REJECTED,
    }
    # The second mentee's only other mentor is taken by the locked pair.
    (unmatched,) = round_.unmatched
    assert unmatched["mentee_id"] == mentees[1].id
    assert unmatched["reason"]
    assert unmatched["detail"]


def test_publishing_creates_relationships_and_reports_a_full_mentor_per_pair(
    session: Session, tenant: Tenant, make_user: Any, make_program: Any, enroll: Enroll
) -> None:
    program, mentees, mentors = _two_by_two(tenant, make_user, make_program, enroll)
    round_ = _start(session, program)
    # Between the run and publishing, the second mentor's only seat is taken.
    latecomer = enroll(program, make_user(tenant, LEARNER), mentee=True)
    coordinator_pair(session, program, latecomer, mentors[1])

    outcome = publish_round(session, round_, actor=None, actor_user_id=None)

    assert outcome.created == 1
    ((refused, message),) = outcome.refused
    assert refused.mentor_id == mentors[1].id
    assert "no free place" in message
    assert round_.status == RoundStatus.PUBLISHED
    relationship = session.scalars(
        select(Relationship).where(Relationship.mentee_id == mentees[0].id)
    ).one()
    assert relationship.status == RelationshipStatus.ACTIVE
    assert relationship.origin == RelationshipOrigin.MATCH_ROUND
    published = next(p for p in round_.proposals if p.mentee_id == mentees[0].id)
    assert published.state == ProposalState.PUBLISHED
    assert published.relationship_id == relationship.id
    assert [r["ok"] for r in round_.publish_report].count(False) == 1
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "match_round.published")
    ).one()
    assert audit.after == {"created": 1, "refused": 1}


def test_large_rounds_run_as_a_job_after_commit(
    session: Session,
    tenant: Tenant,
    make_user: Any,
    make_program: Any,
    enroll: Enroll,
    drain_jobs: Callable[..., int],
) -> None:
    program, mentees, _mentors = _two_by_two(tenant, make_user, make_program, enroll)
    round_ = _start(session, program, inline_limit=0)
    assert round_.status == RoundStatus.RUNNING
    assert not round_.proposals
    session.commit()

    assert drain_jobs() == 1

    session.expire_all()
    ran = session.get(MatchRound, round_.id)
    assert ran is not None
    assert ran.status == RoundStatus.READY
    assert ran.progress == 100
    assert {p.mentee_id for p in round_.proposals} == {m.id for m in mentees}
    assert drain_jobs() == 0  # nothing more queued


def test_round_form_refuses_bad_weights_at_the_field() -> None:
    objective, weights = parse_round_form({"objective": "max_matched", "interests": "5"})
    assert objective == RoundObjective.MAX_MATCHED
    assert weights["interests"] == 5.0
    with pytest.raises(FormInvalid) as refused:
        parse_round_form({"objective": "whatever", "text": "-1", "stage_span": "x"})
    assert set(refused.value.errors) == {"objective", "text", "stage_span"}


def test_inputs_the_engine_refuses_fail_the_round_with_the_reason(
    session: Session, tenant: Tenant, make_user: Any, make_program: Any, enroll: Enroll
) -> None:
    program, _mentees, _mentors = _two_by_two(tenant, make_user, make_program, enroll)
    zero = dict.fromkeys(
        ("interests", "text", "track", "availability", "format", "language", "stage"), 0
    )
    round_ = start_round(
        session,
        program,
        objective=RoundObjective.BEST_TOTAL_FIT,
        weights={**zero, "preferences": 0},
        created_by_user_id=None,
    )
    assert round_.status == RoundStatus.FAILED
    assert "weights" in round_.error
    assert not round_.proposals


def test_a_pair_excluded_for_good_stays_out_of_later_rounds(
    session: Session, tenant: Tenant, make_user: Any, make_program: Any, enroll: Enroll
) -> None:
    program, mentees, mentors = _two_by_two(tenant, make_user, make_program, enroll)
    first = _start(session, program)
    proposal = next(p for p in first.proposals if p.mentee_id == mentees[0].id)
    set_proposal_state(
        session, proposal, ProposalState.REJECTED, actor_user_id=None, never_again=True
    )
    assert first.exclusions == [[mentees[0].id, mentors[0].id]]

    second = _start(session, program)

    assert second.exclusions == first.exclusions
    assert (mentees[0].id, mentors[0].id) not in {
        (p.mentee_id, p.mentor_id) for p in second.proposals
    }
