"""Outcome events: what customers did with what a match showed them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from models.api_schemas import load_or_raise
from models.event_schemas import EventBatchSchema, EventsAcceptedSchema
from routes import ANYONE, KiB, engine, json_body, operation, reply

bp = Blueprint("events", __name__, url_prefix="/v1")
BATCH = EventBatchSchema()

EXAMPLE = {
    "events": [
        {
            "event_id": "5f1c2a9e-impression-1",
            "type": "impression",
            "request_id": "3b8e6f0c1d2a4e5f",
            "item_id": "cnt-nadia-home-staging-04",
            "rank": 1,
            "moment": "desirability",
        },
        {
            "event_id": "5f1c2a9e-click-1",
            "type": "click",
            "request_id": "3b8e6f0c1d2a4e5f",
            "item_id": "cnt-nadia-home-staging-04",
            "rank": 1,
            "moment": "desirability",
        },
    ]
}


@bp.post("/events")
@operation(
    roles=ANYONE,
    tag="events",
    body=EventBatchSchema,
    max_body=1024 * KiB,
    example=EXAMPLE,
    responses={200: (EventsAcceptedSchema, "Stored, each event once.")},
)
def post_events() -> Any:
    """Customer events: impressions, clicks, conversions and dismissals of what a match showed.

    Up to 1,000 events a batch, stored in one transaction (all or none). Each names the `request_id` of the match
    (its X-Request-ID header) and the item and slot (`rank`, 1 = first) it was shown in. Resending a batch is safe:
    an `event_id` already stored is ignored. What customers do is learned from within seconds, for the item at
    that moment only; a click on an item that request did not show is kept but not learned from. Widget keys send
    from the web pages their key was made for.
    """
    params = load_or_raise(BATCH, json_body())
    key = g.get("api_key")
    done = engine().record_events(
        params["events"], key_id=None if key is None else key.key_id, origin=request.headers.get("Origin")
    )
    return reply(EventsAcceptedSchema(), done)
