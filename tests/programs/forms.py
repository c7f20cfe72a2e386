"""Checks shared by the form tests: the message at a field, the refusal at the top of a
page, and a snapshot of every row to show that a refused form changed nothing."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import Base

__all__ = ["database_snapshot", "field_error", "page_alert"]


def field_error(html: str, field: str) -> str:
    """The message shown at ``field``, checking the control points at it."""
    described = rf'aria-describedby="(?:[^"]*\s)?{re.escape(field)}-error[\s"]'
    assert re.search(described, html), f"{field} not described by its error"
    match = re.search(rf'<p class="field-error" id="{re.escape(field)}-error">([^<]*)</p>', html)
    assert match, f"no message at {field}"
    return html_lib.unescape(match[1])


def page_alert(html: str) -> str:
    """The text of the page's alerts (``role="alert"``), for refusals not tied to a field."""
    found = re.findall(r'role="alert"[^>]*>(.*?)</(?:p|div)>', html, re.DOTALL)
    assert found, "no alert on the page"
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", " ".join(found))))


def database_snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order: equal snapshots mean nothing was written."""
    session.flush()
    return {
        table.name: [
            tuple(row) for row in session.execute(select(table).order_by(*table.primary_key))
        ]
        for table in Base.metadata.sorted_tables
    }
