"""Every route of the app is in an authorization matrix, or exempt here with the reason.

A new route fails this test, naming it, until a row says who may use it (or, for a page
that no launched person's role opens, an exemption says why not).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from tests.programs import (
    test_coordinator_access,
    test_meeting_access,
    test_participant_access,
    test_token_access,
)
from tests.programs.matrix import endpoint_of

#: Endpoints outside the matrices: no program role decides who may use them.
EXEMPT = {
    "static": "static files",
    "ops.healthz": "liveness probe, public",
    "ops.readyz": "readiness probe, public",
    "web.index": "the public landing page",
    "lti.jwks": "the tool's public keys",
    "lti.canvas_config": "public install page",
    "lti.moodle_values": "public install page",
    "lti.register": "LTI dynamic registration; tests/lti/test_dynamic_registration.py",
    "lti.login": "LTI login initiation; tests/lti/test_launch.py",
    "lti.launch": "LTI launch, a platform-signed id_token; tests/lti/test_launch.py",
    "lti_deep_link.place_program": (
        "LTI deep linking, a signed picker for one instructor and course; "
        "tests/lti/test_deep_linking.py"
    ),
    "calendar_connect.google_callback": (
        "OAuth redirect, a signed single-use state; tests/meetings/test_calendar_connect.py"
    ),
    "calendar_connect.microsoft_callback": (
        "OAuth redirect, a signed single-use state; tests/meetings/test_calendar_connect.py"
    ),
}
#: Blueprints registered in development only (the development LMS and mail outbox).
DEVELOPMENT_ONLY = {"devplatform", "devplatform_services", "followups_dev"}

MATRICES = {
    "test_coordinator_access": test_coordinator_access.COVERED,
    "test_participant_access": test_participant_access.COVERED,
    "test_meeting_access": test_meeting_access.COVERED,
    "test_token_access": test_token_access.COVERED,
}


def _covered(app: Flask) -> set[tuple[str, str]]:
    return {
        (endpoint_of(app, method, path), method)
        for rows in MATRICES.values()
        for method, path in rows
    }


def test_every_route_is_in_an_authorization_matrix(
    make_app: Callable[..., Flask], database_url: str, redis_url: str
) -> None:
    # Development registers every blueprint, the development-only ones too.
    app = make_app(env="development", database_url=database_url, redis_url=redis_url)
    covered = _covered(app)
    missing = [
        f"{method} {rule.rule} ({rule.endpoint})"
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in EXEMPT and rule.endpoint.partition(".")[0] not in DEVELOPMENT_ONLY
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        if (rule.endpoint, method) not in covered
    ]
    assert not missing, "Routes in no authorization matrix (add rows, or exempt them):\n" + (
        "\n".join(missing)
    )


def test_the_exemptions_name_routes_that_exist(
    make_app: Callable[..., Flask], database_url: str, redis_url: str
) -> None:
    app = make_app(env="development", database_url=database_url, redis_url=redis_url)
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    blueprints = {rule.endpoint.partition(".")[0] for rule in app.url_map.iter_rules()}
    assert set(EXEMPT) - endpoints == set()
    assert DEVELOPMENT_ONLY - blueprints == set()
