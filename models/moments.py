"""Micro-moments as the brand defines them in its moments file, and the schema that checks that file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from models.records import CATEGORIES, FORMATS


@dataclass(frozen=True)
class Example:
    text: str
    language: str


@dataclass(frozen=True)
class Moment:
    name: str
    label: dict[str, str]
    description: dict[str, str]
    examples: list[Example]
    influencer_profile: dict[str, str]
    influencer_topics: list[str]
    category_weights: dict[str, float]
    format_weights: dict[str, float]
    weights: dict[str, dict[str, float]] = field(default_factory=dict)

    def texts(self) -> list[str]:
        """The phrases that say what this moment is: descriptions, then examples."""
        return [*self.description.values(), *(e.text for e in self.examples)]


def weight() -> fields.Float:
    return fields.Float(validate=validate.Range(min=0, max=1))


class ExampleSchema(Schema):
    class Meta:
        unknown = RAISE

    text = fields.String(required=True, validate=validate.Length(min=1, max=500))
    language = fields.String(required=True, validate=validate.Length(min=2, max=3))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Example:
        return Example(**data)


class InfluencerProfileSchema(Schema):
    class Meta:
        unknown = RAISE

    profile = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    topics = fields.List(fields.String(validate=validate.Length(min=1)), required=True)
    categories = fields.Dict(keys=fields.String(validate=validate.OneOf(CATEGORIES)), values=weight(), required=True)


class ContentProfileSchema(Schema):
    class Meta:
        unknown = RAISE

    formats = fields.Dict(keys=fields.String(validate=validate.OneOf(FORMATS)), values=weight(), required=True)


class MomentSchema(Schema):
    """One moment in the moments file (its name is the key it is stored under)."""

    class Meta:
        unknown = RAISE

    label = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    description = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    examples = fields.List(fields.Nested(ExampleSchema), required=True, validate=validate.Length(min=1))
    influencers = fields.Nested(InfluencerProfileSchema, required=True)
    content = fields.Nested(ContentProfileSchema, required=True)
    weights = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["influencer", "content"])),
        values=fields.Dict(keys=fields.String(), values=fields.Float(validate=validate.Range(min=0))),
        load_default=dict,
    )

    @validates_schema
    def _check_texts(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("description"):
            raise ValidationError("A moment needs a description in at least one language.", "description")


class DetectionSettingsSchema(Schema):
    """How customers' words are mapped to moments: extra examples, and when to call a guess unsure."""

    class Meta:
        unknown = RAISE

    _about = fields.String(data_key="_about", load_default="")
    examples_file = fields.String(load_default=None, allow_none=True)
    low_confidence_below = fields.Float(load_default=0.6, validate=validate.Range(min=0, max=1))


class MomentFileSchema(Schema):
    class Meta:
        unknown = RAISE

    _about = fields.String(data_key="_about", load_default="")
    detection = fields.Nested(DetectionSettingsSchema, load_default=lambda: DetectionSettingsSchema().load({}))
    moments = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,49}$")),
        values=fields.Nested(MomentSchema),
        required=True,
        validate=validate.Length(min=1),
    )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """{"moments": {name: Moment}, "detection": {examples_file, low_confidence_below}}."""
        moments = {
            name: Moment(
                name=name,
                label=m["label"],
                description=m["description"],
                examples=m["examples"],
                influencer_profile=m["influencers"]["profile"],
                influencer_topics=m["influencers"]["topics"],
                category_weights=m["influencers"]["categories"],
                format_weights=m["content"]["formats"],
                weights=m["weights"],
            )
            for name, m in data["moments"].items()
        }
        return {"moments": moments, "detection": data["detection"]}
