"""The app factory, the shared page plumbing and the error pages."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient


def test_factory_builds_a_testing_app(app: Flask) -> None:
    assert app.testing
    assert app.config["SECRET_KEY"]
    assert "preceptor.db" in app.extensions


def test_importing_the_packages_does_no_work() -> None:
    # With production settings missing, create_app() would refuse to start; importing must
    # not, because importing must not read settings, open connections or touch files.
    code = (
        "import plugin, plugin.db, plugin.jobs, plugin.ops, plugin.cli, workers.jobs, "
        "workers.worker, workers.cron, lti_config.keys"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRECEPTOR_")}
    env["PRECEPTOR_ENV"] = "production"
    env["PRECEPTOR_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_index_page_is_accessible_html(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert '<main id="main"' in html
    assert 'href="#main"' in html  # skip link
    assert 'name="viewport"' in html


def test_security_headers_allow_the_lms_frame_but_nothing_else(client: FlaskClient) -> None:
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors *" in csp
    assert "script-src 'self'" in csp
    assert "X-Frame-Options" not in response.headers  # would break the LMS iframe
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_frame_ancestors_is_configurable(
    make_app: Callable[..., Flask], database_url: str, redis_url: str
) -> None:
    app = make_app(
        database_url=database_url, redis_url=redis_url, frame_ancestors="https://canvas.example.edu"
    )
    response = app.test_client().get("/healthz")
    assert (
        "frame-ancestors https://canvas.example.edu" in response.headers["Content-Security-Policy"]
    )


def test_request_id_is_generated_and_echoed(client: FlaskClient) -> None:
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-1234abcd"})
    assert kept.headers["X-Request-ID"] == "lb-1234abcd"


@pytest.mark.parametrize("bad", ["short", "has spaces in it", "x" * 65, "semi;colon=value"])
def test_malformed_request_id_is_replaced(client: FlaskClient, bad: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["X-Request-ID"] != bad
    assert len(response.headers["X-Request-ID"]) == 32


def test_not_found_page_fits_the_frame_and_says_what_to_do(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert '<h1 id="error-title">Page not found</h1>' in html
    assert "open Preceptor again" in html
    assert response.headers["X-Request-ID"] in html


def test_not_found_answers_json_to_json_clients(client: FlaskClient) -> None:
    response = client.get("/nope", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["status"] == 404
    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]


def test_server_error_page_hides_the_traceback(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail student@example.edu")

    app.testing = False  # let the error handler run instead of propagating
    response = app.test_client().get("/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong on our side" in html
    assert "RuntimeError" not in html
    assert "secret detail" not in html
    assert response.headers["X-Request-ID"] in html
    logged = capsys.readouterr().err
    assert "RuntimeError" in logged  # the failure is logged for the operator...
    assert "student@example.edu" not in logged  # ...without the personal data in it
