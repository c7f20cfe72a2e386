"""Structured logging: one event per line, with the request id or job id, and no personal data.

All loggers (ours, gunicorn's, RQ's, SQLAlchemy's) go through structlog's processors, so
every line carries the same context and passes the same redaction. Context such as
``request_id`` and ``job_id`` lives in contextvars, bound by the web app and the worker.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from typing import Any, Literal

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

__all__ = [
    "REDACTED",
    "bind_context",
    "clear_context",
    "configure_logging",
    "get_logger",
    "redact_personal_data",
]

REDACTED = "[redacted]"

#: Keys whose values are personal data or secrets; dropped from every log event whatever
#: the caller passed. Log ids (user_id, course_id), never names, e-mails or tokens.
SENSITIVE_KEYS = frozenset(
    {
        "email",
        "name",
        "given_name",
        "family_name",
        "full_name",
        "phone",
        "picture",
        "password",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "authorization",
        "cookie",
        "client_secret",
        "private_key",
        "launch_token",
    }
)

# user:password@ in URLs, and bare e-mail addresses inside free text.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def _scrub_text(text: str) -> str:
    # Both patterns need an "@"; most values (ids, levels, timestamps) have none, and this
    # runs on every string of every log line.
    if "@" not in text:
        return text
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***:***@", text)
    return _EMAIL.sub(REDACTED, text)


def redact_personal_data(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Drop sensitive keys and scrub credentials and e-mail addresses from strings."""
    for key in list(event_dict):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = REDACTED
        else:
            value = event_dict[key]
            if isinstance(value, str):
                event_dict[key] = _scrub_text(value)
    return event_dict


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the call, not at configuration."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "INFO", fmt: Literal["json", "console"] = "json") -> None:
    """Route structlog and the stdlib root logger through one redacting renderer."""
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)

    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": _shared_processors(),
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_personal_data,
            renderer,
        ],
    }
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"structured": formatter},
            "handlers": {"stderr": {"()": StderrHandler, "formatter": "structured"}},
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {
                # RQ and gunicorn attach their own handlers; let ours be the only one.
                "rq": {"handlers": [], "propagate": True},
                "rq.worker": {"handlers": [], "propagate": True},
                "gunicorn.error": {"handlers": [], "propagate": True},
                "gunicorn.access": {"handlers": [], "propagate": True},
                "sqlalchemy.engine": {"level": "WARNING"},
                # Alembic narrates every context it opens (each readiness check);
                # `preceptor db upgrade` reports what it applied itself.
                "alembic.runtime.migration": {"level": "WARNING"},
            },
        }
    )
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger; pass ids as keyword arguments, never names or e-mails."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def bind_context(**values: Any) -> None:
    """Attach values (request_id, job_id, ...) to every log line of this request or job."""
    structlog.contextvars.bind_contextvars(**values)


def clear_context() -> None:
    """Forget the values bound for the request or job that just ended."""
    structlog.contextvars.clear_contextvars()
