"""Matching: the best influencers and content for a moment; the moments; moment detection."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from matcher.render import detection_dict, match_dict
from models.api_schemas import (
    DetectionSchema,
    DetectRequestSchema,
    MatchRequestSchema,
    MatchResponseSchema,
    MomentListSchema,
    load_or_raise,
)
from routes import engine, json_body, reply

bp = Blueprint("matching", __name__, url_prefix="/v1")


@bp.post("/match")
def match() -> Any:
    """Best influencers and content for a moment (or a customer's words), an optional query and filters."""
    params = load_or_raise(MatchRequestSchema(), json_body())
    if params["moment"] is None:
        result = engine().match_text(params["text"], params["filters"], params["limit"], params["types"])
    else:
        query = params["text"] if params["text"] is not None else params["query"]
        result = engine().match(params["moment"], query, params["filters"], params["limit"], params["types"])
    return reply(MatchResponseSchema(), match_dict(result))


@bp.post("/moments/detect")
def detect() -> Any:
    """The moment of a customer's words, its probability and each moment's."""
    params = load_or_raise(DetectRequestSchema(), json_body())
    return reply(DetectionSchema(), detection_dict(engine().detect(params["text"]), params["language"]))


@bp.get("/moments")
def moments() -> Any:
    """The moments this deployment knows, as defined in its moments file."""
    out = [
        {"name": m.name, "label": m.label, "description": m.description,
         "examples": [{"text": e.text, "language": e.language} for e in m.examples],
         "formats": m.format_weights, "categories": m.category_weights, "topics": m.influencer_topics}
        for m in engine().moments.values()
    ]
    return reply(MomentListSchema(), {"moments": out})
