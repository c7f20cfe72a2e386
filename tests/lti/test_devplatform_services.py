"""The development LMS's deep linking and gradebook, end to end against the real tool."""

from __future__ import annotations

import html as htmllib
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from plugin.db import get_db
from plugin.migrate import upgrade

LMS = "http://localhost:5000"
TOOL = "http://127.0.0.1:5000"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"


@pytest.fixture
def dev_app(make_app: Callable[..., Flask], fresh_database_url: str, redis_url: str) -> Flask:
    app = make_app(database_url=fresh_database_url, redis_url=redis_url, dev_platform=True)
    upgrade(get_db(app).engine)
    return app


def hidden(page: TestResponse, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)
    return htmllib.unescape(found.group(1))


def follow_login(client: FlaskClient, login_url: str) -> TestResponse:
    """Tool login -> LMS auth -> tool launch, as the browser's redirects and form posts."""
    parts = urlsplit(htmllib.unescape(login_url))
    # Without platform storage (a test client runs no JavaScript): the state cookie path.
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "lti_storage_target"]
    login = client.get(f"{parts.path}?{urlencode(query)}", base_url=TOOL)
    assert login.status_code == 302, login.get_data(as_text=True)
    auth = urlsplit(login.headers["Location"])
    form = client.get(f"{auth.path}?{auth.query}", base_url=LMS)
    assert form.status_code == 200, form.get_data(as_text=True)
    return client.post(
        "/lti/launch",
        data={"id_token": hidden(form, "id_token"), "state": hidden(form, "state")},
        base_url=TOOL,
    )


def launch_links(page: TestResponse, persona: str) -> list[str]:
    return re.findall(
        rf'href="(http://127\.0\.0\.1:5000/lti/login\?[^"]*)"[^>]*>[^<]*{persona}',
        page.get_data(as_text=True),
    )


def test_add_preceptor_to_the_course_then_launch_the_placed_link(dev_app: Flask) -> None:
    client = dev_app.test_client()
    home = client.get("/dev/platform", base_url=LMS)
    add = re.search(r'href="([^"]+)"[^>]*id="add-preceptor"', home.get_data(as_text=True))
    assert add is not None

    picker = follow_login(client, add.group(1))
    assert picker.status_code == 200, picker.get_data(as_text=True)
    action = re.search(r'action="(/lti/deep-link/\d+)"', picker.get_data(as_text=True))
    assert action is not None
    answer = client.post(
        action.group(1),
        data={
            "lt": hidden(picker, "lt"),
            "picker": hidden(picker, "picker"),
            "program": "new",
            "title": "Demo mentoring",
            "tracks": "career",
        },
        base_url=TOOL,
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert f'action="{LMS}/dev/platform/deep-link-return"' in answer.get_data(as_text=True)

    placed = client.post(
        "/dev/platform/deep-link-return", data={"JWT": hidden(answer, "JWT")}, base_url=LMS
    )
    assert placed.status_code == 200
    assert "Demo mentoring" in placed.get_data(as_text=True)
    # The course page lists the placed link too.
    assert "Demo mentoring" in client.get("/dev/platform", base_url=LMS).get_data(as_text=True)

    [student_link] = launch_links(placed, "student")
    landed = follow_login(dev_app.test_client(), student_link)
    assert landed.status_code == 200
    assert re.search(r'action="/programs/\d+/"', landed.get_data(as_text=True))


def test_a_forged_deep_linking_response_is_refused(dev_app: Flask) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    client = dev_app.test_client()
    client.get("/dev/platform", base_url=LMS)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    forged = jwt.encode(
        {"iss": "preceptor-dev", "aud": f"{LMS}/dev/platform", "iat": now, "exp": now + 60},
        key,
        algorithm="RS256",
        headers={"kid": "not-ours"},
    )
    response = client.post("/dev/platform/deep-link-return", data={"JWT": forged}, base_url=LMS)
    assert response.status_code == 400


def service_token(client: FlaskClient, dev_app: Flask) -> dict[str, str]:
    from plugin.lti.tool_keys import ensure_signing_key

    with dev_app.app_context(), get_db(dev_app).session_scope() as session:
        key = ensure_signing_key(session)
        pem, kid = key.private_key_pem, key.kid
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": "preceptor-dev",
            "sub": "preceptor-dev",
            "iat": now,
            "exp": now + 60,
            "aud": f"{LMS}/dev/platform/token",
            "jti": "j2",
        },
        pem,
        algorithm="RS256",
        headers={"kid": kid},
    )
    issued = client.post(
        "/dev/platform/token", data={"client_assertion": assertion}, base_url=LMS
    ).get_json()
    return {"Authorization": f"Bearer {issued['access_token']}"}


def test_its_gradebook_takes_line_items_and_scores_in_redis(dev_app: Flask) -> None:
    client = dev_app.test_client()
    client.get("/dev/platform", base_url=LMS)
    headers = service_token(client, dev_app)
    url = "/dev/platform/ags/dev-course-1/lineitems"
    assert client.get(url, base_url=LMS).status_code == 401
    item = {"label": "Mentorship participation", "scoreMaximum": 10, "resourceId": "program-1"}
    created = client.post(url, json=item, headers=headers, base_url=LMS)
    assert created.status_code == 201
    item_url = created.get_json()["id"]
    found = client.get(
        url, query_string={"resource_id": "program-1"}, headers=headers, base_url=LMS
    )
    assert [i["id"] for i in json.loads(found.get_data(as_text=True))] == [item_url]

    score: dict[str, Any] = {
        "userId": "dev-student",
        "scoreGiven": 3,
        "scoreMaximum": 10,
        "activityProgress": "InProgress",
        "gradingProgress": "FullyGraded",
        "timestamp": "2026-11-24T12:00:00.000+00:00",
    }
    scores = urlsplit(item_url).path + "/scores"
    wrong_type = client.post(scores, json=score, headers=headers, base_url=LMS)
    assert wrong_type.status_code == 415
    posted = client.post(
        scores,
        data=json.dumps(score),
        headers={**headers, "Content-Type": SCORE_TYPE},
        base_url=LMS,
    )
    assert posted.status_code == 204
    page = client.get("/dev/platform", base_url=LMS).get_data(as_text=True)
    assert "Mentorship participation" in page
    assert "dev-student" in page
