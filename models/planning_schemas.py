"""Request and response bodies of the planning routes: campaigns, activations and contact holds.

These schemas check the shape of a body (types, lengths, dates); what the words mean (the activation types and
statuses, the moments, which records exist, the status lifecycle) is checked by ``matcher.activations``.
"""

from __future__ import annotations

import logging
from datetime import UTC, date
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

logger = logging.getLogger(__name__)

ID = validate.Regexp(r"^[A-Za-z0-9._:-]{1,100}$", error="1 to 100 letters, digits or . _ : - characters.")
RECORD_ID = validate.Length(min=1, max=200)  # influencers' and content's ids, as the data contract has them
MAX_LIST = 200
MAX_TEXT = 10_000
MAX_LIMIT = 100
EARLIEST, LATEST = date(1970, 1, 1), date(2100, 12, 31)
TYPES_TEXT = "event, interview, visit, product_test, press or sponsored_post"  # tests check it against the engine's
STATUSES_TEXT = "proposed, sent, accepted, declined or published"


def _in_range(day: date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise ValidationError(f"Must be between {EARLIEST} and {LATEST}.")


class Day(fields.Date):
    """An ISO date (2027-03-01), loaded as its ISO string: what the store keeps and what answers show."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        day = super()._deserialize(value, attr, data, **kwargs)
        _in_range(day)
        return day.isoformat()


class Instant(fields.DateTime):
    """An ISO datetime, loaded as an ISO string in UTC to the second, as ``matcher.store.now_iso`` writes them: the
    strings then sort as the times do. Without an offset it is taken as UTC."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        instant = super()._deserialize(value, attr, data, **kwargs)
        if instant.tzinfo is None:
            logger.warning("%s %r has no offset: taken as UTC. Send it with Z or +01:00 to say which.", attr, value)
            instant = instant.replace(tzinfo=UTC)
        try:
            instant = instant.astimezone(UTC)
        except OverflowError as e:  # year 1 at +23:00
            raise ValidationError(f"Must be between {EARLIEST} and {LATEST}.") from e
        _in_range(instant.date())
        return instant.isoformat(timespec="seconds")


def _dates_in_order(data: dict[str, Any]) -> None:
    starts, ends = data.get("starts_on"), data.get("ends_on")
    if starts and ends and ends < starts:
        raise ValidationError("Must be on or after starts_on.", "ends_on")


def _strings(item: validate.Validator, *, many: int = MAX_LIST, **kwargs: Any) -> fields.List:
    return fields.List(fields.String(validate=item), validate=validate.Length(max=many), **kwargs)


# -- requests ------------------------------------------------------------------------------------


class CampaignSchema(Schema):
    """A campaign as a planner writes it (POST; PUT replaces every field)."""

    class Meta:
        unknown = RAISE

    id = fields.String(validate=ID, metadata={"description": "Yours, or generated (cmp-…). Not changed by PUT."})
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), validate.Regexp(r"\S")])
    products = _strings(validate.Length(min=1, max=100), many=50, load_default=list)
    brief = fields.String(load_default="", validate=validate.Length(max=MAX_TEXT))
    starts_on = Day(load_default=None, allow_none=True)
    ends_on = Day(load_default=None, allow_none=True, metadata={"description": "On or after starts_on."})

    @validates_schema
    def _in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        _dates_in_order(data)


class ActivationChangesSchema(Schema):
    """What PATCH may change in an activation: any of its fields (none is required)."""

    class Meta:
        unknown = RAISE

    id = fields.String(validate=ID, metadata={"description": "Yours, or generated (act-…); never changed."})
    influencer_id = fields.String(validate=RECORD_ID, metadata={"description": "An influencer that exists."})
    campaign_id = fields.String(
        allow_none=True, validate=ID, metadata={"description": "A campaign that exists, or null."}
    )
    moment = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=50),
        metadata={"description": "A moment from GET /v1/moments, or null."},
    )
    type = fields.String(validate=validate.Length(min=1, max=50), metadata={"description": f"One of {TYPES_TEXT}."})
    status = fields.String(
        validate=validate.Length(min=1, max=50),
        metadata={
            "description": f"One of {STATUSES_TEXT}. proposed → sent → accepted or declined; accepted or sent → "
            "published. New activations are proposed unless told."
        },
    )
    starts_on = Day(allow_none=True, metadata={"description": "When the activation itself takes place."})
    ends_on = Day(allow_none=True, metadata={"description": "On or after starts_on."})
    sent_at = Instant(metadata={"description": "When it was sent (default: when the status became sent)."})
    responded_at = Instant(metadata={"description": "When it was accepted or declined (default: then)."})
    published_at = Instant(metadata={"description": "When it was published (default: then)."})
    publications = _strings(RECORD_ID, metadata={"description": "Ids of the content it produced; each must exist."})
    notes = fields.String(validate=validate.Length(max=MAX_TEXT))

    @validates_schema
    def _in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        _dates_in_order(data)


class ActivationSchema(ActivationChangesSchema):
    """An activation as a planner writes it (POST; PUT replaces every field but the status and its timestamps,
    which move only along the lifecycle)."""

    influencer_id = fields.String(
        required=True, validate=RECORD_ID, metadata={"description": "An influencer that exists."}
    )
    type = fields.String(
        required=True, validate=validate.Length(min=1, max=50), metadata={"description": f"One of {TYPES_TEXT}."}
    )


class ActivationQuerySchema(Schema):
    """GET /v1/activations: filters (all optional, combined with AND) and a page."""

    class Meta:
        unknown = RAISE

    campaign = fields.String(validate=validate.Length(min=1, max=100))
    influencer = fields.String(validate=RECORD_ID)
    status = fields.String(validate=validate.Length(min=1, max=50), metadata={"description": STATUSES_TEXT})
    moment = fields.String(validate=validate.Length(min=1, max=50))
    type = fields.String(validate=validate.Length(min=1, max=50), metadata={"description": TYPES_TEXT})
    since = Day(metadata={"description": "Activations taking place (or sent) on or after this day."})
    until = Day(metadata={"description": "… and on or before this day."})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIMIT))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10**9))

    @validates_schema
    def _in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise ValidationError("Must be on or after since.", "until")


class HoldSchema(Schema):
    """A "do not contact before" date for an influencer."""

    class Meta:
        unknown = RAISE

    until = Day(required=True, metadata={"description": "The first day they may be contacted again."})
    reason = fields.String(load_default="", validate=validate.Length(max=1000))


# -- responses -----------------------------------------------------------------------------------


class CampaignOutSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    products = fields.List(fields.String(), required=True)
    brief = fields.String(required=True)
    starts_on = fields.String(allow_none=True, metadata={"format": "date"})
    ends_on = fields.String(allow_none=True, metadata={"format": "date"})
    activations = fields.Integer(required=True, metadata={"description": "How many activations belong to it."})
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class CampaignListSchema(Schema):
    campaigns = fields.List(fields.Nested(CampaignOutSchema), required=True)


class ActivationOutSchema(Schema):
    id = fields.String(required=True)
    influencer_id = fields.String(required=True)
    campaign_id = fields.String(allow_none=True)
    moment = fields.String(allow_none=True)
    type = fields.String(required=True)
    status = fields.String(required=True)
    next_statuses = fields.List(
        fields.String(), required=True, metadata={"description": "The statuses it may move to."}
    )
    starts_on = fields.String(allow_none=True, metadata={"format": "date"})
    ends_on = fields.String(allow_none=True, metadata={"format": "date"})
    sent_at = fields.String(allow_none=True)
    responded_at = fields.String(allow_none=True)
    published_at = fields.String(allow_none=True)
    publications = fields.List(fields.String(), required=True)
    notes = fields.String(required=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class ActivationListSchema(Schema):
    activations = fields.List(fields.Nested(ActivationOutSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "How many match the filters, in all pages."})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class HoldOutSchema(Schema):
    influencer_id = fields.String(required=True)
    until = fields.String(allow_none=True, metadata={"format": "date", "description": "null: no hold."})
    reason = fields.String(required=True)
    active = fields.Boolean(required=True, metadata={"description": "Whether it still holds today (UTC)."})
    updated_at = fields.String(allow_none=True)


class PlanningDeletedSchema(Schema):
    id = fields.String(required=True)
    deleted = fields.Boolean(required=True, metadata={"description": "False: there was nothing to delete."})
