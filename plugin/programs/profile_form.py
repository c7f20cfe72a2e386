"""Validating the enrollment and profile form: every field checked, every error at its field.

:func:`validate_profile` turns what the person typed (:class:`ProfileInput`, plain strings
as the form sent them) into a :class:`ProfileData`, or raises ``FormInvalid`` naming each
wrong field. It reads the database only for the mentor's current seats, so a capacity can
never be set below the mentees they already have. A learner's offer to mentor must meet the
program's peer-mentor career stage (see :mod:`plugin.programs.peers`).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.models import (
    CareerStage,
    MeetingFormat,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    Track,
)
from plugin.models.relationships import SEAT_HOLDING
from plugin.programs.errors import FormInvalid
from plugin.programs.vocabulary import backgrounds, program_vocabulary

__all__ = [
    "DAYS",
    "WINDOW_ROWS",
    "ProfileData",
    "ProfileInput",
    "open_seats_by_track",
    "private_preferences",
    "validate_profile",
]

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Availability rows the form offers (empty rows are ignored).
WINDOW_ROWS = 7
BIO_MAX = 2000
GOALS_MAX = 2000
INTERESTS_TEXT_MAX = 500
LANGUAGES_MAX = 8
TRACK_CAPACITY_MAX = 20
TOTAL_CAPACITY_MAX = 50
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
#: A BCP 47 tag as people type them: a 2-3 letter language and optional subtags.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$")


@dataclass
class ProfileInput:
    """The form as submitted: strings and lists of strings, nothing parsed yet."""

    as_mentee: bool = False
    as_mentor: bool = False
    tracks_wanted: list[str] = field(default_factory=list)
    tracks_offered: list[str] = field(default_factory=list)
    interests: list[str] = field(default_factory=list)
    interests_text: str = ""
    goals_text: str = ""
    bio: str = ""
    career_stage: str = ""
    time_zone: str = ""
    #: (day, start, end) per form row, as typed.
    windows: list[tuple[str, str, str]] = field(default_factory=list)
    meeting_format: str = MeetingFormat.EITHER.value
    languages: str = ""
    capacity_by_track: dict[str, str] = field(default_factory=dict)
    capacity_total: str = ""
    seek_backgrounds: list[str] = field(default_factory=list)
    share_backgrounds: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProfileData:
    """A valid profile, ready to store."""

    as_mentee: bool
    as_mentor: bool
    tracks_wanted: list[str]
    tracks_offered: list[str]
    interests: list[str]
    interests_text: str
    goals_text: str
    bio: str
    career_stage: CareerStage
    time_zone: str
    availability: list[dict[str, Any]]
    meeting_format: MeetingFormat
    languages: list[str]
    capacity_by_track: dict[str, int]
    capacity_total: int | None
    private_preferences: str | None


def private_preferences(stored: str | None) -> dict[str, list[str]]:
    """The opt-in preferences as stored ({"seek": [...], "identify_as": [...]}), or empty."""
    if not stored:
        return {"seek": [], "identify_as": []}
    data = json.loads(stored)
    return {"seek": list(data.get("seek", [])), "identify_as": list(data.get("identify_as", []))}


def open_seats_by_track(session: Session, mentor: Participant | None) -> dict[str, int]:
    """How many seat-holding relationships ``mentor`` has per track."""
    if mentor is None:
        return {}
    rows = session.execute(
        select(Relationship.track, func.count())
        .where(Relationship.mentor_id == mentor.id, Relationship.status.in_(SEAT_HOLDING))
        .group_by(Relationship.track)
    ).all()
    return {Track(t).value: int(n) for t, n in rows}


def _open_as_mentee(session: Session, mentee: Participant | None) -> int:
    if mentee is None:
        return 0
    return int(
        session.scalar(
            select(func.count())
            .select_from(Relationship)
            .where(Relationship.mentee_id == mentee.id, Relationship.status.in_(SEAT_HOLDING))
        )
        or 0
    )


def _text(errors: dict[str, str], name: str, value: str, limit: int, *, required: str = "") -> str:
    value = value.strip()
    if required and not value:
        errors[name] = required
    elif len(value) > limit:
        errors[name] = f"Use at most {limit} characters (you wrote {len(value)})."
    return value


def _minutes(value: str) -> int | None:
    match = _TIME.match(value.strip())
    return int(match[1]) * 60 + int(match[2]) if match else None


def _windows(errors: dict[str, str], rows: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Weekly windows: each complete, start before end, none overlapping another that day."""
    kept: list[dict[str, Any]] = []
    spans: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for index, (day, start, end) in enumerate(rows):
        name = f"window-{index}"
        if not (day.strip() or start.strip() or end.strip()):
            continue
        if day.strip() not in {str(d) for d in range(7)}:
            errors[name] = "Choose a day for this window."
            continue
        begin, finish = _minutes(start), _minutes(end)
        if begin is None or finish is None:
            errors[name] = "Enter a start and an end time as HH:MM (24-hour)."
            continue
        if finish <= begin:
            errors[name] = "The window must end after it starts."
            continue
        weekday = int(day)
        clash = next((i for b, f, i in spans[weekday] if begin < f and b < finish), None)
        if clash is not None:
            errors[name] = (
                f"This window overlaps window {clash + 1} on {DAYS[weekday]}; merge them into one."
            )
            continue
        spans[weekday].append((begin, finish, index))
        kept.append({"day": weekday, "start": start.strip(), "end": end.strip()})
    return sorted(kept, key=lambda w: (w["day"], w["start"]))


def _int(errors: dict[str, str], name: str, value: str, low: int, high: int) -> int | None:
    try:
        number = int(value.strip())
    except ValueError:
        errors[name] = "Enter a whole number."
        return None
    if not low <= number <= high:
        errors[name] = f"Enter a number from {low} to {high}."
        return None
    return number


def _time_zone(errors: dict[str, str], value: str) -> str:
    value = value.strip()
    if not value:
        errors["time_zone"] = "Enter your time zone, e.g. America/Chicago."
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = f"“{value[:64]}” is not a time zone we know; use e.g. Europe/Paris."
        return value
    if value not in available_timezones() and value != "UTC":
        errors["time_zone"] = f"“{value[:64]}” is not a time zone we know; use e.g. Europe/Paris."
    return value


def _roles(
    errors: dict[str, str],
    data: ProfileInput,
    *,
    may_mentee: bool,
    may_mentor: bool,
    participant: Participant | None,
    session: Session,
    seats: dict[str, int],
) -> None:
    if not (data.as_mentee or data.as_mentor):
        errors["roles"] = "Choose to join as a mentee, a mentor or both."
    elif data.as_mentee and not may_mentee:
        errors["roles"] = "Your course role does not allow joining as a mentee."
    elif data.as_mentor and not may_mentor:
        errors["roles"] = "This program's mentors are faculty; you can join as a mentee."
    elif participant is not None and participant.is_mentor and not data.as_mentor and seats:
        errors["roles"] = (
            "You still mentor someone in this program: end those relationships "
            "(or withdraw) before you stop being a mentor."
        )
    elif (
        participant is not None
        and participant.is_mentee
        and not data.as_mentee
        and _open_as_mentee(session, participant)
    ):
        errors["roles"] = (
            "You still have mentors in this program: end those relationships "
            "(or withdraw) before you stop being a mentee."
        )


def _peer_bar(
    errors: dict[str, str],
    data: ProfileInput,
    stage: CareerStage | None,
    *,
    peer_min_stage: CareerStage | None,
    participant: Participant | None,
) -> None:
    """A learner's new offer to mentor needs the program's peer-mentor career stage.

    Someone mentoring here already keeps their role when a coordinator raises the bar
    later: their relationships go on, and they can still edit their profile.
    """
    if not data.as_mentor or peer_min_stage is None or stage is None or "roles" in errors:
        return
    if (
        participant is not None
        and participant.is_mentor
        and participant.status == ParticipantStatus.ACTIVE
    ):
        return
    if stage.rank < peer_min_stage.rank:
        errors["career_stage"] = (
            f"Peer mentors in this program are at the “{peer_min_stage.label}” stage or "
            "later; at your stage you can join as a mentee."
        )


def _tracks(errors: dict[str, str], name: str, chosen: list[str], program: Program) -> list[str]:
    offered = [t.value for t in program.offered_tracks]
    if any(t not in offered for t in chosen):
        errors[name] = "Choose tracks from this program's list."
        return []
    if not chosen:
        errors[name] = "Choose at least one track."
    return [t for t in offered if t in chosen]


def _capacities(
    errors: dict[str, str],
    data: ProfileInput,
    program: Program,
    offered: list[str],
    seats: dict[str, int],
) -> tuple[dict[str, int], int | None]:
    by_track: dict[str, int] = {}
    for track in offered:
        raw = data.capacity_by_track.get(track, "").strip()
        name = f"capacity-{track}"
        # An empty box takes the program's default for the track as it is today.
        number = (
            program.default_capacity(Track(track))
            if not raw
            else _int(errors, name, raw, 0, TRACK_CAPACITY_MAX)
        )
        if number is None:
            continue
        if number < seats.get(track, 0):
            errors[name] = (
                f"You already have {seats[track]} mentee(s) or requests on this track; "
                f"the capacity cannot be lower."
            )
        by_track[track] = number
    for track, taken in seats.items():
        if track not in offered and taken:
            errors["tracks_offered"] = (
                f"You still have {taken} mentee(s) or requests on the "
                f"{Track(track).label} track: keep offering it until those relationships end."
            )
    total: int | None = None
    if data.capacity_total.strip():
        total = _int(errors, "capacity_total", data.capacity_total, 0, TOTAL_CAPACITY_MAX)
        taken_total = sum(seats.values())
        if total is not None and total < taken_total:
            errors["capacity_total"] = (
                f"You already have {taken_total} mentee(s) or requests; "
                "the overall capacity cannot be lower."
            )
    return by_track, total


def _languages(errors: dict[str, str], value: str) -> list[str]:
    tags = [t.strip() for t in value.replace(";", ",").split(",") if t.strip()]
    if not tags:
        errors["languages"] = "Enter at least one language, e.g. en or es."
    elif len(tags) > LANGUAGES_MAX:
        errors["languages"] = f"List at most {LANGUAGES_MAX} languages."
    elif bad := [t for t in tags if not _LANGUAGE.match(t)]:
        errors["languages"] = (
            f"“{bad[0][:20]}” is not a language code; use codes like en, es, pt-BR."
        )
    return list(dict.fromkeys(tags))


def validate_profile(
    session: Session,
    data: ProfileInput,
    *,
    program: Program,
    participant: Participant | None,
    may_mentee: bool,
    may_mentor: bool,
    peer_min_stage: CareerStage | None = None,
) -> ProfileData:
    """Check every field of the enrollment form; raise FormInvalid with a message per field.

    ``peer_min_stage`` is the career stage a peer (a learner) must declare to offer
    mentoring (None for faculty and invited mentors: no bar).
    """
    errors: dict[str, str] = {}
    seats = open_seats_by_track(session, participant) if participant is not None else {}
    _roles(
        errors,
        data,
        may_mentee=may_mentee,
        may_mentor=may_mentor,
        participant=participant,
        session=session,
        seats=seats,
    )
    wanted = _tracks(errors, "tracks_wanted", data.tracks_wanted, program) if data.as_mentee else []
    offered = (
        _tracks(errors, "tracks_offered", data.tracks_offered, program) if data.as_mentor else []
    )
    vocabulary = program_vocabulary(program)
    if any(code not in vocabulary for code in data.interests):
        errors["interests"] = "Choose interests from the list (or describe them in your own words)."
    interests = [code for code in dict.fromkeys(data.interests) if code in vocabulary]
    interests_text = _text(errors, "interests_text", data.interests_text, INTERESTS_TEXT_MAX)
    goals_text = _text(
        errors,
        "goals_text",
        data.goals_text,
        GOALS_MAX,
        required="Say in a sentence or two what you hope to get from mentoring."
        if data.as_mentee
        else "",
    )
    bio = _text(
        errors,
        "bio",
        data.bio,
        BIO_MAX,
        required="Write a short introduction for your mentees." if data.as_mentor else "",
    )
    stage: CareerStage | None = None
    if data.career_stage in CareerStage._value2member_map_:
        stage = CareerStage(data.career_stage)
    else:
        errors["career_stage"] = "Choose your career stage."
    _peer_bar(errors, data, stage, peer_min_stage=peer_min_stage, participant=participant)
    time_zone = _time_zone(errors, data.time_zone)
    availability = _windows(errors, data.windows)
    meeting_format = MeetingFormat.EITHER
    if data.meeting_format in MeetingFormat._value2member_map_:
        meeting_format = MeetingFormat(data.meeting_format)
    else:
        errors["meeting_format"] = "Choose how you would like to meet."
    languages = _languages(errors, data.languages)
    by_track, total = (
        _capacities(errors, data, program, offered, seats) if data.as_mentor else ({}, None)
    )
    tags = {b.code for b in backgrounds()}
    for name, chosen in (
        ("seek_backgrounds", data.seek_backgrounds),
        ("share_backgrounds", data.share_backgrounds),
    ):
        if any(t not in tags for t in chosen):
            errors[name] = "Choose backgrounds from the list."
    if errors:
        raise FormInvalid(errors)
    assert stage is not None
    seek = [t for t in dict.fromkeys(data.seek_backgrounds)] if data.as_mentee else []
    share = [t for t in dict.fromkeys(data.share_backgrounds)] if data.as_mentor else []
    return ProfileData(
        as_mentee=data.as_mentee,
        as_mentor=data.as_mentor,
        tracks_wanted=wanted,
        tracks_offered=offered,
        interests=interests,
        interests_text=interests_text,
        goals_text=goals_text,
        bio=bio,
        career_stage=stage,
        time_zone=time_zone,
        availability=availability,
        meeting_format=meeting_format,
        languages=languages,
        capacity_by_track=by_track,
        capacity_total=total,
        private_preferences=(
            json.dumps({"seek": seek, "identify_as": share}) if seek or share else None
        ),
    )
