"""The development platform's identity: its key pair and the id_tokens it signs.

Used by the /dev/platform pages (development only) and by the test suite, which drives
full launches through the real endpoints with tokens signed here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from lti_config.keys import generate_private_key, public_jwk

__all__ = ["DevPlatform"]

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


@dataclass
class DevPlatform:
    """An LTI platform that signs launches for one tool registration."""

    issuer: str
    client_id: str = "preceptor-dev-client"
    deployment_id: str = "dev-deployment-1"
    private_key: rsa.RSAPrivateKey = field(default_factory=generate_private_key)

    @property
    def kid(self) -> str:
        return str(public_jwk(self.private_key.public_key())["kid"])

    def jwks(self) -> dict[str, Any]:
        """The platform's keyset, as its keyset URL serves it."""
        return {"keys": [public_jwk(self.private_key.public_key())]}

    def resource_link_claims(
        self,
        *,
        nonce: str,
        target_link_uri: str,
        sub: str = "user-1",
        roles: list[str] | None = None,
        context_id: str | None = "course-1",
        context_title: str = "Clinical Skills I",
        resource_link_id: str = "link-1",
        person: dict[str, str] | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The claims of a resource link launch, as Canvas or Moodle would send them."""
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "iat": issued,
            "exp": issued + 60,
            "nonce": nonce,
            f"{CLAIM}deployment_id": self.deployment_id,
            f"{CLAIM}message_type": "LtiResourceLinkRequest",
            f"{CLAIM}version": "1.3.0",
            f"{CLAIM}target_link_uri": target_link_uri,
            f"{CLAIM}resource_link": {"id": resource_link_id, "title": "Mentorship"},
            f"{CLAIM}roles": roles if roles is not None else [f"{MEMBERSHIP}Learner"],
        }
        if context_id is not None:
            claims[f"{CLAIM}context"] = {"id": context_id, "title": context_title, "label": "CS1"}
        if person:
            claims.update(person)
        return claims

    def deep_linking_claims(
        self,
        *,
        nonce: str,
        target_link_uri: str,
        return_url: str,
        sub: str = "teacher-1",
        roles: list[str] | None = None,
        context_id: str | None = "course-1",
        context_title: str = "Clinical Skills I",
        data: str | None = None,
        accept_types: list[str] | None = None,
        accept_multiple: bool = False,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The claims of an LtiDeepLinkingRequest (an instructor adding the tool)."""
        claims = self.resource_link_claims(
            nonce=nonce,
            target_link_uri=target_link_uri,
            sub=sub,
            roles=roles if roles is not None else [f"{MEMBERSHIP}Instructor"],
            context_id=context_id,
            context_title=context_title,
            now=now,
        )
        del claims[f"{CLAIM}resource_link"]
        claims[f"{CLAIM}message_type"] = "LtiDeepLinkingRequest"
        settings: dict[str, Any] = {
            "deep_link_return_url": return_url,
            "accept_types": accept_types if accept_types is not None else ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": accept_multiple,
            "auto_create": True,
        }
        if data is not None:
            settings["data"] = data
        claims[DL_SETTINGS] = settings
        return claims

    def sign(
        self,
        claims: dict[str, Any],
        *,
        headers: dict[str, Any] | None = None,
        algorithm: str = "RS256",
        key: Any = None,
    ) -> str:
        """An id_token: the claims signed with this platform's key (or ``key``)."""
        header = {"kid": self.kid, **(headers or {})}
        signing_key = key if key is not None else self.private_key
        return jwt.encode(claims, signing_key, algorithm=algorithm, headers=header)
