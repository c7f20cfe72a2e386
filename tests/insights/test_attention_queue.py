"""The coordinator's attention queue: who is in it and why, handling an item (audited), an
item coming back on new evidence, access, and a page cost that does not grow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import time_machine
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import (
    AttentionHandled,
    AuditEvent,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    MeetingFeedback,
    MeetingStatus,
    Program,
    Relationship,
    User,
)
from tests.insights.conftest import T0, World
from tests.programs.conftest import LEARNER, Person, Tenant

DAY = timedelta(days=1)


def queue_url(world: World) -> str:
    return f"/programs/{world.program.id}/coordinator/attention"


def handled_url(world: World, relationship_id: int) -> str:
    return f"{queue_url(world)}/{relationship_id}/handled"


def coordinator_of(world: World, as_person: Callable[..., Person]) -> Person:
    return as_person(world.tenant, world.coordinator_user, CourseRole.INSTRUCTOR)


def open_section(page: str) -> str:
    """The "To act on" part of the page (before the handled section)."""
    return page.split('id="handled-heading"')[0]


def escalate(session: Session, world: World, rel: Relationship) -> None:
    session.add(
        FollowUp(
            program_id=world.program.id,
            kind=FollowUpKind.ESCALATION,
            recipient_id=world.coordinator.id,
            relationship_id=rel.id,
            due_at=T0 - DAY,
            dedupe_key=f"escalate:{rel.id}",
            state=FollowUpState.SKIPPED,  # muted by the coordinator: still in the queue
        )
    )
    session.flush()


def test_the_queue_lists_pairs_that_need_attention_with_their_signals(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    fine = world.add_pair(mentee_name="Fay Fine", started=T0 - 5 * DAY)
    quiet = world.add_pair(mentee_name="Quinn Quiet", started=T0 - 20 * DAY)
    stuck = world.add_pair(mentee_name="Sam Stuck", started=T0 - 40 * DAY)
    escalate(session, world, stuck)
    page = coordinator_of(world, as_person).get(queue_url(world))
    assert page.status_code == 200
    text = page.text
    assert "Fay Fine" not in text
    assert text.index("Sam Stuck") < text.index("Quinn Quiet")  # at risk first
    assert "Reminders to meet went unanswered; escalated to coordinators" in text
    assert "No first meeting 20 days after the start" in text
    assert "To act on (2)" in text
    assert fine.id
    assert quiet.id


def test_the_workspace_links_to_the_queue(world: World, as_person: Callable[..., Person]) -> None:
    workspace = coordinator_of(world, as_person).get(f"/programs/{world.program.id}/coordinator/")
    assert f"/programs/{world.program.id}/coordinator/attention" in workspace.text
    assert "Needs attention" in workspace.text


def test_marking_handled_is_audited_and_the_item_returns_on_new_evidence(
    world: World, session: Session, as_person: Callable[..., Person], clock: time_machine.Traveller
) -> None:
    rel = world.add_pair(mentee_name="Sam Stuck", started=T0 - 20 * DAY)
    meeting = world.add_meeting(rel, T0 + 30 * DAY, MeetingStatus.SCHEDULED)
    meeting.status = MeetingStatus.CANCELLED
    session.flush()
    coordinator = coordinator_of(world, as_person)
    done = coordinator.post(handled_url(world, rel.id), {"note": "Phoned both; meeting Friday"})
    assert done.status_code == 303
    row = session.scalars(select(AttentionHandled)).one()
    assert row.signal_kinds == ["no_meeting:watch"]
    assert row.handled_by_user_id == world.coordinator_user.id
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "attention.handled")
    ).one()
    assert (audit.target_type, audit.target_id) == ("relationship", rel.id)
    assert audit.after == {"signals": ["no_meeting:watch"]}
    assert "Phoned both" not in str(audit.after)  # the note stays out of the audit log

    page = coordinator.get(done.headers["Location"]).text
    assert "Marked as handled" in page
    assert "Sam Stuck" not in open_section(page)
    assert "Phoned both; meeting Friday" in page  # in the handled section
    assert "To act on (0)" in page

    # A week later the mentee rates a meeting poorly: new evidence, back in the queue.
    clock.move_to(T0 + 7 * DAY)
    held = world.add_meeting(rel, T0 + 6 * DAY)
    session.add(
        MeetingFeedback(
            program_id=world.program.id,
            meeting_id=held.id,
            relationship_id=rel.id,
            author_id=rel.mentee_id,
            rating=1,
            useful=False,
        )
    )
    session.flush()
    again = coordinator_of(world, as_person).get(queue_url(world)).text
    assert "Sam Stuck" in open_section(again)
    assert "1 low meeting rating in the last 90 days" in again


def test_the_item_returns_when_a_signal_gets_worse(
    world: World, session: Session, as_person: Callable[..., Person], clock: time_machine.Traveller
) -> None:
    rel = world.add_pair(mentee_name="Sam Stuck", started=T0 - 20 * DAY)
    coordinator = coordinator_of(world, as_person)
    assert coordinator.post(handled_url(world, rel.id), {"note": "Asked them"}).status_code == 303
    clock.move_to(T0 + 10 * DAY)  # 30 days without a first meeting: at risk now
    page = coordinator_of(world, as_person).get(queue_url(world)).text
    assert "Sam Stuck" in open_section(page)


def test_a_handled_note_is_required_and_a_bad_one_changes_nothing(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    rel = world.add_pair(started=T0 - 20 * DAY)
    coordinator = coordinator_of(world, as_person)
    empty = coordinator.post(handled_url(world, rel.id), {"note": "   "})
    assert empty.status_code == 400
    assert "Write what you did or decided" in empty.text
    assert 'aria-invalid="true"' in empty.text
    too_long = coordinator.post(handled_url(world, rel.id), {"note": "n" * 2001})
    assert too_long.status_code == 400
    assert session.scalar(select(func.count()).select_from(AttentionHandled)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_only_coordinators_of_this_program_use_the_queue(
    world: World,
    session: Session,
    as_person: Callable[..., Person],
    make_tenant: Callable[..., Tenant],
    make_program: Callable[..., Program],
    make_user: Callable[..., User],
) -> None:
    rel = world.add_pair(started=T0 - 20 * DAY)
    mentee = as_person(world.tenant, world.user_of(rel.mentee), CourseRole.LEARNER)
    assert mentee.get(queue_url(world)).status_code == 403
    assert mentee.post(handled_url(world, rel.id), {"note": "me"}).status_code == 403
    answers = f"/programs/{world.program.id}/coordinator/relationships/{rel.id}/feedback"
    assert mentee.get(answers).status_code == 403
    # A coordinator of another program (same course): the relationship is not theirs.
    other = make_program(world.tenant, title="Other")
    coordinator = coordinator_of(world, as_person)
    wrong = f"/programs/{other.id}/coordinator/attention/{rel.id}/handled"
    assert coordinator.post(wrong, {"note": "x"}).status_code == 404
    assert (
        coordinator.get(
            f"/programs/{other.id}/coordinator/relationships/{rel.id}/feedback"
        ).status_code
        == 404
    )
    # An instructor of another course.
    foreign = make_tenant()
    stranger = as_person(foreign, make_user(foreign, LEARNER), CourseRole.INSTRUCTOR)
    assert stranger.get(queue_url(world)).status_code == 404
    assert stranger.post(handled_url(world, rel.id), {"note": "x"}).status_code == 404
    assert session.scalar(select(func.count()).select_from(AttentionHandled)) == 0


def test_the_page_cost_does_not_grow_with_the_program(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    def count_page_statements() -> int:
        statements: list[object] = []
        connection = session.connection()

        def record(*args: object) -> None:
            statements.append(args[2])

        coordinator = coordinator_of(world, as_person)
        url = queue_url(world)  # outside the count: the test's own session may reload
        event.listen(connection, "before_cursor_execute", record)
        try:
            page = coordinator.get(url)
        finally:
            event.remove(connection, "before_cursor_execute", record)
        assert page.status_code == 200
        return len(statements)

    for _ in range(2):
        escalate(session, world, world.add_pair(started=T0 - 40 * DAY))
    small = count_page_statements()
    for _ in range(8):
        escalate(session, world, world.add_pair(started=T0 - 40 * DAY))
    session.expire_all()
    large = count_page_statements()
    assert small > 0
    assert large == small
