"""Rendering: a follow-up row becomes a message, from Jinja templates, at send time.

Rows hold ids only; names, goals and counts are loaded when the message is rendered, so a
message shows the state of things when it leaves, not when it was planned.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from flask import render_template
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.calendars.ics import ItipMethod, calendar_for, vevent
from plugin.calendars.types import Attendee, EventSpec, VirtualKind
from plugin.followups.channels import Attachment, Outgoing, mail_domain
from plugin.followups.policy import zone_named
from plugin.models import (
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Goal,
    Meeting,
    MeetingStatus,
    Participant,
    Relationship,
    RelationshipStatus,
)

__all__ = ["SUBJECTS", "link_for", "meeting_ics", "message_id_for", "render_followup"]

SUBJECTS: dict[FollowUpKind, str] = {
    FollowUpKind.INTRODUCTION: "Meet your {role}: {partner}",
    FollowUpKind.GOAL_CHECKIN: "Check in on your goal: {goal}",
    FollowUpKind.NO_MEETING_NUDGE: "Time to meet {partner}?",
    FollowUpKind.ESCALATION: "A mentoring pair may need your help",
    FollowUpKind.HEALTH_CHECK: "How is your mentoring with {partner} going?",
    FollowUpKind.COORDINATOR_DIGEST: "{program}: your weekly mentoring digest",
    FollowUpKind.MEETING_REMINDER: "Reminder: {meeting}, {when}",
    FollowUpKind.MEETING_FEEDBACK: "How did it go? {meeting}",
}

#: A short first agenda suggested in introductions.
FIRST_AGENDA = (
    "Introduce yourselves: background, interests, what you hope to get from this",
    "Agree how often and how you will meet",
    "Pick one or two goals to work on first",
)


def message_id_for(row: FollowUp, mail_from: str) -> str:
    """The follow-up's Message-ID: the same on every attempt, so a receiver can tell a
    repeat (only possible after a definite failure) from a new message."""
    digest = hashlib.sha256(row.dedupe_key.encode()).hexdigest()[:16]
    return f"<followup-{row.id}.{digest}@{mail_domain(mail_from)}>"


def link_for(row: FollowUp) -> str:
    """The page a follow-up is about: a path inside the tool, without a launch token."""
    program = f"/programs/{row.program_id}"
    if row.meeting_id is not None and row.kind == FollowUpKind.MEETING_FEEDBACK:
        return f"{program}/meetings/{row.meeting_id}/feedback"
    if row.meeting_id is not None:
        return f"{program}/meetings/{row.meeting_id}"
    return f"{program}/"


def _when(meeting: Meeting, zone_name: str | None) -> str:
    """The meeting's start in the reader's zone, e.g. "Tuesday 3 March 2026, 10:00 (UTC)"."""
    zone = zone_named(zone_name)
    local = meeting.starts_at.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({zone.key})"


def meeting_ics(meeting: Meeting, recipient: Participant, address: str) -> bytes:
    """The meeting as ``recipient``'s calendar holds it: the same UID (their sync key) and
    SEQUENCE (the version), so opening the attachment updates that event, not a copy."""
    others = tuple(
        Attendee(a.participant.email, a.participant.display_name)
        for a in meeting.attendees
        if a.participant_id != recipient.id and a.participant.email
    )
    spec = EventSpec(
        key=meeting.sync_key_for(recipient.id),
        version=meeting.version,
        summary=meeting.title,
        start=meeting.starts_at,
        end=meeting.ends_at,
        zone=zone_named(meeting.time_zone).key,
        description=meeting.agenda,
        location=meeting.location,
        virtual=VirtualKind.URL if meeting.conference_url else VirtualKind.NONE,
        conference_url=meeting.conference_url or None,
        attendees=(Attendee(address, recipient.display_name), *others),
        owner_email=address,
    )
    data: bytes = calendar_for([vevent(spec)], method=ItipMethod.PUBLISH).to_ical()
    return data


def _partner(session: Session, row: FollowUp, rel: Relationship | None) -> Participant | None:
    if rel is None:
        return None
    other = rel.mentor_id if row.recipient_id == rel.mentee_id else rel.mentee_id
    return session.get(Participant, other)


def _digest(session: Session, row: FollowUp) -> dict[str, Any]:
    since = row.due_at - timedelta(days=7)
    by_status = dict(
        session.execute(
            select(Relationship.status, func.count())
            .where(Relationship.program_id == row.program_id)
            .group_by(Relationship.status)
        ).all()
    )
    by_state = dict(
        session.execute(
            select(FollowUp.state, func.count())
            .where(
                FollowUp.program_id == row.program_id,
                FollowUp.updated_at >= since,
                FollowUp.state.in_((FollowUpState.SENT, FollowUpState.FAILED)),
            )
            .group_by(FollowUp.state)
        ).all()
    )
    return {
        "active": by_status.get(RelationshipStatus.ACTIVE, 0),
        "proposed": by_status.get(RelationshipStatus.PROPOSED, 0),
        "paused": by_status.get(RelationshipStatus.PAUSED, 0),
        "sent_week": by_state.get(FollowUpState.SENT, 0),
        "failed_week": by_state.get(FollowUpState.FAILED, 0),
    }


def render_followup(
    session: Session,
    row: FollowUp,
    *,
    base_url: str,
    mail_from: str,
    unsubscribe_url: str,
    to_address: str,
) -> Outgoing:
    """The message for ``row``, addressed to its recipient."""
    recipient = row.recipient
    rel = session.get(Relationship, row.relationship_id) if row.relationship_id else None
    partner = _partner(session, row, rel)
    goal = session.get(Goal, row.goal_id) if row.goal_id else None
    meeting = session.get(Meeting, row.meeting_id) if row.meeting_id else None
    zone_name = recipient.profile.time_zone if recipient.profile else None
    context: dict[str, Any] = {
        "kind": row.kind.value,
        "name": recipient.display_name,
        "program": recipient.program,
        "relationship": rel,
        "partner": partner,
        "partner_bio": partner.profile.bio if partner and partner.profile else "",
        "is_mentee": rel is not None and row.recipient_id == rel.mentee_id,
        "mentee": session.get(Participant, rel.mentee_id) if rel else None,
        "mentor": session.get(Participant, rel.mentor_id) if rel else None,
        "goal": goal,
        "refs": row.refs,
        "agenda": FIRST_AGENDA,
        "program_url": f"{base_url}/programs/{row.program_id}/",
        "unsubscribe_url": unsubscribe_url,
        "meeting": meeting,
        "link_url": f"{base_url}{link_for(row)}",
    }
    attachments: tuple[Attachment, ...] = ()
    if meeting is not None:
        context["when"] = _when(meeting, zone_name)
        context["others"] = ", ".join(
            a.participant.display_name
            for a in meeting.attendees
            if a.participant_id != recipient.id
        )
        if row.kind == FollowUpKind.MEETING_REMINDER and meeting.status == MeetingStatus.SCHEDULED:
            ics = meeting_ics(meeting, recipient, to_address)
            attachments = (Attachment("meeting.ics", "text/calendar; method=PUBLISH", ics),)
    if row.kind == FollowUpKind.COORDINATOR_DIGEST:
        context["digest"] = _digest(session, row)
    if row.kind == FollowUpKind.ESCALATION:
        # The coordinator's attention queue, where the pair is listed with its signals.
        context["attention_url"] = f"{base_url}/programs/{row.program_id}/coordinator/attention"
    if row.kind == FollowUpKind.HEALTH_CHECK and rel is not None:
        # The health-check form (plugin.insights.feedback_views.health_check).
        context["health_url"] = (
            f"{base_url}/programs/{row.program_id}/relationships/{rel.id}/health"
        )
    subject = SUBJECTS[row.kind].format(
        role="mentor" if context["is_mentee"] else "mentee",
        partner=partner.display_name if partner else "your partner",
        goal=goal.title if goal else "your goal",
        program=recipient.program.title,
        meeting=meeting.title if meeting else "your meeting",
        when=context.get("when", ""),
    )
    context["subject"] = subject
    return Outgoing(
        followup_id=row.id,
        message_id=message_id_for(row, mail_from),
        to_name=recipient.display_name,
        to_address=to_address,
        subject=subject,
        text=render_template(f"followups/mail/{row.kind.value}.txt", **context),
        html=render_template(f"followups/mail/{row.kind.value}.html", **context),
        unsubscribe_url=unsubscribe_url,
        attachments=attachments,
        link=link_for(row),
        recipient_id=row.recipient_id,
        kind=row.kind.value,
    )
