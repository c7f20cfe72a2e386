"""Structured logs carry request and job ids, never personal data or secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from flask import Flask

from plugin.jobs import enqueue
from plugin.logs import REDACTED, get_logger


def log_lines(captured: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


@pytest.mark.usefixtures("app")
def test_personal_data_and_secrets_never_reach_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    get_logger("tests").warning(
        "launch.refused",
        email="ada@example.edu",
        name="Ada Lovelace",
        id_token="eyJhbGciOi...",
        user_id=42,
        note="reply to ada@example.edu about postgresql://svc:pa55@db/x",
    )
    (line,) = log_lines(capsys.readouterr().err)
    assert line["email"] == REDACTED
    assert line["name"] == REDACTED
    assert line["id_token"] == REDACTED
    assert line["user_id"] == 42  # ids are what we log instead
    assert "ada@example.edu" not in json.dumps(line)
    assert "pa55" not in json.dumps(line)


def test_request_lines_carry_the_request_id(
    app: Flask, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    @app.get("/log-something")
    def log_something() -> str:
        get_logger("tests").info("inside.request")
        return "ok"

    response = app.test_client().get("/log-something")
    lines = [
        line for line in log_lines(capsys.readouterr().err) if line["event"] == "inside.request"
    ]
    assert lines[0]["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.usefixtures("app")
def test_job_lines_carry_the_job_id(
    drain_jobs: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    enqueue("tests.fakes.jobs.touch", "logged", job_id="touch-logged")
    drain_jobs()
    lines = [line for line in log_lines(capsys.readouterr().err) if line["event"] == "test.touch"]
    assert lines[0]["job_id"] == "touch-logged"
    assert lines[0]["job_func"] == "tests.fakes.jobs.touch"
