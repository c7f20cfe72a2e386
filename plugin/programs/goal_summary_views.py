"""Coordinator route for goals in aggregate (registered on the coordinator blueprint).

Coordinators see numbers only: goals by status and, per track, how many and their average
progress. Goal text stays between the mentee and the people it is shared with.
"""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from plugin.db import request_session
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.coordinator_views import blueprint
from plugin.programs.program_stats import goal_summary

__all__: list[str] = []


@blueprint.get("/goals")
@program_view(coordinator=True)
def goals(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """The program's goals in aggregate: counts by status, progress by track."""
    return render_template(
        "coordinator/goals.html",
        access=access,
        program=access.program,
        summary=goal_summary(request_session(), access.program.id),
        errors={},
    )
