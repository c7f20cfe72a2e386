"""Peer mentors: learners who mentor, and the rules that keep them senior to their mentees.

A peer mentor is a mentor who is a learner in the program's course: not an instructor or
teaching assistant there, and not an invited external mentor. Two rules apply to peer
mentors and to no other mentor:

* **The program's bar.** A learner may offer mentoring only when the program allows peer
  mentors (``MentorPolicy.FACULTY_AND_PEERS``) and the career stage they declare is at
  least ``Program.peer_mentor_min_stage`` (the profile form checks it). A coordinator who
  later raises the bar, or allows faculty only, ends nobody's relationships and takes
  nobody's mentor role away, but the bar applies to every new pairing: a peer mentor below
  it (or any peer mentor in a faculty-only program) gets no new mentees from rounds,
  browsing or requests.
* **Seniority.** A peer mentor is paired only with a mentee at a strictly earlier career
  stage, both stages declared. Match rounds exclude other pairs
  (``ExclusionReason.STAGE``), the browse and re-match pages do not list the mentor, and a
  mentee's request is refused. A coordinator's pairing is the one deliberate override.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole, course_roles
from plugin.models import CareerStage, CourseMembership, MentorPolicy, Participant, Program

__all__ = [
    "FACULTY_COURSE_ROLES",
    "is_peer",
    "peer_mentor_ids",
    "peer_stage_allows",
    "peer_stage_allows_pair",
    "stage_of",
]

#: Course roles that make a mentor faculty (never a peer mentor).
FACULTY_COURSE_ROLES = frozenset({CourseRole.INSTRUCTOR, CourseRole.TEACHING_ASSISTANT})


def is_peer(roles: frozenset[CourseRole], *, invited: bool) -> bool:
    """Whether someone with these course roles mentors as a peer (a learner, not faculty)."""
    return CourseRole.LEARNER in roles and not roles & FACULTY_COURSE_ROLES and not invited


def peer_mentor_ids(session: Session, program: Program, mentors: Iterable[Participant]) -> set[int]:
    """The participant ids of the peer mentors among ``mentors`` (one query)."""
    by_user = {m.user_id: m.id for m in mentors if m.user_id is not None and not m.invite_email}
    if not by_user:
        return set()
    rows = session.execute(
        select(CourseMembership.user_id, CourseMembership.roles).where(
            CourseMembership.course_id == program.course_id,
            CourseMembership.user_id.in_(by_user),
        )
    )
    return {
        by_user[user_id] for user_id, claim in rows if is_peer(course_roles(claim), invited=False)
    }


def stage_of(participant: Participant) -> CareerStage | None:
    """The career stage ``participant`` declared, if any."""
    profile = participant.profile
    return profile.career_stage if profile is not None else None


def peer_stage_allows(
    program: Program, mentor_stage: CareerStage | None, mentee_stage: CareerStage | None
) -> bool:
    """Whether a peer mentor at ``mentor_stage`` may take a new mentee at ``mentee_stage``.

    Only while the program allows peer mentors, only a mentor at or above its bar, and only
    a strictly more senior one; an undeclared stage on either side cannot show that, so
    such a pair is not made either.
    """
    if program.mentor_policy != MentorPolicy.FACULTY_AND_PEERS:
        return False
    if mentor_stage is None or mentee_stage is None:
        return False
    bar = program.peer_mentor_min_stage
    return mentor_stage.rank >= bar.rank and mentor_stage.rank > mentee_stage.rank


def peer_stage_allows_pair(
    session: Session, program: Program, mentee: Participant, mentor: Participant
) -> bool:
    """Whether the seniority rule lets ``mentor`` take ``mentee`` (always, for non-peers)."""
    if mentor.id not in peer_mentor_ids(session, program, [mentor]):
        return True
    return peer_stage_allows(program, stage_of(mentor), stage_of(mentee))
