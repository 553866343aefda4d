"""The data contract: marshmallow schemas that validate imported records and dump them back.

Unknown fields are kept (in ``extra``) and written back on dump, so a record survives a round trip.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from marshmallow import (
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from models.records import CATEGORIES, FORMATS, Content, Engagement, Influencer, Platform

LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def normalize_language(value: str | None) -> str | None:
    """'fr-FR' -> 'fr', '' -> None: the primary subtag, lower case."""
    if value is None:
        return None
    value = value.strip().lower().replace("_", "-").split("-")[0]
    return value or None


def check_language(value: str | None) -> None:
    """Raise unless the value is empty or an ISO 639 code such as 'fr', 'en' or 'fr-BE'."""
    language = normalize_language(value)
    if language is not None and not LANGUAGE.match(language):
        raise ValidationError(f"{value!r} is not a language code such as 'fr' or 'en'.")


def clean_tags(values: list[str]) -> list[str]:
    """Strip, drop empties and duplicates, keep the first spelling and the order."""
    seen: set[str] = set()
    tags = []
    for value in values:
        tag = value.strip()
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    return tags


class _ContractSchema(Schema):
    """Keeps unknown fields in ``extra`` on load and merges them back on dump."""

    class Meta:
        unknown = INCLUDE

    def _split_extra(self, data: dict[str, Any]) -> dict[str, Any]:
        known = {name for name, f in self.fields.items() if not f.dump_only}
        extra = {k: v for k, v in data.items() if k not in known}
        kept = {k: v for k, v in data.items() if k in known}
        kept["extra"] = extra
        return kept

    @post_dump(pass_original=True)
    def _merge_extra(self, data: dict[str, Any], original: Any, **kwargs: Any) -> dict[str, Any]:
        extra = getattr(original, "extra", None) or {}
        return {**data, **{k: v for k, v in extra.items() if k not in data}}


# Sanity bounds: far above any real account, far below what SQLite (64-bit integers) or sums of floats overflow.
MAX_AUDIENCE = 10**12
MAX_COUNT = 10**15
MAX_ENGAGEMENT_RATE = 100.0  # a fraction; real ones stay below 2, even for tiny accounts


# Normalisation strips spaces: a value that is only spaces would be stored empty, so it is refused instead.
NOT_BLANK = validate.Regexp(r"\S", error="Must not be blank.")
# An id travels in URLs, logs, CSV exports and file names: no NUL, no line break, no other control character, and
# no U+FFFD, what invalid UTF-8 in a URL decodes to (two different URLs would name one record: bench/hostile.py).
PRINTABLE = validate.Regexp(
    r"^[^\x00-\x1f\x7f\ufffd]*$",
    error="Must not hold control characters (NUL, line breaks…) or U+FFFD (invalid UTF-8 in the URL).",
)
ID = [validate.Length(min=1, max=200), PRINTABLE]
MAX_TAG_COUNT = 200


class PlatformSchema(_ContractSchema):
    network = fields.String(required=True, validate=[validate.Length(min=1, max=50), NOT_BLANK])
    handle = fields.String(load_default="", allow_none=True, validate=validate.Length(max=300))
    followers = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_AUDIENCE))
    engagement_rate = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_ENGAGEMENT_RATE)
    )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Platform:
        data = self._split_extra(data)
        data["network"] = data["network"].strip().lower()
        data["handle"] = data["handle"] or ""
        return Platform(**data)


class InfluencerSchema(_ContractSchema):
    id = fields.String(required=True, validate=ID)
    name = fields.String(required=True, validate=[validate.Length(min=1, max=300), NOT_BLANK])
    bio = fields.String(load_default="", allow_none=True, validate=validate.Length(max=5000))
    topics = fields.List(
        fields.String(validate=validate.Length(max=100)), load_default=list, validate=validate.Length(max=MAX_TAG_COUNT)
    )
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    language = fields.String(load_default=None, allow_none=True, validate=check_language)
    country = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=60))
    platforms = fields.List(fields.Nested(PlatformSchema), required=True, validate=validate.Length(max=50))
    opted_out = fields.Boolean(load_default=False)
    is_customer = fields.Boolean(load_default=False)

    @pre_load
    def _strip_ids(self, data: Any, **kwargs: Any) -> Any:
        return strip_ids(data, ("id",))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Influencer:
        data = self._split_extra(data)
        data["bio"] = (data["bio"] or "").strip()
        data["topics"] = clean_tags(data["topics"])
        data["language"] = normalize_language(data["language"])
        data["country"] = (data["country"] or "").strip() or None
        return Influencer(**data)


class EngagementSchema(_ContractSchema):
    likes = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))
    shares = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))
    comments = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))
    views = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_COUNT))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Engagement:
        return Engagement(**self._split_extra(data))


class ContentSchema(_ContractSchema):
    id = fields.String(required=True, validate=ID)
    influencer_id = fields.String(load_default=None, allow_none=True, validate=ID)
    title = fields.String(load_default="", allow_none=True, validate=validate.Length(max=1000))
    text = fields.String(load_default="", allow_none=True, validate=validate.Length(max=100_000))
    url = fields.Url(load_default=None, allow_none=True, require_tld=False, schemes={"http", "https"})
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))
    language = fields.String(load_default=None, allow_none=True, validate=check_language)
    published_at = fields.DateTime(required=True)
    topics = fields.List(
        fields.String(validate=validate.Length(max=100)), load_default=list, validate=validate.Length(max=MAX_TAG_COUNT)
    )
    engagement = fields.Nested(EngagementSchema, load_default=None, allow_none=True)
    sentiment = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-1, max=1))
    products = fields.List(
        fields.String(validate=validate.Length(max=100)), load_default=list, validate=validate.Length(max=MAX_TAG_COUNT)
    )

    @pre_load
    def _strip_ids(self, data: Any, **kwargs: Any) -> Any:
        data = strip_ids(data, ("id", "influencer_id"))
        if isinstance(data, dict) and data.get("influencer_id") == "":
            data["influencer_id"] = None  # an empty author is brand-owned content, as null is
        return data

    @validates_schema
    def _check_has_text(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not ((data.get("title") or "").strip() or (data.get("text") or "").strip()):
            raise ValidationError("title and text are both empty: nothing to match on.", "text")

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Content:
        data = self._split_extra(data)
        data["title"] = (data["title"] or "").strip()
        data["text"] = (data["text"] or "").strip()
        data["topics"] = clean_tags(data["topics"])
        data["products"] = clean_tags(data["products"])
        data["language"] = normalize_language(data["language"])
        if data["published_at"].tzinfo is None:
            data["published_at"] = data["published_at"].replace(tzinfo=UTC)
        return Content(**data)


def strip_ids(data: Any, keys: tuple[str, ...]) -> Any:
    """Identifiers with stray spaces are the same identifiers: ' a ' and 'a' must not be two records."""
    if not isinstance(data, dict):
        return data
    return {k: v.strip() if k in keys and isinstance(v, str) else v for k, v in data.items()}
