"""The coordinator's delivery view of follow-ups: filters, reasons, paging in SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from plugin.insights.dashboard_followups import (
    FOLLOWUPS_PAGE_SIZE,
    DeliveryFilter,
    delivery_page,
)
from plugin.lti.roles import CourseRole
from plugin.models import Delivery, DeliveryOutcome, FollowUp, FollowUpKind, FollowUpState
from tests.insights.conftest import NOW, Scenario, Tenant
from tests.programs.conftest import Person
from tests.programs.test_coordinator_workspace import counting_queries


def _add_failed_with_attempt(session: Session, scenario: Scenario) -> FollowUp:
    followup = session.query(FollowUp).filter_by(state=FollowUpState.FAILED).one()
    followup.reason = "mailbox unavailable (550)"
    followup.attempts = 2
    session.add_all(
        [
            Delivery(
                followup_id=followup.id,
                channel="email",
                outcome=DeliveryOutcome.FAILED,
                reason="timeout",
            ),
            Delivery(
                followup_id=followup.id,
                channel="email",
                outcome=DeliveryOutcome.FAILED,
                reason="550 mailbox unavailable",
            ),
        ]
    )
    session.flush()
    return followup


def test_filters_by_state_and_kind_with_counts(session: Session, scenario: Scenario) -> None:
    failed = _add_failed_with_attempt(session, scenario)
    everything = delivery_page(session, scenario.program, DeliveryFilter())
    assert everything.total == 6
    assert everything.counts == {"sent": 3, "failed": 1, "planned": 1, "skipped": 1}
    only_failed = delivery_page(session, scenario.program, DeliveryFilter(state="failed"))
    assert [r.followup_id for r in only_failed.rows] == [failed.id]
    row = only_failed.rows[0]
    assert (row.reason, row.attempts, row.channel) == ("mailbox unavailable (550)", 2, "email")
    assert (row.last_outcome, row.last_reason) == ("failed", "550 mailbox unavailable")
    skipped = delivery_page(session, scenario.program, DeliveryFilter(state="skipped"))
    assert [r.reason for r in skipped.rows] == ["muted by the recipient"]
    intros = delivery_page(session, scenario.program, DeliveryFilter(kind="introduction"))
    assert intros.total == 2
    assert intros.counts == {"sent": 2}
    assert (
        DeliveryFilter.from_args({"state": "bogus", "kind": "x", "page": "z"}) == DeliveryFilter()
    )


def test_pages_are_cut_in_sql_and_cost_the_same_queries(
    session: Session, scenario: Scenario
) -> None:
    with counting_queries(session) as small:
        delivery_page(session, scenario.program, DeliveryFilter())
    recipient = scenario.mentees["L3"]
    session.add_all(
        FollowUp(
            program_id=scenario.program.id,
            kind=FollowUpKind.HEALTH_CHECK,
            recipient_id=recipient.id,
            due_at=NOW - timedelta(hours=i),
            dedupe_key=f"bulk-{scenario.program.id}-{i}",
            state=FollowUpState.SENT,
        )
        for i in range(FOLLOWUPS_PAGE_SIZE + 10)
    )
    session.flush()
    with counting_queries(session) as large:
        first = delivery_page(session, scenario.program, DeliveryFilter())
    assert len(large) == len(small) == 2
    assert first.total == 6 + FOLLOWUPS_PAGE_SIZE + 10
    assert (first.pages, len(first.rows)) == (2, FOLLOWUPS_PAGE_SIZE)
    second = delivery_page(session, scenario.program, DeliveryFilter(page=2))
    assert len(second.rows) == 16
    assert not {r.followup_id for r in first.rows} & {r.followup_id for r in second.rows}


def test_the_page_shows_reasons_and_is_for_coordinators(
    session: Session, scenario: Scenario, tenant: Tenant, as_person: Callable[..., Person]
) -> None:
    _add_failed_with_attempt(session, scenario)
    url = f"/programs/{scenario.program.id}/coordinator/followups"
    coordinator = as_person(tenant, scenario.coordinator, CourseRole.INSTRUCTOR)
    html = coordinator.get(url, query_string={"state": "failed"}).get_data(as_text=True)
    assert "mailbox unavailable (550)" in html
    assert "Failed (1)" in html
    assert "Learner 1" in html
    mentee_user = scenario.mentees["L1"].user
    assert mentee_user is not None
    assert as_person(tenant, mentee_user, CourseRole.LEARNER).get(url).status_code == 403
