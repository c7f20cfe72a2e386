"""Running an authorization matrix: every person sends the same request to the same data
(each request's writes are undone before the next person's), and a refused request, like
any GET, must have written nothing.

Rows of the matrices name routes by path templates (``/programs/{program}/goals/{goal}``);
:func:`endpoint_of` resolves a template the way Flask routes it, so the completeness test
can compare the matrices with ``app.url_map``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from plugin.db import get_db
from tests.programs.conftest import Person
from tests.programs.forms import database_snapshot

__all__ = [
    "endpoint_of",
    "fill",
    "fill_form",
    "names_in",
    "run_matrix",
    "send",
    "undone",
]

_NAME = re.compile(r"\{(\w+)\}")


def fill(template: Any, ids: Mapping[str, object]) -> Any:
    """A path or form value with its ``{name}`` placeholders replaced by ``ids``."""
    if isinstance(template, list):
        return [fill(value, ids) for value in template]
    if isinstance(template, str):
        return _NAME.sub(lambda m: str(ids[m[1]]), template)
    return template


def fill_form(form: Mapping[str, Any], ids: Mapping[str, object]) -> dict[str, Any]:
    return {key: fill(value, ids) for key, value in form.items()}


def names_in(path: str, form: Mapping[str, Any]) -> list[str]:
    """The placeholders of a row, the path's first, each once."""
    return list(dict.fromkeys(_NAME.findall(path) + _NAME.findall(str(form))))


def send(
    app: Flask,
    person: Person | None,
    method: str,
    path: str,
    form: Mapping[str, Any] | None = None,
) -> TestResponse:
    """The request as ``person`` (None: no launch token at all)."""
    data = dict(form or {})
    if person is None:
        client = app.test_client()
        return client.get(path) if method == "GET" else client.post(path, data=data)
    return person.get(path) if method == "GET" else person.post(path, data)


@contextmanager
def undone(app: Flask, session: Session) -> Iterator[None]:
    """Undo every write made in the block, the requests' commits included."""
    session.flush()
    # Open the test session's own savepoint first, so it encloses the one rolled back here.
    session.connection()
    connection = get_db(app).sessionmaker.kw["bind"]
    savepoint = connection.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()
        session.expire_all()


def run_matrix(
    app: Flask,
    session: Session,
    people: Mapping[str, Person | None],
    method: str,
    path: str,
    form: Mapping[str, Any] | None = None,
    *,
    writes_nothing: bool = False,
) -> dict[str, int]:
    """Each person's status for one request on the same data. A GET, and a refused request
    (any 4xx), is checked to have changed no row; with ``writes_nothing``, every request is
    (a link scanner's GET, or a guessed id in a form, must never change anything)."""
    writes_nothing = writes_nothing or method == "GET"
    before = database_snapshot(session)
    statuses: dict[str, int] = {}
    for name, person in people.items():
        with undone(app, session):
            response = send(app, person, method, path, form)
            status = response.status_code
            response.close()  # a streamed download holds its file open until closed
            if status >= 400 or writes_nothing:
                assert database_snapshot(session) == before, f"{name} got {status} but wrote"
        statuses[name] = status
    return statuses


def endpoint_of(app: Flask, method: str, template: str) -> str:
    """The endpoint Flask routes ``method template`` to (placeholders read as id 1)."""
    path = _NAME.sub("1", template).split("?", 1)[0]
    endpoint, _ = app.url_map.bind("localhost").match(path, method=method)
    return str(endpoint)
