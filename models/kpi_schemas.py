"""The query string and the answer of GET /v1/kpis.

These schemas check the shape (types, lengths, dates); what the words mean (the group_by keys, the voices) is
checked by ``matcher.kpis``, which the CLI calls too.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from models.records import CATEGORIES

MAX_WORDS = 50
FILTERS = ("campaign", "moment", "category", "network", "language", "since", "until")
GROUP_BY_TEXT = "campaign, moment, category, network, language, type, format, quarter or item"  # tests: = engine's


class Words(fields.List):
    """Strings as repeated parameters, as one comma-separated string, or both: ``group_by=quarter,type``."""

    def __init__(self, item: validate.Validator | None = None, **kwargs: Any):
        inner = fields.String(validate=item or validate.Length(min=1, max=100))
        super().__init__(inner, validate=validate.Length(max=MAX_WORDS), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValidationError("Not a valid list of strings.")
        parts = [part.strip() for v in values for part in v.split(",") if part.strip()]
        return super()._deserialize(parts, attr, data, **kwargs)


class KpiQuerySchema(Schema):
    """GET /v1/kpis: filters (all optional, combined with AND; a list filter admits any of its values), groupings,
    and who the influential voices are."""

    class Meta:
        unknown = RAISE

    campaign = Words(metadata={"description": "Campaign ids (activations)."})
    moment = Words(metadata={"description": "Moments (activations, and events)."})
    category = Words(validate.OneOf(CATEGORIES), metadata={"description": "The influencer's (or the author's)."})
    network = Words(metadata={"description": "A piece's network; for people, one of their networks."})
    language = Words(metadata={"description": "A piece's or a person's language."})
    since = fields.Date(metadata={"description": "ISO date, inclusive: when each figure's rows happened."})
    until = fields.Date(metadata={"description": "ISO date, inclusive."})
    group_by = Words(metadata={"description": f"Among {GROUP_BY_TEXT}; repeat it or separate with commas."})
    voices = fields.String(
        validate=validate.Length(min=1, max=50),
        metadata={"description": "'activated' (the default: people activated in the filters) or a category."},
    )
    themes = fields.Integer(
        validate=validate.Range(min=1, max=100), metadata={"description": "Share of voice: how many themes (10)."}
    )

    def arguments(self, args: dict[str, Any]) -> dict[str, Any]:
        """The loaded query string as the engine's ``kpis`` takes it."""
        return {
            "filters": {name: args[name] for name in FILTERS if name in args},
            "group_by": args.get("group_by", []),
            "voices": args.get("voices", "activated"),
            "themes": args.get("themes", 10),
        }


# -- the answer ----------------------------------------------------------------------------------


class FigureSchema(Schema):
    value = fields.Raw(allow_none=True, metadata={"description": "A number, a {format: share} map, or null."})
    n = fields.Integer(required=True, metadata={"description": "How many rows or events it rests on."})
    definition = fields.String(required=True)


class SectionSchema(Schema):
    group_by = fields.List(fields.String(), required=True, metadata={"description": "The keys it is split by."})
    ignored_group_by = fields.List(fields.String(), required=True, metadata={"description": "Keys it cannot use."})
    ignored_filters = fields.List(fields.String(), metadata={"description": "Filters that do not apply to it."})
    groups = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "description": "Each: `group` (the values of the keys) and its figures, each {value, n, definition}."
        },
    )


class VoicesSchema(Schema):
    rule = fields.String(required=True)
    count = fields.Integer(required=True)
    definition = fields.String(required=True)


class ShareOfVoiceSchema(SectionSchema):
    voices = fields.Nested(VoicesSchema, required=True)
    themes = fields.List(fields.String(), required=True, metadata={"description": "The most published themes."})
    definition = fields.String(required=True)


class TonalitySchema(SectionSchema):
    voices = fields.Nested(VoicesSchema, required=True)
    thresholds = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)


class CustomersSchema(SectionSchema):
    definition = fields.String(required=True)


class SpreadSchema(Schema):
    group_by = fields.List(fields.String(), required=True)
    ignored_group_by = fields.List(fields.String(), required=True)
    group = fields.Dict(required=True)
    roster = fields.Nested(FigureSchema, required=True)
    activations = fields.Nested(FigureSchema, required=True)
    people_activated = fields.Nested(FigureSchema, required=True)
    max_per_person = fields.Nested(FigureSchema, required=True)
    mean_per_person = fields.Nested(FigureSchema, required=True)
    mean_per_activated = fields.Nested(FigureSchema, required=True)
    top10_share = fields.Nested(FigureSchema, required=True)
    gini = fields.Nested(FigureSchema, required=True)


class KpiResponseSchema(Schema):
    filters = fields.Dict(required=True, metadata={"description": "The filters applied, as understood."})
    group_by = fields.List(fields.String(), required=True)
    voices = fields.String(required=True)
    activations = fields.Nested(SectionSchema, required=True)
    share_of_voice = fields.Nested(ShareOfVoiceSchema, required=True)
    tonality = fields.Nested(TonalitySchema, required=True)
    customers = fields.Nested(CustomersSchema, required=True)
    spread = fields.Nested(SpreadSchema, required=True)
