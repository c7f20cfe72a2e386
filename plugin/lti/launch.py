"""The hardened LTI 1.3 launch: pylti1p3's MessageLaunch with every check made strict.

pylti1p3 2.0.0 decodes the token and checks the nonce before it verifies the signature,
never checks ``aud`` (PyJWT compares only its first entry) or ``azp``, accepts a token
without ``exp`` or ``iat``, never consumes the nonce (a launch POST can be replayed) and
never checks ``target_link_uri``. :class:`PreceptorLaunch` replaces its validation chain
with the rules below, in this order: nothing is trusted, consumed or stored before the
signature is verified. Each rule refuses with its own reason code (see RULES).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

import jwt
import requests
from pylti1p3.contrib.flask.message_launch import FlaskMessageLaunch
from pylti1p3.contrib.flask.request import FlaskRequest

from plugin.lti.deep_linking import DeepLinkingSettings
from plugin.lti.errors import LaunchRefused
from plugin.lti.jws import SegmentCheckedJWT
from plugin.lti.platform_keys import PlatformKeys
from plugin.lti.registration_cache import DeploymentRecord, PlatformRecord
from plugin.lti.roles import CourseRole, course_roles
from plugin.lti.state import LoginState, LoginStateStore
from plugin.lti.tool_conf import DatabaseToolConf, registration_for

__all__ = [
    "CLAIM",
    "DEEP_LINKING",
    "DEEP_LINKING_SETTINGS",
    "RESOURCE_LINK",
    "RULES",
    "LaunchInput",
    "PreceptorLaunch",
    "ValidatedLaunch",
]

CLAIM: Final = "https://purl.imsglobal.org/spec/lti/claim/"
#: Clock skew accepted on exp and iat, in seconds.
LEEWAY: Final = 10
#: A token issued longer ago than this is refused even if its exp is later (Moodle: 60 s).
MAX_TOKEN_AGE: Final = 600
#: PyJWT with a faster, equally strict segment check (see plugin.lti.jws); holds no state.
_JWT: Final = SegmentCheckedJWT()
RESOURCE_LINK: Final = "LtiResourceLinkRequest"
DEEP_LINKING: Final = "LtiDeepLinkingRequest"
DATA_PRIVACY: Final = "LtiDataPrivacyLaunchRequest"
MESSAGE_TYPES: Final = frozenset({RESOURCE_LINK, DEEP_LINKING, DATA_PRIVACY})
DEEP_LINKING_SETTINGS: Final = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

#: Every rule, in the order it runs, with the reason code it refuses with.
RULES: Final = (
    ("id_token_present", "id_token_missing"),
    ("jwt_format", "id_token_malformed"),
    ("alg_rs256", "alg_not_allowed"),
    ("kid_present", "kid_missing"),
    ("registration_known", "iss_unknown"),
    ("audience", "aud_mismatch"),
    ("authorized_party", "azp_mismatch"),
    ("signature", "bad_signature"),
    ("exp_iat", "exp_missing / iat_missing / token_expired / iat_in_future / token_too_old"),
    ("state", "state_missing / state_unknown / state_mismatch"),
    ("browser_binding", "browser_unverified"),
    ("nonce", "nonce_missing / nonce_mismatch / nonce_replayed"),
    ("deployment_known", "deployment_unknown"),
    ("lti_version", "version_unsupported"),
    ("message_type", "message_type_unknown"),
    ("target_link_uri", "target_link_uri_foreign"),
    ("subject", "sub_missing"),
    ("resource_link", "resource_link_missing"),
    ("deep_linking_settings", "deep_linking_settings_invalid"),
)


@dataclass(frozen=True)
class LaunchInput:
    """What the launch request carried."""

    id_token: str
    state: str
    #: The browser secret from the state cookie or from platform storage ("" if neither).
    browser_secret: str


@dataclass(frozen=True)
class ValidatedLaunch:
    """A launch that passed every rule."""

    claims: dict[str, Any]
    #: The registration's values (immutable records: a launch never changes them).
    platform: PlatformRecord
    deployment: DeploymentRecord
    message_type: str
    roles: frozenset[CourseRole]
    login: LoginState

    @property
    def sub(self) -> str:
        return str(self.claims.get("sub", ""))

    @property
    def context(self) -> dict[str, Any]:
        value = self.claims.get(f"{CLAIM}context")
        return value if isinstance(value, dict) else {}

    @property
    def resource_link_id(self) -> str:
        link = self.claims.get(f"{CLAIM}resource_link")
        return str(link.get("id", "")) if isinstance(link, dict) else ""


def _refuse(code: str, message: str, status: int = 401, advice: str | None = None) -> LaunchRefused:
    if advice is None:
        advice = (
            f"Launch Preceptor again from your course; if it keeps failing, tell your "
            f"administrator the reason code {code}."
        )
    return LaunchRefused(code, message, status=status, advice=advice)


class PreceptorLaunch(FlaskMessageLaunch):
    """A message launch that runs :data:`RULES` instead of pylti1p3's own validation."""

    def __init__(
        self,
        launch: LaunchInput,
        tool_conf: DatabaseToolConf,
        *,
        keys: PlatformKeys,
        states: LoginStateStore,
        launch_urls: frozenset[str],
        now: float | None = None,
        http: requests.Session | None = None,
    ) -> None:
        request = FlaskRequest(  # type: ignore[no-untyped-call]
            cookies={},
            session={},
            request_data={"id_token": launch.id_token, "state": launch.state},
            request_is_secure=True,
        )
        # pylti1p3 builds a requests.Session per launch unless given one (for services).
        super().__init__(request, tool_conf, requests_session=http)  # type: ignore[no-untyped-call]
        self._input = launch
        self._conf = tool_conf
        self._keys = keys
        self._states = states
        self._launch_urls = launch_urls
        self._now = now
        self._platform: PlatformRecord | None = None
        #: The registrations' generation the platform row was read at (see registration_cache).
        self._generation: str | None = None
        self._deployment: DeploymentRecord | None = None
        self._known_deployment: DeploymentRecord | None = None
        self._login: LoginState | None = None
        #: The login the state named, once the state rule consumed it (set even when a later
        #: check refuses: the new-window fallback starts that login again).
        self.consumed_login: LoginState | None = None
        self._nonce_recorded = False

    # pylti1p3 calls validate() lazily from its getters; ours runs once, explicitly.
    def validate(self) -> PreceptorLaunch:
        if self._validated:
            return self
        if not self._input.id_token:
            raise _refuse("id_token_missing", "the launch carried no id_token", 400)
        self._rule_jwt_format()
        self._rule_alg_rs256()
        self._rule_kid_present()
        self._rule_registration_and_audience()
        self._rule_signature_and_times()
        self._rule_state()
        self._rule_nonce()
        self._rule_deployment_known()
        self._rule_lti_version()
        self._rule_message_type()
        self._rule_target_link_uri()
        self._rule_subject()
        self._rule_resource_link()
        self._rule_deep_linking_settings()
        self._validated = True
        return self

    def result(self) -> ValidatedLaunch:
        """The validated launch (runs the rules if they have not run)."""
        self.validate()
        assert self._platform is not None
        assert self._deployment is not None
        assert self._login is not None
        body = self._body()
        return ValidatedLaunch(
            claims=body,
            platform=self._platform,
            deployment=self._deployment,
            message_type=body[f"{CLAIM}message_type"],
            roles=course_roles(body.get(f"{CLAIM}roles")),
            login=self._login,
        )

    # --- rules ----------------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        body = cast(dict[str, Any], self._jwt.get("body", {}))
        return body

    def _rule_jwt_format(self) -> None:
        # Three canonical base64url segments, JSON objects for header and claims (what
        # pylti1p3's validate_jwt_format checks, and stricter); parsed once: the signature
        # rule's decode of the same token reuses this parse.
        try:
            header, body = _JWT.parse(self._input.id_token)
        except Exception:  # noqa: BLE001 - any parse failure is the same refusal
            raise _refuse("id_token_malformed", "the id_token is not a JWT", 400) from None
        # pylti1p3 types these as its TypedDicts; they are the token's JSON objects.
        self._jwt = {"header": cast(Any, header), "body": cast(Any, body)}

    def _rule_alg_rs256(self) -> None:
        # Refuses "none", HS256 (a public key used as an HMAC secret) and anything else.
        alg = self._jwt["header"].get("alg")
        if alg != "RS256":
            raise _refuse("alg_not_allowed", f"id_token algorithm {alg!r} is not RS256")

    def _rule_kid_present(self) -> None:
        kid = self._jwt["header"].get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refuse("kid_missing", "the id_token names no signing key (kid)")

    def _rule_registration_and_audience(self, *, fresh: bool = False) -> None:
        body = self._body()
        iss = body.get("iss")
        aud = body.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not isinstance(iss, str) or not iss:
            raise _refuse("iss_unknown", "the id_token has no issuer")
        if not audiences or not all(isinstance(a, str) for a in audiences):
            raise _refuse("aud_mismatch", "the id_token has no audience")
        azp = body.get("azp")
        if len(audiences) > 1:
            # Several audiences: the authorized party says which one is us, and must be one.
            if not isinstance(azp, str) or azp not in audiences:
                raise _refuse(
                    "azp_mismatch",
                    "azp is required and must be one of aud when aud has several entries",
                )
            client_id = azp
        else:
            client_id = audiences[0]
            if azp is not None and azp != client_id:
                raise _refuse("azp_mismatch", "azp does not match aud")
        # The deployment named in the (not yet verified) token is read in the same query; the
        # deployment rule decides about it after the signature, nonce and state rules.
        claimed = body.get(f"{CLAIM}deployment_id")
        found = self._conf.registration(
            iss, client_id, claimed if isinstance(claimed, str) else "", fresh=fresh
        )
        if found is None:
            if self._conf.platform_for_issuer_exists(iss):
                raise _refuse(
                    "aud_mismatch", "the id_token is for a client id not registered for this issuer"
                )
            raise _refuse(
                "iss_unknown",
                "this platform is not registered with Preceptor",
                403,
                advice="Ask your administrator to install Preceptor for this LMS.",
            )
        self._platform, self._known_deployment = found.platform, found.deployment
        self._generation = found.generation
        self._registration = registration_for(self._platform)

    def _rule_signature_and_times(self) -> None:
        assert self._platform is not None
        key = self._keys.key_for(self._platform.key_set_url, self._jwt["header"]["kid"])
        now = self._clock()
        try:
            # PyJWT verifies the signature, aud (any entry) and iss, and requires exp and iat;
            # their times are checked below against our clock, with LEEWAY.
            body = _JWT.decode(
                self._input.id_token,
                key,
                algorithms=["RS256"],
                audience=self._platform.client_id,
                issuer=self._platform.issuer,
                options={
                    "require": ["exp", "iat", "iss", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
            exp, iat = float(body["exp"]), float(body["iat"])
        except jwt.MissingRequiredClaimError as exc:
            raise _refuse(
                f"{exc.claim}_missing", f"the id_token has no {exc.claim} claim"
            ) from None
        except jwt.ExpiredSignatureError:
            raise _refuse("token_expired", "the id_token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _refuse("iat_in_future", "the id_token was issued in the future") from None
        except jwt.InvalidAudienceError:
            raise _refuse("aud_mismatch", "the id_token is not for this tool") from None
        except jwt.InvalidIssuerError:
            raise _refuse("iss_unknown", "the id_token issuer does not match") from None
        except jwt.InvalidSignatureError:
            raise _refuse("bad_signature", "the id_token signature does not verify") from None
        except (jwt.InvalidTokenError, TypeError, ValueError) as exc:
            raise _refuse(
                "id_token_malformed", f"the id_token is invalid ({type(exc).__name__})", 400
            ) from None
        if exp < now - LEEWAY:
            raise _refuse("token_expired", "the id_token has expired")
        if iat > now + LEEWAY:
            raise _refuse("iat_in_future", "the id_token was issued in the future")
        if now - iat > MAX_TOKEN_AGE:
            raise _refuse("token_too_old", "the id_token was issued too long ago")

    def _clock(self) -> float:
        return self._now if self._now is not None else time.time()

    def _rule_state(self) -> None:
        if not self._input.state:
            raise _refuse("state_missing", "the launch carried no state", 400)
        assert self._platform is not None
        # The state is consumed and, if its login sent the token's nonce, that nonce is
        # recorded as used, in one Redis round trip; the nonce rule below reads the verdict.
        # (Recording it before the browser check spends nothing usable: the state is gone.)
        # The same round trip reads the registrations' generation: if a registration changed
        # since the process read the one used above, the rules so far run again on fresh rows.
        nonce = self._body().get("nonce")
        watch = self._conf.generation_key
        consumed = self._states.consume_launch(
            self._input.state,
            self._platform.issuer,
            nonce if isinstance(nonce, str) else "",
            int(float(self._body()["exp"]) - self._clock()) + LEEWAY,
            watch=watch,
        )
        login, self._nonce_recorded = consumed.login, consumed.nonce_recorded
        if watch is not None and consumed.watched != self._generation:
            self._rule_registration_and_audience(fresh=True)
            self._rule_signature_and_times()
        assert self._platform is not None
        if login is None:
            raise _refuse("state_unknown", "this launch was not started here, or took too long")
        self.consumed_login = login
        if login.iss != self._platform.issuer or login.client_id != self._platform.client_id:
            raise _refuse("state_mismatch", "the launch's state belongs to another platform")
        # Bound to the browser that logged in: the secret came back from its cookie or from
        # the platform's storage frame. Compared in constant time.
        if not self._input.browser_secret or not hmac.compare_digest(
            self._input.browser_secret, login.browser_secret
        ):
            raise _refuse(
                "browser_unverified",
                "the launch came from another browser than the "
                "login, or cookies and platform storage are both "
                "unavailable",
            )
        self._login = login

    def _rule_nonce(self) -> None:
        assert self._login is not None
        assert self._platform is not None
        nonce = self._body().get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise _refuse("nonce_missing", "the id_token has no nonce")
        if not hmac.compare_digest(nonce, self._login.nonce):
            raise _refuse("nonce_mismatch", "the id_token's nonce is not the one this login sent")
        if not self._nonce_recorded:
            raise _refuse("nonce_replayed", "this launch was already used")

    def _rule_deployment_known(self) -> None:
        assert self._platform is not None
        deployment_id = self._body().get(f"{CLAIM}deployment_id")
        deployment = (
            self._known_deployment if isinstance(deployment_id, str) and deployment_id else None
        )
        if (
            deployment is None
            and self._platform.accept_new_deployments
            and isinstance(deployment_id, str)
            and 0 < len(deployment_id) <= 255
        ):
            # A dynamically registered platform that could not tell us its deployments
            # (Canvas): the signature proves this one is real; remember it.
            deployment = self._conf.add_deployment(self._platform, deployment_id)
        if deployment is None:
            raise _refuse(
                "deployment_unknown",
                "this deployment of Preceptor is not registered",
                403,
                advice="Ask your administrator to add this deployment id to "
                "Preceptor's platform registration.",
            )
        self._deployment = deployment

    def _rule_lti_version(self) -> None:
        if self._body().get(f"{CLAIM}version") != "1.3.0":
            raise _refuse("version_unsupported", "only LTI 1.3.0 launches are supported", 400)

    def _rule_message_type(self) -> None:
        if self._body().get(f"{CLAIM}message_type") not in MESSAGE_TYPES:
            raise _refuse("message_type_unknown", "this kind of LTI message is not supported", 400)

    def _rule_target_link_uri(self) -> None:
        target = self._body().get(f"{CLAIM}target_link_uri")
        if not isinstance(target, str) or _without_query(target) not in self._launch_urls:
            raise _refuse(
                "target_link_uri_foreign", "the launch is for another tool's address", 403
            )

    def _rule_subject(self) -> None:
        # A deep link is made by someone too: the picker needs to know who.
        if self._body().get(f"{CLAIM}message_type") in (RESOURCE_LINK, DEEP_LINKING):
            sub = self._body().get("sub")
            if not isinstance(sub, str) or not sub.strip():
                raise _refuse("sub_missing", "the launch does not say who the person is", 400)

    def _rule_resource_link(self) -> None:
        if self._body().get(f"{CLAIM}message_type") == RESOURCE_LINK:
            link = self._body().get(f"{CLAIM}resource_link")
            if not isinstance(link, dict) or not link.get("id"):
                raise _refuse("resource_link_missing", "the launch names no resource link", 400)

    def _rule_deep_linking_settings(self) -> None:
        if self._body().get(f"{CLAIM}message_type") != DEEP_LINKING:
            return
        if DeepLinkingSettings.from_claim(self._body().get(DEEP_LINKING_SETTINGS)) is None:
            raise _refuse(
                "deep_linking_settings_invalid",
                "the deep linking request has no valid deep_linking_settings",
                400,
            )

    # pylti1p3 would cache the launch in the Flask session (a cookie); ours lives in the
    # database and the launch token instead.
    def save_launch_data(self) -> PreceptorLaunch:
        return self


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
