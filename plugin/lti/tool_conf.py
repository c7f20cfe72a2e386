"""pylti1p3's ToolConfAbstract over our database: registrations without a restart."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from pylti1p3.contrib.flask.request import FlaskRequest
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Deployment, Platform, ToolKey

__all__ = ["DatabaseToolConf", "registration_for"]


def registration_for(platform: Platform, tool_key: ToolKey | None = None) -> Registration:
    """pylti1p3's Registration for ``platform``; with ``tool_key``, able to call services."""
    registration = (
        Registration()
        .set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_auth_login_url(platform.auth_login_url)
        .set_auth_token_url(platform.auth_token_url)
        .set_key_set_url(platform.key_set_url)
    )
    if tool_key is not None:
        # Services sign a client assertion; pylti1p3 takes the kid from the public half.
        private = serialization.load_pem_private_key(tool_key.private_key_pem.encode(), None)
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        registration.set_tool_private_key(tool_key.private_key_pem)
        registration.set_tool_public_key(public_pem.decode())
    return registration


class DatabaseToolConf(ToolConfAbstract[FlaskRequest]):
    """Registrations and deployments read from the ``platform`` and ``deployment`` tables.

    Always "many client ids per issuer": Canvas Cloud uses one issuer for every school.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def platform(self, iss: str, client_id: str) -> Platform | None:
        """Our model for (iss, client_id), or None."""
        return self._session.scalar(
            select(Platform).where(Platform.issuer == iss, Platform.client_id == client_id)
        )

    def platform_for_issuer_exists(self, iss: str) -> bool:
        """Whether any client id is registered for ``iss``."""
        found = self._session.scalar(select(Platform.id).where(Platform.issuer == iss).limit(1))
        return found is not None

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        raise NotImplementedError("registrations are looked up by issuer and client id")

    def find_registration_by_params(  # type: ignore[override]
        self, iss: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Registration | None:
        # The library's own message launch checks for None; its annotation is too narrow.
        platform = self.platform(iss, client_id)
        return None if platform is None else registration_for(platform)

    def find_deployment(self, iss: str, deployment_id: str) -> LtiDeployment | None:
        raise NotImplementedError("deployments are looked up by issuer and client id")

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> LtiDeployment | None:
        found = self.deployment(iss, client_id, deployment_id)
        return None if found is None else LtiDeployment().set_deployment_id(found.deployment_id)

    def add_deployment(self, platform: Platform, deployment_id: str) -> Deployment:
        """Record a new deployment of ``platform`` (safe if two launches race)."""
        from sqlalchemy.exc import IntegrityError

        try:
            with self._session.begin_nested():
                row = Deployment(platform_id=platform.id, deployment_id=deployment_id)
                self._session.add(row)
            return row
        except IntegrityError:
            found = self.deployment(platform.issuer, platform.client_id, deployment_id)
            assert found is not None
            return found

    def deployment(self, iss: str, client_id: str, deployment_id: str) -> Deployment | None:
        """Our model for a deployment of (iss, client_id), or None."""
        return self._session.scalar(
            select(Deployment)
            .join(Platform)
            .where(
                Platform.issuer == iss,
                Platform.client_id == client_id,
                Deployment.deployment_id == deployment_id,
            )
        )
