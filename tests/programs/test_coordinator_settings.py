"""Program settings: validated as a whole, audited with before and after, and the log page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import (
    AuditEvent,
    CareerStage,
    MentorPolicy,
    Participant,
    Program,
    Relationship,
    User,
)
from plugin.programs.errors import FormInvalid
from plugin.programs.settings import settings_snapshot, update_program_settings
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant
from tests.programs.forms import database_snapshot, field_error


def valid_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "title": "Mentorship",
        "description": "Find a mentor for research and careers.",
        "tracks": ["research", "career", "clinical", "wellbeing"],
        "mentor_policy": "faculty_only",
        "peer_mentor_min_stage": "clinical_student",
        "default_mentor_capacity": "2",
        "enrollment_opens_on": "2026-09-01",
        "enrollment_closes_on": "2026-09-30",
        "meeting_cadence_days": "30",
        "reminder_offsets_hours": "24, 1",
        "nudge_after_days": "21",
        "nudge_cap": "3",
        "quiet_start": "21:00",
        "quiet_end": "07:00",
        "points_per_meeting": "10",
        "points_per_checkin": "5",
        "points_maximum": "100",
        "extra_interests": "Global surgery\nRural medicine",
    }
    form.update(changes)
    return form


@pytest.fixture
def program(tenant: Tenant, make_program: Callable[..., Program]) -> Program:
    return make_program(tenant)


@pytest.fixture
def coordinator(
    tenant: Tenant, make_user: Callable[..., User], as_person: Callable[..., Person]
) -> Person:
    return as_person(tenant, make_user(tenant, INSTRUCTOR), CourseRole.INSTRUCTOR)


def test_settings_are_saved_and_audited_with_only_the_changed_fields(
    session: Session, program: Program, coordinator: Person
) -> None:
    url = f"/programs/{program.id}/coordinator/settings"
    page = coordinator.get(url)
    assert page.status_code == 200
    response = coordinator.post(
        url, valid_form(mentor_policy="faculty_and_peers", default_mentor_capacity="3")
    )
    assert response.status_code == 303
    assert "notice=saved" in response.headers["Location"]
    session.refresh(program)
    assert program.mentor_policy == MentorPolicy.FACULTY_AND_PEERS
    assert program.followup_settings == {
        "reminder_offsets_hours": [24, 1],
        "nudge_after_days": 21,
        "nudge_cap": 3,
        "quiet_hours": {"start": "21:00", "end": "07:00"},
    }
    assert program.participation_rule == {
        "points_per_meeting": 10,
        "points_per_checkin": 5,
        "maximum": 100,
    }
    assert program.extra_interests[0] == {"code": "x-global-surgery", "label": "Global surgery"}
    event = session.scalars(select(AuditEvent)).one()
    assert event.action == "program.settings_changed"
    assert event.before["mentor_policy"] == "faculty_only"
    assert event.after["mentor_policy"] == "faculty_and_peers"
    assert event.after["default_mentor_capacity"] == 3
    assert "title" not in event.after  # unchanged fields are not in the record
    log = coordinator.get(f"/programs/{program.id}/coordinator/audit").get_data(as_text=True)
    assert "program.settings_changed" in log
    assert "faculty_and_peers" in log


def test_saving_the_same_settings_records_nothing(
    session: Session, program: Program, coordinator: Person
) -> None:
    url = f"/programs/{program.id}/coordinator/settings"
    coordinator.post(url, valid_form())
    first = len(session.scalars(select(AuditEvent)).all())
    response = coordinator.post(url, valid_form())
    assert "notice=unchanged" in response.headers["Location"]
    assert len(session.scalars(select(AuditEvent)).all()) == first


def test_the_peer_mentor_stage_is_saved_and_audited(
    session: Session, program: Program, coordinator: Person
) -> None:
    assert settings_snapshot(program)["peer_mentor_min_stage"] == "clinical_student"  # default
    url = f"/programs/{program.id}/coordinator/settings"
    page = coordinator.get(url).get_data(as_text=True)
    assert '<option value="clinical_student" selected>Clinical student</option>' in page
    response = coordinator.post(
        url, valid_form(mentor_policy="faculty_and_peers", peer_mentor_min_stage="resident")
    )
    assert response.status_code == 303
    session.refresh(program)
    assert program.peer_mentor_min_stage == CareerStage.RESIDENT
    event = session.scalars(select(AuditEvent)).one()
    assert event.before["peer_mentor_min_stage"] == "clinical_student"
    assert event.after["peer_mentor_min_stage"] == "resident"
    page = coordinator.get(url).get_data(as_text=True)
    assert '<option value="resident" selected>Resident</option>' in page
    # Only the stage changes: the audit holds only it.
    coordinator.post(
        url, valid_form(mentor_policy="faculty_and_peers", peer_mentor_min_stage="fellow")
    )
    latest = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert latest is not None
    assert latest.before == {"peer_mentor_min_stage": "resident"}
    assert latest.after == {"peer_mentor_min_stage": "fellow"}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": " "}, "title", "Enter a name for the program."),
        ({"title": "x" * 201}, "title", "Use at most 200 characters."),
        ({"tracks": []}, "tracks", "Choose at least one track."),
        ({"tracks": ["astrology"]}, "tracks", "Choose tracks from the list."),
        ({"mentor_policy": "anyone"}, "mentor_policy", "Choose who may be a mentor."),
        ({"peer_mentor_min_stage": "dean"}, "peer_mentor_min_stage", "Choose the career stage"),
        ({"peer_mentor_min_stage": ""}, "peer_mentor_min_stage", "peer mentors start from"),
        ({"default_mentor_capacity": "0"}, "default_mentor_capacity", "from 1 to 50"),
        ({"default_mentor_capacity": "two"}, "default_mentor_capacity", "whole number"),
        ({"enrollment_opens_on": "01/09/2026"}, "enrollment_opens_on", "YYYY-MM-DD"),
        (
            {"enrollment_opens_on": "2026-10-01", "enrollment_closes_on": "2026-09-01"},
            "enrollment_closes_on",
            "on or after the day it opens",
        ),
        ({"meeting_cadence_days": "400"}, "meeting_cadence_days", "from 1 to 365"),
        ({"reminder_offsets_hours": "24, soon"}, "reminder_offsets_hours", "separated by commas"),
        ({"reminder_offsets_hours": "24, 24"}, "reminder_offsets_hours", "each reminder time once"),
        ({"reminder_offsets_hours": "1,2,3,4,5,6"}, "reminder_offsets_hours", "at most 5"),
        ({"nudge_cap": "-1"}, "nudge_cap", "from 0 to 10"),
        ({"quiet_start": "25:00"}, "quiet_start", "HH:MM"),
        ({"quiet_end": ""}, "quiet_end", "HH:MM"),
        ({"quiet_end": "21:00"}, "quiet_end", "different time"),
        ({"points_maximum": "0"}, "points_maximum", "from 1 to 1000"),
        ({"extra_interests": "Surgery\nsurgery"}, "extra_interests", "listed twice"),
        ({"extra_interests": "x" * 101}, "extra_interests", "at most 100 characters"),
    ],
)
def test_bad_settings_are_refused_at_the_field_and_change_nothing(
    session: Session,
    program: Program,
    coordinator: Person,
    changes: dict[str, Any],
    field: str,
    message: str,
) -> None:
    before = settings_snapshot(program)
    rows = database_snapshot(session)
    response = coordinator.post(
        f"/programs/{program.id}/coordinator/settings",
        valid_form(**{"mentor_policy": "faculty_and_peers", **changes}),
    )
    assert response.status_code == 400
    assert message in field_error(response.get_data(as_text=True), field)
    session.expire_all()
    assert settings_snapshot(session.get(Program, program.id)) == before  # type: ignore[arg-type]
    assert database_snapshot(session) == rows
    assert session.scalars(select(AuditEvent)).all() == []


def test_a_track_with_open_relationships_cannot_be_removed(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    mentee = enroll(program, make_user(tenant, LEARNER), mentee=True)
    mentor = enroll(program, make_user(tenant, INSTRUCTOR), mentor=True)
    session.add(
        Relationship(
            program_id=program.id, mentee_id=mentee.id, mentor_id=mentor.id, track="research"
        )
    )
    session.flush()
    with pytest.raises(FormInvalid) as caught:
        update_program_settings(session, program, valid_form(tracks=["career"]), actor_user_id=None)
    assert "close them before removing the track" in caught.value.errors["tracks"]


def test_per_track_default_capacities_are_saved_shown_and_audited(
    session: Session, program: Program, coordinator: Person
) -> None:
    url = f"/programs/{program.id}/coordinator/settings"
    page = coordinator.get(url).get_data(as_text=True)
    for track in ("Research", "Career", "Clinical", "Wellbeing"):
        assert f">Default mentees per mentor — {track}</label>" in page
    assert 'id="default_capacity-leadership"' not in page  # not offered: no box
    assert 'aria-describedby="default_capacity_by_track-hint"' in page

    defaults = {
        "default_capacity-research": "1",
        "default_capacity-career": "3",
        "default_capacity-clinical": "",  # empty: the program default (2) applies
        "default_capacity-wellbeing": "0",
    }
    response = coordinator.post(url, valid_form(**defaults))

    assert response.status_code == 303
    session.refresh(program)
    assert program.default_capacity_by_track == {"research": 1, "career": 3, "wellbeing": 0}
    assert [program.default_capacity(t) for t in program.offered_tracks] == [1, 3, 2, 0]
    (event,) = session.scalars(select(AuditEvent)).all()
    assert event.before["default_capacity_by_track"] == {}
    assert event.after["default_capacity_by_track"] == {"research": 1, "career": 3, "wellbeing": 0}
    page = coordinator.get(url).get_data(as_text=True)
    assert 'name="default_capacity-career" type="number" value="3"' in page
    assert 'name="default_capacity-clinical" type="number" value=""' in page
    log = coordinator.get(f"/programs/{program.id}/coordinator/audit").get_data(as_text=True)
    assert "default_capacity_by_track" in log

    # The same form again changes nothing; dropping a track drops its default with it.
    coordinator.post(url, valid_form(**defaults))
    assert len(session.scalars(select(AuditEvent)).all()) == 1
    coordinator.post(url, valid_form(tracks=["research", "career", "clinical"], **defaults))
    session.refresh(program)
    assert program.default_capacity_by_track == {"research": 1, "career": 3}
    latest = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert latest is not None
    assert latest.before["default_capacity_by_track"] == {
        "research": 1,
        "career": 3,
        "wellbeing": 0,
    }
    assert latest.after["default_capacity_by_track"] == {"research": 1, "career": 3}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"default_capacity-research": "two"}, "default_capacity-research", "whole number"),
        ({"default_capacity-research": "1.5"}, "default_capacity-research", "whole number"),
        ({"default_capacity-career": "-1"}, "default_capacity-career", "from 0 to 50"),
        ({"default_capacity-career": "51"}, "default_capacity-career", "from 0 to 50"),
        (
            {"default_capacity-astrology": "2"},
            "default_capacity_by_track",
            "only for the tracks listed",
        ),
    ],
)
def test_bad_track_defaults_are_refused_at_the_field_and_change_nothing(
    session: Session,
    program: Program,
    coordinator: Person,
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    program.default_capacity_by_track = {"career": 3}
    session.commit()
    before = settings_snapshot(program)
    rows = database_snapshot(session)
    form = valid_form(
        title="Renamed",  # a good change alongside: it is not applied either
        **{"default_capacity-research": "1", "default_capacity-career": "2", **changes},
    )

    response = coordinator.post(f"/programs/{program.id}/coordinator/settings", form)

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in field_error(page, field)
    assert 'value="Renamed"' in page  # the form comes back as typed
    session.expire_all()
    assert settings_snapshot(session.get(Program, program.id)) == before  # type: ignore[arg-type]
    assert database_snapshot(session) == rows
    assert session.scalars(select(AuditEvent)).all() == []
