"""The ``preceptor`` command: database, checks, keys and the development launcher.

Errors an operator can fix (a bad setting, an unreachable database) print one line that
says what to do and exit with status 2; they never print a traceback.
"""

from __future__ import annotations

import sys
from typing import NoReturn, TextIO

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from plugin import create_app, get_settings
from plugin.config import ConfigError
from plugin.db import get_db

__all__ = ["cli", "main"]

#: Exit status for configuration and connectivity errors (click also uses 2 for usage errors:
#: both mean "fix how it was started").
EXIT_CONFIG = 2


class OperatorError(click.ClickException):
    """A problem the operator can fix; printed as one line."""

    exit_code = EXIT_CONFIG

    def show(self, file: object = None) -> None:
        click.echo(f"preceptor: {self.message}", err=True)


def _make_app() -> Flask:
    return create_app()


cli = FlaskGroup(
    name="preceptor",
    create_app=_make_app,
    load_dotenv=False,
    set_debug_flag=False,
    help="Preceptor: mentorship programs inside Canvas and Moodle.",
)


def describe_database_error(url: str, exc: Exception) -> str:
    """One line for a database that could not be used, without its password."""
    safe = make_url(url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", exc) or type(exc).__name__).strip().splitlines()[0]
    return f"database {safe} is unreachable: {reason}"


# --- db -----------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations (the release step and `make run` call this)."""
    from plugin.migrate import current_heads, upgrade

    database = get_db()
    try:
        with database.engine.connect() as connection:
            before = current_heads(connection)
        upgrade(database.engine, revision)
        with database.engine.connect() as connection:
            after = current_heads(connection)
    except OperationalError as exc:
        raise OperatorError(describe_database_error(database.url, exc)) from None
    was = ", ".join(sorted(before)) or "empty"
    now = ", ".join(sorted(after)) or "empty"
    click.echo(f"database at {now}" + (f" (was {was})" if before != after else " (no change)"))


@db.command("current")
@with_appcontext
def db_current() -> None:
    """Show the revision the database is at and whether it is the newest."""
    from plugin.migrate import current_heads, script_heads

    database = get_db()
    try:
        with database.engine.connect() as connection:
            current = current_heads(connection)
    except OperationalError as exc:
        raise OperatorError(describe_database_error(database.url, exc)) from None
    expected = script_heads()
    state = (
        "up to date" if current == expected else f"behind (head is {', '.join(sorted(expected))})"
    )
    click.echo(f"{', '.join(sorted(current)) or 'empty'}: {state}")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does.")
@with_appcontext
def db_revision(message: str) -> None:
    """Write a new migration from the models (for developers; review it before committing)."""
    from alembic import command

    from plugin.migrate import alembic_config

    command.revision(alembic_config(get_db().url), message=message, autogenerate=True)


# --- check --------------------------------------------------------------------------------


@cli.command("check")
@with_appcontext
def check() -> None:
    """Verify settings, database and Redis; one line and exit 2 on the first problem."""
    from plugin.jobs import get_redis
    from plugin.migrate import current_heads, script_heads

    settings = get_settings()
    database = get_db()
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            at_head = current_heads(connection) == script_heads()
    except DBAPIError as exc:
        raise OperatorError(describe_database_error(database.url, exc)) from None
    if settings.redis_url is None:
        raise OperatorError(
            "PRECEPTOR_REDIS_URL is not set: the web app and workers need Redis "
            "(`make run` starts an embedded one)"
        )
    try:
        get_redis().ping()
    except RedisError as exc:
        raise OperatorError(
            f"Redis at {_safe_redis_url(settings.redis_url)} is unreachable: {exc}"
        ) from None
    migrations = (
        "migrations at head" if at_head else "migrations behind: run `preceptor db upgrade`"
    )
    click.echo(f"ok: {database.dialect_name} database reachable ({migrations}); Redis reachable")


def _safe_redis_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


# --- keys ---------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """The tool's signing keys."""


@keys.command("dev")
@with_appcontext
def keys_dev() -> None:
    """Create the development key pair if it does not exist, and print its kid."""
    from lti_config.keys import ensure_dev_keypair

    settings = get_settings()
    if settings.is_production:
        raise OperatorError("development keys are not for production")
    key, created = ensure_dev_keypair(settings.instance_path / "keys", settings.fernet_keys()[0])
    click.echo(f"{'created' if created else 'kept'} development key {key.kid} at {key.path}")


@keys.command("rotate")
@click.option(
    "--overlap-hours",
    default=72,
    show_default=True,
    type=click.IntRange(1, 24 * 30),
    help="How long the old key stays published beside the new one.",
)
@with_appcontext
def keys_rotate(overlap_hours: int) -> None:
    """Start signing with a new key; the old one stays in the JWKS for the overlap."""
    from datetime import timedelta

    from plugin.lti.tool_keys import rotate_signing_key

    with get_db().session_scope() as session:
        row = rotate_signing_key(session, timedelta(hours=overlap_hours))
        kid = row.kid
    click.echo(f"now signing with {kid}; previous keys stay published for {overlap_hours} h")


@keys.command("list")
@with_appcontext
def keys_list() -> None:
    """The tool's keys: which signs, which are being retired."""
    from sqlalchemy import select

    from plugin.models import ToolKey

    with get_db().session_scope() as session:
        rows = list(session.scalars(select(ToolKey).order_by(ToolKey.id.desc())))
        if not rows:
            click.echo("no keys yet; one is made on first use (or run `preceptor keys rotate`)")
        for index, row in enumerate(rows):
            if row.retire_at is None:
                status = "signing" if index == 0 else "published"
            else:
                status = f"published until {row.retire_at.isoformat(timespec='minutes')}"
            created = row.created_at.isoformat(timespec="minutes")
            click.echo(f"{row.kid}\t{status}\tcreated {created}")


# --- secrets ------------------------------------------------------------------------------


@cli.group()
def secrets() -> None:
    """Generate values for the secret settings (print only; nothing is stored)."""


@secrets.command("new-key")
def secrets_new_key() -> None:
    """A value for PRECEPTOR_SECRET_KEY."""
    import secrets as random_secrets

    click.echo(random_secrets.token_urlsafe(48))


@secrets.command("new-fernet-key")
def secrets_new_fernet_key() -> None:
    """A value for PRECEPTOR_ENCRYPTION_KEY (put it first to rotate; keep old keys after it)."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


# --- up -----------------------------------------------------------------------------------


@cli.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option(
    "--port",
    default=5000,
    show_default=True,
    envvar="PORT",
    type=int,
    help="Port to serve on (or set PORT).",
)
@with_appcontext
def up(host: str, port: int) -> None:
    """Migrate, make dev keys, start Redis if needed, and run web + worker + cron."""
    from plugin.devserver import DevServerError, run_stack

    try:
        sys.exit(run_stack(host=host, port=port))
    except DevServerError as exc:
        raise OperatorError(str(exc)) from None


def _fail(message: str) -> NoReturn:
    click.echo(f"preceptor: {message}", err=True)
    sys.exit(EXIT_CONFIG)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="preceptor")
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")


# --- platform -----------------------------------------------------------------------------


@cli.group()
def platform() -> None:
    """LMS registrations (Canvas, Moodle): add, list, show, remove."""


@platform.command("add")
@click.option("--issuer", required=True, help="The platform's issuer (iss), exactly.")
@click.option("--client-id", required=True, help="The client id the platform gave the tool.")
@click.option("--auth-url", required=True, help="OIDC authorization endpoint.")
@click.option("--token-url", required=True, help="OAuth 2 token endpoint (for services).")
@click.option("--keyset-url", required=True, help="The platform's JWKS URL.")
@click.option(
    "--deployment",
    "deployments",
    multiple=True,
    required=True,
    help="A deployment id; repeat for several.",
)
@click.option("--name", default="", help="A label for admins, e.g. 'Canvas production'.")
@with_appcontext
def platform_add(
    issuer: str,
    client_id: str,
    auth_url: str,
    token_url: str,
    keyset_url: str,
    deployments: tuple[str, ...],
    name: str,
) -> None:
    """Register a platform and its deployments."""
    from plugin.lti.errors import RegistrationError
    from plugin.lti.registrations import PlatformInput, add_platform

    data = PlatformInput(
        issuer=issuer,
        client_id=client_id,
        auth_login_url=auth_url,
        auth_token_url=token_url,
        key_set_url=keyset_url,
        deployment_ids=deployments,
        name=name,
    )
    try:
        with get_db().session_scope() as session:
            registered = add_platform(
                session, data, allow_http_loopback=not get_settings().is_production
            )
            number = registered.id
    except RegistrationError as exc:
        raise OperatorError(str(exc)) from None
    click.echo(
        f"registered platform {number}: {issuer} (client id {client_id}, "
        f"{len(deployments)} deployment{'s' if len(deployments) != 1 else ''})"
    )


@platform.command("invite")
@click.option("--note", default="", help="Who the link is for (kept inside the link).")
@with_appcontext
def platform_invite(note: str) -> None:
    """Print a one-time Dynamic Registration URL for an LMS admin (valid 24 hours)."""
    from flask import current_app

    from plugin.lti.dynamic_registration import issue_invite

    base = get_settings().base_url
    if base is None:
        if get_settings().is_production:
            raise OperatorError("set PRECEPTOR_BASE_URL: the link must carry the public address")
        base = "http://127.0.0.1:5000"
    token = issue_invite(current_app.config["SECRET_KEY"], note)
    click.echo(f"{base}/lti/register/{token}")


@platform.command("list")
@with_appcontext
def platform_list() -> None:
    """Every registration."""
    from plugin.lti.registrations import list_platforms

    with get_db().session_scope() as session:
        platforms = list_platforms(session)
        if not platforms:
            click.echo("no platforms registered; add one with `preceptor platform add`")
            return
        for item in platforms:
            label = f" ({item.name})" if item.name else ""
            click.echo(
                f"{item.id}\t{item.issuer}\tclient id {item.client_id}\t"
                f"{len(item.deployments)} deployment(s){label}"
            )


@platform.command("show")
@click.argument("ref")
@with_appcontext
def platform_show(ref: str) -> None:
    """One registration, by number or issuer."""
    from plugin.lti.errors import RegistrationError
    from plugin.lti.registrations import find_platform

    with get_db().session_scope() as session:
        try:
            item = find_platform(session, ref)
        except RegistrationError as exc:
            raise OperatorError(str(exc)) from None
        rows = [
            ("platform", str(item.id)),
            ("name", item.name),
            ("issuer", item.issuer),
            ("client id", item.client_id),
            ("auth login URL", item.auth_login_url),
            ("auth token URL", item.auth_token_url),
            ("keyset URL", item.key_set_url),
            ("deployments", ", ".join(d.deployment_id for d in item.deployments)),
            ("registered", item.created_at.isoformat(timespec="seconds")),
        ]
        for label, value in rows:
            click.echo(f"{label:>15}: {value}")


@platform.command("remove")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def platform_remove(ref: str, yes: bool) -> None:
    """Delete a registration with its deployments, courses and everything in them."""
    from plugin.lti.errors import RegistrationError
    from plugin.lti.registrations import find_platform, remove_platform

    with get_db().session_scope() as session:
        try:
            item = find_platform(session, ref)
        except RegistrationError as exc:
            raise OperatorError(str(exc)) from None
        if not yes:
            click.confirm(
                f"Remove platform {item.id} ({item.issuer}) and all its courses' data?", abort=True
            )
        remove_platform(session, item)
    click.echo(f"removed platform {ref}")


@cli.group()
def calendars() -> None:
    """Calendar options for the whole institution."""


@calendars.group("institution")
def calendars_institution() -> None:
    """Institution calendars: a Google service account or Microsoft app-only, per domain."""


@calendars_institution.command("add")
@click.option("--platform", "platform_ref", required=True, help="Platform number or issuer.")
@click.option(
    "--provider", type=click.Choice(["google", "microsoft"]), required=True, help="Service."
)
@click.option("--domain", required=True, help="E-mail domain it covers, e.g. med.example.edu.")
@click.option(
    "--key-file",
    type=click.File("r"),
    default=None,
    help="Google only: the service account's JSON key (stored encrypted).",
)
@with_appcontext
def institution_add(platform_ref: str, provider: str, domain: str, key_file: TextIO | None) -> None:
    """Write meetings to everyone's calendar in DOMAIN without a sign-in each."""
    from plugin.lti.errors import RegistrationError
    from plugin.lti.registrations import find_platform
    from plugin.meetings.institution import (
        InstitutionCalendarError,
        add_institution_calendar,
        parse_service_account,
    )

    try:
        key = parse_service_account(key_file.read()) if key_file is not None else None
        with get_db().session_scope() as session:
            item = find_platform(session, platform_ref)
            institution, connected = add_institution_calendar(
                session, platform=item, provider=provider, domain=domain, service_account=key
            )
            number, covered = institution.id, institution.domain
    except (RegistrationError, InstitutionCalendarError) as exc:
        raise OperatorError(str(exc)) from None
    click.echo(
        f"institution calendar {number}: {provider} for {covered}; "
        f"{connected} participant{'s' if connected != 1 else ''} connected now"
    )


@calendars_institution.command("list")
@with_appcontext
def institution_list() -> None:
    """Configured institution calendars (never their keys)."""
    from plugin.meetings.institution import list_institution_calendars

    with get_db().session_scope() as session:
        rows = list_institution_calendars(session)
    if not rows:
        click.echo("no institution calendars")
        return
    for row in rows:
        click.echo(
            f"{row.id:>4}  platform {row.platform_id:<4} {row.provider:<10} {row.domain:<30} "
            f"{row.connections} connected"
        )


@calendars_institution.command("remove")
@click.argument("number", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def institution_remove(number: int, yes: bool) -> None:
    """Stop writing through it; its people get e-mail invitations until they connect."""
    from plugin.meetings.institution import remove_institution_calendar
    from plugin.models import InstitutionCalendar

    with get_db().session_scope() as session:
        institution = session.get(InstitutionCalendar, number)
        if institution is None:
            raise OperatorError(
                f"no institution calendar {number}; see `calendars institution list`"
            )
        if not yes:
            click.confirm(f"Remove the institution calendar for {institution.domain}?", abort=True)
        revoked = remove_institution_calendar(session, institution)
    click.echo(f"removed institution calendar {number}; {revoked} connections revoked")
