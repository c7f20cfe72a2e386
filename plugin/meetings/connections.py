"""Connecting a person's Google or Outlook calendar: the OAuth round trip and storing it.

The person leaves Preceptor for the provider's sign-in page and comes back without their
launch token, so the round trip carries its own proof: a ``state`` signed with the app's
secret that names the participant and the provider, valid for ten minutes and usable
once (its nonce is kept in Redis until the callback consumes it). For Microsoft the MSAL
flow (PKCE verifier, nonce) waits under the same nonce. The connection is stored with
its credentials encrypted, replaces the person's previous one, the person's pending
sync intents are pointed at it, and their upcoming meetings are backfilled into it
(:mod:`plugin.meetings.backfill`), all in one transaction with the drain queued after it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import update
from sqlalchemy.orm import Session

from plugin.calendars.bridge import calendar_endpoints
from plugin.calendars.errors import CalendarError
from plugin.db import utcnow
from plugin.jobs import QueueName, defer, get_redis
from plugin.meetings.backfill import backfill_sync_intents
from plugin.meetings.errors import MeetingError
from plugin.meetings.sync import SYNC_JOB, live_connection
from plugin.models import CalendarConnection, Participant, SyncIntent, SyncState

__all__ = [
    "CONNECTABLE",
    "ConnectFailed",
    "ConnectStart",
    "finish_connect",
    "start_connect",
    "store_connection",
]

#: Providers a person connects with an OAuth round trip.
CONNECTABLE: Final = ("google", "microsoft")
#: Seconds a sign-in may take before its state expires.
STATE_MAX_AGE: Final = 600
_SALT: Final = "preceptor.calendar-connect"
_PENDING_KEY: Final = "preceptor:calendar-connect:{nonce}"


class ConnectFailed(MeetingError):
    """The calendar could not be connected; the message says what to do."""


@dataclass(frozen=True)
class ConnectStart:
    """Where to send the person, and the state that must come back."""

    url: str
    state: str


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=_SALT)


def start_connect(participant: Participant, provider: str, *, redirect_uri: str) -> ConnectStart:
    """Begin connecting ``provider`` for ``participant``: the sign-in URL with a signed state."""
    if provider not in CONNECTABLE:
        raise ConnectFailed(f"{provider!r} cannot be connected here")
    endpoints = calendar_endpoints()
    nonce = secrets.token_urlsafe(16)
    state = _serializer().dumps({"p": participant.id, "v": provider, "n": nonce})
    flow: dict[str, Any] | None = None
    if provider == "google":
        from plugin.calendars.google.oauth import authorization_url

        url = authorization_url(endpoints.settings, redirect_uri=redirect_uri, state=state)
    else:
        from plugin.calendars.microsoft import start_auth_flow

        flow = start_auth_flow(
            endpoints.settings,
            redirect_uri=redirect_uri,
            http_client=endpoints.http_client,
            state=state,
        )
        url = str(flow["auth_uri"])
    get_redis().set(_PENDING_KEY.format(nonce=nonce), json.dumps({"flow": flow}), ex=STATE_MAX_AGE)
    return ConnectStart(url=url, state=state)


def finish_connect(
    session: Session, provider: str, answer: dict[str, str], *, redirect_uri: str
) -> CalendarConnection:
    """Check the state, redeem the code, and store the connection (caller commits)."""
    try:
        claims = _serializer().loads(answer.get("state", ""), max_age=STATE_MAX_AGE)
    except SignatureExpired as exc:
        raise ConnectFailed("the sign-in took too long; start connecting again") from exc
    except BadSignature as exc:
        raise ConnectFailed("this sign-in answer was not started here; start again") from exc
    if claims.get("v") != provider:
        raise ConnectFailed("this sign-in answer belongs to another provider; start again")
    pending = get_redis().getdel(_PENDING_KEY.format(nonce=claims["n"]))
    if pending is None:
        raise ConnectFailed("this sign-in answer was already used or has expired; start again")
    participant = session.get(Participant, int(claims["p"]))
    if participant is None:
        raise ConnectFailed("the enrollment this sign-in was for no longer exists")
    if answer.get("error"):
        raise ConnectFailed(
            f"the {provider} sign-in was not completed ({answer['error']}); try again"
        )
    endpoints = calendar_endpoints()
    try:
        if provider == "google":
            from plugin.calendars.google.oauth import exchange_code

            credentials = exchange_code(
                endpoints.settings, code=answer.get("code", ""), redirect_uri=redirect_uri
            )
            account = participant.email
        else:
            from plugin.calendars.microsoft import finish_auth_flow

            flow = json.loads(pending)["flow"]
            credentials = finish_auth_flow(
                endpoints.settings, flow, answer, http_client=endpoints.http_client
            )
            account = str(credentials.get("username") or participant.email)
    except CalendarError as exc:
        raise ConnectFailed(f"{provider} did not accept the sign-in: {exc}; try again") from exc
    return store_connection(session, participant, provider, account, credentials)


def store_connection(
    session: Session,
    participant: Participant,
    provider: str,
    account: str,
    credentials: dict[str, Any],
    *,
    now: datetime | None = None,
) -> CalendarConnection:
    """Make this the person's calendar: encrypted, replacing the old one, intents moved,
    upcoming meetings backfilled; the drain is deferred (queued after the caller commits)."""
    now = now or utcnow()
    previous = live_connection(session, participant)
    if previous is not None and previous.participant_id == participant.id:
        previous.revoked_at = now
    session.flush()
    connection = CalendarConnection(
        participant_id=participant.id,
        provider=provider,
        account=account,
        credentials=json.dumps(credentials),  # EncryptedText: encrypted at rest
    )
    session.add(connection)
    session.flush()
    moved = session.scalars(
        update(SyncIntent)
        .where(SyncIntent.attendee_id == participant.id, SyncIntent.state == SyncState.PENDING)
        .values(provider=provider, connection_id=connection.id, next_attempt_at=None)
        .returning(SyncIntent.id)
        .execution_options(synchronize_session=False)
    ).all()
    backfilled = backfill_sync_intents(session, participant, connection, now=now)
    if moved or backfilled:
        defer(
            session,
            SYNC_JOB,
            participant.id,
            key=f"calendar-sync-{participant.id}-connect{connection.id}",
            queue=QueueName.HIGH,
        )
    return connection
