"""LTI Deep Linking 2.0: an instructor places a program in the course.

The platform sends an ``LtiDeepLinkingRequest`` with its ``deep_linking_settings``; the
instructor picks or creates a program; the tool answers with a signed
``LtiDeepLinkingResponse`` (pylti1p3's DeepLink, signed with the tool's key) holding one
``ltiResourceLink`` whose custom parameter ``program_id`` names the program. Every later
launch of that link checks the id against the launch's course (see placement.py), so a
link copied into another course, or a tampered id, never opens another tenant's program.

Between the request and the answer, the settings travel in a signed, expiring picker
token in the page (nothing is kept in process memory or a cookie).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.lti.tool_conf import registration_for
from plugin.lti.tool_keys import ensure_signing_key
from plugin.models import Platform, Program

__all__ = [
    "DEEP_LINKERS",
    "PARTICIPATION_LABEL",
    "PARTICIPATION_TAG",
    "PROGRAM_PARAM",
    "DeepLinkingSettings",
    "PickerContext",
    "deep_linking_response",
    "issue_picker_token",
    "participation_maximum",
    "read_picker_token",
]

#: Course roles that may place Preceptor in a course (the LMS lets them edit content).
DEEP_LINKERS: Final = frozenset(
    {
        CourseRole.INSTRUCTOR,
        CourseRole.TEACHING_ASSISTANT,
        CourseRole.CONTENT_DEVELOPER,
        CourseRole.ADMINISTRATOR,
    }
)
#: The custom parameter of a placed link that names its program.
PROGRAM_PARAM: Final = "program_id"
RESOURCE_LINK_TYPE: Final = "ltiResourceLink"
#: The participation line item: its label in the gradebook and the tag we find it by.
PARTICIPATION_LABEL: Final = "Mentorship participation"
PARTICIPATION_TAG: Final = "preceptor-participation"
#: How long the picker may stay open before the instructor must start again from the LMS.
PICKER_TTL: Final = 3600
_SALT: Final = "preceptor.deep_link.v1"
URL_MAX: Final = 2048


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    return None


@dataclass(frozen=True)
class DeepLinkingSettings:
    """The ``deep_linking_settings`` claim, checked."""

    return_url: str
    accept_types: tuple[str, ...]
    accept_multiple: bool
    #: Opaque value the platform wants back unchanged (absent: None).
    data: Any = None
    title: str = ""

    @property
    def accepts_resource_link(self) -> bool:
        return RESOURCE_LINK_TYPE in self.accept_types

    @classmethod
    def from_claim(cls, claim: object) -> DeepLinkingSettings | None:
        """The settings in ``claim``, or None when it is missing or malformed."""
        if not isinstance(claim, dict):
            return None
        url = claim.get("deep_link_return_url")
        types = claim.get("accept_types")
        targets = claim.get("accept_presentation_document_targets", [])
        multiple = _flag(claim.get("accept_multiple", False))
        if (
            not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or len(url) > URL_MAX
            or not isinstance(types, list)
            or not types
            or not all(isinstance(t, str) for t in types)
            or not isinstance(targets, list)
            or multiple is None
        ):
            return None
        title = claim.get("title")
        return cls(
            return_url=url,
            accept_types=tuple(types),
            accept_multiple=multiple,
            data=claim.get("data"),
            title=title.strip()[:200] if isinstance(title, str) else "",
        )

    def to_claim(self) -> dict[str, Any]:
        """pylti1p3's shape of the settings."""
        claim: dict[str, Any] = {
            "deep_link_return_url": self.return_url,
            "accept_types": list(self.accept_types),
            "accept_multiple": self.accept_multiple,
        }
        if self.data is not None:
            claim["data"] = self.data
        return claim


@dataclass(frozen=True)
class PickerContext:
    """What the picker page needs to answer the platform: who, where, and its settings."""

    user_id: int
    course_id: int
    platform_id: int
    deployment_id: str
    settings: DeepLinkingSettings


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def issue_picker_token(context: PickerContext) -> str:
    """A signed token carrying the deep-linking request through the picker."""
    settings = context.settings
    return _serializer().dumps(
        {
            "u": context.user_id,
            "c": context.course_id,
            "p": context.platform_id,
            "d": context.deployment_id,
            "s": {**settings.to_claim(), "title": settings.title},
        }
    )


def read_picker_token(token: str) -> PickerContext | None:
    """The context in a valid, unexpired picker token; None otherwise."""
    try:
        data: dict[str, Any] = _serializer().loads(token, max_age=PICKER_TTL)
    except (SignatureExpired, BadSignature):
        return None
    settings = DeepLinkingSettings.from_claim(data.get("s"))
    if settings is None:
        return None
    return PickerContext(
        user_id=int(data["u"]),
        course_id=int(data["c"]),
        platform_id=int(data["p"]),
        deployment_id=str(data["d"]),
        settings=settings,
    )


def participation_maximum(program: Program) -> float | None:
    """The program's participation score maximum, or None when it keeps no score."""
    value = (program.participation_rule or {}).get("maximum")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def deep_linking_response(
    session: Session,
    *,
    platform: Platform,
    context: PickerContext,
    program: Program,
    launch_url: str,
) -> str:
    """The signed LtiDeepLinkingResponse JWT placing ``program`` in the course."""
    resource = (
        DeepLinkResource()
        .set_title(program.title)
        .set_url(launch_url)
        .set_custom_params({PROGRAM_PARAM: str(program.id)})
    )
    maximum = participation_maximum(program)
    if maximum is not None:
        # The platform makes the gradebook column with the link; launches then carry it.
        resource.set_lineitem(
            LineItem()
            .set_label(PARTICIPATION_LABEL)
            .set_score_maximum(maximum)
            .set_tag(PARTICIPATION_TAG)
            .set_resource_id(f"program-{program.id}")
        )
    link = DeepLink(
        registration_for(platform, ensure_signing_key(session)),
        context.deployment_id,
        context.settings.to_claim(),  # type: ignore[arg-type]
    )
    message: dict[str, Any] = link.get_message_jwt([resource])
    if context.settings.data is None:
        # pylti1p3 sends "data": null; the spec says echo it only when it was given.
        message.pop("https://purl.imsglobal.org/spec/lti-dl/claim/data", None)
    token: str = link.encode_jwt(message)  # type: ignore[no-untyped-call]
    return token
