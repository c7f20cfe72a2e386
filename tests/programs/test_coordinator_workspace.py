"""The coordinator workspace: people and roster status, filters, paging without N+1,
pairing, relationship changes, bulk actions and history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from plugin.db import get_db
from plugin.lti.roles import CourseRole
from plugin.models import (
    AuditEvent,
    CloseReason,
    CourseMembership,
    Notification,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
    User,
)
from plugin.programs.workspace import PAGE_SIZE, PeopleFilter, people_page
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant


@dataclass
class Scene:
    program: Program
    coordinator: Person
    coordinator_user: User
    mentee: Participant
    mentor: Participant


@pytest.fixture
def scene(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> Scene:
    program = make_program(tenant)
    teacher = make_user(tenant, INSTRUCTOR, name="Casey Coordinator")
    mentee = enroll(program, make_user(tenant, LEARNER, name="Mia Mentee"), mentee=True)
    mentor = enroll(program, make_user(tenant, INSTRUCTOR, name="Max Mentor"), mentor=True)
    return Scene(
        program=program,
        coordinator=as_person(tenant, teacher, CourseRole.INSTRUCTOR),
        coordinator_user=teacher,
        mentee=mentee,
        mentor=mentor,
    )


def base(scene: Scene) -> str:
    return f"/programs/{scene.program.id}/coordinator"


def test_the_workspace_lists_enrolled_people_and_course_members_with_their_status(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    scene: Scene,
    enroll: Callable[..., Participant],
) -> None:
    make_user(tenant, LEARNER, name="Nora Notyet")
    gone = enroll(scene.program, make_user(tenant, LEARNER, name="Lee Left"), mentee=True)
    session.execute(
        update(CourseMembership)
        .where(CourseMembership.user_id == gone.user_id)
        .values(active=False)
    )
    quit_ = enroll(scene.program, make_user(tenant, LEARNER, name="Wes Withdrawn"), mentee=True)
    quit_.status = ParticipantStatus.WITHDRAWN
    session.add(
        Participant(
            program_id=scene.program.id,
            is_mentor=True,
            status=ParticipantStatus.INVITED,
            invite_name="Iris Invited",
            invite_email="iris@alumni.example.org",
        )
    )
    session.flush()
    html = scene.coordinator.get(base(scene) + "/").get_data(as_text=True)
    for name, status in [
        ("Mia Mentee", "Enrolled"),
        ("Nora Notyet", "Not enrolled"),
        ("Lee Left", "Left the course"),
        ("Wes Withdrawn", "Withdrawn"),
        ("Iris Invited", "Invited"),
    ]:
        row = html[html.index(name) :]
        row = row[: row.index("</tr>")]
        assert f"<td>{status}</td>" in row, name
    filtered = scene.coordinator.get(base(scene) + "/?status=not_enrolled").get_data(as_text=True)
    assert "Nora Notyet" in filtered
    assert "Mia Mentee" not in filtered
    searched = scene.coordinator.get(base(scene) + "/?q=max").get_data(as_text=True)
    assert "Max Mentor" in searched
    assert "Mia Mentee" not in searched
    mentors = scene.coordinator.get(base(scene) + "/?role=mentor").get_data(as_text=True)
    assert "Max Mentor" in mentors
    assert "Mia Mentee" not in mentors


def test_track_filter_matches_wanted_or_offered_tracks(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    scene: Scene,
    enroll: Callable[..., Participant],
) -> None:
    enroll(
        scene.program,
        make_user(tenant, LEARNER, name="Wanda Wellbeing"),
        mentee=True,
        tracks_wanted=["wellbeing"],
    )
    page = people_page(session, scene.program, PeopleFilter(track="wellbeing"))
    names = {r.name for r in page.rows}
    assert "Wanda Wellbeing" in names  # wants it
    assert "Max Mentor" in names  # offers every track
    assert "Mia Mentee" not in names  # wants research only


@contextmanager
def counting_queries(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = get_db().engine

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _populate(session: Session, tenant: Tenant, program: Program, people: int) -> None:
    """``people`` course members, half enrolled as mentees, a tenth as mentors, paired."""
    users = [
        User(platform_id=tenant.platform.id, sub=f"bulk-{program.id}-{i}", name=f"Bulk {i:04d}")
        for i in range(people)
    ]
    session.add_all(users)
    session.flush()
    session.add_all(
        CourseMembership(course_id=tenant.course.id, user_id=u.id, roles=[LEARNER]) for u in users
    )
    mentors = []
    for i, user in enumerate(users):
        if i % 10 == 0:
            p = Participant(program_id=program.id, user_id=user.id, is_mentor=True)
            p.profile = Profile(tracks_offered=["research"], capacity_by_track={"research": 9})
            mentors.append(p)
        elif i % 2 == 0:
            p = Participant(program_id=program.id, user_id=user.id, is_mentee=True)
            p.profile = Profile(tracks_wanted=["research"])
        else:
            continue
        session.add(p)
    session.flush()
    mentees = session.scalars(
        select(Participant).where(
            Participant.program_id == program.id, Participant.is_mentee.is_(True)
        )
    ).all()
    for n, mentee in enumerate(mentees):
        session.add(
            Relationship(
                program_id=program.id,
                mentee_id=mentee.id,
                mentor_id=mentors[n % len(mentors)].id,
                track="research",
                status=RelationshipStatus.ACTIVE,
            )
        )
    session.flush()


def test_a_workspace_page_costs_the_same_queries_for_20_or_2000_people(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_program: Callable[..., Program],
    make_user: Callable[..., User],
    as_person: Callable[..., Person],
) -> None:
    used: dict[int, int] = {}
    for size in (20, 2000):
        tenant = make_tenant()
        program = make_program(tenant, tracks=["research"])
        _populate(session, tenant, program, size)
        person = as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)
        session.expire_all()
        with counting_queries(session) as statements:
            response = person.get(f"/programs/{program.id}/coordinator/?page=2")
        assert response.status_code == 200
        used[size] = len(statements)
        if size == 2000:
            html = response.get_data(as_text=True)
            assert "Page 2 of" in html
            assert html.count('name="selected"') == PAGE_SIZE
            assert "Research mentor: Bulk" in html  # relationships are on the page
    assert used[20] == used[2000]


def test_a_coordinator_pairs_a_mentee_with_a_mentor(session: Session, scene: Scene) -> None:
    url = f"{base(scene)}/people/{scene.mentee.id}/pair"
    assert "Max Mentor" in scene.coordinator.get(url).get_data(as_text=True)
    response = scene.coordinator.post(url, {"mentor_id": str(scene.mentor.id), "track": "research"})
    assert response.status_code == 303
    rel = session.scalars(select(Relationship)).one()
    assert (rel.status, rel.origin.value) == (RelationshipStatus.ACTIVE, "coordinator")
    audit = session.scalars(select(AuditEvent)).one()
    assert (audit.action, audit.actor_user_id) == (
        "relationship.created",
        scene.coordinator_user.id,
    )


def test_pairing_a_full_mentor_says_so_at_the_field_and_changes_nothing(
    session: Session,
    scene: Scene,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    assert scene.mentor.profile is not None
    scene.mentor.profile.capacity_by_track = {"research": 1}
    other = enroll(scene.program, make_user(tenant, LEARNER), mentee=True)
    url = f"{base(scene)}/people/{{}}/pair"
    form = {"mentor_id": str(scene.mentor.id), "track": "research"}
    assert scene.coordinator.post(url.format(other.id), form).status_code == 303
    response = scene.coordinator.post(url.format(scene.mentee.id), form)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert 'id="mentor_id-error"' in html
    assert "no free place" in html
    assert len(session.scalars(select(Relationship)).all()) == 1


def test_bad_pair_input_is_refused(session: Session, scene: Scene) -> None:
    url = f"{base(scene)}/people/{scene.mentee.id}/pair"
    response = scene.coordinator.post(url, {"mentor_id": "", "track": "astrology"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Choose a mentor in this program." in html
    assert "Choose one of the program&#39;s tracks." in html
    assert session.scalars(select(Relationship)).all() == []


def _pair(session: Session, scene: Scene) -> Relationship:
    scene.coordinator.post(
        f"{base(scene)}/people/{scene.mentee.id}/pair",
        {"mentor_id": str(scene.mentor.id), "track": "research"},
    )
    return session.scalars(select(Relationship)).one()


def test_pause_resume_and_close_with_a_reason_are_in_the_history(
    session: Session, scene: Scene
) -> None:
    rel = _pair(session, scene)
    url = f"{base(scene)}/relationships/{rel.id}"
    assert scene.coordinator.post(url + "/status", {"action": "pause"}).status_code == 303
    assert scene.coordinator.post(url + "/status", {"action": "resume"}).status_code == 303
    refused = scene.coordinator.post(url + "/status", {"action": "close", "reason": ""})
    assert refused.status_code == 400
    assert "Choose why the relationship ends." in refused.get_data(as_text=True)
    done = scene.coordinator.post(
        url + "/status", {"action": "close", "reason": "completed", "note": "Goals met"}
    )
    assert done.status_code == 303
    session.refresh(rel)
    assert (rel.status, rel.close_reason) == (RelationshipStatus.CLOSED, CloseReason.COMPLETED)
    html = scene.coordinator.get(url).get_data(as_text=True)
    for step in ("started", "paused", "resumed", "closed", "Goals met"):
        assert step in html
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == [
        "relationship.created",
        "relationship.paused",
        "relationship.resumed",
        "relationship.closed",
    ]


def test_bulk_close_with_a_reason(session: Session, scene: Scene) -> None:
    rel = _pair(session, scene)
    listing = scene.coordinator.get(f"{base(scene)}/relationships?status=active")
    assert "Max Mentor" in listing.get_data(as_text=True)
    response = scene.coordinator.post(
        f"{base(scene)}/relationships/bulk",
        {"selected": [str(rel.id)], "reason": "not_working"},
    )
    assert response.status_code == 303
    session.refresh(rel)
    assert rel.close_reason == CloseReason.NOT_WORKING


def test_bulk_make_coordinator_and_withdraw(
    session: Session, scene: Scene, tenant: Tenant, make_user: Callable[..., User]
) -> None:
    rel = _pair(session, scene)
    outsider = make_user(tenant, LEARNER, name="Sam Student")
    response = scene.coordinator.post(
        f"{base(scene)}/people/bulk",
        {"action": "make_coordinator", "selected": [f"p{scene.mentor.id}", f"u{outsider.id}"]},
    )
    assert response.status_code == 303
    session.refresh(scene.mentor)
    assert scene.mentor.is_coordinator
    made = session.scalars(select(Participant).where(Participant.user_id == outsider.id)).one()
    assert made.is_coordinator
    assert not made.is_mentee
    response = scene.coordinator.post(
        f"{base(scene)}/people/bulk", {"action": "withdraw", "selected": [f"p{scene.mentee.id}"]}
    )
    assert response.status_code == 303
    session.refresh(scene.mentee)
    session.refresh(rel)
    assert scene.mentee.status == ParticipantStatus.WITHDRAWN
    assert (rel.status, rel.close_reason) == (RelationshipStatus.CLOSED, CloseReason.WITHDRAWN)
    # The mentor is told, as when a person withdraws themselves.
    told = session.scalars(
        select(Notification).where(Notification.recipient_id == scene.mentor.id)
    ).all()
    assert [n.kind for n in told] == ["relationship.ended"]
    assert "was withdrawn" in told[0].text
    actions = session.scalars(select(AuditEvent.action)).all()
    assert actions.count("participant.made_coordinator") == 2
    assert "participant.withdrawn" in actions


def test_bulk_actions_refuse_people_of_another_program_and_change_nothing(
    session: Session,
    scene: Scene,
    tenant: Tenant,
    make_program: Callable[..., Program],
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    other = make_program(tenant, title="Other")
    stranger = enroll(other, make_user(tenant, LEARNER), mentee=True)
    response = scene.coordinator.post(
        f"{base(scene)}/people/bulk",
        {"action": "withdraw", "selected": [f"p{scene.mentee.id}", f"p{stranger.id}"]},
    )
    assert response.status_code == 400
    assert "not in this program" in response.get_data(as_text=True)
    session.refresh(scene.mentee)
    session.refresh(stranger)
    assert scene.mentee.status == stranger.status == ParticipantStatus.ACTIVE


def test_the_pair_page_shows_free_places_with_the_same_queries_for_any_number_of_mentors(
    session: Session,
    scene: Scene,
    tenant: Tenant,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    url = f"{base(scene)}/people/{scene.mentee.id}/pair?track=research"
    session.expire_all()
    with counting_queries(session) as few:
        html = scene.coordinator.get(url).get_data(as_text=True)
    assert "Max Mentor — 2 free on research" in html
    for n in range(10):
        mentor = enroll(scene.program, make_user(tenant, INSTRUCTOR), mentor=True)
        if n == 0:
            other = enroll(scene.program, make_user(tenant, LEARNER), mentee=True)
            session.add(
                Relationship(
                    program_id=scene.program.id,
                    mentee_id=other.id,
                    mentor_id=mentor.id,
                    track="research",
                    status=RelationshipStatus.ACTIVE,
                )
            )
    session.flush()
    session.expire_all()
    with counting_queries(session) as many:
        html = scene.coordinator.get(url).get_data(as_text=True)
    assert "1 free on research" in html
    assert len(many) == len(few)
