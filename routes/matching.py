"""Matching: the best influencers and content for a moment; the moments; moment detection."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from matcher.ranking import LEARNED, Policy
from matcher.render import detection_dict, match_dict, public_match_dict
from models.api_schemas import (
    DetectionSchema,
    DetectRequestSchema,
    MatchQuerySchema,
    MatchRequestSchema,
    MatchResponseSchema,
    MomentListSchema,
    load_or_raise,
)
from routes import ANYONE, engine, json_body, operation, reply

bp = Blueprint("matching", __name__, url_prefix="/v1")
# Made once: a schema instance copies its fields when it is made, a cost every request would pay.
REQUEST, QUERY = MatchRequestSchema(), MatchQuerySchema()

MATCH_EXAMPLE = {
    "moment": "technical_validation",
    "query": "compatibilité des capteurs avec la box",
    "limit": 3,
    "filters": {"language": "fr"},
}


@bp.post("/match")
@operation(
    roles=ANYONE,
    tag="matching",
    body=MatchRequestSchema,
    example=MATCH_EXAMPLE,
    responses={200: (MatchResponseSchema, "Ranked influencers and content, each score with its parts.")},
)
def match() -> Any:
    """Best influencers and content for a moment (or a customer's words), an optional query and filters.

    Planners send a moment and a brief; chatbots send `text` (the customer's words) and may leave the moment
    out: it is then detected, and `detection` says how sure that is. Widgets should prefer GET /v1/match,
    which can be cached.

    A **widget key** gets the public projection (`projection: "public"`): content with id, title, excerpt, url,
    format, language, network, published_at, thumbnail, its author's id and name, rank and propensity;
    influencers with id, name, rank, propensity and their pieces' id, title, format and url. No bio, handles,
    audience, engagement, sentiment, topics, products, scores or score parts: those stay with planner keys.
    """
    params = load_or_raise(REQUEST, json_body())
    # match_dict builds MatchResponseSchema's shape itself (tests/test_contract.py: dumping it through the schema
    # changes nothing): a dump would cost a third of the request.
    return jsonify(_body(_run(params))), 200, {"Cache-Control": "no-store"}


@bp.get("/match")
@operation(
    roles=ANYONE,
    tag="matching",
    query=MatchQuerySchema,
    example={"moment": "discovery", "types": "content", "products": "homelive", "limit": 3},
    responses={
        200: (MatchResponseSchema, "As POST /v1/match; with ETag and Cache-Control."),
        304: (None, "Not modified: the answer is the one your cache holds (If-None-Match)."),
    },
)
def match_cached() -> Any:
    """The same match in a query string, for web pages: cacheable (ETag, Cache-Control).

    The answer changes only when the data, the configuration, what customers taught it (at most every few
    seconds), the planners' activations or the day change; the ETag says which, and a request with
    If-None-Match gets 304 without any work done. With `explore=true` it is not cacheable. A widget key gets
    the public projection described under POST /v1/match.
    """
    parsed = current_app.extensions["relais.queries"]
    found = parsed.get(request.query_string)
    if found is None:  # a page's query string repeats with every view: parsed once
        args = QUERY.load(request.args.to_dict())
        params = load_or_raise(REQUEST, QUERY.to_request(args))
        found = params, json.dumps(params, sort_keys=True, default=str)
        parsed.put(request.query_string, found)
    params, canonical = found
    if params["explore"]:  # a new draw each time: nothing to cache
        return jsonify(_body(_run(params))), 200, {"Cache-Control": "no-store"}
    etag = hashlib.sha256(f"{engine().state_tag()} {canonical} {_public()}".encode()).hexdigest()[:32]
    headers = {
        "Cache-Control": f"public, max-age={current_app.config['CACHE_MAX_AGE']}",
        "ETag": f'"{etag}"',
        "Vary": "Origin, Authorization, X-API-Key",
    }
    cache = current_app.extensions["relais.answers"]
    if etag in request.if_none_match:  # the page shows what it holds: noted under this request's id too
        held = cache.get(etag)
        if held is not None:
            engine().note_served(g.request_id, held[1], _caller(), "learned", held[2])
        return "", 304, headers
    answer = cache.get(etag)
    if answer is None:  # the same page view, or another page of the same moment: rendered once per state
        result = _run(params)
        answer = current_app.json.dumps(_body(result)), result.moment.name, result.shown()  # the schema's shape
        cache.put(etag, answer)
    else:  # this request showed them too: its events will name its own request id
        engine().note_served(g.request_id, answer[1], _caller(), "learned", answer[2])
    return current_app.response_class(answer[0], mimetype="application/json"), 200, headers


@bp.post("/moments/detect")
@operation(
    roles=ANYONE,
    tag="moments",
    body=DetectRequestSchema,
    example={"text": "est-ce que ça marche avec ma freebox ?", "language": "fr"},
    responses={200: (DetectionSchema, "The likeliest moment, its probability and each moment's.")},
)
def detect() -> Any:
    """The moment of a customer's words, its probability and each moment's.

    Below the moments file's threshold (0.6 by default), `low_confidence` is true and `message` names the
    runner-up: ask the customer, or send a moment.
    """
    params = load_or_raise(DetectRequestSchema(), json_body())
    return reply(DetectionSchema(), detection_dict(engine().detect(params["text"]), params["language"]))


@bp.get("/moments")
@operation(roles=ANYONE, tag="moments", responses={200: (MomentListSchema, "The moments and what carries them.")})
def moments() -> Any:
    """The moments this deployment knows, as defined in its moments file."""
    out = [
        {
            "name": m.name,
            "label": m.label,
            "description": m.description,
            "examples": [{"text": e.text, "language": e.language} for e in m.examples],
            "formats": m.format_weights,
            "categories": m.category_weights,
            "topics": m.influencer_topics,
        }
        for m in engine().moments.values()
    ]
    return reply(MomentListSchema(), {"moments": out})


def _run(params: dict[str, Any]) -> Any:
    serving = {
        "policy": Policy(explore=True) if params["explore"] else LEARNED,
        "request_id": g.request_id,
        "caller": _caller(),
    }
    if params["moment"] is None:
        return engine().match_text(params["text"], params["filters"], params["limit"], params["types"], **serving)
    query = params["text"] if params["text"] is not None else params["query"]
    return engine().match(params["moment"], query, params["filters"], params["limit"], params["types"], **serving)


def _public() -> bool:
    """Whether the caller gets the public projection: a widget key's answers are shown on public pages."""
    key = g.get("api_key")
    return key is not None and key.role == "widget"


def _body(result: Any) -> dict[str, Any]:
    full = match_dict(result)
    return public_match_dict(full) if _public() else full


def _caller() -> str | None:
    key = g.get("api_key")
    return None if key is None else key.key_id
