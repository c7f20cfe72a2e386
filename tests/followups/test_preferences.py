"""A participant's notification preferences page: reachable from their home, saved whole or
not at all, refused from another origin; the unsubscribe link's effect stays until they
choose to resubscribe."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from plugin.followups.unsubscribe import preference_for
from plugin.lti.roles import CourseRole
from plugin.models import FollowUpKind, NotificationPreference
from tests.followups.conftest import MONDAY, Cast
from tests.programs.conftest import Person, Tenant, token_for

VALID = {
    "channel": "in_app",
    "kinds": ["introduction", "meeting_reminder", "goal_checkin"],
    "quiet_start": "22:00",
    "quiet_end": "07:30",
    "daily_cap": "2",
}


def mina(app: Flask, tenant: Tenant, cast: Cast) -> Person:
    assert cast.mentee.user is not None
    return Person(app.test_client(), token_for(tenant, cast.mentee.user, CourseRole.LEARNER))


def path(cast: Cast) -> str:
    return f"/programs/{cast.program.id}/notifications/preferences"


def test_the_page_is_linked_from_home_and_shows_the_defaults(
    app: Flask, session: Session, tenant: Tenant, cast: Cast
) -> None:
    person = mina(app, tenant, cast)
    home = person.get(f"/programs/{cast.program.id}/")
    assert home.status_code == 200
    assert b">My notifications</a>" in home.data
    assert path(cast).encode() in home.data
    page = person.get(path(cast))
    assert page.status_code == 200
    html = page.data.decode()
    assert "<h1>My notifications</h1>" in html
    assert '<input type="radio" name="channel" value="email" checked>' in html
    assert 'value="meeting_reminder" checked' in html
    assert "coordinator_digest" not in html  # a mentee is not offered coordinators' mail
    assert '<label for="quiet_start">From</label>' in html
    session.expire_all()
    assert session.get(NotificationPreference, cast.mentee.id) is None  # a GET writes nothing


def test_a_valid_form_is_saved_whole(
    app: Flask, session: Session, tenant: Tenant, cast: Cast
) -> None:
    response = mina(app, tenant, cast).post(path(cast), VALID)
    assert response.status_code == 200
    assert b"Your notification settings are saved." in response.data
    session.expire_all()
    saved = preference_for(session, cast.mentee.id)
    assert saved.channel == "in_app"
    assert sorted(saved.muted_kinds) == sorted(
        [
            FollowUpKind.MEETING_FEEDBACK.value,
            FollowUpKind.NO_MEETING_NUDGE.value,
            FollowUpKind.HEALTH_CHECK.value,
        ]
    )
    assert (saved.quiet_start, saved.quiet_end, saved.daily_cap) == ("22:00", "07:30", 2)


def test_bad_input_gets_a_message_per_field_and_changes_nothing(
    app: Flask, session: Session, tenant: Tenant, cast: Cast
) -> None:
    bad = {**VALID, "channel": "pigeon", "quiet_start": "25:00", "daily_cap": "0"}
    response = mina(app, tenant, cast).post(path(cast), bad)
    assert response.status_code == 400
    html = response.data.decode()
    assert "Choose how you want to receive these messages." in html
    assert "Enter a time as HH:MM (24-hour), or leave both empty." in html
    assert "Enter a number from 1 to 20, or leave it empty." in html
    assert 'aria-invalid="true" aria-describedby="daily_cap-error cap-hint"' in html
    session.expire_all()
    kept = preference_for(session, cast.mentee.id)
    assert (kept.channel, kept.muted_kinds, kept.daily_cap) == ("email", [], None)


def test_a_post_from_another_site_is_refused(
    app: Flask, session: Session, tenant: Tenant, cast: Cast
) -> None:
    person = mina(app, tenant, cast)
    response = person.post(path(cast), VALID, headers={"Origin": "https://attacker.example"})
    assert response.status_code == 403
    session.expire_all()
    assert preference_for(session, cast.mentee.id).channel == "email"


def test_unsubscribed_stays_so_until_the_person_ticks_resubscribe(
    app: Flask, session: Session, tenant: Tenant, cast: Cast
) -> None:
    preference_for(session, cast.mentee.id).unsubscribed_at = MONDAY
    session.commit()
    person = mina(app, tenant, cast)
    assert b"You unsubscribed from these messages" in person.get(path(cast)).data
    person.post(path(cast), VALID)
    session.expire_all()
    assert preference_for(session, cast.mentee.id).unsubscribed_at == MONDAY
    person.post(path(cast), {**VALID, "resubscribe": "yes"})
    session.expire_all()
    assert preference_for(session, cast.mentee.id).unsubscribed_at is None
