"""Pages opened by a secret link instead of a launch: an invitation, a calendar feed, an
unsubscribe link. The link is the credential: it opens its page with or without a launch,
an altered one opens nothing and changes nothing, and a launch never widens what an
invitation does (it binds to the launched person only in the program's own course)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.followups.unsubscribe import preference_for, unsubscribe_token
from plugin.lti.session import read_launch_token
from plugin.meetings.feeds import open_feed
from plugin.models import Participant, ParticipantStatus
from plugin.programs.invitations import invitation_token
from tests.programs import participant_world
from tests.programs.conftest import Person
from tests.programs.matrix import fill, fill_form, run_matrix, send, undone
from tests.programs.participant_world import PERSONAS, World, per_persona

#: (method, path, form, status with the link, status with the link altered).
TOKEN_ROUTES = [
    ("GET", "/invitations/{invitation}", {}, 200, 410),
    ("POST", "/invitations/{invitation}", {"name": "Ada Alumna"}, 303, 410),
    ("GET", "/feeds/{feed}.ics", {}, 200, 404),
    ("GET", "/unsubscribe/{unsubscribe}", {}, 200, 404),
    ("POST", "/unsubscribe/{unsubscribe}", {}, 200, 404),
]
#: What the completeness test reads: (method, path) of every row.
COVERED = [(method, path) for method, path, _, _, _ in TOKEN_ROUTES]


@dataclass
class Links:
    world: World
    invited: Participant
    tokens: dict[str, str]


world = participant_world.world  # the scenario's fixture (pytest finds it by attribute)


@pytest.fixture
def links(app: Flask, session: Session, world: World) -> Links:
    invited = Participant(
        program_id=world.ids["program"],
        is_mentor=True,
        status=ParticipantStatus.INVITED,
        invite_name="Ada",
        invite_email="ada@alumni.example.org",
    )
    session.add(invited)
    session.flush()
    mentee = session.get(Participant, world.ids["mentee"])
    assert mentee is not None
    secret = app.config["SECRET_KEY"]
    tokens = {
        "invitation": invitation_token(secret, invited),
        "feed": open_feed(session, mentee).token,
        "unsubscribe": unsubscribe_token(secret, preference_for(session, mentee.id)),
    }
    session.commit()
    return Links(world, invited, tokens)


def _altered(token: str) -> str:
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


@pytest.mark.parametrize(
    ("method", "path", "form", "valid", "altered"),
    TOKEN_ROUTES,
    ids=[f"{m} {p}" for m, p, _, _, _ in TOKEN_ROUTES],
)
def test_a_secret_link_opens_its_page_and_an_altered_one_nothing(
    app: Flask,
    session: Session,
    links: Links,
    method: str,
    path: str,
    form: dict[str, str],
    valid: int,
    altered: int,
) -> None:
    nobody: dict[str, Person | None] = {"no launch": None}
    got = run_matrix(app, session, nobody, method, fill(path, links.tokens), form)
    assert got == {"no launch": valid}
    forged = {name: _altered(token) for name, token in links.tokens.items()}
    got = run_matrix(app, session, nobody, method, fill(path, forged), fill_form(form, forged))
    assert got == {"no launch": altered}


#: Who accepts program A's invitation with their launch: people already in the program are
#: refused (409); anyone else accepts it (303), bound to their own account only when their
#: launch is in the program's course.
ACCEPT = [409, 409, 409, 409, 303, 303, 303, 303, 303]


def test_an_invitation_binds_only_a_launch_in_the_programs_course(
    app: Flask, session: Session, links: Links
) -> None:
    path = f"/invitations/{links.tokens['invitation']}"
    got, bound = {}, {}
    for name in PERSONAS:
        person = links.world.people[name]
        with undone(app, session):
            got[name] = send(app, person, "POST", path, {"name": "Ada Alumna"}).status_code
            user_id = session.scalar(
                select(Participant.user_id).where(Participant.id == links.invited.id)
            )
            launched = read_launch_token(person.token) if person is not None else None
            bound[name] = launched is not None and user_id == launched.user_id
    assert got == per_persona(ACCEPT)
    in_course = {"coordinator", "learner", "other_program"}
    assert bound == {name: name in in_course for name in PERSONAS}
