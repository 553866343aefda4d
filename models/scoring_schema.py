"""The schema of the scoring file (``matcher/data/scoring.json``): every number the score reads, its type and
range, checked when the file is loaded, so that a brand that edits it gets an error naming the key, not a 500 at
request time. Each section may carry an ``_about``; any other key the code does not read is refused (a typo would
otherwise be ignored in silence)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from models.records import FORMATS

UNIT = validate.Range(min=0, max=1)
POSITIVE = validate.Range(min=0, min_inclusive=False)
PARTS = {
    "influencer": ("relevance", "product", "asked", "moment_fit", "influence", "engagement", "fatigue"),
    "content": (
        "relevance",
        "product",
        "asked",
        "moment_fit",
        "quality",
        "influence",
        "freshness",
        "tonality",
        "engagement",
    ),
}
KINDS = ("influencers", "content")  # as matcher.store.KINDS (models do not import the engine)


def unit() -> fields.Float:
    return fields.Float(required=True, validate=UNIT)


def positive() -> fields.Float:
    return fields.Float(required=True, validate=POSITIVE)


class Section(Schema):
    class Meta:
        unknown = RAISE

    _about = fields.String(data_key="_about", load_default="")


def per_kind(value: fields.Field) -> fields.Dict:
    return fields.Dict(keys=fields.String(validate=validate.OneOf(KINDS)), values=value, required=True)


def part_weights(kind: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.OneOf(PARTS[kind])),
        values=fields.Float(validate=validate.Range(min=0)),
        required=True,
    )


class WeightsSchema(Section):
    influencer = part_weights("influencer")
    content = part_weights("content")

    @validates_schema
    def _every_part(self, data: dict[str, Any], **kwargs: Any) -> None:
        for kind, parts in PARTS.items():
            missing = sorted(set(parts) - set(data.get(kind, {})))
            if missing:
                raise ValidationError(f"Missing weights for {', '.join(missing)}.", kind)
            if not sum(data[kind].values()) > 0:
                raise ValidationError("At least one weight must be above 0.", kind)


class ExploreSchema(Section):
    fixed_slots = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    draws = fields.Integer(required=True, validate=validate.Range(min=1, max=10_000))


class EngagementSchema(Section):
    examination = fields.List(fields.Float(validate=UNIT), required=True, validate=validate.Length(min=1, max=100))
    examination_beyond = unit()
    prior_views = positive()
    sharpness = positive()
    prior_ctr = fields.Float(required=True, validate=validate.Range(min=0, max=1, min_inclusive=False))
    half_life_days = positive()
    with_query = unit()
    settle_seconds = fields.Float(required=True, validate=validate.Range(min=0, max=3600))
    explore = fields.Nested(ExploreSchema, required=True)


class RelevanceSchema(Section):
    query_weight = unit()
    moment_weight = unit()
    influencer_profile_weight = unit()


class LexicalSchema(Section):
    fusion = fields.String(required=True, validate=validate.OneOf(["convex", "rrf"]))
    dense_weight = per_kind(fields.Float(validate=UNIT))
    rrf_k = positive()
    column_weights = per_kind(
        fields.List(fields.Float(validate=validate.Range(min=0)), validate=validate.Length(equal=3))
    )


class ProfileVectorSchema(Section):
    profile_weight = unit()
    profile_weight_without_bio = unit()


class FitSchema(Section):
    influencer = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["category", "topics"])), values=fields.Float(validate=UNIT),
        required=True,
    )  # fmt: skip
    content = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["format", "author"])), values=fields.Float(validate=UNIT),
        required=True,
    )  # fmt: skip
    brand_author_fit = unit()
    unlisted_category = unit()
    unlisted_format = unit()
    profile_similarity_floor = fields.Float(required=True, validate=validate.Range(min=-1, max=1))
    profile_similarity_ceiling = fields.Float(required=True, validate=validate.Range(min=-1, max=1))
    topic_matches_for_full_fit = fields.Integer(required=True, validate=validate.Range(min=1, max=50))

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("profile_similarity_floor", 0) >= data.get("profile_similarity_ceiling", 1):
            raise ValidationError("Must be above profile_similarity_floor.", "profile_similarity_ceiling")
        for key, names in (("influencer", ("category", "topics")), ("content", ("format", "author"))):
            missing = sorted(set(names) - set(data.get(key, {})))
            if missing:
                raise ValidationError(f"Missing {', '.join(missing)}.", key)


# Every format of the data contract, each with its editorial weight.
FormatQualitySchema = type("FormatQualitySchema", (Section,), {name: unit() for name in (*FORMATS, "unknown")})


class InfluenceSchema(Section):
    followers_ceiling = fields.Float(required=True, validate=validate.Range(min=10))
    engagement_half = positive()
    reach_weight = unit()
    interactions_ceiling = fields.Float(required=True, validate=validate.Range(min=10))
    interaction_weights = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["likes", "shares", "comments", "views"])),
        values=fields.Float(validate=validate.Range(min=0)),
        required=True,
    )


class FreshnessSchema(Section):
    half_life_days = positive()


class DiversitySchema(Section):
    max_per_influencer = fields.Integer(required=True, validate=validate.Range(min=1, max=100))


class CandidatesSchema(Section):
    minimum = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000))
    per_result = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))
    content_for_influencers = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000))


class NetworksSchema(Section):
    formats = fields.Dict(keys=fields.String(validate=validate.OneOf(FORMATS)), values=fields.String(), required=True)
    hosts = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class ScoringFileSchema(Section):
    weights = fields.Nested(WeightsSchema, required=True)
    engagement = fields.Nested(EngagementSchema, required=True)
    relevance = fields.Nested(RelevanceSchema, required=True)
    lexical = fields.Nested(LexicalSchema, required=True)
    profile_vector = fields.Nested(ProfileVectorSchema, required=True)
    moment_fit = fields.Nested(FitSchema, required=True)
    format_quality = fields.Nested(FormatQualitySchema, required=True)
    influence = fields.Nested(InfluenceSchema, required=True)
    freshness = fields.Nested(FreshnessSchema, required=True)
    diversity = fields.Nested(DiversitySchema, required=True)
    candidates = fields.Nested(CandidatesSchema, required=True)
    networks = fields.Nested(NetworksSchema, required=True)


def dotted_errors(messages: dict[str, Any], prefix: str = "") -> list[str]:
    """{'weights': {'content': ['Missing...']}} -> ['weights.content: Missing...']: the key a brand must fix."""
    out = []
    for key, value in messages.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out += dotted_errors(value, path)
        else:
            out.append(f"{path}: {' '.join(map(str, value)) if isinstance(value, list) else value}")
    return out
