"""Outcome events: what a customer did with an item a match showed (the body of POST /v1/events, and each line of
``matcher events import``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

CUSTOMER_EVENTS = ("impression", "click", "conversion", "dismiss")
ITEM_KINDS = {"content": "content", "influencer": "influencers", "influencers": "influencers"}
MAX_EVENTS = 1000
FUTURE_SLACK_S = 86_400  # a client's clock may run ahead; a day ahead is a bug, not a clock
ID = validate.Regexp(r"^[A-Za-z0-9._:@/-]{1,100}$", error="1 to 100 letters, digits or . _ : @ / -")


class Timestamp(fields.Field):
    """An ISO 8601 date-time (UTC if no zone) or seconds since the epoch; loaded as seconds since the epoch."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool):
            raise ValidationError("Not a time: send ISO 8601 or seconds since the epoch.")
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and 0 < len(value) <= 40:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as e:
                raise ValidationError("Not an ISO 8601 date-time.") from e
            seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        else:
            raise ValidationError("Not a time: send ISO 8601 or seconds since the epoch.")
        if not math.isfinite(seconds) or seconds < 946_684_800:  # 2000-01-01
            raise ValidationError("Out of range: after 2000-01-01.")
        return seconds


class EventSchema(Schema):
    class Meta:
        unknown = RAISE

    event_id = fields.String(required=True, validate=ID, metadata={"description": "Yours: a repeat is ignored."})
    type = fields.String(required=True, validate=validate.OneOf(CUSTOMER_EVENTS))
    request_id = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,64}$"),
        metadata={"description": "The X-Request-ID of the match that showed the item."},
    )
    item_id = fields.String(required=True, validate=ID)
    item_kind = fields.String(load_default="content", validate=validate.OneOf(sorted(ITEM_KINDS)))
    rank = fields.Integer(load_default=None, validate=validate.Range(1, 100), metadata={"description": "1 = first."})
    moment = fields.String(load_default=None, validate=validate.Length(1, 100))
    at = Timestamp(load_default=None, metadata={"description": "When it happened; default: when received."})
    value = fields.Float(load_default=None, allow_nan=False, validate=validate.Range(0, 1e12))

    @validates_schema
    def _in_time(self, data: dict[str, Any], **kwargs: Any) -> None:
        at = data.get("at")
        if at is not None and at > datetime.now(UTC).timestamp() + FUTURE_SLACK_S:
            raise ValidationError({"at": ["More than a day in the future."]})

    @post_load
    def _kind(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["kind"] = ITEM_KINDS[data.pop("item_kind")]
        return data


class EventBatchSchema(Schema):
    class Meta:
        unknown = RAISE

    events = fields.List(fields.Nested(EventSchema), required=True, validate=validate.Length(1, MAX_EVENTS))


class EventsAcceptedSchema(Schema):
    accepted = fields.Integer(metadata={"description": "Events stored by this batch."})
    duplicates = fields.Integer(metadata={"description": "Events whose event_id was already stored: ignored."})
