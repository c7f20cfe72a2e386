"""Program settings a coordinator edits: parsed, validated as a whole, then audited.

A form is applied only when every field is valid (a message per bad field otherwise), and
the audit event holds exactly the fields that changed, before and after.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.audit import diff_fields, record_audit
from plugin.followups.policy import FollowUpPolicy
from plugin.models import CareerStage, MentorPolicy, Program, Relationship, Track
from plugin.models.relationships import SEAT_HOLDING
from plugin.programs.errors import FormInvalid

__all__ = [
    "DEFAULT_FOLLOWUPS",
    "DEFAULT_PARTICIPATION",
    "TRACK_DEFAULT_FIELD",
    "SettingsForm",
    "followup_settings",
    "participation_rule",
    "settings_snapshot",
    "update_program_settings",
]

#: Follow-up cadence used until a coordinator changes it: the values the follow-up planner
#: uses for a program that never saved its settings (``FollowUpPolicy``), so the form shows
#: what actually happens.
DEFAULT_FOLLOWUPS: Final[dict[str, Any]] = {
    "reminder_offsets_hours": [24, 1],
    "nudge_after_days": FollowUpPolicy.first_meeting_days,
    "nudge_cap": FollowUpPolicy.nudge_cap,
    "quiet_hours": {"start": "21:00", "end": "07:00"},
}
#: Participation score for AGS until changed: points per meeting held and goal check-in.
DEFAULT_PARTICIPATION: Final[dict[str, Any]] = {
    "points_per_meeting": 10,
    "points_per_checkin": 5,
    "maximum": 100,
}
TITLE_MAX: Final = 200
DESCRIPTION_MAX: Final = 4000
#: Bounds that stop typos (a capacity of 500, a reminder 10 years ahead) without judging.
CAPACITY_RANGE: Final = (1, 50)
#: A track's own default may be 0: mentors then take no mentees on it unless they say so.
TRACK_CAPACITY_RANGE: Final = (0, CAPACITY_RANGE[1])
#: Form field of a track's default capacity: ``default_capacity-research`` and so on.
TRACK_DEFAULT_FIELD: Final = "default_capacity-"
CADENCE_DAYS_RANGE: Final = (1, 365)
REMINDER_HOURS_RANGE: Final = (1, 336)
MAX_REMINDERS: Final = 5
NUDGE_DAYS_RANGE: Final = (1, 180)
NUDGE_CAP_RANGE: Final = (0, 10)
POINTS_RANGE: Final = (0, 1000)
MAX_EXTRA_INTERESTS: Final = 100
INTEREST_LABEL_MAX: Final = 100
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

SettingsForm = Mapping[str, str | Sequence[str]]


def followup_settings(program: Program) -> dict[str, Any]:
    """The program's follow-up cadence with defaults filled in."""
    merged = dict(DEFAULT_FOLLOWUPS)
    merged.update(program.followup_settings or {})
    return merged


def participation_rule(program: Program) -> dict[str, Any]:
    """The program's participation-score rule with defaults filled in."""
    merged = dict(DEFAULT_PARTICIPATION)
    merged.update(program.participation_rule or {})
    return merged


def settings_snapshot(program: Program) -> dict[str, Any]:
    """The editable settings as JSON-safe values (what the audit log compares)."""
    return {
        "title": program.title,
        "description": program.description,
        "tracks": list(program.tracks),
        "mentor_policy": program.mentor_policy.value,
        "peer_mentor_min_stage": program.peer_mentor_min_stage.value,
        "default_mentor_capacity": program.default_mentor_capacity,
        "default_capacity_by_track": _in_track_order(program.default_capacity_by_track or {}),
        "enrollment_opens_on": _iso(program.enrollment_opens_on),
        "enrollment_closes_on": _iso(program.enrollment_closes_on),
        "meeting_cadence_days": program.meeting_cadence_days,
        "followup_settings": followup_settings(program),
        "participation_rule": participation_rule(program),
        "extra_interests": list(program.extra_interests or []),
    }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _in_track_order(by_track: Mapping[str, int]) -> dict[str, int]:
    return {t.value: int(by_track[t.value]) for t in Track if t.value in by_track}


class _Parser:
    """Collects one message per bad field while reading a form."""

    def __init__(self, form: SettingsForm) -> None:
        self.form = form
        self.errors: dict[str, str] = {}

    def text(self, name: str) -> str:
        value = self.form.get(name, "")
        return (value if isinstance(value, str) else "").strip()

    def many(self, name: str) -> list[str]:
        value = self.form.get(name, [])
        return [value] if isinstance(value, str) else list(value)

    def integer(self, name: str, bounds: tuple[int, int], label: str) -> int:
        raw = self.text(name)
        low, high = bounds
        try:
            number = int(raw)
        except ValueError:
            self.errors[name] = f"Enter {label} as a whole number from {low} to {high}."
            return low
        if not low <= number <= high:
            self.errors[name] = f"Enter {label} from {low} to {high}."
        return number

    def day(self, name: str) -> date | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            self.errors[name] = "Enter a date as YYYY-MM-DD."
            return None


def _parse(session: Session, program: Program, form: SettingsForm) -> dict[str, Any]:
    p = _Parser(form)
    title = p.text("title")
    if not title:
        p.errors["title"] = "Enter a name for the program."
    elif len(title) > TITLE_MAX:
        p.errors["title"] = f"Use at most {TITLE_MAX} characters."
    description = p.text("description")
    if len(description) > DESCRIPTION_MAX:
        p.errors["description"] = f"Use at most {DESCRIPTION_MAX} characters."

    tracks = p.many("tracks")
    if any(t not in Track._value2member_map_ for t in tracks):
        p.errors["tracks"] = "Choose tracks from the list."
    elif not tracks:
        p.errors["tracks"] = "Choose at least one track."
    else:
        dropped = [t for t in program.tracks if t not in tracks]
        in_use = _open_relationships_on(session, program, dropped)
        if in_use:
            p.errors["tracks"] = (
                f"{in_use} open relationship(s) use a track you removed; "
                "close them before removing the track."
            )
    policy = p.text("mentor_policy")
    if policy not in MentorPolicy._value2member_map_:
        p.errors["mentor_policy"] = "Choose who may be a mentor."
        policy = program.mentor_policy.value
    # Kept with faculty-only mentors too, so allowing peers again brings the same bar back.
    peer_stage = p.text("peer_mentor_min_stage")
    if peer_stage not in CareerStage._value2member_map_:
        p.errors["peer_mentor_min_stage"] = "Choose the career stage peer mentors start from."

    capacity = p.integer("default_mentor_capacity", CAPACITY_RANGE, "the capacity")
    capacity_by_track = _parse_track_defaults(p, tracks)
    opens, closes = p.day("enrollment_opens_on"), p.day("enrollment_closes_on")
    if opens and closes and closes < opens:
        p.errors["enrollment_closes_on"] = "Enrollment must close on or after the day it opens."
    cadence = p.integer("meeting_cadence_days", CADENCE_DAYS_RANGE, "the number of days")

    followups = _parse_followups(p)
    rule = {
        "points_per_meeting": p.integer("points_per_meeting", POINTS_RANGE, "the points"),
        "points_per_checkin": p.integer("points_per_checkin", POINTS_RANGE, "the points"),
        "maximum": p.integer("points_maximum", (1, POINTS_RANGE[1]), "the maximum"),
    }
    extra = _parse_interests(p)
    if p.errors:
        raise FormInvalid(p.errors)
    return {
        "title": title,
        "description": description,
        "tracks": [t.value for t in Track if t.value in tracks],
        "mentor_policy": policy,
        "peer_mentor_min_stage": peer_stage,
        "default_mentor_capacity": capacity,
        "default_capacity_by_track": capacity_by_track,
        "enrollment_opens_on": _iso(opens),
        "enrollment_closes_on": _iso(closes),
        "meeting_cadence_days": cadence,
        "followup_settings": followups,
        "participation_rule": rule,
        "extra_interests": extra,
    }


def _parse_track_defaults(p: _Parser, tracks: list[str]) -> dict[str, int]:
    """Each offered track's own default capacity; an empty box follows the program default.

    A box for a track being removed in the same form is ignored (the track takes its
    default with it); a box named after no track at all means a stale or forged form.
    """
    by_track: dict[str, int] = {}
    for name in p.form:
        if not name.startswith(TRACK_DEFAULT_FIELD):
            continue
        track = name.removeprefix(TRACK_DEFAULT_FIELD)
        if track not in Track._value2member_map_:
            p.errors["default_capacity_by_track"] = (
                "Set a default only for the tracks listed here; reload the page and try again."
            )
        elif track in tracks and p.text(name):
            label = f"the {Track(track).label} default"
            by_track[track] = p.integer(name, TRACK_CAPACITY_RANGE, label)
    return _in_track_order(by_track)


def _parse_followups(p: _Parser) -> dict[str, Any]:
    offsets: list[int] = []
    raw_offsets = [part.strip() for part in p.text("reminder_offsets_hours").split(",")]
    low, high = REMINDER_HOURS_RANGE
    for part in filter(None, raw_offsets):
        if not part.isdigit() or not low <= int(part) <= high:
            p.errors["reminder_offsets_hours"] = (
                f"List hours before a meeting from {low} to {high}, separated by commas."
            )
            break
        offsets.append(int(part))
    if len(offsets) > MAX_REMINDERS:
        p.errors["reminder_offsets_hours"] = f"Use at most {MAX_REMINDERS} reminders."
    elif len(set(offsets)) != len(offsets):
        p.errors["reminder_offsets_hours"] = "List each reminder time once."
    start, end = p.text("quiet_start"), p.text("quiet_end")
    quiet: dict[str, str] | None = None
    if start or end:
        if not _TIME.match(start):
            p.errors["quiet_start"] = "Enter a time as HH:MM (24-hour), or leave both empty."
        if not _TIME.match(end):
            p.errors["quiet_end"] = "Enter a time as HH:MM (24-hour), or leave both empty."
        elif start == end:
            p.errors["quiet_end"] = "Quiet hours must end at a different time than they start."
        quiet = {"start": start, "end": end}
    return {
        "reminder_offsets_hours": sorted(offsets, reverse=True),
        "nudge_after_days": p.integer("nudge_after_days", NUDGE_DAYS_RANGE, "the number of days"),
        "nudge_cap": p.integer("nudge_cap", NUDGE_CAP_RANGE, "the number of nudges"),
        "quiet_hours": quiet,
    }


def _parse_interests(p: _Parser) -> list[dict[str, str]]:
    extra: list[dict[str, str]] = []
    seen: set[str] = set()
    for line in p.text("extra_interests").splitlines():
        label = line.strip()
        if not label:
            continue
        code = "x-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        if len(label) > INTEREST_LABEL_MAX or code == "x-":
            p.errors["extra_interests"] = (
                f"Write one interest per line, each with letters or digits and at most "
                f"{INTEREST_LABEL_MAX} characters."
            )
            break
        if code in seen:
            p.errors["extra_interests"] = f"“{label}” is listed twice."
            break
        seen.add(code)
        extra.append({"code": code, "label": label})
    if len(extra) > MAX_EXTRA_INTERESTS:
        p.errors["extra_interests"] = f"Add at most {MAX_EXTRA_INTERESTS} interests."
    return extra


def _open_relationships_on(session: Session, program: Program, tracks: list[str]) -> int:
    if not tracks:
        return 0
    count = session.scalar(
        select(func.count())
        .select_from(Relationship)
        .where(
            Relationship.program_id == program.id,
            Relationship.status.in_(SEAT_HOLDING),
            Relationship.track.in_([Track(t) for t in tracks]),
        )
    )
    return int(count or 0)


def update_program_settings(
    session: Session, program: Program, form: SettingsForm, *, actor_user_id: int | None
) -> dict[str, Any]:
    """Apply a settings form to ``program`` (all or nothing); returns the changed fields.

    Raises FormInvalid with a message per bad field; the program is untouched then.
    """
    before = settings_snapshot(program)
    after = _parse(session, program, form)
    old, new = diff_fields(before, after)
    if not new:
        return {}
    program.title = after["title"]
    program.description = after["description"]
    program.tracks = after["tracks"]
    program.mentor_policy = MentorPolicy(after["mentor_policy"])
    # Raising the bar ends no relationship and takes no mentor role away (see peers).
    program.peer_mentor_min_stage = CareerStage(after["peer_mentor_min_stage"])
    program.default_mentor_capacity = after["default_mentor_capacity"]
    # A lower default ends no relationship: a mentor over it keeps their mentees and gets
    # no new ones until they are back under it (see relationships.track_capacity).
    program.default_capacity_by_track = after["default_capacity_by_track"]
    program.enrollment_opens_on = _day(after["enrollment_opens_on"])
    program.enrollment_closes_on = _day(after["enrollment_closes_on"])
    program.meeting_cadence_days = after["meeting_cadence_days"]
    program.followup_settings = after["followup_settings"]
    program.participation_rule = after["participation_rule"]
    program.extra_interests = after["extra_interests"]
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor_user_id,
        action="program.settings_changed",
        target_type="program",
        target_id=program.id,
        before=old,
        after=new,
    )
    session.flush()
    return new


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
