"""The coordinator's view of a program: everyone in it and everyone in the course who is not.

The people list is one SQL query over two sources (the program's participants, and the
course's active members who have no enrollment), with the enrollment status computed in
SQL so that filters, search, ordering and paging happen in the database: a page of a
2,000-person program costs the same few queries as a page of a 20-person one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql import Select

from plugin.lti.roles import course_roles
from plugin.models import (
    CourseMembership,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from plugin.models.program import ERASED_NAME
from plugin.models.relationships import SEAT_HOLDING
from plugin.programs.program_stats import MeetingTimes, meeting_times

__all__ = [
    "PAGE_SIZE",
    "EnrollmentStatus",
    "PeopleFilter",
    "PeoplePage",
    "PersonRow",
    "RelationshipPage",
    "free_seats",
    "open_relationships_of",
    "people_page",
    "relationships_page",
]

#: Rows per page in the workspace lists.
PAGE_SIZE: Final = 50
SEARCH_MAX: Final = 100


class EnrollmentStatus(StrEnum):
    """Where a person stands in the program, from their enrollment and the course roster."""

    ENROLLED = "enrolled"
    NOT_ENROLLED = "not_enrolled"  #: in the course, not in the program
    INVITED = "invited"  #: an external mentor who has not accepted yet
    WITHDRAWN = "withdrawn"
    LEFT_COURSE = "left_course"  #: enrolled, but the roster says they left the course

    @property
    def label(self) -> str:
        return {
            "enrolled": "Enrolled",
            "not_enrolled": "Not enrolled",
            "invited": "Invited",
            "withdrawn": "Withdrawn",
            "left_course": "Left the course",
        }[self.value]


class RoleFilter(StrEnum):
    MENTEE = "mentee"
    MENTOR = "mentor"
    COORDINATOR = "coordinator"


@dataclass(frozen=True)
class PeopleFilter:
    """What the coordinator asked to see (unknown values are ignored, not errors)."""

    q: str = ""
    role: str = ""
    status: str = ""
    track: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: Any) -> PeopleFilter:
        try:
            page = max(1, int(args.get("page", "1")))
        except ValueError:
            page = 1
        role = args.get("role", "")
        status = args.get("status", "")
        track = args.get("track", "")
        return cls(
            q=str(args.get("q", "")).strip()[:SEARCH_MAX],
            role=role if role in RoleFilter._value2member_map_ else "",
            status=status if status in EnrollmentStatus._value2member_map_ else "",
            track=track if track in Track._value2member_map_ else "",
            page=page,
        )


@dataclass
class PersonRow:
    """One line of the people list."""

    participant_id: int | None
    user_id: int | None
    name: str
    email: str
    status: EnrollmentStatus
    is_mentee: bool
    is_mentor: bool
    is_coordinator: bool
    course_roles: list[str]
    tracks_wanted: list[str]
    tracks_offered: list[str]
    #: Open relationships by track, as mentee and as mentor (names of the other side).
    mentors: dict[str, str] = field(default_factory=dict)
    mentees: list[tuple[str, str]] = field(default_factory=list)

    @property
    def roles_label(self) -> str:
        roles = [
            label
            for flag, label in (
                (self.is_mentee, "mentee"),
                (self.is_mentor, "mentor"),
                (self.is_coordinator, "coordinator"),
            )
            if flag
        ]
        return ", ".join(roles) or "—"


@dataclass(frozen=True)
class PeoplePage:
    rows: list[PersonRow]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


def _people_query(program: Program) -> Any:
    """All rows (participants, then non-enrolled active course members) as a subquery."""
    member = CourseMembership
    status = case(
        (Participant.status == ParticipantStatus.INVITED, literal("invited")),
        (
            Participant.status.in_([ParticipantStatus.WITHDRAWN, ParticipantStatus.ERASED]),
            literal("withdrawn"),
        ),
        (member.active.is_(False), literal("left_course")),
        else_=literal("enrolled"),
    )
    name = case(
        (Participant.status == ParticipantStatus.ERASED, literal(ERASED_NAME)),
        else_=func.coalesce(
            func.nullif(User.name, ""), func.nullif(Participant.invite_name, ""), ""
        ),
    )
    email = func.coalesce(func.nullif(User.email, ""), Participant.invite_email, "")
    enrolled = (
        select(
            Participant.id.label("participant_id"),
            Participant.user_id.label("user_id"),
            name.label("name"),
            email.label("email"),
            status.label("status"),
            Participant.is_mentee.label("is_mentee"),
            Participant.is_mentor.label("is_mentor"),
            Participant.is_coordinator.label("is_coordinator"),
            cast(Profile.tracks_wanted, String).label("wanted"),
            cast(Profile.tracks_offered, String).label("offered"),
        )
        .select_from(Participant)
        .outerjoin(User, User.id == Participant.user_id)
        .outerjoin(
            member,
            and_(member.user_id == Participant.user_id, member.course_id == program.course_id),
        )
        .outerjoin(Profile, Profile.participant_id == Participant.id)
        .where(Participant.program_id == program.id)
    )
    has_enrollment = exists().where(
        Participant.program_id == program.id, Participant.user_id == member.user_id
    )
    not_enrolled = (
        select(
            null().label("participant_id"),
            member.user_id.label("user_id"),
            func.coalesce(User.name, "").label("name"),
            func.coalesce(User.email, "").label("email"),
            literal("not_enrolled").label("status"),
            literal(False).label("is_mentee"),
            literal(False).label("is_mentor"),
            literal(False).label("is_coordinator"),
            literal("").label("wanted"),
            literal("").label("offered"),
        )
        .select_from(member)
        .join(User, User.id == member.user_id)
        .where(member.course_id == program.course_id, member.active.is_(True), ~has_enrollment)
    )
    return union_all(enrolled, not_enrolled).subquery("people")


def _filtered(people: Any, wanted: PeopleFilter, *, with_status: bool = True) -> Select[Any]:
    query = select(people)
    if wanted.q:
        like = f"%{wanted.q.lower()}%"
        query = query.where(
            or_(func.lower(people.c.name).like(like), func.lower(people.c.email).like(like))
        )
    if wanted.role:
        query = query.where(people.c[f"is_{wanted.role}"].is_(True))
    if wanted.track:
        # Tracks are a JSON list; its text form holds the quoted value on every backend.
        quoted = f'%"{wanted.track}"%'
        query = query.where(or_(people.c.wanted.like(quoted), people.c.offered.like(quoted)))
    if with_status and wanted.status:
        query = query.where(people.c.status == wanted.status)
    return query


def people_page(session: Session, program: Program, wanted: PeopleFilter) -> PeoplePage:
    """One page of the people list, with counts per status for the same search."""
    people = _people_query(program)
    counted = _filtered(people, wanted, with_status=False).subquery()
    counts = {
        str(status): int(n)
        for status, n in session.execute(
            select(counted.c.status, func.count()).group_by(counted.c.status)
        )
    }
    total = counts.get(wanted.status, 0) if wanted.status else sum(counts.values())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(wanted.page, pages)
    ordered = (
        _filtered(people, wanted)
        .order_by(func.lower(people.c.name), people.c.email, people.c.user_id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    rows = [
        PersonRow(
            participant_id=r.participant_id,
            user_id=r.user_id,
            name=r.name or r.email or "(no name)",
            email=r.email,
            status=EnrollmentStatus(r.status),
            is_mentee=bool(r.is_mentee),
            is_mentor=bool(r.is_mentor),
            is_coordinator=bool(r.is_coordinator),
            course_roles=[],
            tracks_wanted=[],
            tracks_offered=[],
        )
        for r in session.execute(ordered)
    ]
    _fill_details(session, program, rows)
    return PeoplePage(rows=rows, total=total, page=page, pages=pages, counts=counts)


def _fill_details(session: Session, program: Program, rows: list[PersonRow]) -> None:
    """Course roles, tracks and open relationships of one page of people: three queries."""
    user_ids = [r.user_id for r in rows if r.user_id is not None]
    participant_ids = [r.participant_id for r in rows if r.participant_id is not None]
    roles: dict[int, list[str]] = {}
    if user_ids:
        for user_id, claim in session.execute(
            select(CourseMembership.user_id, CourseMembership.roles).where(
                CourseMembership.course_id == program.course_id,
                CourseMembership.user_id.in_(user_ids),
            )
        ):
            roles[user_id] = sorted(r.value.replace("_", " ") for r in course_roles(claim))
    profiles: dict[int, Profile] = {}
    mentors: dict[int, dict[str, str]] = defaultdict(dict)
    mentees: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if participant_ids:
        profiles = {
            p.participant_id: p
            for p in session.scalars(
                select(Profile).where(Profile.participant_id.in_(participant_ids))
            )
        }
        for rel in open_relationships_of(session, program, participant_ids):
            mentors[rel.mentee_id][rel.track.value] = rel.mentor.display_name
            mentees[rel.mentor_id].append((rel.track.value, rel.mentee.display_name))
    for row in rows:
        if row.user_id is not None:
            row.course_roles = roles.get(row.user_id, [])
        if row.participant_id is not None:
            profile = profiles.get(row.participant_id)
            if profile is not None:
                row.tracks_wanted = list(profile.tracks_wanted)
                row.tracks_offered = list(profile.tracks_offered)
            row.mentors = mentors.get(row.participant_id, {})
            row.mentees = mentees.get(row.participant_id, [])


def open_relationships_of(
    session: Session, program: Program, participant_ids: list[int]
) -> list[Relationship]:
    """Open relationships in which any of ``participant_ids`` is mentee or mentor."""
    return list(
        session.scalars(
            select(Relationship)
            .where(
                Relationship.program_id == program.id,
                Relationship.status.in_(SEAT_HOLDING),
                or_(
                    Relationship.mentee_id.in_(participant_ids),
                    Relationship.mentor_id.in_(participant_ids),
                ),
            )
            .options(
                joinedload(Relationship.mentee).joinedload(Participant.user),
                joinedload(Relationship.mentor).joinedload(Participant.user),
            )
        ).unique()
    )


@dataclass(frozen=True)
class RelationshipPage:
    rows: list[Relationship]
    total: int
    page: int
    pages: int
    counts: dict[str, int]
    #: Last held and next scheduled meeting per relationship on this page.
    meetings: dict[int, MeetingTimes] = field(default_factory=dict)


def relationships_page(
    session: Session, program: Program, *, status: str = "", track: str = "", page: int = 1
) -> RelationshipPage:
    """One page of the program's relationships, newest first, with counts per status."""
    base = select(Relationship).where(Relationship.program_id == program.id)
    if track in Track._value2member_map_:
        base = base.where(Relationship.track == Track(track))
    counted = base.subquery()
    counts = {
        RelationshipStatus(s).value: int(n)
        for s, n in session.execute(
            select(counted.c.status, func.count()).group_by(counted.c.status)
        )
    }
    if status in RelationshipStatus._value2member_map_:
        base = base.where(Relationship.status == RelationshipStatus(status))
        total = counts.get(status, 0)
    else:
        total = sum(counts.values())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = session.scalars(
        base.options(
            joinedload(Relationship.mentee).joinedload(Participant.user),
            joinedload(Relationship.mentor).joinedload(Participant.user),
        )
        .order_by(Relationship.created_at.desc(), Relationship.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).unique()
    listed = list(rows)
    return RelationshipPage(
        rows=listed,
        total=total,
        page=page,
        pages=pages,
        counts=counts,
        meetings=meeting_times(session, [r.id for r in listed]),
    )


def free_seats(
    session: Session, program: Program, mentors: list[Participant], track: Track
) -> dict[int, int]:
    """Free places of each mentor on ``track`` (one query for all of them).

    For display only: pairing re-counts under the mentor's seat lock.
    """
    from plugin.programs.relationships import Seats, total_capacity, track_capacity

    if not mentors:
        return {}
    taken: dict[int, dict[str, int]] = defaultdict(dict)
    for mentor_id, rel_track, n in session.execute(
        select(Relationship.mentor_id, Relationship.track, func.count())
        .where(
            Relationship.mentor_id.in_([m.id for m in mentors]),
            Relationship.status.in_(SEAT_HOLDING),
        )
        .group_by(Relationship.mentor_id, Relationship.track)
    ):
        taken[mentor_id][Track(rel_track).value] = int(n)
    return {
        m.id: Seats(
            track_capacity=track_capacity(program, m, track),
            track_taken=taken[m.id].get(track.value, 0),
            total_capacity=total_capacity(program, m),
            total_taken=sum(taken[m.id].values()),
        ).free
        for m in mentors
    }
