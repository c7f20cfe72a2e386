"""Feedback pages: after a meeting, the health check and the end-of-relationship evaluation.

Each form: a valid answer is saved (and edited, never duplicated); bad input shows messages
and changes nothing; people it does not ask, and other programs, get 404; shared meeting
feedback reaches the other attendees, private feedback only the coordinators."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import (
    CloseReason,
    HealthCheck,
    MeetingFeedback,
    MeetingStatus,
    Participant,
    Program,
    Relationship,
    RelationshipEvaluation,
    RelationshipStatus,
    User,
)
from tests.insights.conftest import T0, World
from tests.programs.conftest import LEARNER, Person, Tenant

GOOD = {"rating": "4", "useful": "yes", "comment": "Clear next steps", "visibility": "private"}


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def learner(world: World, as_person: Callable[..., Person], who: Participant) -> Person:
    return as_person(world.tenant, world.user_of(who), CourseRole.LEARNER)


def feedback_url(world: World, meeting_id: int) -> str:
    return f"/programs/{world.program.id}/meetings/{meeting_id}/feedback"


# --- after a meeting ----------------------------------------------------------------------


def test_an_attendee_gives_feedback_once_and_edits_it(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2))
    mentee = learner(world, as_person, rel.mentee)
    page = mentee.get(feedback_url(world, meeting.id))
    assert page.status_code == 200
    assert "How would you rate this meeting?" in page.text

    saved = mentee.post(feedback_url(world, meeting.id), GOOD)
    assert saved.status_code == 303
    row = session.scalars(select(MeetingFeedback)).one()
    assert (row.rating, row.useful, row.comment, row.author_id) == (
        4,
        True,
        "Clear next steps",
        rel.mentee_id,
    )
    assert row.relationship_id == rel.id

    edited = mentee.post(feedback_url(world, meeting.id), {**GOOD, "rating": "2", "useful": "no"})
    assert edited.status_code == 303
    assert count(session, MeetingFeedback) == 1
    session.refresh(row)
    assert (row.rating, row.useful) == (2, False)
    shown = mentee.get(edited.headers["Location"])
    assert 'value="2" checked' in shown.text
    assert "your feedback is saved" in shown.text


def test_bad_meeting_feedback_changes_nothing(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2))
    mentee = learner(world, as_person, rel.mentee)
    assert mentee.post(feedback_url(world, meeting.id), GOOD).status_code == 303
    bad = mentee.post(
        feedback_url(world, meeting.id),
        {"rating": "7", "comment": "x" * 4001, "visibility": "everyone"},
    )
    assert bad.status_code == 400
    for message in (
        "Choose a rating from 1 to 5.",
        "Answer yes or no: was the meeting useful?",
        "Keep the comment under 4000 characters.",
        "Choose who may read this feedback.",
    ):
        assert message in bad.text
    assert 'aria-invalid="true"' in bad.text
    row = session.scalars(select(MeetingFeedback)).one()
    session.refresh(row)
    assert (row.rating, row.comment) == (4, "Clear next steps")


def test_only_attendees_open_the_meeting_feedback(
    world: World,
    session: Session,
    as_person: Callable[..., Person],
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2))
    other = world.add_pair()
    outsider = learner(world, as_person, other.mentee)
    assert outsider.get(feedback_url(world, meeting.id)).status_code == 404
    assert outsider.post(feedback_url(world, meeting.id), GOOD).status_code == 404
    coordinator = as_person(world.tenant, world.coordinator_user, CourseRole.INSTRUCTOR)
    assert coordinator.get(feedback_url(world, meeting.id)).status_code == 404
    # Enrolled in the course but not in the program: no participant, no page.
    stranger = as_person(world.tenant, make_user(world.tenant, LEARNER), CourseRole.LEARNER)
    assert stranger.get(feedback_url(world, meeting.id)).status_code == 404
    assert count(session, MeetingFeedback) == 0


def test_another_program_never_opens_the_page(
    world: World,
    session: Session,
    as_person: Callable[..., Person],
    make_tenant: Callable[..., Tenant],
    make_program: Callable[..., Program],
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2))
    # The same mentee's token, but for the meeting under another program's id.
    elsewhere = make_program(world.tenant, title="Other program")
    enroll(elsewhere, world.user_of(rel.mentee), mentee=True)
    mentee = learner(world, as_person, rel.mentee)
    wrong = f"/programs/{elsewhere.id}/meetings/{meeting.id}/feedback"
    assert mentee.get(wrong).status_code == 404
    assert mentee.post(wrong, GOOD).status_code == 404
    # A person launched from another tenant's course.
    foreign = make_tenant()
    visitor = make_user(foreign, LEARNER)
    enroll(make_program(foreign), visitor, mentee=True)
    intruder = as_person(foreign, visitor, CourseRole.LEARNER)
    assert intruder.get(feedback_url(world, meeting.id)).status_code == 404
    assert intruder.post(feedback_url(world, meeting.id), GOOD).status_code == 404
    assert count(session, MeetingFeedback) == 0


def test_a_cross_site_post_is_refused(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2))
    mentee = learner(world, as_person, rel.mentee)
    answer = mentee.post(
        feedback_url(world, meeting.id), GOOD, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert count(session, MeetingFeedback) == 0


def test_the_partner_reads_shared_feedback_only(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    rel = world.add_pair(mentor_name="Dr Omar Mentor")
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2))
    mentor = as_person(world.tenant, world.user_of(rel.mentor), CourseRole.INSTRUCTOR)
    mentee = learner(world, as_person, rel.mentee)
    url = feedback_url(world, meeting.id)
    mentor.post(url, {**GOOD, "comment": "Private remark QX7", "visibility": "private"})
    assert "Private remark QX7" not in mentee.get(url).text

    mentor.post(url, {**GOOD, "comment": "Shared remark KZ3", "visibility": "shared"})
    page = mentee.get(url).text
    assert "Feedback shared with you" in page
    assert "Shared remark KZ3" in page
    assert "Dr Omar Mentor" in page

    # The author does not see their own answer as "shared with you"; coordinators see all.
    assert "Feedback shared with you" not in mentor.get(url).text
    mentee.post(url, {**GOOD, "comment": "Mentee private TT1", "visibility": "private"})
    coordinator = as_person(world.tenant, world.coordinator_user, CourseRole.INSTRUCTOR)
    answers = coordinator.get(
        f"/programs/{world.program.id}/coordinator/relationships/{rel.id}/feedback"
    ).text
    assert "Shared remark KZ3" in answers
    assert "Mentee private TT1" in answers
    assert "Mentee private TT1" not in mentor.get(url).text


def test_feedback_opens_at_the_start_and_closes_after_the_deadline(
    world: World, session: Session, as_person: Callable[..., Person], clock: time_machine.Traveller
) -> None:
    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 + timedelta(days=1), MeetingStatus.SCHEDULED)
    url = feedback_url(world, meeting.id)
    early = learner(world, as_person, rel.mentee)
    assert "Feedback opens when the meeting starts" in early.get(url).text
    assert early.post(url, GOOD).status_code == 409

    clock.move_to(T0 + timedelta(days=1, minutes=40))
    assert learner(world, as_person, rel.mentee).post(url, GOOD).status_code == 303

    clock.move_to(T0 + timedelta(days=16))  # 14 days after the end, and more
    late = learner(world, as_person, rel.mentee)
    refused = late.post(url, {**GOOD, "rating": "1"})
    assert refused.status_code == 409
    assert "it is closed now" in refused.text
    assert session.scalars(select(MeetingFeedback)).one().rating == 4


def test_a_cancelled_meeting_takes_no_feedback(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2), MeetingStatus.CANCELLED)
    answer = learner(world, as_person, rel.mentee).post(feedback_url(world, meeting.id), GOOD)
    assert answer.status_code == 409
    assert count(session, MeetingFeedback) == 0


# --- health check -------------------------------------------------------------------------


def health_url(world: World, relationship_id: int) -> str:
    return f"/programs/{world.program.id}/relationships/{relationship_id}/health"


def test_each_side_answers_the_health_check_once_per_period(
    world: World, session: Session, as_person: Callable[..., Person], clock: time_machine.Traveller
) -> None:
    rel = world.add_pair(started=T0 - timedelta(days=61))  # period 1 (every 60 days)
    url = health_url(world, rel.id)
    mentee = learner(world, as_person, rel.mentee)
    page = mentee.get(url)
    assert page.status_code == 200
    assert "Only the program coordinators read your answer" in page.text
    assert mentee.post(url, {"score": "2", "comment": "Hard to find time"}).status_code == 303
    assert mentee.post(url, {"score": "3", "comment": "Better"}).status_code == 303
    mentor = as_person(world.tenant, world.user_of(rel.mentor), CourseRole.INSTRUCTOR)
    assert mentor.post(url, {"score": "5"}).status_code == 303
    rows = session.scalars(select(HealthCheck).order_by(HealthCheck.id)).all()
    assert [(r.author_id, r.period, r.score) for r in rows] == [
        (rel.mentee_id, 1, 3),
        (rel.mentor_id, 1, 5),
    ]
    # The partner's answer is not shown to the other side.
    assert "Better" not in mentor.get(url).text

    clock.move_to(T0 + timedelta(days=60))  # the next period: a new answer
    assert learner(world, as_person, rel.mentee).post(url, {"score": "4"}).status_code == 303
    assert [r.period for r in session.scalars(select(HealthCheck).order_by(HealthCheck.id))] == [
        1,
        1,
        2,
    ]


def test_bad_or_unwanted_health_checks_change_nothing(
    world: World,
    session: Session,
    as_person: Callable[..., Person],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> None:
    rel = world.add_pair()
    url = health_url(world, rel.id)
    mentee = learner(world, as_person, rel.mentee)
    bad = mentee.post(url, {"score": "0", "comment": "y" * 4001})
    assert bad.status_code == 400
    assert "Choose how it is going from 1 to 5." in bad.text
    other = world.add_pair()
    assert learner(world, as_person, other.mentee).post(url, {"score": "3"}).status_code == 404
    coordinator = as_person(world.tenant, world.coordinator_user, CourseRole.INSTRUCTOR)
    assert coordinator.get(url).status_code == 404
    elsewhere = make_program(world.tenant, title="Other program")
    enroll(elsewhere, world.user_of(rel.mentee), mentee=True)
    wrong = health_url(world, rel.id).replace(f"/{world.program.id}/", f"/{elsewhere.id}/")
    assert mentee.post(wrong, {"score": "3"}).status_code == 404
    rel.status = RelationshipStatus.CLOSED
    session.flush()
    assert mentee.post(url, {"score": "3"}).status_code == 409
    assert count(session, HealthCheck) == 0


def render_mail(session: Session, world: World, kind: str, rel: Relationship, to: int) -> Any:
    from plugin.followups.render import render_followup
    from plugin.models import FollowUp, FollowUpKind

    row = FollowUp(
        program_id=world.program.id,
        kind=FollowUpKind(kind),
        recipient_id=to,
        relationship_id=rel.id,
        due_at=T0,
        dedupe_key=f"{kind}:{rel.id}:{to}",
    )
    session.add(row)
    session.flush()
    return render_followup(
        session,
        row,
        base_url="http://preceptor.test",
        mail_from="Preceptor <m@school.example.edu>",
        unsubscribe_url="http://preceptor.test/u",
        to_address="a@example.edu",
    )


def test_the_health_check_email_links_to_the_form(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - timedelta(days=61))
    message = render_mail(session, world, "health_check", rel, rel.mentee_id)
    link = f"http://preceptor.test/programs/{world.program.id}/relationships/{rel.id}/health"
    assert link in message.text
    assert f'href="{link}"' in message.html


def test_the_escalation_email_links_to_the_attention_queue(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - timedelta(days=40))
    message = render_mail(session, world, "escalation", rel, world.coordinator.id)
    link = f"http://preceptor.test/programs/{world.program.id}/coordinator/attention"
    assert link in message.text
    assert f'href="{link}"' in message.html


def test_the_meeting_page_links_attendees_to_the_feedback_form(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    rel = world.add_pair()
    held = world.add_meeting(rel, T0 - timedelta(hours=2))
    upcoming = world.add_meeting(rel, T0 + timedelta(days=2), MeetingStatus.SCHEDULED)
    mentee = learner(world, as_person, rel.mentee)
    page = mentee.get(f"/programs/{world.program.id}/meetings/{held.id}")
    assert page.status_code == 200
    assert feedback_url(world, held.id) in page.text
    later = mentee.get(f"/programs/{world.program.id}/meetings/{upcoming.id}")
    assert feedback_url(world, upcoming.id) not in later.text


# --- evaluation ---------------------------------------------------------------------------


def evaluation_url(world: World, relationship_id: int) -> str:
    return f"/programs/{world.program.id}/relationships/{relationship_id}/evaluation"


GOOD_EVALUATION = {"goals_met": "partly", "would_recommend": "yes", "comment": "Worth it"}


def test_a_closed_relationship_is_evaluated_by_each_side(
    world: World, session: Session, as_person: Callable[..., Person], clock: time_machine.Traveller
) -> None:
    rel = world.add_pair(started=T0 - timedelta(days=200))
    url = evaluation_url(world, rel.id)
    mentee = learner(world, as_person, rel.mentee)
    assert "opens when this relationship closes" in mentee.get(url).text
    assert mentee.post(url, GOOD_EVALUATION).status_code == 409

    rel.status, rel.close_reason, rel.closed_at = (
        RelationshipStatus.CLOSED,
        CloseReason.COMPLETED,
        T0,
    )
    session.flush()
    assert mentee.post(url, GOOD_EVALUATION).status_code == 303
    assert mentee.post(url, {**GOOD_EVALUATION, "goals_met": "yes"}).status_code == 303
    row = session.scalars(select(RelationshipEvaluation)).one()
    assert (row.goals_met.value, row.would_recommend, row.comment) == ("yes", True, "Worth it")

    bad = mentee.post(url, {"goals_met": "maybe", "would_recommend": ""})
    assert bad.status_code == 400
    assert "Say whether the goals were met" in bad.text
    session.refresh(row)
    assert row.goals_met.value == "yes"

    other = world.add_pair()
    assert learner(world, as_person, other.mentee).get(url).status_code == 404
    clock.move_to(T0 + timedelta(days=31))
    late = learner(world, as_person, rel.mentee).post(url, GOOD_EVALUATION)
    assert late.status_code == 409
    assert count(session, RelationshipEvaluation) == 1


def test_a_declined_request_is_not_evaluated(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    rel = world.add_pair()
    rel.status, rel.started_at, rel.closed_at = RelationshipStatus.CLOSED, None, T0
    session.flush()
    mentee = learner(world, as_person, rel.mentee)
    assert mentee.post(evaluation_url(world, rel.id), GOOD_EVALUATION).status_code == 409
    assert count(session, RelationshipEvaluation) == 0


# --- lifecycle: closing, export, erasure --------------------------------------------------


def test_closing_a_relationship_invites_both_sides_to_evaluate(
    world: World, session: Session
) -> None:
    from plugin.models import Notification
    from plugin.programs.relationships import close_relationship

    rel = world.add_pair()
    close_relationship(session, rel, reason=CloseReason.COMPLETED, actor=None)
    invites = session.scalars(
        select(Notification).where(Notification.kind == "relationship.evaluate")
    ).all()
    assert {n.recipient_id for n in invites} == {rel.mentee_id, rel.mentor_id}
    assert {n.link for n in invites} == {evaluation_url(world, rel.id)}

    declined = world.add_pair()
    declined.started_at = None
    session.flush()
    close_relationship(session, declined, reason=CloseReason.DECLINED, actor=None)
    assert (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "relationship.evaluate")
        )
        == 2
    )


def test_feedback_is_in_the_export_and_its_text_goes_with_erasure(
    world: World, session: Session, as_person: Callable[..., Person]
) -> None:
    from plugin.programs.enrollment import export_participant_data
    from plugin.programs.erasure import erase_participant

    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2))
    mentee = learner(world, as_person, rel.mentee)
    mentee.post(feedback_url(world, meeting.id), {**GOOD, "comment": "Mine to keep"})
    mentee.post(health_url(world, rel.id), {"score": "4", "comment": "Going fine"})
    exported = export_participant_data(session, rel.mentee)["feedback"]
    assert exported["meetings"][0]["comment"] == "Mine to keep"
    assert exported["health_checks"][0]["score"] == 4

    erase_participant(session, rel.mentee, actor_user_id=world.coordinator_user.id)
    row = session.scalars(select(MeetingFeedback)).one()
    check = session.scalars(select(HealthCheck)).one()
    session.refresh(row)
    session.refresh(check)
    assert (row.comment, row.rating) == ("", 4)
    assert (check.comment, check.score) == ("", 4)


def test_a_second_first_answer_loses_the_race_and_edits_the_first(
    world: World, session: Session
) -> None:
    """Two first answers at once (a double click): the second one's lookup ran before the
    first was written, so its insert hits the unique constraint; it edits the first."""
    from plugin.insights.feedback import _stored_or_new, meeting_feedback_of

    rel = world.add_pair()
    meeting = world.add_meeting(rel, T0 - timedelta(hours=2))

    def new() -> MeetingFeedback:
        return MeetingFeedback(
            program_id=world.program.id,
            meeting_id=meeting.id,
            relationship_id=rel.id,
            author_id=rel.mentee_id,
            rating=3,
            useful=True,
        )

    first = _stored_or_new(session, lambda: None, new)  # nothing stored yet
    lookups = iter([None])  # the second request's first lookup: before the first was written

    def stored() -> MeetingFeedback | None:
        return next(lookups, None) or meeting_feedback_of(session, meeting, rel.mentee)

    second = _stored_or_new(session, stored, new)
    assert second.id == first.id
    assert count(session, MeetingFeedback) == 1


def test_the_homes_link_to_an_open_health_check_until_it_is_answered(
    world: World, as_person: Callable[..., Person]
) -> None:
    young = world.add_pair()  # 5 days old: no check yet
    due = world.add_pair(started=T0 - timedelta(days=61))
    mentee = learner(world, as_person, due.mentee)
    mentor = as_person(world.tenant, world.user_of(due.mentor), CourseRole.INSTRUCTOR)
    home = f"/programs/{world.program.id}/"
    assert health_url(world, due.id) in mentee.get(home).text
    assert health_url(world, young.id) not in learner(world, as_person, young.mentee).get(home).text
    assert mentee.post(health_url(world, due.id), {"score": "4"}).status_code == 303
    assert health_url(world, due.id) not in mentee.get(home).text
    assert health_url(world, due.id) in mentor.get(home).text  # the other side still asked
