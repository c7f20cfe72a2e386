"""Dashboard figures on a hand-made program (see the scenario fixture for the counting)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from plugin.insights.charts import format_cell
from plugin.insights.dashboard import dashboard_tables
from plugin.insights.metrics import MINUTES_SAVED, dashboard_figures, month_starts
from plugin.insights.outcomes import program_outcomes
from plugin.models import (
    CourseMembership,
    GoalStatus,
    MeetingStatus,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from tests.insights.conftest import LEARNER, NOW, Scenario, Tenant, add_meeting, at
from tests.programs.test_coordinator_workspace import counting_queries


def test_the_funnel_counts_mentees_from_the_roster_to_a_first_meeting(
    session: Session, scenario: Scenario
) -> None:
    funnel = dashboard_figures(session, scenario.program, NOW).funnel
    # L1-L5 on the roster (L6 left, the instructor is no learner) + X from outside.
    assert funnel.in_course == 6
    assert funnel.enrolled == 4  # L1, L2, L3, X (L4 withdrew)
    assert funnel.matched == 2  # L1, L2 (L3 only asked)
    assert funnel.met == 2  # L1 (held in April), L2 (held in February, closed since)
    assert funnel.match_rate == 0.5


def test_medians_of_days_to_a_mentor_and_to_a_first_meeting(
    session: Session, scenario: Scenario
) -> None:
    timing = dashboard_figures(session, scenario.program, NOW).timing
    # L1: 6 -> 10 April = 4 days; L2: 30 January -> 1 February = 2 days (first of two).
    assert (timing.days_to_match, timing.matched_mentees) == (3.0, 2)
    # A: 10 -> 11 April = 1 day; B: 1 -> 4 February = 3 days (cancelled/missed don't count).
    assert (timing.days_to_first_meeting, timing.relationships_met) == (2.0, 2)


def test_meetings_per_active_relationship_by_month(session: Session, scenario: Scenario) -> None:
    months = dashboard_figures(session, scenario.program, NOW).months
    assert [m.month.strftime("%Y-%m") for m in months] == [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
        "2026-05",
        "2026-06",
    ]
    assert [(m.held, m.active_relationships) for m in months] == [
        (0, 0),  # nothing had started
        (1, 1),  # B
        (0, 1),  # B closed on 20 March: still active in March
        (2, 1),  # A (B closed before April)
        (0, 2),  # A, C
        (1, 2),  # A, C; the 2 June meeting belongs to another program
    ]
    assert [m.rate for m in months] == [None, 1.0, 0.0, 2.0, 0.0, 0.5]
    assert [m.partial for m in months] == [False] * 5 + [True]


def test_goals_and_the_work_the_tool_did(session: Session, scenario: Scenario) -> None:
    figures = dashboard_figures(session, scenario.program, NOW)
    assert figures.goals.by_status == {
        GoalStatus.PROPOSED: 1,
        GoalStatus.AGREED: 2,
        GoalStatus.ACHIEVED: 1,
        GoalStatus.DROPPED: 0,
    }
    a = figures.automation
    assert a.followups_sent == 3  # 2 introductions + 1 nudge; failed/planned/skipped not
    assert (a.calendar_events, a.email_invitations, a.match_pairs) == (3, 1, 1)
    # 2 x 10 (introductions) + 5 (nudge) + 4 x 3 (calendar) + 15 (a published pair)
    assert a.minutes_saved == 52 == 2 * 10 + 5 + 4 * 3 + 15
    assert a.hours_saved == 0.9
    assert MINUTES_SAVED["introduction"] == 10


def test_the_tables_carry_the_same_numbers_with_captions(
    session: Session, scenario: Scenario
) -> None:
    figures = dashboard_figures(session, scenario.program, NOW)
    tables = dashboard_tables(figures, program_outcomes(session, scenario.program, NOW))
    assert tables.funnel.rows == [
        ("In the course (learners)", 6, None),
        ("Enrolled as mentees", 4, 66.7),
        ("Matched with a mentor", 2, 50.0),
        ("Met a mentor at least once", 2, 100.0),
    ]
    assert tables.key_figures.rows[0][1] == 50.0
    assert tables.meetings.marked == {5: "month so far"}
    assert tables.meetings.rows[0] == ("January 2026", None, 0, 0)
    assert format_cell(tables.meetings.rows[0][1]) == "no data"
    minutes = {row[0]: row[3] for row in tables.automation.rows}
    assert minutes["Introduction sent"] == 20
    assert minutes["Calendar events and invitations synced"] == 12


def test_an_empty_program_has_no_medians_and_no_rates(
    session: Session, tenant: Tenant, make_program: Callable[..., Program]
) -> None:
    figures = dashboard_figures(session, make_program(tenant), NOW)
    assert figures.funnel.match_rate is None
    assert figures.timing.days_to_match is None
    assert figures.timing.days_to_first_meeting is None
    assert all(m.rate is None for m in figures.months)
    assert figures.automation.minutes_saved == 0


def test_month_starts_cross_the_year() -> None:
    starts = month_starts(at(2, 10), count=3)
    assert [s.strftime("%Y-%m") for s in starts] == ["2025-12", "2026-01", "2026-02"]


def _grow(session: Session, tenant: Tenant, program: Program, mentor: Participant, n: int) -> None:
    """``n`` more learners enrolled as mentees, matched and met once each."""
    for i in range(n):
        user = User(platform_id=tenant.platform.id, sub=f"grow-{program.id}-{i}", name=f"G{i}")
        session.add(user)
        session.flush()
        session.add(CourseMembership(course_id=tenant.course.id, user_id=user.id, roles=[LEARNER]))
        mentee = Participant(program_id=program.id, user_id=user.id, is_mentee=True)
        session.add(mentee)
        session.flush()
        rel = Relationship(
            program_id=program.id,
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track=Track.WELLBEING,
            status=RelationshipStatus.ACTIVE,
            started_at=NOW - timedelta(days=40),
        )
        session.add(rel)
        session.flush()
        add_meeting(session, rel, NOW - timedelta(days=30), MeetingStatus.HELD)


def test_the_figures_cost_the_same_queries_for_a_small_or_a_large_program(
    session: Session, scenario: Scenario, tenant: Tenant
) -> None:
    with counting_queries(session) as small:
        before = dashboard_figures(session, scenario.program, NOW)
    _grow(session, tenant, scenario.program, scenario.mentor, 60)
    session.flush()
    with counting_queries(session) as large:
        after = dashboard_figures(session, scenario.program, NOW)
    assert after.funnel.met == before.funnel.met + 60  # the growth was seen
    assert len(large) == len(small)
    assert len(small) <= 12


def test_every_follow_up_kind_has_documented_minutes_saved() -> None:
    # A new rule's follow-ups must be priced, or the dashboard cannot count them.
    from plugin.models import FollowUpKind

    missing = [kind.value for kind in FollowUpKind if kind.value not in MINUTES_SAVED]
    assert missing == []


def test_feedback_by_month_and_health_of_the_active_relationships(
    session: Session, scenario: Scenario
) -> None:
    from sqlalchemy import select

    from plugin.insights.signals import Health, relationship_signals
    from plugin.models import Meeting, MeetingFeedback

    def meeting_at(moment: datetime) -> Meeting:
        return session.scalars(
            select(Meeting).where(
                Meeting.relationship_id == scenario.relationships["A"].id,
                Meeting.starts_at == moment,
            )
        ).one()

    mentee, mentor = scenario.mentees["L1"], scenario.mentor
    answers = [
        (at(4, 11), mentee, 4, True),
        (at(4, 11), mentor, 2, False),
        (at(4, 20), mentee, 5, True),
        (at(6, 1), mentee, 3, True),
    ]
    for moment, author, rating, useful in answers:
        meeting = meeting_at(moment)
        session.add(
            MeetingFeedback(
                program_id=meeting.program_id,
                meeting_id=meeting.id,
                relationship_id=meeting.relationship_id,
                author_id=author.id,
                rating=rating,
                useful=useful,
            )
        )
    session.flush()

    outcomes = program_outcomes(session, scenario.program, NOW)
    by_month = {m.month.month: m for m in outcomes.feedback}
    assert list(by_month) == [1, 2, 3, 4, 5, 6]
    april, june = by_month[4], by_month[6]
    assert (april.answers, april.average_rating, april.useful_percent) == (3, 3.67, 66.7)
    assert (june.answers, june.average_rating, june.useful_percent, june.partial) == (
        1,
        3.0,
        100.0,
        True,
    )
    assert by_month[5].answers == 0
    assert by_month[5].average_rating is None
    # Active pairs A and C, each at the level its signals give it.
    expected = dict.fromkeys(Health, 0)
    for item in relationship_signals(session, scenario.program, NOW):
        expected[item.health] += 1
    assert sum(outcomes.health.values()) == 2
    assert outcomes.health == expected

    tables = dashboard_tables(dashboard_figures(session, scenario.program, NOW), outcomes)
    assert tables.feedback.rows[3] == ("April 2026", 3.67, 66.7, 3)
    assert tables.feedback.marked == {5: "month so far"}
    assert [row[0] for row in tables.health.rows] == ["Good", "Watch", "At risk"]
