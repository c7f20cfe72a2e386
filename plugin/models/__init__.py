"""All models, imported here so Alembic and ``Base.metadata`` see every table."""

from __future__ import annotations

from plugin.models.audit import AuditEvent
from plugin.models.calendars import (
    ICS_PROVIDER,
    CalendarConnection,
    CalendarFeed,
    ConnectionHealth,
    ExternalEvent,
    InstitutionCalendar,
    SyncIntent,
    SyncOperation,
    SyncState,
)
from plugin.models.feedback import (
    AttentionHandled,
    FeedbackVisibility,
    GoalsMet,
    HealthCheck,
    MeetingFeedback,
    RelationshipEvaluation,
)
from plugin.models.followups import (
    Delivery,
    DeliveryOutcome,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    NotificationPreference,
)
from plugin.models.goals import Goal, GoalStatus, GoalUpdate
from plugin.models.insights import ResearchKey
from plugin.models.invitations import InvitationMail, InvitationMailState
from plugin.models.keys import ToolKey
from plugin.models.matching import (
    MatchProposal,
    MatchRound,
    ProposalState,
    RoundObjective,
    RoundStatus,
)
from plugin.models.meetings import (
    AttendeeResponse,
    BookingState,
    Meeting,
    MeetingAttendee,
    MeetingKind,
    MeetingStatus,
    Slot,
    SlotBooking,
    sync_key,
)
from plugin.models.notifications import Notification
from plugin.models.outbox import OutboxJob, OutboxState
from plugin.models.people import CourseMembership, MembershipSource, User
from plugin.models.program import (
    CareerStage,
    MeetingFormat,
    MentorPolicy,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    Track,
)
from plugin.models.relationships import (
    Circle,
    CircleMember,
    CloseReason,
    Relationship,
    RelationshipEvent,
    RelationshipOrigin,
    RelationshipStatus,
)
from plugin.models.tenancy import Course, Deployment, Platform

__all__ = [
    "ICS_PROVIDER",
    "AttendeeResponse",
    "AttentionHandled",
    "AuditEvent",
    "BookingState",
    "CalendarConnection",
    "CalendarFeed",
    "CareerStage",
    "Circle",
    "CircleMember",
    "CloseReason",
    "ConnectionHealth",
    "Course",
    "CourseMembership",
    "Delivery",
    "DeliveryOutcome",
    "Deployment",
    "ExternalEvent",
    "FeedbackVisibility",
    "FollowUp",
    "FollowUpKind",
    "FollowUpState",
    "Goal",
    "GoalStatus",
    "GoalUpdate",
    "GoalsMet",
    "HealthCheck",
    "InstitutionCalendar",
    "InvitationMail",
    "InvitationMailState",
    "MatchProposal",
    "MatchRound",
    "Meeting",
    "MeetingAttendee",
    "MeetingFeedback",
    "MeetingFormat",
    "MeetingKind",
    "MeetingStatus",
    "MembershipSource",
    "MentorPolicy",
    "Notification",
    "NotificationPreference",
    "OutboxJob",
    "OutboxState",
    "Participant",
    "ParticipantStatus",
    "Platform",
    "Profile",
    "Program",
    "ProposalState",
    "Relationship",
    "RelationshipEvaluation",
    "RelationshipEvent",
    "RelationshipOrigin",
    "RelationshipStatus",
    "ResearchKey",
    "RoundObjective",
    "RoundStatus",
    "Slot",
    "SlotBooking",
    "SyncIntent",
    "SyncOperation",
    "SyncState",
    "ToolKey",
    "Track",
    "User",
    "sync_key",
]
