"""Per-person ICS feeds: a secret, revocable URL listing a participant's meetings.

Each event's UID is the (meeting, person) idempotency key, the same one their connected
calendar and e-mail invitations use, so subscribing to the feed as well never shows a
meeting twice in clients that merge by UID; SEQUENCE is the meeting's version, and a
cancelled meeting stays in the feed with STATUS:CANCELLED so subscribers drop it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from plugin.db import utcnow
from plugin.models import (
    CalendarFeed,
    Meeting,
    MeetingAttendee,
    MeetingKind,
    MeetingStatus,
    Participant,
)
from plugin.models.calendars import feed_token_hash

__all__ = ["build_feed", "feed_for_token", "live_feed", "open_feed", "revoke_feed"]

#: Meetings further back than this drop out of the feed.
FEED_HISTORY = timedelta(days=90)
PRODID = "-//Preceptor//Mentoring meetings//EN"


def live_feed(session: Session, participant: Participant) -> CalendarFeed | None:
    return session.scalar(
        select(CalendarFeed).where(
            CalendarFeed.participant_id == participant.id, CalendarFeed.revoked_at.is_(None)
        )
    )


def open_feed(session: Session, participant: Participant) -> CalendarFeed:
    """The participant's live feed, created with a new secret token if they have none."""
    feed = live_feed(session, participant)
    if feed is not None:
        return feed
    token = secrets.token_urlsafe(32)
    feed = CalendarFeed(
        participant_id=participant.id, token=token, token_hash=feed_token_hash(token)
    )
    session.add(feed)
    session.flush()
    return feed


def revoke_feed(session: Session, participant: Participant) -> bool:
    """Revoke the live feed (its URL answers 404 from now on); whether there was one."""
    feed = live_feed(session, participant)
    if feed is None:
        return False
    feed.revoked_at = utcnow()
    session.flush()
    return True


def feed_for_token(session: Session, token: str) -> CalendarFeed | None:
    """The live feed a token opens, or None (unknown or revoked)."""
    if not token or len(token) > 100:
        return None
    feed = session.scalar(
        select(CalendarFeed).where(CalendarFeed.token_hash == feed_token_hash(token))
    )
    if feed is None or feed.revoked_at is not None:
        return None
    if not secrets.compare_digest(feed.token, token):
        return None
    return feed


def build_feed(session: Session, participant: Participant, *, now: datetime | None = None) -> bytes:
    """The participant's meetings as an iCalendar document."""
    now = now or utcnow()
    meetings = session.scalars(
        select(Meeting)
        .join(MeetingAttendee, MeetingAttendee.meeting_id == Meeting.id)
        .where(
            MeetingAttendee.participant_id == participant.id,
            Meeting.ends_at > now - FEED_HISTORY,
        )
        .order_by(Meeting.starts_at)
        # Circle meetings list their attendees by name: load them with the meetings (the
        # feed is polled by calendar apps) instead of a query per attendee.
        .options(
            selectinload(Meeting.attendees)
            .joinedload(MeetingAttendee.participant)
            .joinedload(Participant.user)
        )
    ).all()
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"Mentoring · {participant.program.title}")
    for meeting in meetings:
        calendar.add_component(_event(meeting, participant, now))
    document: bytes = calendar.to_ical()
    return document


def _event(meeting: Meeting, participant: Participant, now: datetime) -> Event:
    event = Event()
    event.add("uid", meeting.sync_key_for(participant.id))
    event.add("sequence", meeting.version)
    event.add("dtstamp", now)
    event.add("last-modified", meeting.updated_at)
    event.add("dtstart", meeting.starts_at)
    event.add("dtend", meeting.ends_at)
    event.add("summary", meeting.title)
    description = [meeting.agenda] if meeting.agenda else []
    if meeting.conference_url:
        description.append(f"Join: {meeting.conference_url}")
        event.add("url", meeting.conference_url)
    if meeting.kind == MeetingKind.CIRCLE:
        names = ", ".join(a.participant.display_name for a in meeting.attendees)
        description.append(f"Attendees: {names}")
    if meeting.status == MeetingStatus.CANCELLED and meeting.cancel_reason:
        description.append(f"Cancelled: {meeting.cancel_reason}")
    if description:
        event.add("description", "\n\n".join(description))
    if meeting.location:
        event.add("location", meeting.location)
    event.add("status", "CANCELLED" if meeting.status == MeetingStatus.CANCELLED else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if meeting.status == MeetingStatus.CANCELLED else "OPAQUE")
    return event
