"""The Flask app: parse the request, call the engine, render the answer. No ranking, storage or index logic here."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import HTTPException

from matcher.config import Settings
from matcher.errors import MalformedJSONError, RelaisError
from matcher.render import content_record, detection_dict, influencer_record, match_dict
from matcher.service import Engine
from models.api_schemas import (
    DetectionSchema,
    DetectRequestSchema,
    HealthSchema,
    MatchRequestSchema,
    MatchResponseSchema,
    MomentListSchema,
    load_or_raise,
)

logger = logging.getLogger("relais.api")
v1 = Blueprint("v1", __name__, url_prefix="/v1")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then ``RELAIS_*`` environment variables, then ``config`` (e.g. a test's dict)."""
    app = Flask(__name__)
    app.config.from_prefixed_env("RELAIS")
    app.config.update(config or {})
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["relais"] = Engine(Settings.from_mapping(app.config))
    if app.config.get("WARM_DETECTOR", True):
        app.extensions["relais"].detector  # fit now, so that no customer waits for it  # noqa: B018
    app.register_blueprint(v1)
    app.add_url_rule("/health", view_func=health)
    app.register_error_handler(ValidationError, _invalid)
    app.register_error_handler(RelaisError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def engine() -> Engine:
    return current_app.extensions["relais"]


def reply(schema: Schema, body: Any, status: int = 200) -> Any:
    return jsonify(schema.dump(body)), status


@v1.post("/match")
def match() -> Any:
    """Best influencers and content for a moment, an optional query and filters."""
    params = load_or_raise(MatchRequestSchema(), json_body())
    if params["moment"] is None:
        result = engine().match_text(params["text"], params["filters"], params["limit"], params["types"])
    else:
        query = params["text"] if params["text"] is not None else params["query"]
        result = engine().match(params["moment"], query, params["filters"], params["limit"], params["types"])
    return reply(MatchResponseSchema(), match_dict(result))


@v1.post("/moments/detect")
def detect() -> Any:
    """The moment of a customer's words, its probability and each moment's."""
    params = load_or_raise(DetectRequestSchema(), json_body())
    return reply(DetectionSchema(), detection_dict(engine().detect(params["text"]), params["language"]))


@v1.get("/moments")
def moments() -> Any:
    """The moments this deployment knows, as defined in its moments file."""
    out = [
        {"name": m.name, "label": m.label, "description": m.description,
         "examples": [{"text": e.text, "language": e.language} for e in m.examples],
         "formats": m.format_weights, "categories": m.category_weights, "topics": m.influencer_topics}
        for m in engine().moments.values()
    ]
    return reply(MomentListSchema(), {"moments": out})


@v1.get("/influencers/<path:influencer_id>")
def get_influencer(influencer_id: str) -> Any:
    """One influencer as in the data contract, with their audience and content count."""
    return jsonify(influencer_record(engine().influencer(influencer_id)))


@v1.get("/content/<path:content_id>")
def get_content(content_id: str) -> Any:
    """One piece of content as in the data contract, with its network and author."""
    return jsonify(content_record(engine().content(content_id)))


def health() -> Any:
    """Liveness, and what is loaded: model, record and index counts."""
    return reply(HealthSchema(), engine().health())


def json_body() -> Any:
    """The request's JSON, whatever its content type (``curl -d`` sends form encoding)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise MalformedJSONError("The request body is empty: send a JSON object.")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise MalformedJSONError(f"The request body is not valid JSON: {e}") from e


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
