"""LTI Dynamic Registration against a platform served over loopback HTTP."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request, Response

from plugin.devplatform.signer import CLAIM, DevPlatform
from plugin.lti.dynamic_registration import issue_invite
from plugin.models import Deployment, Platform
from tests.conftest import serving
from tests.lti.conftest import LAUNCH_URL, TOOL, Browser, KeysetServer

TOKEN = "registration-token-123"


@dataclass
class RegistrationPlatform:
    """An LMS's registration side: openid-configuration and registration endpoint."""

    port: int
    product: str = "moodle"
    deployment_id: str | None = "7"
    jwks_uri: str = ""
    issuer_override: str | None = None
    messages_supported: list[Any] | None = None
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_url(self) -> str:
        return f"{self.origin}/.well-known/openid-configuration"

    def configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer_override or self.origin,
            "authorization_endpoint": f"{self.origin}/auth",
            "token_endpoint": f"{self.origin}/token",
            "jwks_uri": self.jwks_uri or f"{self.origin}/jwks",
            "registration_endpoint": f"{self.origin}/register",
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": [
                "openid",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
            ],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": self.product,
                "version": "4.5",
                **(
                    {"messages_supported": self.messages_supported}
                    if self.messages_supported is not None
                    else {}
                ),
            },
        }


@pytest.fixture
def lms_registry() -> Iterator[RegistrationPlatform]:
    holder: dict[str, RegistrationPlatform] = {}

    @Request.application
    def serve(request: Request) -> Response:
        platform = holder["p"]
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response("unauthorized", status=401)
        if request.path == "/.well-known/openid-configuration":
            return Response(json.dumps(platform.configuration()), mimetype="application/json")
        if request.path == "/register" and request.method == "POST":
            body = json.loads(request.get_data())
            platform.received.append(body)
            answer: dict[str, Any] = {**body, "client_id": f"{platform.product}-client-1"}
            config = dict(body["https://purl.imsglobal.org/spec/lti-tool-configuration"])
            if platform.deployment_id:
                config["deployment_id"] = platform.deployment_id
            answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = config
            return Response(json.dumps(answer), status=200, mimetype="application/json")
        return Response("not found", status=404)

    with serving(serve) as port:
        holder["p"] = RegistrationPlatform(port=port)
        yield holder["p"]


def register(
    app: Flask,
    platform: RegistrationPlatform,
    *,
    invite: str | None = None,
    token: str = TOKEN,
    config_url: str | None = None,
) -> Any:
    invite = invite or issue_invite(app.config["SECRET_KEY"])
    query = urlencode(
        {"openid_configuration": config_url or platform.config_url, "registration_token": token}
    )
    return app.test_client().get(f"/lti/register/{invite}?{query}", base_url=TOOL)


def platforms(session: Session) -> list[Platform]:
    return list(session.scalars(select(Platform)))


def test_moodle_registers_with_its_deployment(
    app: Flask, lms_registry: RegistrationPlatform, session: Session
) -> None:
    response = register(app, lms_registry)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Preceptor is registered" in response.get_data(as_text=True)
    assert "lti_registered.js" in response.get_data(as_text=True)  # org.imsglobal.lti.close
    (platform,) = platforms(session)
    assert (platform.issuer, platform.client_id) == (lms_registry.origin, "moodle-client-1")
    assert [d.deployment_id for d in platform.deployments] == ["7"]
    assert platform.product_family == "moodle"
    assert platform.accept_new_deployments is False
    (sent,) = lms_registry.received
    assert sent["initiate_login_uri"] == f"{TOOL}/lti/login"
    assert sent["redirect_uris"] == [LAUNCH_URL]
    assert sent["jwks_uri"] == f"{TOOL}/.well-known/jwks.json"
    # Only scopes the platform offers are asked for.
    assert "lti-ags/scope/lineitem" not in sent["scope"]
    assert "lti-nrps/scope/contextmembership.readonly" in sent["scope"]
    tool_config = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert {m["type"] for m in tool_config["messages"]} == {
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    }


def test_the_data_privacy_launch_is_registered_where_the_platform_sends_it(
    app: Flask, lms_registry: RegistrationPlatform
) -> None:
    lms_registry.messages_supported = [
        {"type": "LtiResourceLinkRequest"},
        {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]},
        {"type": "LtiDataPrivacyLaunchRequest"},
    ]
    response = register(app, lms_registry)
    assert response.status_code == 200, response.get_data(as_text=True)
    (sent,) = lms_registry.received
    messages = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
    (privacy,) = [m for m in messages if m["type"] == "LtiDataPrivacyLaunchRequest"]
    assert privacy["target_link_uri"] == LAUNCH_URL


def test_the_data_privacy_launch_is_not_offered_to_a_platform_that_does_not_list_it(
    app: Flask, lms_registry: RegistrationPlatform
) -> None:
    lms_registry.messages_supported = [{"type": "LtiResourceLinkRequest"}, "junk", {"type": 7}]
    response = register(app, lms_registry)
    assert response.status_code == 200, response.get_data(as_text=True)
    (sent,) = lms_registry.received
    messages = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
    assert "LtiDataPrivacyLaunchRequest" not in {m["type"] for m in messages}


def test_canvas_registers_without_deployments_and_learns_them_from_signed_launches(
    app: Flask,
    lms_registry: RegistrationPlatform,
    keyset_server: KeysetServer,
    session: Session,
) -> None:
    lms_registry.product, lms_registry.deployment_id = "canvas", None
    lms_registry.jwks_uri = keyset_server.url("canvasdr")
    canvas = DevPlatform(
        issuer=lms_registry.origin, client_id="canvas-client-1", deployment_id="12:abcdef"
    )
    keyset_server.keysets["canvasdr"] = canvas.jwks()
    assert register(app, lms_registry).status_code == 200
    sent = lms_registry.received[0]["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert sent["https://canvas.instructure.com/lti/privacy_level"] == "public"
    (platform,) = platforms(session)
    assert platform.deployments == []
    assert platform.accept_new_deployments is True

    agent = Browser(app.test_client())
    assert agent.full_launch(canvas).status_code == 200
    assert session.scalars(select(Deployment.deployment_id)).all() == ["12:abcdef"]
    # A forged launch with a new deployment id is still refused: the signature gates it.
    impostor = DevPlatform(issuer=canvas.issuer, client_id=canvas.client_id)
    login = agent.login(canvas)
    claims = canvas.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    claims[f"{CLAIM}deployment_id"] = "99:forged"
    refused = agent.launch(canvas.sign(claims, key=impostor.private_key), login.state)
    assert refused.status_code == 401
    assert session.scalars(select(Deployment.deployment_id)).all() == ["12:abcdef"]


def test_an_invite_works_once(
    app: Flask, lms_registry: RegistrationPlatform, session: Session
) -> None:
    invite = issue_invite(app.config["SECRET_KEY"])
    assert register(app, lms_registry, invite=invite).status_code == 200
    again = register(app, lms_registry, invite=invite)
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    assert len(platforms(session)) == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"invite": "forged.invite.token"}, "not valid"),
        ({"token": "wrong-token"}, "answered 401"),
        (
            {"config_url": "http://lms.example.edu/.well-known/openid-configuration"},
            "must be an https URL",
        ),
    ],
)
def test_bad_registrations_are_refused_and_store_nothing(
    app: Flask,
    lms_registry: RegistrationPlatform,
    session: Session,
    setup: dict[str, str],
    message: str,
) -> None:
    response = register(app, lms_registry, **setup)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert platforms(session) == []
    assert lms_registry.received == []


def test_a_configuration_claiming_another_issuer_is_refused(
    app: Flask, lms_registry: RegistrationPlatform, session: Session
) -> None:
    lms_registry.issuer_override = "https://canvas.instructure.com"
    response = register(app, lms_registry)
    assert response.status_code == 400
    assert "not on the issuer's host" in html.unescape(response.get_data(as_text=True))
    assert platforms(session) == []
    assert lms_registry.received == []
