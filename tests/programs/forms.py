"""Checks shared by the form tests: the message at a field, the refusal at the top of a
page, and a snapshot of every row to show that a refused form changed nothing."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

from sqlalchemy import Connection, inspect, literal_column, select, table
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause

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


def database_snapshot(session: Session) -> dict[str, Any]:
    """Every row of every table the database has, read as stored (not through the models):
    equal snapshots mean nothing was written.

    On PostgreSQL one statement reads them all (each table as JSON, rows in a fixed
    order): a query per table per request made the access matrices a minute slower there.
    """
    session.flush()
    connection = session.connection()
    names = _table_names(connection)
    if connection.dialect.name == "postgresql":
        # Names come from the catalog and are checked to be plain identifiers.
        parts = " UNION ALL ".join(
            f"SELECT '{name}', (SELECT coalesce(json_agg(t ORDER BY t::text), '[]')::text "  # noqa: S608
            f'FROM "{name}" t)'
            for name in names
        )
        return dict(connection.exec_driver_sql(parts).all())
    everything: ColumnClause[Any] = literal_column("*")
    return {
        name: sorted(
            map(tuple, connection.execute(select(everything).select_from(table(name)))), key=repr
        )
        for name in names
    }


_TABLES: dict[str, list[str]] = {}


def _table_names(connection: Connection) -> list[str]:
    # The schema does not change under a test that snapshots it: read it once per database.
    key = connection.engine.url.render_as_string(hide_password=True)
    if key not in _TABLES:
        names = inspect(connection).get_table_names()
        assert all(re.fullmatch(r"[a-z_0-9]+", n) for n in names), names
        _TABLES[key] = sorted(names)
    return _TABLES[key]
