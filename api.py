"""The Flask app: configuration, the engine, the blueprints in ``routes/``, and errors in one shape."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from matcher.config import Settings
from matcher.errors import RelaisError
from matcher.service import Engine
from routes import matching, records, system

logger = logging.getLogger("relais.api")

DEFAULTS = {
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,  # an import of ~40k records; a request above gets 413
    "WARM_DETECTOR": True,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then ``RELAIS_*`` environment variables, then ``config`` (e.g. a test's dict)."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("RELAIS")
    app.config.update(config or {})
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    engine = Engine(Settings.from_mapping(app.config))
    app.extensions["relais"] = engine
    if app.config["WARM_DETECTOR"]:
        engine.detector  # fit now, so that no customer waits for it  # noqa: B018
    for blueprint in (matching.bp, records.bp, system.bp):
        app.register_blueprint(blueprint)
    app.register_error_handler(ValidationError, _invalid)
    app.register_error_handler(RelaisError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


# -- errors: one shape, {"error": {status, code, message, fields?}} --------------------------------


def error(status: int, code: str, message: str, fields: Any = None) -> Any:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    return jsonify({"error": body}), status


def _invalid(e: ValidationError) -> Any:
    return error(400, "invalid_request", "The request is invalid; see fields.", e.messages)


def _domain_error(e: RelaisError) -> Any:
    if e.status >= 500:
        logger.exception("engine error")
    return error(e.status, e.code, e.message, e.fields)


def _http_error(e: HTTPException) -> Any:
    code = (e.name or "error").lower().replace(" ", "_")
    return error(e.code or 500, code, e.description or e.name)


def _unexpected(e: Exception) -> Any:
    logger.exception("unexpected error")
    return error(500, "internal_error", "Something went wrong on our side; it has been logged.")
