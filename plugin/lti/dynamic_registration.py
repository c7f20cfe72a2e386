"""LTI Dynamic Registration 1.0: an LMS admin pastes one URL and Preceptor installs itself.

The URL carries a one-time invite (``preceptor platform invite``): without it anyone
could make the server fetch arbitrary URLs or register platforms. The platform's
openid-configuration is validated before anything is posted to it, and every error says
what the admin should check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

import requests
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from redis import Redis
from sqlalchemy.orm import Session

from plugin.lti.errors import RegistrationError
from plugin.lti.launch import DATA_PRIVACY
from plugin.lti.registrations import PlatformInput, add_platform, check_url
from plugin.models import Platform

__all__ = ["INVITE_TTL", "ToolUrls", "issue_invite", "register_platform", "tool_registration"]

#: How long an invite URL works.
INVITE_TTL: Final = 24 * 3600
MAX_DOCUMENT_BYTES: Final = 256 * 1024
TIMEOUT: Final = 10
PLATFORM_CONFIG: Final = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIG: Final = "https://purl.imsglobal.org/spec/lti-tool-configuration"
#: What Preceptor asks for: rosters (NRPS) and a participation grade column (AGS).
SCOPES: Final = (
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
)
_SALT: Final = "preceptor.registration-invite.v1"


@dataclass(frozen=True)
class ToolUrls:
    """Where the tool lives, for the registration it sends."""

    base: str

    @property
    def login(self) -> str:
        return f"{self.base}/lti/login"

    @property
    def launch(self) -> str:
        return f"{self.base}/lti/launch"

    @property
    def jwks(self) -> str:
        return f"{self.base}/.well-known/jwks.json"


def issue_invite(secret_key: str, note: str = "") -> str:
    """A signed, expiring invite token for one registration."""
    import secrets

    return URLSafeTimedSerializer(secret_key, salt=_SALT).dumps(
        {"n": secrets.token_urlsafe(12), "note": note[:100]}
    )


def _redeem_invite(secret_key: str, invite: str, redis: Redis) -> None:
    try:
        data = URLSafeTimedSerializer(secret_key, salt=_SALT).loads(invite, max_age=INVITE_TTL)
    except SignatureExpired:
        raise RegistrationError(
            "this registration link has expired: ask for a new one (`preceptor platform invite`)"
        ) from None
    except BadSignature:
        raise RegistrationError("this registration link is not valid") from None
    if not redis.set(f"preceptor:lti:invite:{data['n']}", 1, nx=True, ex=INVITE_TTL):
        raise RegistrationError("this registration link was already used: ask for a new one")


def _check_url(label: str, value: object, allow_http_loopback: bool) -> str:
    if not isinstance(value, str):
        raise RegistrationError(f"the platform's {label} is missing")
    try:
        return check_url(label, value, allow_http_loopback=allow_http_loopback)
    except RegistrationError:
        raise RegistrationError(
            f"the platform's {label} must be an https URL, got {value!r}"
        ) from None


def _read_json(response: requests.Response, what: str) -> dict[str, Any]:
    body = response.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
    response.close()
    if len(body) > MAX_DOCUMENT_BYTES:
        raise RegistrationError(f"the platform's {what} is too large")
    try:
        document = json.loads(body)
    except ValueError:
        raise RegistrationError(f"the platform's {what} is not JSON") from None
    if not isinstance(document, dict):
        raise RegistrationError(f"the platform's {what} is not a JSON object")
    return cast(dict[str, Any], document)


def _fetch_configuration(http: requests.Session, url: str, token: str) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = http.get(
            url, headers=headers, timeout=TIMEOUT, stream=True, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise RegistrationError(
            f"the platform's configuration could not be fetched ({type(exc).__name__})"
        ) from None
    if response.status_code != 200:
        raise RegistrationError(f"the platform's configuration URL answered {response.status_code}")
    return _read_json(response, "configuration")


def _validate_configuration(
    config: dict[str, Any], config_url: str, allow_http_loopback: bool
) -> dict[str, Any]:
    issuer = _check_url("issuer", config.get("issuer"), allow_http_loopback)
    # The configuration must be served from the issuer's own site (Dynamic Registration
    # 1.0, section 3.5.1): otherwise anyone could claim to be any platform.
    if urlsplit(config_url).netloc != urlsplit(issuer).netloc:
        raise RegistrationError("the configuration URL is not on the issuer's host")
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"):
        _check_url(field, config.get(field), allow_http_loopback)
    algorithms = config.get("id_token_signing_alg_values_supported")
    if not isinstance(algorithms, list) or "RS256" not in algorithms:
        raise RegistrationError("the platform does not sign with RS256")
    platform = config.get(PLATFORM_CONFIG)
    if not isinstance(platform, dict) or not platform.get("product_family_code"):
        raise RegistrationError("the configuration lacks the LTI platform configuration")
    return platform


def _supported_message_types(platform_config: dict[str, Any]) -> frozenset[str]:
    """The message types the platform says it can send (``messages_supported``)."""
    listed = platform_config.get("messages_supported")
    if not isinstance(listed, list):
        return frozenset()
    return frozenset(
        str(m["type"]) for m in listed if isinstance(m, dict) and isinstance(m.get("type"), str)
    )


def tool_registration(
    urls: ToolUrls,
    product_family: str,
    scopes: list[str],
    supported_messages: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The registration Preceptor posts: OpenID client metadata plus LTI tool configuration.

    Resource link and deep linking messages are always registered (every LTI 1.3 platform
    sends the first; Moodle and Canvas both send the second). The data-privacy launch (the
    platform's "my data" entry, LTI Data Privacy Launch 1.0) only when the platform lists it
    in ``messages_supported``: a platform that does not know the type may refuse the whole
    registration.
    """
    domain = urlsplit(urls.base).netloc
    messages: list[dict[str, Any]] = [
        {
            "type": "LtiResourceLinkRequest",
            "target_link_uri": urls.launch,
            "label": "Preceptor",
            "placements": ["course_navigation"],
        },
        {
            "type": "LtiDeepLinkingRequest",
            "target_link_uri": urls.launch,
            "label": "Add a Preceptor mentorship program",
            "placements": ["link_selection"],
        },
    ]
    if DATA_PRIVACY in supported_messages:
        messages.append(
            {"type": DATA_PRIVACY, "target_link_uri": urls.launch, "label": "Preceptor: my data"}
        )
    configuration: dict[str, Any] = {
        "domain": domain,
        "target_link_uri": urls.launch,
        "description": "Mentorship programs: matching, meetings in your calendar, follow-ups.",
        "claims": ["iss", "sub", "name", "given_name", "family_name", "email", "locale"],
        "messages": messages,
    }
    if product_family == "canvas":
        # Canvas reads its privacy level and per-placement options from here.
        configuration["https://canvas.instructure.com/lti/privacy_level"] = "public"
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": urls.login,
        "redirect_uris": [urls.launch],
        "client_name": "Preceptor",
        "jwks_uri": urls.jwks,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIG: configuration,
    }


def register_platform(
    session: Session,
    *,
    redis: Redis,
    http: requests.Session,
    secret_key: str,
    invite: str,
    config_url: str,
    registration_token: str,
    urls: ToolUrls,
    allow_http_loopback: bool,
) -> Platform:
    """Run the whole registration; returns the stored platform or raises RegistrationError."""
    config_url = _check_url("configuration URL", config_url, allow_http_loopback)
    _redeem_invite(secret_key, invite, redis)
    config = _fetch_configuration(http, config_url, registration_token)
    platform_config = _validate_configuration(config, config_url, allow_http_loopback)
    product = str(platform_config.get("product_family_code", "")).lower()[:100]
    offered = config.get("scopes_supported")
    scopes = [s for s in SCOPES if not isinstance(offered, list) or s in offered]
    body = tool_registration(urls, product, scopes, _supported_message_types(platform_config))
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        response = http.post(
            config["registration_endpoint"],
            data=json.dumps(body),
            headers=headers,
            timeout=TIMEOUT,
            stream=True,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise RegistrationError(
            f"the platform's registration endpoint could not be reached ({type(exc).__name__})"
        ) from None
    if response.status_code not in (200, 201):
        raise RegistrationError(
            f"the platform refused the registration "
            f"(HTTP {response.status_code}); check the registration token"
        )
    answer = _read_json(response, "registration response")
    client_id = answer.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise RegistrationError("the platform's registration response has no client_id")
    tool_config = answer.get(TOOL_CONFIG)
    deployment_id = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    deployments = (deployment_id,) if isinstance(deployment_id, str) and deployment_id else ()
    platform = add_platform(
        session,
        PlatformInput(
            issuer=config["issuer"],
            client_id=client_id,
            auth_login_url=config["authorization_endpoint"],
            auth_token_url=config["token_endpoint"],
            key_set_url=config["jwks_uri"],
            deployment_ids=deployments,
            name=str(platform_config.get("product_family_code")),
        ),
        allow_http_loopback=allow_http_loopback,
        allow_no_deployment=True,
    )
    platform.product_family = product
    platform.accept_new_deployments = not deployments
    session.flush()
    return platform
