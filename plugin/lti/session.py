"""The launch session: a signed, expiring token in the page instead of a cookie.

Third-party cookies are blocked in most browsers for a tool inside an LMS iframe, so
after a launch the person is carried by a token bound to who they are and where they
launched (user, course, deployment, roles). Pages put it in links and forms (``lt``) and
scripts send it as ``Authorization: Bearer``. Anything a token does not name, it cannot
reach: a page for another course refuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Final, ParamSpec, TypeVar

from flask import abort, current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from plugin.lti.provisioning import LaunchIdentity
from plugin.lti.roles import CourseRole

__all__ = [
    "LAUNCH_TOKEN_TTL",
    "current_identity",
    "issue_launch_token",
    "launch_required",
    "read_launch_token",
]

#: How long a launch carries a person before they must launch again from the LMS.
LAUNCH_TOKEN_TTL: Final = 8 * 3600
_SALT: Final = "preceptor.launch.v1"

P = ParamSpec("P")
R = TypeVar("R")


_SERIALIZER_KEY: Final = "preceptor.launch_token_serializer"


def _serializer() -> URLSafeTimedSerializer:
    # One per app and secret, built on first use instead of on every launch and page.
    secret = current_app.config["SECRET_KEY"]
    cached: tuple[str, URLSafeTimedSerializer] | None = current_app.extensions.get(_SERIALIZER_KEY)
    if cached is None or cached[0] != secret:
        cached = (secret, URLSafeTimedSerializer(secret, salt=_SALT))
        current_app.extensions[_SERIALIZER_KEY] = cached
    return cached[1]


def issue_launch_token(identity: LaunchIdentity) -> str:
    """A token carrying ``identity`` for LAUNCH_TOKEN_TTL seconds."""
    return _serializer().dumps(
        {
            "u": identity.user_id,
            "c": identity.course_id,
            "d": identity.deployment_id,
            "r": sorted(identity.roles),
            "l": identity.resource_link_id,
        }
    )


def read_launch_token(token: str) -> LaunchIdentity | None:
    """The identity in a valid, unexpired token; None otherwise."""
    try:
        data: dict[str, Any] = _serializer().loads(token, max_age=LAUNCH_TOKEN_TTL)
    except (SignatureExpired, BadSignature):
        return None
    return LaunchIdentity(
        user_id=int(data["u"]),
        course_id=data["c"],
        deployment_id=int(data["d"]),
        roles=frozenset(CourseRole(r) for r in data["r"]),
        resource_link_id=str(data["l"]),
    )


def _token_from_request() -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return (request.form.get("lt") or request.args.get("lt") or "").strip()


def current_identity() -> LaunchIdentity:
    """The identity of the request (only inside a @launch_required view)."""
    identity: LaunchIdentity = g.launch_identity
    return identity


def launch_required(view: Callable[P, R]) -> Callable[P, R]:
    """Refuse the request unless it carries a launch token for the course in its URL."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        identity = read_launch_token(_token_from_request())
        if identity is None:
            abort(401)
        course_id = kwargs.get("course_id")
        if course_id is not None and course_id != identity.course_id:
            abort(403)
        g.launch_identity = identity
        g.launch_token = _token_from_request()
        return view(*args, **kwargs)

    return wrapped
