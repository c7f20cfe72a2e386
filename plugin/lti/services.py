"""Calling the platform's LTI Advantage services (NRPS, AGS) as the tool.

Every service call needs an OAuth 2 token that the tool obtains with a client assertion
signed by its own key (client credentials, private_key_jwt). pylti1p3's ServiceConnector
does that once we hand it a Registration that carries our signing key.
"""

from __future__ import annotations

import re
from typing import Any, Final

import requests
from pylti1p3.service_connector import ServiceConnector, TServiceConnectorResponse
from sqlalchemy.orm import Session

from plugin.lti.tool_conf import registration_for
from plugin.lti.tool_keys import ensure_signing_key
from plugin.models import Platform

__all__ = ["PagingServiceConnector", "service_connector"]

_NEXT: Final = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)


class PagingServiceConnector(ServiceConnector):
    """pylti1p3's connector, with the next-page URL kept as the platform wrote it.

    pylti1p3 2.0.0 lowercases the whole ``Link`` header before it extracts the next page,
    so a next URL with capitals in it (an ``rlid``, an opaque page token) is changed and
    the following page is asked for the wrong thing.
    """

    def make_service_request(self, *args: Any, **kwargs: Any) -> TServiceConnectorResponse:
        response: TServiceConnectorResponse = super().make_service_request(*args, **kwargs)
        headers = response.get("headers") or {}
        link = next((str(v) for k, v in dict(headers).items() if k.lower() == "link"), "")
        found = _NEXT.search(link.replace("\n", " "))
        response["next_page_url"] = found.group(1) if found else None
        return response


def service_connector(
    session: Session, platform: Platform, http: requests.Session
) -> ServiceConnector:
    """A connector that fetches service tokens from ``platform`` with the tool's key."""
    return PagingServiceConnector(registration_for(platform, ensure_signing_key(session)), http)
