"""Job functions: thin, JSON arguments (ids), idempotent; the work is in plugin services."""

from __future__ import annotations

from plugin.db import get_db
from plugin.jobs import get_redis
from plugin.jobs import redrive_outbox as redrive_outbox_rows

__all__ = [
    "dispatch_followups",
    "drop_retired_tool_keys",
    "plan_followups",
    "post_participation_score",
    "queue_participation_scores",
    "queue_roster_syncs",
    "redrive_outbox",
    "requeue_calendar_intents",
    "run_match_round",
    "send_calendar_notice",
    "send_followup_batch",
    "send_mentor_invitation",
    "sync_calendar_intents",
    "sync_course_roster",
    "sync_link_roster",
]


def redrive_outbox() -> dict[str, int]:
    """Cron: re-queue outbox rows whose jobs Redis lost or failed."""
    with get_db().session_scope() as session:
        report = redrive_outbox_rows(session, get_redis())
    return {
        "checked": report.checked,
        "pushed": report.pushed,
        "completed": report.completed,
        "dead": report.dead,
    }


def drop_retired_tool_keys() -> int:
    """Cron: delete tool keys whose publication overlap has ended."""
    from plugin.lti.tool_keys import drop_retired_keys

    with get_db().session_scope() as session:
        return drop_retired_keys(session)


def sync_course_roster(course_id: int) -> dict[str, int]:
    """Pull one course's NRPS roster (after its first launch, then daily)."""
    import requests

    from plugin.lti.roster import sync_roster

    with get_db().session_scope() as session, requests.Session() as http:
        report = sync_roster(session, course_id, http)
    return {"members": report.members, "added": report.added, "deactivated": report.deactivated}


def queue_roster_syncs() -> int:
    """Cron (daily): queue a roster pull for every course whose platform offers NRPS."""
    from sqlalchemy import select

    from plugin.jobs import QueueName, defer
    from plugin.models import Course, Program

    with get_db().session_scope() as session:
        ids = list(session.scalars(select(Course.id).where(Course.nrps_url != "")))
        for course_id in ids:
            defer(
                session,
                "workers.jobs.sync_course_roster",
                course_id,
                key=f"roster-{course_id}",
                queue=QueueName.LOW,
            )
        # Programs placed by a resource link also keep that link's members (NRPS rlid).
        linked = session.scalars(
            select(Program.id)
            .join(Course)
            .where(Course.nrps_url != "", Program.resource_link_id != "")
            .where(Program.archived_at.is_(None))
        )
        for program_id in linked:
            defer(
                session,
                "workers.jobs.sync_link_roster",
                program_id,
                key=f"link-roster-{program_id}",
                queue=QueueName.LOW,
            )
    return len(ids)


def sync_calendar_intents(participant_id: int) -> dict[str, int]:
    """Apply one person's pending calendar changes at their provider (or e-mail path)."""
    from plugin.meetings.sync import drain_sync_intents

    with get_db().session_scope() as session:
        report = drain_sync_intents(session, participant_id)
    return {
        "done": report.done,
        "skipped": report.skipped,
        "superseded": report.superseded,
        "retrying": report.retrying,
        "failed": report.failed,
        "waiting": report.waiting,
        "fell_back": report.fell_back,
        "requests": report.requests,
    }


def send_calendar_notice(connection_id: int) -> int:
    """E-mail the person whose calendar stopped working, once (the row records it)."""
    from plugin.calendars.bridge import calendar_endpoints
    from plugin.calendars.itip import mail_channel
    from plugin.meetings.health import send_connection_notice

    channel = mail_channel(calendar_endpoints().settings)  # the relay invitations use
    with get_db().session_scope() as session:
        return send_connection_notice(session, connection_id, channel)


def send_mentor_invitation(mail_id: int) -> str:
    """E-mail an invited mentor their link, once (the InvitationMail row records it)."""
    from plugin import get_settings
    from plugin.followups.dispatch import DispatchConfig, channel_from_settings
    from plugin.programs.invitation_mail import send_invitation_mail

    settings = get_settings()
    config = DispatchConfig.from_settings(settings)  # the relay and links follow-ups use
    with get_db().session_scope() as session:
        state = send_invitation_mail(
            session,
            mail_id,
            channel_from_settings(settings),
            base_url=config.base_url,
            secret_key=config.secret_key,
        )
    return state.value


def requeue_calendar_intents() -> int:
    """Cron: queue a drain for everyone with due pending calendar intents."""
    from plugin.meetings.sync import requeue_due_intents

    with get_db().session_scope() as session:
        return requeue_due_intents(session)


def post_participation_score(participant_id: int) -> dict[str, float] | None:
    """Post one participant's participation score to their program's AGS line item."""
    import requests

    from plugin.lti.grades import post_participation_score as post_score

    with get_db().session_scope() as session, requests.Session() as http:
        score = post_score(session, participant_id, http)
    return None if score is None else {"given": score.given, "maximum": score.maximum}


def sync_link_roster(program_id: int) -> dict[str, int]:
    """Pull the NRPS roster of a program's resource link (``rlid``)."""
    import requests

    from plugin.lti.roster import sync_link_roster as sync_link

    with get_db().session_scope() as session, requests.Session() as http:
        report = sync_link(session, program_id, http)
    return {"members": report.members, "added": report.added}


def queue_participation_scores() -> int:
    """Cron (daily): post every score again, so a change that raced a running job still lands."""
    from sqlalchemy import select

    from plugin.lti.grades import keeps_score, queue_participation_score
    from plugin.models import Participant, ParticipantStatus, Program

    queued = 0
    with get_db().session_scope() as session:
        programs = session.scalars(
            select(Program).where(
                Program.archived_at.is_(None),
                (Program.ags_lineitem_url != "") | (Program.ags_lineitems_url != ""),
            )
        )
        for program in [p for p in programs if keeps_score(p)]:
            ids = session.scalars(
                select(Participant.id).where(
                    Participant.program_id == program.id,
                    Participant.user_id.is_not(None),
                    Participant.status == ParticipantStatus.ACTIVE,
                )
            )
            for participant_id in ids:
                queue_participation_score(session, participant_id)
                queued += 1
    return queued


def dispatch_followups() -> dict[str, int]:
    """Cron (every minute): recover stale claims, queue one batch job per 100 due."""
    from plugin.followups.dispatch import dispatch_tick

    with get_db().session_scope() as session:
        report = dispatch_tick(session, get_redis())
    return {
        "due": report.due,
        "batches": report.batches,
        "released": report.released,
        "interrupted": report.interrupted,
    }


def send_followup_batch() -> dict[str, int]:
    """Claim and send one batch of due follow-ups (safe to run many at once)."""
    from plugin import get_settings
    from plugin.followups.dispatch import DispatchConfig, channel_from_settings, send_due_batch

    settings = get_settings()
    with get_db().session_scope() as session:
        report = send_due_batch(
            session, channel_from_settings(settings), DispatchConfig.from_settings(settings)
        )
    return dict(vars(report))


def plan_followups() -> dict[str, int]:
    """Cron (hourly): reconcile every program's follow-ups with what the rules derive now."""
    from plugin.followups.planner import reconcile_all

    with get_db().session_scope() as session:
        report = reconcile_all(session)
    return dict(vars(report))


def run_match_round(round_id: int) -> dict[str, int]:
    """Run a match round's engine, committing progress as it goes.

    Idempotent: a round that is no longer running is left alone. An unexpected error marks
    the round failed (so its page stops waiting and offers a re-run) and is raised again.
    """
    from plugin.db import utcnow
    from plugin.models import MatchRound, RoundStatus
    from plugin.programs.matching_rounds import ProgressRecorder, execute_round

    database = get_db()
    # Progress goes through its own short transactions; the run's session commits the
    # inputs before the engine starts, so nothing holds a lock while it solves.
    progress = ProgressRecorder(database.session_scope, round_id)
    try:
        with database.session_scope() as session:
            ran = execute_round(session, round_id, progress, checkpoint=session.commit)
            round_ = session.get(MatchRound, round_id)
            return {"ran": int(ran), "proposals": len(round_.proposals) if round_ else 0}
    except Exception as exc:
        with database.session_scope() as session:
            round_ = session.get(MatchRound, round_id)
            if round_ is not None and round_.status == RoundStatus.RUNNING:
                round_.status = RoundStatus.FAILED
                round_.error = f"the matching job stopped ({type(exc).__name__}); run it again"
                round_.finished_at = utcnow()
        raise
