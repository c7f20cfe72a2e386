"""LTI fixtures: a development platform with its keyset on a real loopback HTTP server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request, Response

from plugin.devplatform.signer import DevPlatform
from plugin.lti import platform_keys
from plugin.lti.registrations import PlatformInput, add_platform
from tests.conftest import CHROMIUM_ARGS, serving

#: The tool's address in tests (https: the state cookie is Secure, as in production).
TOOL = "https://tool.test"
LAUNCH_URL = f"{TOOL}/lti/launch"


@pytest.fixture(autouse=True)
def _forget_recent_keysets() -> Iterator[None]:
    """Each test starts without the keysets an earlier test's launches left in memory."""
    platform_keys._recent.clear()
    yield
    platform_keys._recent.clear()


@dataclass
class KeysetServer:
    """Serves platforms' JWKS documents over HTTP on 127.0.0.1, counting fetches."""

    port: int
    keysets: dict[str, dict[str, Any]]
    fetches: dict[str, int]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}/jwks"


@pytest.fixture
def keyset_server() -> Iterator[KeysetServer]:
    keysets: dict[str, dict[str, Any]] = {}
    fetches: dict[str, int] = {}

    @Request.application
    def serve(request: Request) -> Response:
        name = request.path.strip("/").split("/")[0]
        fetches[name] = fetches.get(name, 0) + 1
        if name not in keysets:
            return Response("not found", status=404)
        return Response(json.dumps(keysets[name]), mimetype="application/json")

    with serving(serve) as port:
        yield KeysetServer(port=port, keysets=keysets, fetches=fetches)


@pytest.fixture
def register_platform(session: Session, keyset_server: KeysetServer) -> Callable[..., DevPlatform]:
    """Create a development platform, publish its keys and register it with the tool."""

    def register(
        name: str = "canvas", *, client_id: str = "client-1", deployment_id: str = "deployment-1"
    ) -> DevPlatform:
        platform = DevPlatform(
            issuer=f"https://{name}.example.edu", client_id=client_id, deployment_id=deployment_id
        )
        keyset_server.keysets[name] = platform.jwks()
        add_platform(
            session,
            PlatformInput(
                issuer=platform.issuer,
                client_id=client_id,
                auth_login_url=f"https://{name}.example.edu/api/lti/authorize_redirect",
                auth_token_url=f"https://{name}.example.edu/login/oauth2/token",
                key_set_url=keyset_server.url(name),
                deployment_ids=(deployment_id,),
            ),
            allow_http_loopback=True,
        )
        session.commit()
        return platform

    return register


@pytest.fixture
def lms(app: Flask, register_platform: Callable[..., DevPlatform]) -> DevPlatform:
    return register_platform()


@dataclass
class Login:
    state: str
    nonce: str
    redirect: str


class Browser:
    """A browser talking to the tool: keeps its cookies between login and launch."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, platform: DevPlatform, **params: str) -> Login:
        query = {
            "iss": platform.issuer,
            "login_hint": "hint-1",
            "target_link_uri": LAUNCH_URL,
            "client_id": platform.client_id,
            **params,
        }
        response = self.client.get("/lti/login", query_string=query, base_url=TOOL)
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        values = parse_qs(urlsplit(location).query)
        return Login(state=values["state"][0], nonce=values["nonce"][0], redirect=location)

    def launch(self, id_token: str, state: str) -> TestResponse:
        return self.client.post(
            "/lti/launch", data={"id_token": id_token, "state": state}, base_url=TOOL
        )

    def full_launch(self, platform: DevPlatform, **claims: Any) -> TestResponse:
        login = self.login(platform)
        body = platform.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
        body.update(claims)
        return self.launch(platform.sign(body), login.state)


@pytest.fixture
def agent(app: Flask) -> Browser:
    """A person's browser (a test client with its own cookie jar)."""
    return Browser(app.test_client())


@pytest.fixture
def new_agent(app: Flask) -> Callable[[], Browser]:
    """Another browser: no cookies shared with ``agent``."""
    return lambda: Browser(app.test_client())


def launch_token(response: TestResponse) -> str:
    """The launch token the landing page hands to the course page."""
    html = response.get_data(as_text=True)
    marker = 'name="lt" value="'
    assert marker in html, html
    return html.split(marker, 1)[1].split('"', 1)[0]


def home_path(response: TestResponse) -> str:
    html = response.get_data(as_text=True)
    return html.split('action="', 1)[1].split('"', 1)[0]


@pytest.fixture
def cookieless_page(chromium_path: str, playwright_session: Any) -> Iterator[Any]:
    """A Chromium page that blocks third-party cookies, as current browsers do by default."""
    browser = playwright_session.chromium.launch(
        executable_path=chromium_path,
        args=[*CHROMIUM_ARGS, "--test-third-party-cookie-phaseout"],
    )
    page = browser.new_page()
    yield page
    browser.close()
