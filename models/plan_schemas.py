"""Request and response bodies of the plans routes.

These schemas check the shape of a body (types, lengths, dates); what the words mean (the moments, whether the
campaign exists, the products a plan needs) is checked by ``matcher.plans``, which the CLI calls too.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from models.api_schemas import MAX_QUERY, ContentResultSchema, OneOrMany, score_parts
from models.planning_schemas import ID, RECORD_ID, Day
from models.records import CATEGORIES

MAX_BUDGET = 20  # activations per category and moment: a brand makes 50 to 60 a year
MAX_ALTERNATES = 10
MAX_WORDS = 50


def words(item: validate.Validator | None = None, **kwargs: Any) -> OneOrMany:
    """A list of strings, or one string for a list of one."""
    inner = fields.String(validate=item or validate.Length(min=1, max=100))
    return OneOrMany(inner, validate=validate.Length(max=MAX_WORDS), **kwargs)


class PlanRequestSchema(Schema):
    """What a planner asks a plan for (POST; PUT replaces it and plans again)."""

    class Meta:
        unknown = RAISE

    campaign = fields.String(
        load_default=None,
        allow_none=True,
        validate=ID,
        metadata={"description": "A campaign that exists: its products and brief are the defaults."},
    )
    products = words(load_default=list, metadata={"description": "Product tags, e.g. homelive (or the campaign's)."})
    brief = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_QUERY),
        metadata={"description": "What the campaign says, in a few words: the query every shortlist ranks for."},
    )
    moments = words(metadata={"description": "Moments from GET /v1/moments (default: all)."})
    budget = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CATEGORIES)),
        values=fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_BUDGET)),
        load_default=dict,
        metadata={
            "description": 'Activations per category and moment, e.g. {"partner": 3}; a category left out keeps '
            "its default (activation_rules.json), 0 leaves it out."
        },
    )
    languages = words(validate.Regexp(r"^[A-Za-z]{2,3}$"), load_default=list, metadata={"description": "fr, en…"})
    networks = words(load_default=list, metadata={"description": "Influencers on any of these networks."})
    min_followers = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0, max=10**12))
    max_followers = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0, max=10**12))
    starts_on = Day(load_default=None, allow_none=True, metadata={"description": "Given to the activations."})
    ends_on = Day(load_default=None, allow_none=True, metadata={"description": "On or after starts_on."})
    alternates = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=0, max=MAX_ALTERNATES),
        metadata={"description": "Alternates behind each shortlist (default 3)."},
    )
    exclude = fields.List(
        fields.String(validate=RECORD_ID),
        load_default=list,
        validate=validate.Length(max=200),
        metadata={"description": "Influencer ids never to propose in this plan (a planner's drop)."},
    )
    product_authors_only = fields.Boolean(
        load_default=False, metadata={"description": "Only people who published about one of the products."}
    )

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        starts, ends = data.get("starts_on"), data.get("ends_on")
        if starts and ends and ends < starts:
            raise ValidationError("Must be on or after starts_on.", "ends_on")
        low, high = data.get("min_followers"), data.get("max_followers")
        if low is not None and high is not None and low > high:
            raise ValidationError("Must not exceed max_followers.", "min_followers")


class PlanActivationsRequestSchema(Schema):
    """Which of a plan's people to turn into activations (default: every shortlisted row)."""

    class Meta:
        unknown = RAISE

    influencers = fields.List(
        fields.String(validate=RECORD_ID),
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Influencer ids from the plan (shortlist or alternates)."},
    )


class PlanEditSchema(Schema):
    class Meta:
        unknown = RAISE

    moment = fields.String(required=True, validate=validate.Length(min=1, max=100))
    influencer = fields.String(required=True, validate=RECORD_ID, metadata={"description": "An influencer id."})
    to = fields.String(
        required=True,
        validate=validate.OneOf(["shortlist", "alternates", "dropped"]),
        metadata={"description": "Where the person goes: a list of their category at that moment, or out."},
    )
    position = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_BUDGET + MAX_ALTERNATES + 1),
        metadata={"description": "1 = first in the list; default last."},
    )


class PlanEditsRequestSchema(Schema):
    """A planner's edits to a plan, applied in order, all or none."""

    class Meta:
        unknown = RAISE

    edits = fields.List(fields.Nested(PlanEditSchema), required=True, validate=validate.Length(min=1, max=50))


# -- responses -----------------------------------------------------------------------------------


class PastSchema(Schema):
    type = fields.String(required=True)
    activations = fields.Integer(required=True, metadata={"description": "Of this type at this moment."})
    sent = fields.Integer(required=True)
    response_rate = fields.Float(allow_none=True, required=True, metadata={"description": "responded / sent."})
    activation_rate = fields.Float(allow_none=True, required=True, metadata={"description": "published / sent."})


class SuggestionSchema(Schema):
    type = fields.String(required=True, metadata={"description": "The activation type suggested."})
    reason = fields.String(required=True)
    past = fields.Nested(PastSchema, required=True, metadata={"description": "Past activations of this type here."})


class FatigueSchema(Schema):
    value = fields.Float(required=True, metadata={"description": "1: not solicited lately; 0: not contactable."})
    reason = fields.String(required=True)


class TrackedSchema(Schema):
    id = fields.String(required=True)
    moment = fields.String(required=True)
    influencer_id = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "Its status now; 'deleted' if it was since."})


class PlanRowSchema(Schema):
    rank = fields.Integer(required=True, metadata={"description": "1 = first, within its list."})
    role = fields.String(required=True, validate=validate.OneOf(["shortlist", "alternate"]))
    id = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    language = fields.String(allow_none=True)
    networks = fields.List(fields.String(), required=True)
    followers = fields.Integer(required=True)
    score = fields.Float(required=True)
    score_parts = score_parts()
    explanation = fields.String(required=True)
    fatigue = fields.Nested(FatigueSchema, required=True)
    diversity = fields.String(
        allow_none=True, required=True, metadata={"description": "Why diversity moved this row, if it did."}
    )
    suggested = fields.Nested(SuggestionSchema, required=True)
    activation = fields.Nested(TrackedSchema, allow_none=True, required=True)
    edited = fields.String(
        allow_none=True, required=True, metadata={"description": "What a planner did to this row, if anything."}
    )


class SkippedSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    score = fields.Float(required=True)
    reason = fields.String(required=True)


class CategoryPlanSchema(Schema):
    category = fields.String(required=True)
    budget = fields.Integer(required=True)
    shortlist = fields.List(fields.Nested(PlanRowSchema), required=True)
    alternates = fields.List(fields.Nested(PlanRowSchema), required=True)
    skipped = fields.List(
        fields.Nested(SkippedSchema),
        required=True,
        metadata={"description": "People who ranked among those kept but may not be proposed here, and why."},
    )
    missing = fields.Integer(required=True, metadata={"description": "Shortlist places no one could fill."})


class GapSchema(Schema):
    format = fields.String(required=True)
    language = fields.String(required=True)
    format_weight = fields.Float(required=True, metadata={"description": "How much the moment values the format."})
    pieces = fields.Integer(required=True, metadata={"description": "Pieces of it about the products, good or not."})
    message = fields.String(required=True)


class MomentPlanSchema(Schema):
    moment = fields.String(required=True)
    label = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    categories = fields.List(fields.Nested(CategoryPlanSchema), required=True)
    content = fields.List(fields.Nested(ContentResultSchema), required=True)
    gaps = fields.List(fields.Nested(GapSchema), required=True)
    past_activations = fields.List(fields.Nested(PastSchema), required=True)


class PlanOutSchema(Schema):
    id = fields.String(required=True)
    campaign = fields.String(allow_none=True, required=True)
    request = fields.Dict(required=True, metadata={"description": "The request, with every default filled in."})
    rules = fields.Dict(
        keys=fields.String(), values=fields.String(), required=True, metadata={"description": "How it was made."}
    )
    moments = fields.List(fields.Nested(MomentPlanSchema), required=True)
    activations = fields.List(fields.Nested(TrackedSchema), required=True)
    withdrawn = fields.Integer(
        required=True, metadata={"description": "People left out since the plan was made (opted out or deleted)."}
    )
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class PlanSummarySchema(Schema):
    id = fields.String(required=True)
    campaign = fields.String(allow_none=True, required=True)
    brief = fields.String(required=True)
    products = fields.List(fields.String(), required=True)
    moments = fields.List(fields.String(), required=True)
    shortlisted = fields.Integer(required=True)
    activations = fields.Integer(required=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class PlanListSchema(Schema):
    plans = fields.List(fields.Nested(PlanSummarySchema), required=True)


class PlanActivationsOutSchema(Schema):
    plan = fields.String(required=True)
    created = fields.List(fields.Nested(TrackedSchema), required=True, metadata={"description": "Made by this call."})
    existing = fields.List(
        fields.Nested(TrackedSchema), required=True, metadata={"description": "Made before for the same rows."}
    )
    not_created = fields.List(
        fields.Dict(keys=fields.String(), values=fields.String()),
        required=True,
        metadata={"description": "{influencer_id, reason}: rows that could not be (deleted or opted out since)."},
    )
    activations = fields.List(fields.Nested(TrackedSchema), required=True)


class PlanDeletedSchema(Schema):
    id = fields.String(required=True)
    deleted = fields.Boolean(required=True)
