"""LTI endpoints: OIDC login, launch, and the course page a launch lands on."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import requests
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from plugin import get_settings
from plugin.db import request_session
from plugin.jobs import get_redis
from plugin.logs import get_logger
from plugin.lti.deep_link_views import start_deep_linking
from plugin.lti.dynamic_registration import ToolUrls
from plugin.lti.errors import LaunchRefused
from plugin.lti.launch import DATA_PRIVACY, DEEP_LINKING, LaunchInput, PreceptorLaunch
from plugin.lti.placement import open_program
from plugin.lti.platform_keys import PlatformKeys
from plugin.lti.provisioning import record_launch_and_link
from plugin.lti.registration_cache import registration_cache
from plugin.lti.session import issue_launch_token
from plugin.lti.state import STATE_TTL, LoginState, LoginStateStore, offered_storage
from plugin.lti.tool_conf import DatabaseToolConf
from plugin.models import Platform

__all__ = ["blueprint"]

log = get_logger(__name__)
blueprint = Blueprint("lti", __name__)

HTTP_KEY: Final = "preceptor.lti.http"


def _http() -> requests.Session:
    # One pooled HTTP session per app for keyset fetches.
    session: requests.Session | None = current_app.extensions.get(HTTP_KEY)
    if session is None:
        session = current_app.extensions[HTTP_KEY] = requests.Session()
        session.headers["User-Agent"] = "Preceptor LTI tool"
    return session


def tool_urls() -> ToolUrls:
    """The tool's public addresses: PRECEPTOR_BASE_URL when set, else this request's root."""
    return ToolUrls(base=get_settings().base_url or request.url_root.rstrip("/"))


def launch_url() -> str:
    """The one address platforms launch us at."""
    return tool_urls().launch


#: The state cookie's attributes; deleting it needs the very same ones. SameSite=None
#: needs Secure; Partitioned (CHIPS) keeps it alive where third-party cookies are blocked.
STATE_COOKIE: Final[dict[str, Any]] = {
    "path": "/lti/",
    "secure": True,
    "httponly": True,
    "samesite": "None",
    "partitioned": True,
}


def _state_cookie(state: str) -> str:
    return f"lti_{state[:16]}"


def _refusal(exc: LaunchRefused) -> tuple[str, int]:
    log.warning("lti.launch_refused", reason=exc.code, status=exc.status)
    return render_template(
        "error.html",
        status=exc.status,
        title="This launch could not be completed",
        advice=f"{exc} {exc.advice}",
        code=exc.code,
        request_id=g.get("request_id", ""),
    ), exc.status


@blueprint.get("/.well-known/jwks.json")
def jwks() -> ResponseReturnValue:
    """The tool's public keys: a plain {"keys": [...]}, cacheable for a few minutes."""
    from plugin.lti.tool_keys import published_jwks

    response = jsonify(published_jwks(request_session()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@blueprint.route("/lti/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """OIDC third-party-initiated login: check the request, issue state, go to the platform."""
    params = request.values
    iss = params.get("iss", "")
    login_hint = params.get("login_hint", "")
    target = params.get("target_link_uri", "")
    client_id = params.get("client_id", "")
    session = request_session()
    try:
        if not iss or not login_hint or not target:
            raise LaunchRefused(
                "login_incomplete",
                "the login request lacks iss, login_hint or target_link_uri",
                status=400,
            )
        query = select(Platform).where(Platform.issuer == iss)
        if client_id:
            query = query.where(Platform.client_id == client_id)
        platforms = list(session.scalars(query.limit(2)))
        if not platforms:
            raise LaunchRefused(
                "iss_unknown",
                "this platform is not registered with Preceptor",
                status=403,
                advice="Ask your administrator to install Preceptor.",
            )
        if len(platforms) > 1:
            raise LaunchRefused(
                "client_id_missing",
                "several registrations share this issuer and "
                "the login did not say which (client_id)",
                status=400,
            )
        platform = platforms[0]
        if target.split("?", 1)[0] != launch_url():
            raise LaunchRefused(
                "target_link_uri_foreign", "the login is for another tool's address", status=400
            )
    except LaunchRefused as exc:
        return _refusal(exc)

    storage_target = params.get("lti_storage_target", "")
    login_state = LoginStateStore(get_redis()).issue(
        iss=platform.issuer,
        client_id=platform.client_id,
        target_link_uri=target,
        storage_target=storage_target,
        login_hint=login_hint,
        lti_message_hint=params.get("lti_message_hint", ""),
    )
    auth = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": launch_url(),
        "state": login_state.state,
        "nonce": login_state.nonce,
        "login_hint": login_hint,
    }
    if login_state.lti_message_hint:
        auth["lti_message_hint"] = login_state.lti_message_hint
    separator = "&" if "?" in platform.auth_login_url else "?"
    auth_url = f"{platform.auth_login_url}{separator}{urlencode(auth)}"
    response: BaseResponse
    if storage_target:
        # LTI platform storage: keep the browser secret in the platform's frame (works where
        # cookies in iframes do not), then continue to the platform.
        response = Response(
            render_template(
                "lti_storage_put.html",
                target=storage_target,
                origin=_origin(platform.auth_login_url),
                key=_storage_key(login_state.state),
                value=login_state.browser_secret,
                next=auth_url,
            )
        )
    else:
        response = redirect(auth_url, code=302)
    response.set_cookie(
        _state_cookie(login_state.state),
        login_state.browser_secret,
        max_age=STATE_TTL,
        **STATE_COOKIE,
    )
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _storage_key(state: str) -> str:
    return f"preceptor_{state[:16]}"


@blueprint.post("/lti/launch")
def launch() -> ResponseReturnValue:
    """The platform posts the id_token here; on success the person lands in their course."""
    state = request.form.get("state", "")
    id_token = request.form.get("id_token", "")
    from_storage = request.form.get("lti_storage_value")
    cookie = request.cookies.get(_state_cookie(state), "") if state else ""
    states = LoginStateStore(get_redis())
    # Only a login that offered platform storage may need the storage step first.
    needs_look = bool(state) and from_storage is None and offered_storage(state)
    login = states.peek(state) if needs_look else None
    if login is not None and login.storage_target:
        # The platform offered storage at login: read the secret back from it (the cookie,
        # if the browser kept one, is only the fallback), then post again.
        platform_row = request_session().scalar(
            select(Platform).where(
                Platform.issuer == login.iss, Platform.client_id == login.client_id
            )
        )
        if platform_row is not None:
            return render_template(
                "lti_storage_get.html",
                target=login.storage_target,
                origin=_origin(platform_row.auth_login_url),
                key=_storage_key(state),
                id_token=id_token,
                state=state,
                action=url_for("lti.launch"),
            )
    data = LaunchInput(id_token=id_token, state=state, browser_secret=from_storage or cookie)
    session = request_session()
    message = PreceptorLaunch(
        data,
        DatabaseToolConf(session, registration_cache()),
        keys=PlatformKeys(get_redis(), _http()),
        states=states,
        launch_urls=frozenset({launch_url()}),
        http=_http(),
    )
    try:
        validated = message.result()
    except LaunchRefused as exc:
        if exc.code == "browser_unverified" and message.consumed_login is not None:
            return _new_window(message.consumed_login, exc)
        return _refusal(exc)
    recorded = record_launch_and_link(session, validated)
    identity = recorded.identity
    program = open_program(session, validated, recorded)
    session.commit()
    log.info(
        "lti.launch",
        user_id=identity.user_id,
        course_id=identity.course_id,
        message_type=validated.message_type,
        via="platform_storage" if from_storage else "cookie",
    )
    token = issue_launch_token(identity)
    if validated.message_type == DEEP_LINKING:
        response = make_response(start_deep_linking(validated, identity, token))
    elif identity.course_id is None:
        response = Response(render_template("launch_no_course.html"))
    elif validated.message_type == DATA_PRIVACY:
        # The platform's "my data" entry: the person's privacy page(s) in this course.
        home = url_for("participant.course_privacy", course_id=identity.course_id)
        response = Response(render_template("launch_landing.html", token=token, home=home))
    else:
        # A linked program opens straight away; otherwise the course's programs.
        home = (
            url_for("programs.program_home", program_id=program.id)
            if program is not None
            else url_for("programs.course_home", course_id=identity.course_id)
        )
        response = Response(render_template("launch_landing.html", token=token, home=home))
    response.delete_cookie(_state_cookie(state), **STATE_COOKIE)
    return response


def _new_window(login: LoginState, exc: LaunchRefused) -> tuple[str, int]:
    """Last resort: this browser blocks what an embedded launch needs; start over top-level."""
    log.warning("lti.launch_refused", reason=exc.code, status=exc.status, fallback="new_window")
    query = {
        "iss": login.iss,
        "client_id": login.client_id,
        "login_hint": login.login_hint,
        "target_link_uri": login.target_link_uri,
    }
    if login.lti_message_hint:
        query["lti_message_hint"] = login.lti_message_hint
    return render_template(
        "lti_new_window.html", url=f"{url_for('lti.login')}?{urlencode(query)}"
    ), exc.status


@blueprint.get("/lti/register/<invite>")
def register(invite: str) -> ResponseReturnValue:
    """LTI Dynamic Registration: the LMS opens this with its configuration URL and a token."""
    from plugin.lti.dynamic_registration import register_platform
    from plugin.lti.errors import RegistrationError

    settings = get_settings()
    session = request_session()
    try:
        platform = register_platform(
            session,
            redis=get_redis(),
            http=_http(),
            secret_key=current_app.config["SECRET_KEY"],
            invite=invite,
            config_url=request.args.get("openid_configuration", ""),
            registration_token=request.args.get("registration_token", ""),
            urls=tool_urls(),
            allow_http_loopback=not settings.is_production,
        )
    except RegistrationError as exc:
        session.rollback()
        log.warning("lti.registration_refused", reason=type(exc).__name__)
        return render_template(
            "error.html",
            status=400,
            title="Preceptor could not be registered",
            advice=f"{exc}.",
            code="registration_refused",
            request_id=g.get("request_id", ""),
        ), 400
    session.commit()
    log.info("lti.registered", platform_id=platform.id, product=platform.product_family)
    return render_template("lti_registered.html", platform=platform)


@blueprint.get("/lti/canvas.json")
def canvas_config() -> ResponseReturnValue:
    """Canvas developer key "Paste JSON": placements, deep linking, NRPS and AGS scopes."""
    from plugin.lti.dynamic_registration import SCOPES

    urls = tool_urls()
    placements = [
        {
            "placement": "course_navigation",
            "message_type": "LtiResourceLinkRequest",
            "target_link_uri": urls.launch,
            "text": "Mentorship",
            "default": "enabled",
        },
        {
            "placement": "link_selection",
            "message_type": "LtiDeepLinkingRequest",
            "target_link_uri": urls.launch,
            "text": "Add a Preceptor mentorship program",
        },
    ]
    return jsonify(
        {
            "title": "Preceptor",
            "description": "Mentorship programs: matching, meetings in your calendar, follow-ups.",
            "oidc_initiation_url": urls.login,
            "target_link_uri": urls.launch,
            "public_jwk_url": urls.jwks,
            "scopes": list(SCOPES),
            "extensions": [
                {
                    "domain": urlsplit(urls.base).netloc,
                    "tool_id": "preceptor",
                    "platform": "canvas.instructure.com",
                    "privacy_level": "public",
                    "settings": {"text": "Preceptor", "placements": placements},
                }
            ],
            "custom_fields": {},
        }
    )


@blueprint.get("/lti/moodle")
def moodle_values() -> ResponseReturnValue:
    """The values a Moodle admin types into "Manage tools" > "configure a tool manually"."""
    urls = tool_urls()
    rows = [
        ("Tool name", "Preceptor"),
        ("Tool URL", urls.launch),
        ("LTI version", "LTI 1.3"),
        ("Public key type", "Keyset URL"),
        ("Public keyset", urls.jwks),
        ("Initiate login URL", urls.login),
        ("Redirection URI(s)", urls.launch),
        ("Supports Deep Linking (Content-Item Message)", "Yes"),
        ("Content Selection URL", urls.launch),
        ("IMS LTI Assignment and Grade Services", "Use this service for grade sync only"),
        (
            "IMS LTI Names and Role Provisioning",
            "Use this service to retrieve members' information",
        ),
        ("Share launcher's name with tool", "Always"),
        ("Share launcher's email with tool", "Always"),
    ]
    return render_template("lti_moodle.html", rows=rows)
