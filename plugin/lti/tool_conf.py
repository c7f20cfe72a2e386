"""pylti1p3's ToolConfAbstract over our database: registrations without a restart."""

from __future__ import annotations

from functools import cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from pylti1p3.contrib.flask.request import FlaskRequest
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import Session

from plugin.db import begin_write
from plugin.lti.registration_cache import (
    GENERATION_KEY,
    DeploymentRecord,
    FoundRegistration,
    PlatformRecord,
    RegistrationCache,
)
from plugin.models import Deployment, Platform, ToolKey

__all__ = ["DatabaseToolConf", "registration_for"]


def registration_for(
    platform: Platform | PlatformRecord, tool_key: ToolKey | None = None
) -> Registration:
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


@cache
def _platform_and_deployment_query() -> Select[Platform, Deployment]:
    # Built once per process: constructing a statement costs more than running it.
    return (
        select(Platform, Deployment)
        .outerjoin(
            Deployment,
            and_(
                Deployment.platform_id == Platform.id,
                Deployment.deployment_id == bindparam("deployment_id"),
            ),
        )
        .where(Platform.issuer == bindparam("iss"), Platform.client_id == bindparam("client_id"))
        # A launch that re-reads its registration (it changed) may hold the remembered rows
        # under the same primary keys already: the database's values must win.
        .execution_options(populate_existing=True)
    )


class DatabaseToolConf(ToolConfAbstract[FlaskRequest]):
    """Registrations and deployments read from the ``platform`` and ``deployment`` tables.

    Always "many client ids per issuer": Canvas Cloud uses one issuer for every school.
    """

    def __init__(self, session: Session, cache: RegistrationCache | None = None) -> None:
        self._session = session
        self._cache = cache

    @property
    def generation_key(self) -> str | None:
        """The Redis key whose change means remembered registrations are stale (None: no cache)."""
        return GENERATION_KEY if self._cache is not None else None

    def registration(
        self, iss: str, client_id: str, deployment_id: str, *, fresh: bool = False
    ) -> FoundRegistration | None:
        """:meth:`platform_and_deployment`, from the process's cache when it has them.

        ``fresh``: forget what the process remembers and read the database.
        """
        if self._cache is not None:
            if fresh:
                self._cache.forget()
            else:
                recalled = self._cache.recall(iss, client_id, deployment_id)
                if recalled is not None:
                    return recalled
        # Read the generation before the rows: a change committed after this read moves it.
        generation = self._cache.generation() if self._cache is not None else None
        found = self.platform_and_deployment(iss, client_id, deployment_id)
        if found is None:
            return None
        platform, deployment = found
        registration = FoundRegistration(
            PlatformRecord.of(platform),
            None if deployment is None else DeploymentRecord.of(deployment),
            generation,
        )
        if self._cache is not None:
            self._cache.remember(registration)
        return registration

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def platform(self, iss: str, client_id: str) -> Platform | None:
        """Our model for (iss, client_id), or None."""
        return self._session.scalar(
            select(Platform).where(Platform.issuer == iss, Platform.client_id == client_id)
        )

    def platform_and_deployment(
        self, iss: str, client_id: str, deployment_id: str
    ) -> tuple[Platform, Deployment | None] | None:
        """Our model for (iss, client_id) and its deployment ``deployment_id``, in one query.

        None when the platform is unknown; (platform, None) when the deployment is.
        """
        row = self._session.execute(
            _platform_and_deployment_query(),
            {"iss": iss, "client_id": client_id, "deployment_id": deployment_id},
        ).one_or_none()
        return None if row is None else (row[0], row[1])

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

    def add_deployment(self, platform: PlatformRecord, deployment_id: str) -> DeploymentRecord:
        """Record a new deployment of ``platform`` (safe if two launches race)."""
        from sqlalchemy.exc import IntegrityError

        begin_write(self._session)  # SQLite: first launches of a new deployment arrive together
        try:
            with self._session.begin_nested():
                row = Deployment(platform_id=platform.id, deployment_id=deployment_id)
                self._session.add(row)
            return DeploymentRecord.of(row)
        except IntegrityError:
            found = self.deployment(platform.issuer, platform.client_id, deployment_id)
            assert found is not None
            return DeploymentRecord.of(found)

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
