"""The HTTP routes, one blueprint per resource, and the helpers they share. Routes parse, call the engine,
render: no ranking, storage or index logic here."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, jsonify, request
from marshmallow import Schema

from matcher.errors import MalformedJSONError
from matcher.service import Engine


def engine() -> Engine:
    return current_app.extensions["relais"]


def reply(schema: Schema, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return jsonify(schema.dump(body)), status, headers or {}


def json_body() -> Any:
    """The request's JSON, whatever its content type (``curl -d`` sends form encoding)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise MalformedJSONError("The request body is empty: send a JSON object.")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise MalformedJSONError(f"The request body is not valid JSON: {e}") from e
