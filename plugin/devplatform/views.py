"""The development LMS at /dev/platform (PRECEPTOR_ENV=development only).

A real LTI 1.3 platform in miniature: its own key pair, an OIDC authorization endpoint
that answers with a signed id_token, a JWKS, and LTI platform storage in its page. It
registers itself with the tool on first visit, so `make run` shows the whole launch.

The LMS page is served on ``localhost`` and frames the tool on ``127.0.0.1``: two sites,
so the browser treats the tool as third-party, as it would inside Canvas or Moodle.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from lti_config.keys import ensure_dev_keypair, load_private_key
from plugin import get_settings
from plugin.db import request_session
from plugin.devplatform.signer import CLAIM, MEMBERSHIP, DevPlatform
from plugin.jobs import get_redis
from plugin.lti.platform_keys import PlatformKeys
from plugin.lti.registrations import PlatformInput, add_platform
from plugin.models import Platform

__all__ = ["PERSONAS", "blueprint", "launch_url_for"]

blueprint = Blueprint("devplatform", __name__, url_prefix="/dev/platform")

CLIENT_ID: Final = "preceptor-dev"
NRPS_CLAIM: Final = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM: Final = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
AGS_SCOPE: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/"
DEPLOYMENT_ID: Final = "dev-deployment-1"
KEY_FILENAME: Final = "dev-platform-key.pem"

#: The demo people one can launch as: what the platform says about each.
PERSONAS: Final[dict[str, dict[str, Any]]] = {
    "student": {
        "sub": "dev-student",
        "name": "Sam Student",
        "given_name": "Sam",
        "email": "sam.student@example.edu",
        "roles": [f"{MEMBERSHIP}Learner"],
    },
    "faculty": {
        "sub": "dev-faculty",
        "name": "Dr Fran Faculty",
        "given_name": "Fran",
        "email": "fran.faculty@example.edu",
        "roles": [f"{MEMBERSHIP}Instructor"],
    },
    "coordinator": {
        "sub": "dev-coordinator",
        "name": "Cory Coordinator",
        "given_name": "Cory",
        "email": "cory.coordinator@example.edu",
        "roles": [f"{MEMBERSHIP}Instructor", f"{MEMBERSHIP}Administrator"],
    },
}


def _swap_host(url: str) -> str:
    """localhost <-> 127.0.0.1: the LMS and the tool on two sites of one server."""
    parts = urlsplit(url)
    host = "127.0.0.1" if parts.hostname == "localhost" else "localhost"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}"


def _platform_origin() -> str:
    return request.host_url.rstrip("/")


def _platform() -> DevPlatform:
    settings = get_settings()
    key, _ = ensure_dev_keypair(
        settings.instance_path / "keys", settings.fernet_keys()[0], filename=KEY_FILENAME
    )
    return DevPlatform(
        issuer=f"{_platform_origin()}/dev/platform",
        client_id=CLIENT_ID,
        deployment_id=DEPLOYMENT_ID,
        private_key=load_private_key(key.path, settings.fernet_keys()[0]),
    )


def _ensure_registered(platform: DevPlatform) -> Platform:
    session = request_session()
    origin = _platform_origin()
    row = session.scalar(
        select(Platform).where(Platform.issuer == platform.issuer, Platform.client_id == CLIENT_ID)
    )
    if row is None:
        row = add_platform(
            session,
            PlatformInput(
                issuer=platform.issuer,
                client_id=CLIENT_ID,
                auth_login_url=f"{origin}/dev/platform/auth",
                auth_token_url=f"{origin}/dev/platform/token",
                key_set_url=f"{origin}/dev/platform/jwks",
                deployment_ids=(DEPLOYMENT_ID,),
                name="Development LMS",
            ),
            allow_http_loopback=True,
        )
        session.commit()
    # The tool and this platform may share one single-threaded server: hand the tool our
    # keyset instead of making it fetch from itself.
    PlatformKeys(get_redis()).prime(row.key_set_url, platform.jwks())
    return row


def launch_url_for(persona: str, message_hint: str = "") -> str:
    """The tool's login URL that starts a launch as ``persona`` (what an LMS link does)."""
    tool = _swap_host(request.host_url)
    return f"{tool}/lti/login?" + urlencode(
        {
            "iss": f"{_platform_origin()}/dev/platform",
            "client_id": CLIENT_ID,
            "login_hint": persona,
            "lti_message_hint": message_hint or persona,
            "target_link_uri": f"{tool}/lti/launch",
            "lti_deployment_id": DEPLOYMENT_ID,
            "lti_storage_target": "_parent",
        }
    )


@blueprint.get("")
def home() -> ResponseReturnValue:
    """The demo course page, framing the tool, with one launch button per persona."""
    from plugin.devplatform.services import lineitems, placed_links, scores

    if request.host.startswith("127.0.0.1"):
        return redirect(f"{_swap_host(request.host_url)}{url_for('devplatform.home')}")
    platform = _platform()
    _ensure_registered(platform)
    tool = _swap_host(request.host_url)
    launches = {name: launch_url_for(name) for name in PERSONAS}
    links = [
        (link, {name: launch_url_for(name, f"link:{link.id}") for name in PERSONAS})
        for link in placed_links()
    ]
    gradebook = [
        (item, scores(DEMO_COURSE, int(item["id"].rsplit("/", 1)[1])))
        for item in lineitems(DEMO_COURSE)
    ]
    page = render_template(
        "devplatform/home.html",
        launches=launches,
        deep_link=launch_url_for("faculty", "deeplink"),
        links=links,
        gradebook=gradebook,
        tool_origin=tool,
    )
    # This page plays the LMS: it frames the tool, which lives on the other host.
    policy = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"object-src 'none'; base-uri 'none'; frame-src 'self' {tool}"
    )
    return page, 200, {"Content-Security-Policy": policy}


@blueprint.get("/jwks")
def jwks() -> ResponseReturnValue:
    return _platform().jwks()


@blueprint.get("/auth")
def authorize() -> ResponseReturnValue:
    """OIDC authorization endpoint: answers with an auto-posting form carrying the id_token."""
    platform = _platform()
    args = request.args
    tool = _swap_host(request.host_url)
    persona = PERSONAS.get(args.get("login_hint", ""))
    if (
        args.get("client_id") != CLIENT_ID
        or args.get("redirect_uri") != f"{tool}/lti/launch"
        or args.get("response_mode") != "form_post"
        or persona is None
        or not args.get("nonce")
        or not args.get("state")
    ):
        abort(400)
    claims = _claims_for(platform, persona, args.get("lti_message_hint", ""), args["nonce"])
    if claims is None:
        abort(400)
    claims[f"{CLAIM}tool_platform"] = {
        "name": "Preceptor development LMS",
        "product_family_code": "preceptor-dev",
    }
    return render_template(
        "devplatform/form_post.html",
        action=args["redirect_uri"],
        id_token=platform.sign(claims),
        state=args["state"],
    )


DEMO_COURSE: Final = "dev-course-1"


def _claims_for(
    platform: DevPlatform, persona: dict[str, Any], hint: str, nonce: str
) -> dict[str, Any] | None:
    """The id_token claims for what the person clicked: the course link, a placed link, or
    "Add Preceptor to the course" (deep linking). None for a hint naming nothing."""
    from plugin.devplatform.services import placed_link

    origin = _platform_origin()
    tool = _swap_host(request.host_url)
    person = {k: persona[k] for k in ("name", "given_name", "email")}
    common: dict[str, Any] = {
        "nonce": nonce,
        "target_link_uri": f"{tool}/lti/launch",
        "sub": persona["sub"],
        "roles": persona["roles"],
        "context_id": DEMO_COURSE,
        "context_title": "Clinical Skills I (demo)",
    }
    if hint == "deeplink":
        claims = platform.deep_linking_claims(
            return_url=f"{origin}/dev/platform/deep-link-return",
            data=f"dev-{nonce[:8]}",
            **common,
        )
        claims.update(person)
        return claims
    link_id = "dev-link-1"
    custom: dict[str, str] = {}
    lineitem = ""
    if hint.startswith("link:"):
        link = placed_link(hint.removeprefix("link:"))
        if link is None:
            return None
        link_id, custom, lineitem = link.id, link.custom, link.lineitem
    claims = platform.resource_link_claims(resource_link_id=link_id, person=person, **common)
    claims[NRPS_CLAIM] = {
        "context_memberships_url": f"{origin}/dev/platform/nrps/{DEMO_COURSE}",
        "service_versions": ["2.0"],
    }
    if custom:
        claims[f"{CLAIM}custom"] = custom
    ags: dict[str, Any] = {
        "scope": [f"{AGS_SCOPE}lineitem", f"{AGS_SCOPE}score", f"{AGS_SCOPE}result.readonly"],
        "lineitems": f"{origin}/dev/platform/ags/{DEMO_COURSE}/lineitems",
    }
    if lineitem:
        ags["lineitem"] = lineitem
    claims[AGS_CLAIM] = ags
    return claims


#: Demo learners beyond the three personas, so rosters have pages and non-enrolled people.
DEMO_LEARNERS: Final = [
    {"sub": f"dev-learner-{n}", "name": name, "email": f"learner{n}@example.edu"}
    for n, name in enumerate(["Ana Alves", "Bo Chen", "Chidi Okafor", "Dana Levi", "Eli Novak"], 1)
]
NRPS_PAGE_SIZE: Final = 3
_TOKEN_SALT: Final = "preceptor.devplatform.token"  # noqa: S105 - a salt, not a secret


def _token_serializer() -> Any:
    from flask import current_app
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_TOKEN_SALT)


@blueprint.post("/token")
def token() -> ResponseReturnValue:
    """OAuth 2 client-credentials with a private_key_jwt assertion signed by the tool."""
    import jwt

    from plugin.lti.tool_keys import published_jwks

    assertion = request.form.get("client_assertion", "")
    try:
        kid = jwt.get_unverified_header(assertion).get("kid")
        keys = {k["kid"]: k for k in published_jwks(request_session())["keys"]}
        jwt.decode(
            assertion,
            jwt.PyJWK(keys[kid]).key,
            algorithms=["RS256"],
            audience=f"{_platform_origin()}/dev/platform/token",
            issuer=CLIENT_ID,
        )
    except (jwt.PyJWTError, KeyError, TypeError):
        return {"error": "invalid_client"}, 401
    scope = request.form.get("scope", "")
    return {
        "access_token": _token_serializer().dumps({"scope": scope}),
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": scope,
    }


@blueprint.get("/nrps/<context_id>")
def nrps(context_id: str) -> ResponseReturnValue:
    """Names and Role Provisioning for the demo course, paged with Link headers."""
    from itsdangerous import BadSignature

    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    try:
        _token_serializer().loads(bearer, max_age=3600)
    except BadSignature:
        return {"error": "invalid_token"}, 401
    people = [
        {
            "user_id": p["sub"],
            "name": p["name"],
            "email": p["email"],
            "roles": p["roles"],
            "status": "Active",
        }
        for p in PERSONAS.values()
    ] + [
        {
            "user_id": p["sub"],
            "name": p["name"],
            "email": p["email"],
            "roles": [f"{MEMBERSHIP}Learner"],
            "status": "Active",
        }
        for p in DEMO_LEARNERS
    ]
    page = max(request.args.get("page", 1, type=int) or 1, 1)  # junk reads as page 1
    chunk = people[(page - 1) * NRPS_PAGE_SIZE : page * NRPS_PAGE_SIZE]
    url = f"{_platform_origin()}/dev/platform/nrps/{context_id}"
    headers = {"Content-Type": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"}
    if page * NRPS_PAGE_SIZE < len(people):
        headers["Link"] = f'<{url}?page={page + 1}>; rel="next"'
    body = {
        "id": url,
        "context": {"id": context_id, "title": "Clinical Skills I (demo)"},
        "members": chunk,
    }
    return body, 200, headers
