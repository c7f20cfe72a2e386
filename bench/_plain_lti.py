"""The baseline of ``bench.launch``: a plain pylti1p3 launch, as the library recommends it.

The library's own flow through its Flask adapter and nothing else: ``FlaskMessageLaunch``
with a ``ToolConfDict`` registration, launch data in Redis through Flask-Caching
(``FlaskCacheDataStorage``, what the library documents for more than one process), and
public-key caching turned on (``set_public_key_caching``) in the same storage. A launch
runs pylti1p3's ``validate()`` (state, JWT format, nonce, registration, signature,
deployment, message) and ``save_launch_data()``, then renders a small page with the launch
id, as the library's example app does. No extra checks.

Configured from BENCH_PLAIN_* environment variables by ``bench.launch``, which starts it
under gunicorn as ``bench._plain_lti:create_app()``.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Final

from flask import Flask, render_template_string
from flask_caching import Cache
from pylti1p3.contrib.flask.launch_data_storage.cache import FlaskCacheDataStorage
from pylti1p3.contrib.flask.message_launch import FlaskMessageLaunch
from pylti1p3.contrib.flask.request import FlaskRequest
from pylti1p3.tool_config.dict import ToolConfDict

__all__ = ["PAGE_MARKER", "create_app", "seed_keyset", "seed_nonces", "tool_conf"]

#: Every successful launch page contains this; the load generator checks for it.
PAGE_MARKER: Final = "launch-id:"
#: How long the library keeps a cached keyset (its documented example value).
KEYSET_CACHE_LIFETIME: Final = 7200

PAGE = "<!doctype html><title>Launched</title><p>{{ marker }}{{ launch_id }}</p>"


def tool_conf(config: dict[str, Any]) -> ToolConfDict:
    """The library's dict registration: one issuer, one client id, its deployments."""
    conf = ToolConfDict(
        {
            config["issuer"]: [
                {
                    "default": True,
                    "client_id": config["client_id"],
                    "auth_login_url": config["auth_login_url"],
                    "auth_token_url": config["auth_token_url"],
                    "key_set_url": config["key_set_url"],
                    "key_set": None,
                    "deployment_ids": [config["deployment_id"]],
                }
            ]
        }
    )
    conf.set_private_key(config["issuer"], config["tool_private_key"], config["client_id"])
    return conf


def _cache(app: Flask, redis_url: str) -> Cache:
    return Cache(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_url})


def create_app() -> Flask:
    """The baseline tool: POST /launch is pylti1p3's launch, GET / says it is up."""
    config = json.loads(os.environ["BENCH_PLAIN_CONFIG"])
    app = Flask(__name__)
    cache = _cache(app, config["redis_url"])
    conf = tool_conf(config)

    @app.get("/")
    def up() -> str:
        return "ok"

    @app.post("/launch")
    def launch() -> str:
        storage = FlaskCacheDataStorage(cache)  # type: ignore[no-untyped-call]
        message_launch = FlaskMessageLaunch(  # type: ignore[no-untyped-call]
            FlaskRequest(),  # type: ignore[no-untyped-call]
            conf,
            launch_data_storage=storage,
        )
        message_launch.set_public_key_caching(storage, cache_lifetime=KEYSET_CACHE_LIFETIME)
        message_launch.get_launch_data()  # validates, then saves the launch in Redis
        return render_template_string(
            PAGE, marker=PAGE_MARKER, launch_id=message_launch.get_launch_id()
        )

    return app


def _storage(redis_url: str) -> tuple[Flask, FlaskCacheDataStorage]:
    app = Flask(__name__)
    return app, FlaskCacheDataStorage(_cache(app, redis_url))  # type: ignore[no-untyped-call]


def seed_nonces(redis_url: str, nonces: list[str]) -> None:
    """What pylti1p3's OIDC login stores for each launch: its nonce (the state is a cookie)."""
    app, storage = _storage(redis_url)
    with app.app_context():
        for nonce in nonces:
            # SessionService.save_nonce: key "lti1p3-nonce-<nonce>", value True, 24 h.
            storage.set_value(f"lti1p3-nonce-{nonce}", True, 86400)


def seed_keyset(redis_url: str, key_set_url: str, keyset: dict[str, Any]) -> None:
    """The platform keyset, where the library's public-key cache looks for it."""
    app, storage = _storage(redis_url)
    digest = hashlib.md5(key_set_url.encode()).hexdigest()  # noqa: S324 - the library's key
    with app.app_context():
        storage.set_value(f"key-set-url-{digest}", keyset, KEYSET_CACHE_LIFETIME)
