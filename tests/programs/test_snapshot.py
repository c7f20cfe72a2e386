"""The snapshot the form and access tests compare must see every kind of write."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from plugin.models import Program
from tests.programs.conftest import Tenant
from tests.programs.forms import database_snapshot


def test_a_snapshot_sees_an_insert_an_update_and_a_delete(
    session: Session, tenant: Tenant, make_program: Callable[..., Program]
) -> None:
    program = make_program(tenant)
    before = database_snapshot(session)
    assert before == database_snapshot(session)  # reading is not writing
    program.title = "Renamed"
    changed = database_snapshot(session)
    assert changed != before
    extra = Program(course_id=program.course_id, title="Second")
    session.add(extra)
    added = database_snapshot(session)
    assert added != changed
    session.delete(extra)
    assert database_snapshot(session) == changed
