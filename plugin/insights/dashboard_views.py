"""Coordinator pages of insights: the dashboard and the CSV of each of its tables.

Every route is a ``program_view(coordinator=True)``: a token for another course answers
404, a person who does not coordinate this program 403.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    abort,
    render_template,
    request,
    send_file,
    stream_with_context,
)
from flask.typing import ResponseReturnValue

from plugin.db import request_session, utcnow
from plugin.insights.charts import bar_chart, csv_rows, format_cell
from plugin.insights.dashboard import dashboard_tables
from plugin.insights.dashboard_followups import STATE_LABELS, DeliveryFilter, delivery_page
from plugin.insights.exports import EXPORTS
from plugin.insights.exports_research import build_research_zip, record_download
from plugin.insights.metrics import MINUTES_SAVED, dashboard_figures
from plugin.insights.outcomes import program_outcomes
from plugin.models import FollowUpKind
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.transfer import csv_lines

__all__ = ["blueprint", "csv_response"]

blueprint = Blueprint("insights", __name__, url_prefix="/programs/<int:program_id>/coordinator")


@blueprint.app_template_filter("figure")
def _figure(value: object) -> str:
    """A number as the dashboard prints it (None reads "no data")."""
    return format_cell(value)


def csv_response(lines: Iterator[str], filename: str) -> Response:
    """A streamed CSV download."""
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@blueprint.get("/dashboard")
@program_view(coordinator=True)
def dashboard(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """The program at a glance: funnel, matching, meetings, goals and the work saved."""
    session, now = request_session(), utcnow()
    figures = dashboard_figures(session, access.program, now)
    outcomes = program_outcomes(session, access.program, now)
    tables = dashboard_tables(figures, outcomes)
    return render_template(
        "insights/dashboard.html",
        access=access,
        program=access.program,
        figures=figures,
        outcomes=outcomes,
        tables=tables,
        chart=bar_chart,
        minutes_saved=MINUTES_SAVED,
        exports={name: label for name, (_, label) in EXPORTS.items()},
        errors={},
    )


@blueprint.get("/dashboard/<key>.csv")
@program_view(coordinator=True)
def dashboard_csv(access: ProgramAccess, program_id: int, key: str) -> ResponseReturnValue:
    """One of the dashboard's tables as CSV (the numbers behind its chart)."""
    session, now = request_session(), utcnow()
    figures = dashboard_figures(session, access.program, now)
    table = dashboard_tables(figures, program_outcomes(session, access.program, now)).all.get(key)
    if table is None:
        abort(404)
    return csv_response(csv_lines(csv_rows(table)), f"program-{program_id}-{key}.csv")


@blueprint.get("/export/<name>.csv")
@program_view(coordinator=True)
def export_csv(access: ProgramAccess, program_id: int, name: str) -> ResponseReturnValue:
    """A coordinator table as CSV: goals, audit, rounds, meetings or follow-ups (streamed)."""
    export = EXPORTS.get(name)
    if export is None:
        abort(404)
    write, _label = export
    lines = write(request_session(), access.program)
    return csv_response(lines, f"program-{program_id}-{name}.csv")


@blueprint.get("/followups")
@program_view(coordinator=True)
def followups(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Follow-ups by delivery state (queued, sent, failed, skipped...), with reasons."""
    wanted = DeliveryFilter.from_args(request.args)
    return render_template(
        "insights/followups.html",
        access=access,
        program=access.program,
        result=delivery_page(request_session(), access.program, wanted),
        wanted=wanted,
        states=STATE_LABELS,
        kinds=list(FollowUpKind),
        errors={},
    )


@blueprint.post("/export/research.zip")
@program_view(coordinator=True)
def export_research(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """The de-identified research export; the download is audited, committed before sending."""
    session = request_session()
    archive = build_research_zip(session, access.program)
    record_download(session, access.program, access.user.id)
    session.commit()
    return send_file(
        archive,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"program-{program_id}-research.zip",
    )
