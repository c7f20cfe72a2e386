"""Request plumbing shared by every page: request ids, security headers, error pages."""

from __future__ import annotations

import re
import uuid

from flask import Blueprint, Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from plugin.logs import bind_context, clear_context

__all__ = ["blueprint", "init_app"]

blueprint = Blueprint("web", __name__)

#: An incoming X-Request-ID is kept (so a proxy's id follows the request) only if it
#: looks like an id; anything else could inject text into logs.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

#: What each error means for the person and what they can do; shown inside the LMS frame.
ERROR_TEXT: dict[int, tuple[str, str]] = {
    400: (
        "This request could not be understood",
        "Go back to your course and open Preceptor again.",
    ),
    401: (
        "Please open Preceptor from your course",
        "Your session is missing or has expired. Launch Preceptor again from your course.",
    ),
    403: (
        "You don't have access to this page",
        "If you think you should, ask your program coordinator.",
    ),
    404: (
        "Page not found",
        "The link may be out of date. Go back to your course and open Preceptor again.",
    ),
    405: ("This action isn't available here", "Go back and try again from the page."),
    413: ("That upload is too large", "Try a smaller file."),
    429: ("Too many requests", "Wait a minute and try again."),
    500: (
        "Something went wrong on our side",
        "Please try again in a few minutes. If it keeps happening, "
        "tell your administrator the reference below.",
    ),
    503: ("Preceptor is temporarily unavailable", "Please try again in a few minutes."),
}


@blueprint.get("/")
def index() -> str:
    """The landing page: what this is and where people normally start."""
    from plugin import get_settings

    return render_template("index.html", dev_platform=get_settings().dev_platform_enabled)


def init_app(app: Flask) -> None:
    """Install request ids, security headers and error pages on ``app``."""
    settings = app.extensions["preceptor.settings"]
    csp = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"object-src 'none'; base-uri 'none'; frame-ancestors {settings.frame_ancestors}"
    )

    @app.before_request
    def _start_request() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        bind_context(request_id=g.request_id)

    @app.after_request
    def _finish_response(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        # Pages carry personal data; a shared computer's cache must not keep them.
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        if settings.is_production:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        # No X-Frame-Options: Preceptor lives inside the LMS's iframe (CSP governs framing).
        return response

    @app.teardown_request
    def _end_request(_exc: BaseException | None) -> None:
        clear_context()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response | str, int]:
        return _error_response(exc.code or 500)

    @app.errorhandler(InternalServerError)
    def _server_error(_exc: InternalServerError) -> tuple[Response | str, int]:
        # Flask has already logged the exception (through our redacting handler).
        return _error_response(500)


def _error_response(status: int) -> tuple[Response | str, int]:
    title, advice = ERROR_TEXT.get(status, ERROR_TEXT[500] if status >= 500 else ERROR_TEXT[400])
    request_id = g.get("request_id", "")
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=title, status=status, request_id=request_id), status
    return render_template(
        "error.html", status=status, title=title, advice=advice, request_id=request_id
    ), status
