"""Platform registrations: the values a Canvas or Moodle admin copies into Preceptor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from plugin.lti.errors import RegistrationError
from plugin.lti.registration_cache import registrations_changed
from plugin.models import Deployment, Platform

__all__ = [
    "PlatformInput",
    "add_platform",
    "check_url",
    "find_platform",
    "list_platforms",
    "remove_platform",
]

#: Hosts where plain http is accepted outside production (the development platform).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class PlatformInput:
    """A registration as entered by an admin."""

    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    deployment_ids: Sequence[str] = field(default_factory=tuple)
    name: str = ""


def check_url(label: str, value: str, *, allow_http_loopback: bool) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.netloc:
        return value
    if parts.scheme == "http" and allow_http_loopback and parts.hostname in LOOPBACK_HOSTS:
        return value
    raise RegistrationError(f"{label} must be an https:// URL, got {value!r}")


def _check_text(label: str, value: str, limit: int = 255) -> str:
    value = value.strip()
    if not value:
        raise RegistrationError(f"{label} is empty")
    if len(value) > limit:
        raise RegistrationError(f"{label} is longer than {limit} characters")
    return value


def add_platform(
    session: Session,
    data: PlatformInput,
    *,
    allow_http_loopback: bool = False,
    allow_no_deployment: bool = False,
) -> Platform:
    """Register a platform and its deployments; refuses bad values and duplicates."""
    check = {"allow_http_loopback": allow_http_loopback}
    # Kept exactly as given: launches must carry this iss to the character.
    issuer = check_url("issuer", data.issuer, **check)
    client_id = _check_text("client id", data.client_id)
    deployment_ids = [_check_text("deployment id", d) for d in data.deployment_ids]
    if not deployment_ids and not allow_no_deployment:
        raise RegistrationError("at least one deployment id is needed (--deployment)")
    if len(set(deployment_ids)) != len(deployment_ids):
        raise RegistrationError("a deployment id is given twice")
    existing = session.scalar(
        select(Platform).where(Platform.issuer == issuer, Platform.client_id == client_id)
    )
    if existing is not None:
        raise RegistrationError(
            f"issuer {issuer} with client id {client_id} is already registered "
            f"(platform {existing.id}); remove it first to change it"
        )
    platform = Platform(
        issuer=issuer,
        client_id=client_id,
        name=data.name.strip()[:200],
        auth_login_url=check_url("auth login URL", data.auth_login_url, **check),
        auth_token_url=check_url("auth token URL", data.auth_token_url, **check),
        key_set_url=check_url("keyset URL", data.key_set_url, **check),
        deployments=[Deployment(deployment_id=d) for d in deployment_ids],
    )
    session.add(platform)
    session.flush()
    registrations_changed(session)
    return platform


def list_platforms(session: Session) -> list[Platform]:
    """Every registration, oldest first, with its deployments loaded."""
    query = select(Platform).options(selectinload(Platform.deployments)).order_by(Platform.id)
    return list(session.scalars(query))


def find_platform(session: Session, ref: str) -> Platform:
    """A registration by its number or its issuer (when that issuer has one client id)."""
    if ref.isdigit():
        platform = session.get(Platform, int(ref))
        if platform is None:
            raise RegistrationError(f"no platform {ref}; `preceptor platform list` shows them")
        return platform
    matches = list(session.scalars(select(Platform).where(Platform.issuer == ref)))
    if not matches:
        raise RegistrationError(f"no platform with issuer {ref}")
    if len(matches) > 1:
        numbers = ", ".join(str(p.id) for p in matches)
        raise RegistrationError(f"issuer {ref} has several registrations ({numbers}); use a number")
    return matches[0]


def remove_platform(session: Session, platform: Platform) -> None:
    """Delete a registration and, through the cascade, its deployments and courses."""
    session.delete(platform)
    session.flush()
    # Web processes remember registrations; the commit tells them this one is gone.
    registrations_changed(session)
