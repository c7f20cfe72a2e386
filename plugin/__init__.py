"""Preceptor: the Flask app. Nothing happens at import; call :func:`create_app`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from plugin.config import Settings, load_settings

__all__ = ["create_app"]

SETTINGS_KEY = "preceptor.settings"


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Build the web app from the environment, overridden by ``config`` (setting names as keys).

    Raises ``plugin.config.ConfigError`` with a one-line message for a bad setting.
    """
    from werkzeug.middleware.proxy_fix import ProxyFix

    from plugin import ops, web
    from plugin.crypto import Encryptor
    from plugin.db import Database
    from plugin.followups import preference_views
    from plugin.followups import views as followup_views
    from plugin.insights import dashboard_views, feedback_views, queue_views
    from plugin.logs import configure_logging
    from plugin.lti import deep_link_views as lti_deep_link_views
    from plugin.lti import views as lti_views
    from plugin.meetings import connect_views, slot_views
    from plugin.meetings import views as meeting_views
    from plugin.programs import (
        coordinator_views,
        goal_views,
        invitation_views,
        mentoring_views,
        participant_views,
    )
    from plugin.programs import views as program_views

    settings = config if isinstance(config, Settings) else load_settings(config)
    configure_logging(settings.log_level, settings.resolved_log_format)

    app = Flask(__name__, instance_path=str(settings.instance_path))
    assert settings.secret_key is not None  # load_settings fills or requires it
    app.config.update(
        SECRET_KEY=settings.secret_key.get_secret_value(),
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
        PREFERRED_URL_SCHEME="https" if settings.is_production else "http",
        TESTING=settings.env == "test",
    )
    app.extensions[SETTINGS_KEY] = settings
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )

    assert settings.database_url is not None
    Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        connect_timeout=settings.db_connect_timeout,
    ).init_app(app)

    Encryptor(settings.fernet_keys()).init_app(app)
    web.init_app(app)
    app.register_blueprint(ops.blueprint)
    app.register_blueprint(web.blueprint)
    app.register_blueprint(lti_views.blueprint)
    app.register_blueprint(lti_deep_link_views.blueprint)
    app.register_blueprint(program_views.blueprint)
    app.register_blueprint(participant_views.blueprint)
    app.register_blueprint(mentoring_views.blueprint)
    app.register_blueprint(goal_views.blueprint)
    app.register_blueprint(coordinator_views.blueprint)
    app.register_blueprint(dashboard_views.blueprint)
    app.register_blueprint(invitation_views.blueprint)
    app.register_blueprint(meeting_views.blueprint)
    app.register_blueprint(slot_views.blueprint)
    app.register_blueprint(followup_views.blueprint)
    app.register_blueprint(preference_views.blueprint)
    app.register_blueprint(feedback_views.blueprint)
    app.register_blueprint(queue_views.blueprint)
    if settings.env == "development":
        app.register_blueprint(followup_views.dev_blueprint)
    app.register_blueprint(connect_views.blueprint)
    from plugin.calendars.bridge import install_calendar_providers

    install_calendar_providers(app)  # the meetings sync reaches Google, Outlook, CalDAV
    if settings.dev_platform_enabled:
        from plugin.devplatform import services as devplatform_services
        from plugin.devplatform import views as devplatform_views

        app.register_blueprint(devplatform_views.blueprint)
        app.register_blueprint(devplatform_services.blueprint)
    return app


def get_settings(app: Flask | None = None) -> Settings:
    """The settings the app was built with."""
    from flask import current_app

    settings: Settings = (app or current_app).extensions[SETTINGS_KEY]
    return settings
