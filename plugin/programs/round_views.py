"""Coordinator routes for match rounds (registered on the coordinator blueprint).

Start a round, watch it run, review its proposals (lock, reject), re-run, publish.
Pages refresh themselves with a meta refresh while a round runs: no scripts (the CSP
allows only our own, and none is needed for this).
"""

from __future__ import annotations

from flask import abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from plugin.db import request_session
from plugin.matching import Weights
from plugin.models import (
    MatchProposal,
    MatchRound,
    Participant,
    ProposalState,
    RoundObjective,
    RoundStatus,
)
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.coordinator_views import back, blueprint
from plugin.programs.errors import FormInvalid, ProgramError
from plugin.programs.matching_rounds import (
    ROUND_STAGES,
    WEIGHT_FIELDS,
    parse_round_form,
    publish_round,
    queue_run,
    round_in_program,
    set_proposal_state,
    start_round,
)

__all__: list[str] = []

#: Form actions on one proposal and the state each one sets.
PROPOSAL_ACTIONS = {
    "lock": ProposalState.LOCKED,
    "reject": ProposalState.REJECTED,
    "reset": ProposalState.PROPOSED,
    "exclude": ProposalState.REJECTED,  # and never pair these two again
}
#: Seconds between refreshes of a running round's page.
REFRESH_SECONDS = 3

WEIGHT_LABELS = {
    "interests": "Shared interests",
    "text": "Similar interests and goals (free text)",
    "track": "Track fit",
    "availability": "Common availability",
    "format": "Meeting format",
    "language": "Common language",
    "stage": "Career stage",
    "preferences": "Opt-in preferences",
    "availability_target_hours": "Hours a week of common availability that count as enough",
    "ideal_stage_gap": "Ideal career-stage gap (mentor ahead of mentee)",
    "stage_span": "Stages away from the ideal gap before career stage counts zero",
}


def _default_form() -> dict[str, str]:
    defaults = Weights()
    form = {name: f"{getattr(defaults, name):g}" for name in WEIGHT_FIELDS}
    form["objective"] = RoundObjective.MAX_MATCHED.value
    return form


def _rounds_page(
    access: ProgramAccess, form: dict[str, str], errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    rounds = request_session().scalars(
        select(MatchRound)
        .where(MatchRound.program_id == access.program.id)
        .order_by(MatchRound.id.desc())
    )
    return render_template(
        "coordinator/rounds.html",
        access=access,
        program=access.program,
        rounds=list(rounds),
        objectives=list(RoundObjective),
        weight_fields=WEIGHT_FIELDS,
        weight_labels=WEIGHT_LABELS,
        form=form,
        errors=errors,
    ), status


@blueprint.get("/rounds")
@program_view(coordinator=True)
def rounds(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """The program's match rounds and the form to start one."""
    return _rounds_page(access, _default_form(), {})


@blueprint.post("/rounds")
@program_view(coordinator=True)
def round_start(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Start a round with the objective and weights on the form."""
    session = request_session()
    form = {k: request.form.get(k, "") for k in ("objective", *WEIGHT_FIELDS)}
    try:
        objective, weights = parse_round_form(form)
    except FormInvalid as exc:
        return _rounds_page(access, form, exc.errors, 400)
    round_ = start_round(
        session,
        access.program,
        objective=objective,
        weights=weights,
        created_by_user_id=access.user.id,
    )
    session.commit()
    return back(
        "coordinator.match_round", "round_started", program_id=program_id, round_id=round_.id
    )


def _names(access: ProgramAccess) -> dict[int, str]:
    people = request_session().scalars(
        select(Participant)
        .where(Participant.program_id == access.program.id)
        .options(joinedload(Participant.user))
    )
    return {p.id: p.display_name for p in people}


def _round_page(
    access: ProgramAccess, round_: MatchRound, errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    proposals = sorted(round_.proposals, key=lambda p: (p.track.value, -p.score))
    return render_template(
        "coordinator/round.html",
        access=access,
        program=access.program,
        round=round_,
        proposals=proposals,
        names=_names(access),
        refresh=REFRESH_SECONDS if round_.status == RoundStatus.RUNNING else 0,
        states=ProposalState,
        statuses=RoundStatus,
        stages=ROUND_STAGES,
        refused={r["proposal_id"]: r["message"] for r in round_.publish_report if not r["ok"]},
        errors=errors,
    ), status


def _round_or_404(access: ProgramAccess, round_id: int) -> MatchRound:
    round_ = round_in_program(request_session(), access.program, round_id)
    if round_ is None:
        abort(404)
    return round_


@blueprint.get("/rounds/<int:round_id>")
@program_view(coordinator=True)
def match_round(access: ProgramAccess, program_id: int, round_id: int) -> ResponseReturnValue:
    """A round: progress while it runs, then proposals with reasons and unmatched mentees."""
    return _round_page(access, _round_or_404(access, round_id), {})


@blueprint.post("/rounds/<int:round_id>/proposals/<int:proposal_id>")
@program_view(coordinator=True)
def round_proposal(
    access: ProgramAccess, program_id: int, round_id: int, proposal_id: int
) -> ResponseReturnValue:
    """Lock, reject or reset one proposal."""
    session = request_session()
    round_ = _round_or_404(access, round_id)
    proposal = session.get(MatchProposal, proposal_id)
    if proposal is None or proposal.round_id != round_.id:
        abort(404)
    state = PROPOSAL_ACTIONS.get(request.form.get("action", ""))
    if state is None:
        return _round_page(
            access, round_, {"action": "Choose lock, reject, never pair or reset."}, 400
        )
    try:
        set_proposal_state(
            session,
            proposal,
            state,
            actor_user_id=access.user.id,
            never_again=request.form.get("action") == "exclude",
        )
    except ProgramError as exc:
        session.rollback()
        return _round_page(access, round_, {"action": str(exc)}, 409)
    session.commit()
    return back(
        "coordinator.match_round",
        "proposal_excluded"
        if request.form.get("action") == "exclude"
        else "proposal_" + state.value,
        program_id=program_id,
        round_id=round_id,
    )


@blueprint.post("/rounds/<int:round_id>/rerun")
@program_view(coordinator=True)
def round_rerun(access: ProgramAccess, program_id: int, round_id: int) -> ResponseReturnValue:
    """Run the round again: locked pairs stay, rejected pairs are not proposed again."""
    session = request_session()
    round_ = _round_or_404(access, round_id)
    try:
        queue_run(session, round_)
    except ProgramError as exc:
        session.rollback()
        return _round_page(access, round_, {"round": str(exc)}, 409)
    session.commit()
    return back("coordinator.match_round", "round_rerun", program_id=program_id, round_id=round_id)


@blueprint.post("/rounds/<int:round_id>/publish")
@program_view(coordinator=True)
def round_publish(access: ProgramAccess, program_id: int, round_id: int) -> ResponseReturnValue:
    """Create the relationships of the kept pairs; pairs that no longer fit are listed."""
    session = request_session()
    round_ = _round_or_404(access, round_id)
    try:
        outcome = publish_round(
            session,
            round_,
            actor=access.participant if access.enrolled else None,
            actor_user_id=access.user.id,
        )
    except ProgramError as exc:
        session.rollback()
        return _round_page(access, round_, {"round": str(exc)}, 409)
    session.commit()
    return back(
        "coordinator.match_round",
        "round_published",
        outcome.created,
        program_id=program_id,
        round_id=round_id,
    )
