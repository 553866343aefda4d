"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from models.contract import ContentSchema, InfluencerSchema
from models.records import CATEGORIES, FORMATS

RESULT_TYPES = ("influencers", "content")
MAX_LIMIT = 100
MAX_QUERY = 1000
MAX_TAGS = 50


class OneOrMany(fields.List):
    """A list of strings that also accepts a single string: ``"partner"`` is ``["partner"]``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, str):
            value = [value]
        return super()._deserialize(value, attr, data, **kwargs)


def tags(inner: validate.Validator | None = None) -> OneOrMany:
    return OneOrMany(
        fields.String(validate=inner or validate.Length(min=1, max=100)),
        validate=validate.Length(max=MAX_TAGS),
    )


class FiltersSchema(Schema):
    class Meta:
        unknown = RAISE

    category = tags(validate.OneOf(CATEGORIES))
    network = tags()
    language = tags()
    min_followers = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12))
    max_followers = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12))
    topics = tags()
    products = tags()


class MatchRequestSchema(Schema):
    """A planner or widget names the moment (with an optional query); a chatbot sends ``text`` and may leave the
    moment to be detected."""

    class Meta:
        unknown = RAISE

    moment = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=50),
        metadata={"description": "A moment from GET /v1/moments. Required unless text is sent."},
    )
    query = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=MAX_QUERY),
        metadata={"description": "A planner's brief or a page's context."},
    )
    text = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_QUERY),
        metadata={
            "description": "A customer's words (chatbots): without a moment, the moment is "
            "detected from them; they are the query."
        },
    )
    filters = fields.Nested(FiltersSchema, load_default=dict)
    limit = fields.Integer(
        strict=True,
        load_default=10,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": "Results per list."},
    )
    types = fields.List(
        fields.String(validate=validate.OneOf(RESULT_TYPES)),
        load_default=lambda: list(RESULT_TYPES),
        validate=validate.Length(min=1, max=len(RESULT_TYPES)),
        metadata={"description": "Which lists to return."},
    )
    explore = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Let rarely shown items try the lower slots (Thompson sampling over what customers did); "
            "each result then says the probability it had of its slot. Answers are then not cacheable."
        },
    )

    @validates_schema
    def _moment_or_text(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("text") is not None and data.get("query") is not None:
            raise ValidationError("Send either query (with a moment) or text (a customer's words), not both.", "text")
        if data.get("moment") is None and data.get("text") is None:
            raise ValidationError("Required unless text is given (the moment is then detected).", "moment")


class MatchQuerySchema(Schema):
    """GET /v1/match: the same request in a query string, so that pages and CDNs can cache the answer. Lists are
    comma-separated (types=content&products=homelive)."""

    class Meta:
        unknown = RAISE

    moment = fields.String(required=True, validate=validate.Length(min=1, max=50))
    query = fields.String(validate=validate.Length(max=MAX_QUERY))
    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_LIMIT))
    types = fields.String(validate=validate.Length(max=40), metadata={"description": "influencers,content"})
    category = fields.String(validate=validate.Length(max=200))
    network = fields.String(validate=validate.Length(max=200))
    language = fields.String(validate=validate.Length(max=200))
    topics = fields.String(validate=validate.Length(max=2000))
    products = fields.String(validate=validate.Length(max=2000))
    min_followers = fields.Integer(validate=validate.Range(min=0, max=10**12))
    max_followers = fields.Integer(validate=validate.Range(min=0, max=10**12))
    explore = fields.Boolean(metadata={"description": "As in POST /v1/match; the answer is then not cacheable."})

    LISTS = ("category", "network", "language", "topics", "products")

    def to_request(self, args: dict[str, Any]) -> dict[str, Any]:
        """The JSON body this query string stands for."""
        split = {k: [p.strip() for p in args[k].split(",") if p.strip()] for k in self.LISTS if k in args}
        body: dict[str, Any] = {
            "moment": args["moment"],
            "filters": {**split, **{k: args[k] for k in ("min_followers", "max_followers") if k in args}},
        }
        if "query" in args:
            body["query"] = args["query"]
        if "limit" in args:
            body["limit"] = args["limit"]
        if "types" in args:
            body["types"] = [t.strip() for t in args["types"].split(",") if t.strip()]
        if "explore" in args:
            body["explore"] = args["explore"]
        return body


class DetectRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_QUERY))
    language = fields.String(load_default=None, validate=validate.Regexp(r"^[a-z]{2,3}$"))


# -- responses ------------------------------------------------------------------------------------


class ScorePartSchema(Schema):
    value = fields.Float(required=True, metadata={"description": "The part, from 0 to 1."})
    weight = fields.Float(required=True, metadata={"description": "Its weight in the scoring file (relative)."})
    share = fields.Float(
        required=True, metadata={"description": "Its weight over the sum of this result's weights: shares add to 1."}
    )
    contribution = fields.Float(
        required=True, metadata={"description": "value × share: the contributions add up to the score."}
    )
    reason = fields.String(required=True)


class PlatformOutSchema(Schema):
    class Meta:
        unknown = RAISE

    network = fields.String(required=True)
    handle = fields.String()
    followers = fields.Integer(required=True)
    engagement_rate = fields.Float(allow_none=True)


class EvidenceSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    format = fields.String(validate=validate.OneOf(FORMATS))
    url = fields.String(allow_none=True)
    relevance = fields.Float()


def score_parts() -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=fields.Nested(ScorePartSchema), required=True)


class InfluencerResultSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    language = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    bio = fields.String()
    topics = fields.List(fields.String())
    platforms = fields.List(fields.Dict())
    followers = fields.Integer()
    engagement_rate = fields.Float(allow_none=True)
    rank = fields.Integer(required=True, metadata={"description": "Its slot, 1 = first: what events send back."})
    propensity = fields.Float(required=True, metadata={"description": "The probability it had of this slot."})
    score = fields.Float(required=True)
    score_parts = score_parts()
    explanation = fields.String(required=True)
    evidence = fields.List(fields.Nested(EvidenceSchema))


class AuthorSummarySchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    followers = fields.Integer()


class ContentResultSchema(Schema):
    id = fields.String(required=True)
    title = fields.String()
    excerpt = fields.String()
    url = fields.String(allow_none=True)
    format = fields.String(required=True)
    language = fields.String(allow_none=True)
    network = fields.String()
    published_at = fields.String()
    topics = fields.List(fields.String())
    products = fields.List(fields.String())
    sentiment = fields.Float(allow_none=True)
    engagement = fields.Dict(allow_none=True)
    thumbnail = fields.String(allow_none=True, metadata={"description": "An image URL, when the record has one."})
    influencer = fields.Nested(AuthorSummarySchema, allow_none=True)
    rank = fields.Integer(required=True, metadata={"description": "Its slot, 1 = first: what events send back."})
    propensity = fields.Float(required=True, metadata={"description": "The probability it had of this slot."})
    score = fields.Float(required=True)
    score_parts = score_parts()
    explanation = fields.String(required=True)


class DetectionSchema(Schema):
    moment = fields.String(required=True)
    confidence = fields.Float(required=True)
    scores = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    low_confidence = fields.Boolean(required=True)
    message = fields.String(allow_none=True)
    language = fields.String(allow_none=True)


class MatchResponseSchema(Schema):
    moment = fields.String(required=True)
    detection = fields.Nested(DetectionSchema, allow_none=True)
    query = fields.String(allow_none=True)
    filters = fields.Dict()
    influencers = fields.List(fields.Nested(InfluencerResultSchema), required=True)
    content = fields.List(fields.Nested(ContentResultSchema), required=True)
    policy = fields.String(
        required=True, metadata={"description": "learned, or explore; events refer to it by the X-Request-ID header."}
    )
    projection = fields.String(
        metadata={
            "description": "'public' for a widget key: only what a public page shows (see POST /v1/match); "
            "absent for planner and admin keys, who get every field."
        }
    )


class MomentOutSchema(Schema):
    name = fields.String(required=True)
    label = fields.Dict(keys=fields.String(), values=fields.String())
    description = fields.Dict(keys=fields.String(), values=fields.String())
    examples = fields.List(fields.Dict())
    formats = fields.Dict(keys=fields.String(), values=fields.Float())
    categories = fields.Dict(keys=fields.String(), values=fields.Float())
    topics = fields.List(fields.String())


class MomentListSchema(Schema):
    moments = fields.List(fields.Nested(MomentOutSchema), required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok, or unhealthy (503) with the problem."})
    problem = fields.String(metadata={"description": "Why the store is unhealthy, and what to do."})
    model = fields.String()
    query_model = fields.String()
    process = fields.Integer(metadata={"description": "The serving process (each worker has its own)."})
    records = fields.Dict(keys=fields.String(), values=fields.Integer())
    indexed = fields.Dict(keys=fields.String(), values=fields.Integer())
    store_version = fields.Integer()
    index_version = fields.Integer(allow_none=True)
    moments = fields.List(fields.String())
    learning = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "This process's learning: catch-ups that learned something, events learned from."},
    )


class InfluencerSearchQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    q = fields.String(
        required=True,
        validate=validate.Length(min=2, max=100),
        metadata={"description": "Part of a name, an id or a handle (case and accents ignored)."},
    )
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_LIMIT))


class InfluencerFoundSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    language = fields.String(allow_none=True, required=True)
    networks = fields.List(fields.String(), required=True)
    followers = fields.Integer(required=True)


class InfluencerSearchSchema(Schema):
    influencers = fields.List(fields.Nested(InfluencerFoundSchema), required=True)


class InfluencerRecordSchema(InfluencerSchema):
    """An influencer as in the data contract (extra fields kept), with what Relais derives."""

    followers = fields.Integer(dump_only=True)
    content_count = fields.Integer(dump_only=True)


class ContentRecordSchema(ContentSchema):
    """A piece of content as in the data contract (extra fields kept), with its network and author."""

    network = fields.String(dump_only=True)
    influencer = fields.Nested(AuthorSummarySchema, dump_only=True, allow_none=True)


class WrittenSchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(["inserted", "updated", "unchanged"]))
    record = fields.Dict(required=True)


class DeletedSchema(Schema):
    id = fields.String(required=True)
    deleted = fields.Boolean(required=True)
    content_deleted = fields.Integer(required=True)


class RejectionSchema(Schema):
    line = fields.Integer(required=True)
    id = fields.String(allow_none=True)
    reason = fields.String(required=True)


class ImportReportSchema(Schema):
    source = fields.String()
    kind = fields.String(required=True)
    lines = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    inserted = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    rejected = fields.List(
        fields.Nested(RejectionSchema), required=True, metadata={"description": "The first 1,000 rejected lines."}
    )
    rejected_count = fields.Integer(required=True, metadata={"description": "Every rejected line."})
    rejected_by_reason = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={
            "description": "Rejected lines per kind of reason (its words before any ':'; 50 kinds, then 'other')."
        },
    )


class ErrorBodySchema(Schema):
    status = fields.Integer(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


def load_or_raise(schema: Schema, data: Any) -> dict[str, Any]:
    """``schema.load`` that also refuses a body that is not a JSON object."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["The body must be a JSON object."]})
    return schema.load(data)
