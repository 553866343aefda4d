"""The Flask app: configuration, the engine, the guard, the blueprints in ``routes/``, and errors in one shape."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Flask, current_app, jsonify
from flask.json.provider import DefaultJSONProvider
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from matcher.cache import LRU
from matcher.config import Settings
from matcher.errors import RelaisError, storage_error
from matcher.service import Engine
from routes import docs, events, guard, kpis, matching, planner, planning, plans, records, system, widget

logger = logging.getLogger("relais.api")
ANSWERS_KEPT = 512

DEFAULTS: dict[str, Any] = {
    "DEV_MODE": False,  # True: no key needed, every caller is admin (local trials only; `serve --dev`)
    "RATE_LIMITS": guard.DEFAULT_RATE_LIMITS,  # a setting may name only the roles it changes
    "RATELIMIT_STORAGE_URI": "memory://",  # redis://host:6379 or memcached://… to share counters between workers
    "RATELIMIT_STRATEGY": "moving-window",  # exact; "fixed-window" or "sliding-window-counter" cost less per request
    "WORKERS": 1,  # processes serving (``matcher serve`` sets it): with memory://, each keeps 1/WORKERS of a limit
    "CACHE_MAX_AGE": 300,  # seconds a page or CDN may keep a GET /v1/match answer
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,  # the largest body of any route (imports); each route has its own
    "WARM_DETECTOR": True,
    # Proxies in front of Relais (a load balancer, a CDN) whose X-Forwarded-For to believe, counted from the
    # server: 0 believes none (a client could claim any address), 1 the last hop's, and so on. Limits per client
    # address (widget visitors, anonymous callers, failed keys) need it behind a proxy, or every visitor is the proxy.
    "TRUSTED_PROXIES": 0,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then ``RELAIS_*`` environment variables, then ``config`` (e.g. a test's dict)."""
    app = Flask(__name__, static_folder=None)
    app.json = FastJSON(app)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("RELAIS")
    app.config.update(config or {})
    if (hops := int(app.config["TRUSTED_PROXIES"])) > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # request.remote_addr: the client, as the proxies saw it
    engine = Engine(Settings.from_mapping(app.config))
    app.extensions["relais"] = engine
    app.extensions["relais.answers"] = LRU(ANSWERS_KEPT)  # rendered GET /v1/match answers, by ETag
    app.extensions["relais.queries"] = LRU(ANSWERS_KEPT)  # their query strings, parsed
    if app.config["WARM_DETECTOR"]:
        engine.detector  # fit now, so that no customer waits for it  # noqa: B018
    if app.config["DEV_MODE"]:
        logger.warning("DEV MODE: no API key is checked and every caller is admin. For local trials only.")
    for blueprint in (
        matching.bp,
        records.bp,
        events.bp,
        planning.bp,
        plans.bp,
        kpis.bp,
        system.bp,
        docs.bp,
        widget.bp,
        planner.bp,
    ):
        app.register_blueprint(blueprint)
    guard.install(app)
    app.register_error_handler(ValidationError, _invalid)
    app.register_error_handler(RelaisError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(sqlite3.DatabaseError, _store_unreadable)
    app.register_error_handler(OSError, _storage)
    app.register_error_handler(Exception, _unexpected)
    return app


class FastJSON(DefaultJSONProvider):
    """Flask's JSON, written by orjson: an answer of 20 results in a tenth of the time the standard library takes.
    UTF-8 as it is (no escapes), keys in the order given. What orjson refuses (keys that are not strings, as in
    validation errors that index a list; integers beyond 64 bits, which a record's free-form fields may hold)
    the standard library writes, with the same settings."""

    ensure_ascii = False
    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, default=self.default).decode()
        except TypeError:
            return super().dumps(obj, **kwargs)


# -- errors: one shape, {"error": {status, code, message, fields?}} --------------------------------


def error(status: int, code: str, message: str, fields: Any = None, headers: Mapping[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    return jsonify({"error": body}), status, dict(headers or {})


def _invalid(e: ValidationError) -> Any:
    return error(400, "invalid_request", "The request is invalid; see fields.", e.messages)


def _domain_error(e: RelaisError) -> Any:
    if e.status >= 500:
        logger.exception("engine error")
    return error(e.status, e.code, e.message, e.fields, e.headers)


def _http_error(e: HTTPException) -> Any:
    code = (e.name or "error").lower().replace(" ", "_")
    headers = {k: v for k, v in e.get_headers() if k.lower() in ("retry-after", "allow")}
    message = e.description or e.name
    return error(e.code or 500, code, message, headers=headers)


def _store_unreadable(e: sqlite3.DatabaseError) -> Any:
    """A damaged database file: a 503 that says so (and is logged), not a 500 that says nothing; a full or
    read-only disk: 507 or 503, naming it."""
    if (refused := storage_error(e, _data_dir())) is not None:
        return _domain_error(refused)
    logger.exception("the database cannot be read")
    message = "The database cannot be read: restore it from a backup, then run `python -m matcher check`."
    return error(503, "store_unreadable", message)


def _storage(e: OSError) -> Any:
    if (refused := storage_error(e, _data_dir())) is not None:
        return _domain_error(refused)
    return _unexpected(e)


def _data_dir() -> str:
    return str(current_app.extensions["relais"].settings.data_dir)


def _unexpected(e: Exception) -> Any:
    logger.exception("unexpected error")
    return error(500, "internal_error", "Something went wrong on our side; it has been logged.")
