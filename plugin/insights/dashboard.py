"""The coordinator dashboard's numbers as tables: one source for each chart, table and CSV."""

from __future__ import annotations

from dataclasses import dataclass

from plugin.insights.charts import Table
from plugin.insights.metrics import DashboardFigures
from plugin.insights.outcomes import Outcomes
from plugin.models import FollowUpKind, GoalStatus

__all__ = ["ACTION_LABELS", "DashboardTables", "dashboard_tables"]

#: What each counted action is called on the page and in the CSV.
ACTION_LABELS: dict[str, str] = {
    **{kind.value: f"{kind.label} sent" for kind in FollowUpKind},
    "calendar_event": "Calendar events and invitations synced",
    "match_pair": "Pairs published from match rounds",
}


@dataclass(frozen=True)
class DashboardTables:
    """The dashboard's tables by key; ``charted`` are drawn as charts too."""

    funnel: Table
    key_figures: Table
    meetings: Table
    goals: Table
    automation: Table
    feedback: Table
    health: Table

    @property
    def all(self) -> dict[str, Table]:
        return {
            t.key: t
            for t in (
                self.funnel,
                self.key_figures,
                self.meetings,
                self.goals,
                self.feedback,
                self.health,
                self.automation,
            )
        }


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _outcome_tables(outcomes: Outcomes) -> tuple[Table, Table]:
    months = outcomes.feedback
    feedback = Table(
        key="feedback",
        caption="Meeting feedback by month",
        headers=("Month", "Average rating (1 to 5)", "Found the meeting useful (%)", "Answers"),
        rows=[
            (m.month.strftime("%B %Y"), m.average_rating, m.useful_percent, m.answers)
            for m in months
        ],
        description=(
            "Average rating participants gave the meetings of each month, "
            "with the share who found them useful."
        ),
        marked={i: "month so far" for i, m in enumerate(months) if m.partial},
    )
    health = Table(
        key="health",
        caption="Active relationships by health",
        headers=("Health", "Relationships"),
        rows=[(level.label, n) for level, n in outcomes.health.items()],
        description=(
            "Good: no warning signal. Watch or at risk: see the attention queue for the "
            "signals that raised each (gaps, missed meetings, low ratings, stalled goals)."
        ),
    )
    return feedback, health


def dashboard_tables(figures: DashboardFigures, outcomes: Outcomes) -> DashboardTables:
    """Turn the figures into captioned tables (the charts, HTML tables and CSVs)."""
    f = figures.funnel
    stages = [
        ("In the course (learners)", f.in_course),
        ("Enrolled as mentees", f.enrolled),
        ("Matched with a mentor", f.matched),
        ("Met a mentor at least once", f.met),
    ]
    funnel = Table(
        key="funnel",
        caption="Enrollment funnel: mentees from the course roster to a first meeting",
        headers=("Stage", "People", "Share of the stage before (%)"),
        rows=[
            (label, n, None if i == 0 else _percent(n, stages[i - 1][1]))
            for i, (label, n) in enumerate(stages)
        ],
        description="Each stage counts people from the stage before.",
    )
    t = figures.timing
    key_figures = Table(
        key="key-figures",
        caption="Matching and first meetings",
        headers=("Figure", "Value", "Based on"),
        rows=[
            ("Match rate (%)", _percent(f.matched, f.enrolled), f"{f.enrolled} enrolled mentees"),
            ("Median days to a first mentor", t.days_to_match, f"{t.matched_mentees} mentees"),
            (
                "Median days from a match to its first meeting",
                t.days_to_first_meeting,
                f"{t.relationships_met} relationships",
            ),
        ],
    )
    months = figures.months
    meetings = Table(
        key="meetings",
        caption="Meetings held per active relationship, by month",
        headers=(
            "Month",
            "Meetings per active relationship",
            "Meetings held",
            "Active relationships",
        ),
        rows=[
            (
                m.month.strftime("%B %Y"),
                None if m.rate is None else round(m.rate, 2),
                m.held,
                m.active_relationships,
            )
            for m in months
        ],
        description="Held mentoring meetings divided by the relationships active in the month.",
        marked={i: "month so far" for i, m in enumerate(months) if m.partial},
    )
    goals = Table(
        key="goals",
        caption="Goals by status",
        headers=("Status", "Goals"),
        rows=[
            (status.value.capitalize(), figures.goals.by_status.get(status, 0))
            for status in GoalStatus
        ],
        description="Every goal in the program, by where it stands (numbers only).",
    )
    feedback, health = _outcome_tables(outcomes)
    a = figures.automation
    automation = Table(
        key="automation",
        caption="Work the tool did instead of a coordinator",
        headers=("Action", "Times done", "Minutes each (estimate)", "Minutes saved"),
        rows=[(ACTION_LABELS[key], n, minutes, n * minutes) for key, n, minutes in a.actions],
        description=(
            f"About {a.hours_saved:g} coordinator hours saved in all, "
            "from documented minutes per action."
        ),
        value_column=3,
        unit=" min",
    )
    return DashboardTables(
        funnel=funnel,
        key_figures=key_figures,
        meetings=meetings,
        goals=goals,
        automation=automation,
        feedback=feedback,
        health=health,
    )
