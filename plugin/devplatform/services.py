"""The development LMS's course content and gradebook: deep-link returns and AGS.

* ``POST /dev/platform/deep-link-return``: where the tool's LtiDeepLinkingResponse lands.
  The JWT is verified with the tool's JWKS (as a real LMS would, by kid), and each
  ``ltiResourceLink`` becomes a link of the demo course that can then be launched.
* ``/dev/platform/ags/<context>/lineitems`` (GET, POST), ``.../lineitems/<n>`` (GET) and
  ``.../lineitems/<n>/scores`` (POST): Assignment and Grade Services for the demo course.

Everything is kept in Redis (nothing in process memory between requests), like the
platform's other state; it is demo data, so it expires after a week of no changes.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

import jwt
from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature

from plugin.db import request_session
from plugin.jobs import get_redis
from plugin.lti.tool_keys import published_jwks

__all__ = ["PlacedLink", "blueprint", "placed_link", "placed_links"]

blueprint = Blueprint("devplatform_services", __name__, url_prefix="/dev/platform")

LINKS_KEY: Final = "devplatform:links"
TTL: Final = 7 * 24 * 3600
SCORE_TYPE: Final = "application/vnd.ims.lis.v1.score+json"
LINEITEM_TYPE: Final = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE: Final = "application/vnd.ims.lis.v2.lineitemcontainer+json"
DL: Final = "https://purl.imsglobal.org/spec/lti-dl/claim/"
LTI: Final = "https://purl.imsglobal.org/spec/lti/claim/"
COURSE: Final = "dev-course-1"


@dataclass(frozen=True)
class PlacedLink:
    """A resource link the tool placed in the demo course by deep linking."""

    id: str
    title: str
    custom: dict[str, str]
    lineitem: str


def placed_links() -> list[PlacedLink]:
    """The demo course's placed links, oldest first."""
    raw = get_redis().hgetall(LINKS_KEY)
    links = [_link(json.loads(value)) for value in raw.values()]
    return sorted(links, key=lambda link: link.id)


def placed_link(link_id: str) -> PlacedLink | None:
    raw = get_redis().hget(LINKS_KEY, link_id)
    return None if raw is None else _link(json.loads(raw))


def _link(data: dict[str, Any]) -> PlacedLink:
    return PlacedLink(
        id=str(data["id"]),
        title=str(data.get("title", "")),
        custom={str(k): str(v) for k, v in dict(data.get("custom") or {}).items()},
        lineitem=str(data.get("lineitem", "")),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _origin() -> str:
    return request.host_url.rstrip("/")


def _verify_response(token: str) -> dict[str, Any]:
    """The deep-linking response's claims, verified with the tool's JWKS; aborts 400."""
    from plugin.devplatform.views import CLIENT_ID, DEPLOYMENT_ID

    try:
        kid = jwt.get_unverified_header(token).get("kid")
        keys = {k["kid"]: k for k in published_jwks(request_session())["keys"]}
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt.PyJWK(keys[kid]).key,
            algorithms=["RS256"],
            audience=f"{_origin()}/dev/platform",
            issuer=CLIENT_ID,
            options={"require": ["exp", "iat", "nonce"]},
        )
    except (jwt.PyJWTError, KeyError, TypeError):
        abort(400)
    if (
        claims.get(f"{LTI}message_type") != "LtiDeepLinkingResponse"
        or claims.get(f"{LTI}version") != "1.3.0"
        or claims.get(f"{LTI}deployment_id") != DEPLOYMENT_ID
    ):
        abort(400)
    return claims


@blueprint.post("/deep-link-return")
def deep_link_return() -> ResponseReturnValue:
    """Receive the tool's deep-linking response and add its links to the demo course."""
    from plugin.devplatform.views import PERSONAS, launch_url_for

    claims = _verify_response(request.form.get("JWT", ""))
    items = claims.get(f"{DL}content_items")
    redis = get_redis()
    added: list[PlacedLink] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("type") != "ltiResourceLink":
            continue
        link_id = f"dev-link-{secrets.token_hex(4)}"
        lineitem = ""
        wanted = item.get("lineItem")
        if isinstance(wanted, dict):
            # The LMS makes the gradebook column with the link, as Canvas does.
            lineitem = _create_lineitem(COURSE, {**wanted, "resourceLinkId": link_id})["id"]
        data: dict[str, Any] = {
            "id": link_id,
            "title": str(item.get("title") or "Preceptor"),
            "custom": item.get("custom") if isinstance(item.get("custom"), dict) else {},
            "lineitem": lineitem,
        }
        redis.hset(LINKS_KEY, link_id, json.dumps(data))
        added.append(_link(data))
    redis.expire(LINKS_KEY, TTL)
    launches = {
        link.id: {name: launch_url_for(name, f"link:{link.id}") for name in PERSONAS}
        for link in added
    }
    return render_template(
        "devplatform/deep_link_return.html",
        links=added,
        launches=launches,
        data=claims.get(f"{DL}data"),
    )


# --- Assignment and Grade Services ---------------------------------------------------------


def _authorized() -> None:
    from plugin.devplatform.views import _token_serializer

    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    try:
        _token_serializer().loads(bearer, max_age=3600)
    except BadSignature:
        abort(401)


def _lineitems_key(context_id: str) -> str:
    return f"devplatform:ags:{context_id}:lineitems"


def _scores_key(context_id: str, number: int) -> str:
    return f"devplatform:ags:{context_id}:scores:{number}"


def _create_lineitem(context_id: str, body: dict[str, Any]) -> dict[str, Any]:
    redis = get_redis()
    key = _lineitems_key(context_id)
    number = int(redis.incr(f"{key}:next"))
    item = {
        "id": f"{_origin()}/dev/platform/ags/{context_id}/lineitems/{number}",
        "label": str(body.get("label", ""))[:200],
        "scoreMaximum": body.get("scoreMaximum"),
        "resourceId": str(body.get("resourceId", "")),
        "resourceLinkId": str(body.get("resourceLinkId", "")),
        "tag": str(body.get("tag", "")),
    }
    redis.hset(key, str(number), json.dumps(item))
    redis.expire(key, TTL)
    return item


def lineitems(context_id: str) -> list[dict[str, Any]]:
    """The demo course's line items, in creation order."""
    raw = get_redis().hgetall(_lineitems_key(context_id))
    return [json.loads(raw[k]) for k in sorted(raw, key=int)]


def scores(context_id: str, number: int) -> dict[str, dict[str, Any]]:
    """The latest score per user on one line item."""
    raw = get_redis().hgetall(_scores_key(context_id, number))
    return {_text(k): json.loads(v) for k, v in raw.items()}


@blueprint.route("/ags/<context_id>/lineitems", methods=["GET", "POST"])
def lineitems_endpoint(context_id: str) -> ResponseReturnValue:
    """The line items container: list (filtered by resource_id, tag) or create."""
    _authorized()
    if request.method == "POST":
        body = request.get_json(force=True, silent=True)
        score_maximum = body.get("scoreMaximum") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not isinstance(score_maximum, int | float)
            or score_maximum <= 0
            or not body.get("label")
        ):
            return {"error": "a line item needs a label and a positive scoreMaximum"}, 400
        return _create_lineitem(context_id, body), 201, {"Content-Type": LINEITEM_TYPE}
    found = lineitems(context_id)
    for name, field in (
        ("resource_id", "resourceId"),
        ("tag", "tag"),
        ("resource_link_id", "resourceLinkId"),
    ):
        wanted = request.args.get(name)
        if wanted is not None:
            found = [item for item in found if item.get(field) == wanted]
    return json.dumps(found), 200, {"Content-Type": LINEITEMS_TYPE}


@blueprint.get("/ags/<context_id>/lineitems/<int:number>")
def lineitem_endpoint(context_id: str, number: int) -> ResponseReturnValue:
    _authorized()
    raw = get_redis().hget(_lineitems_key(context_id), str(number))
    if raw is None:
        abort(404)
    return _text(raw), 200, {"Content-Type": LINEITEM_TYPE}


@blueprint.post("/ags/<context_id>/lineitems/<int:number>/scores")
def scores_endpoint(context_id: str, number: int) -> ResponseReturnValue:
    """The score publish service: the latest score per user replaces the previous one."""
    _authorized()
    if request.mimetype != SCORE_TYPE:
        return {"error": f"scores are posted as {SCORE_TYPE}"}, 415
    if get_redis().hget(_lineitems_key(context_id), str(number)) is None:
        abort(404)
    body = request.get_json(force=True, silent=True)
    required = ("userId", "activityProgress", "gradingProgress", "timestamp")
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in required):
        return {"error": "a score needs userId, activityProgress, gradingProgress, timestamp"}, 400
    if "scoreGiven" in body and "scoreMaximum" not in body:
        return {"error": "scoreMaximum is required with scoreGiven"}, 400
    key = _scores_key(context_id, number)
    get_redis().hset(key, body["userId"], json.dumps(body))
    get_redis().expire(key, TTL)
    return "", 204
