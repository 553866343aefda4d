"""Records: read, create, replace and delete influencers and content; import files of them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request, url_for
from marshmallow import Schema, ValidationError

from matcher.errors import InvalidRequestError
from matcher.loader import detect_kind_of_text
from matcher.render import content_record, influencer_record
from models.api_schemas import (
    ContentRecordSchema,
    DeletedSchema,
    ImportReportSchema,
    InfluencerRecordSchema,
    InfluencerSearchQuerySchema,
    InfluencerSearchSchema,
    WrittenSchema,
)
from models.contract import ContentSchema, InfluencerSchema
from routes import ADMIN, READERS, KiB, body_bytes, engine, json_body, operation, reply

bp = Blueprint("records", __name__, url_prefix="/v1")

SCHEMAS = {"influencers": (InfluencerSchema, influencer_record), "content": (ContentSchema, content_record)}
WRITTEN = {200: (WrittenSchema, "Replaced (outcome updated) or unchanged."), 201: (WrittenSchema, "Created.")}
INFLUENCER_EXAMPLE = {
    "id": "inf-zoe-capteurs",
    "name": "Zoé Capteurs",
    "bio": "Je démonte les objets connectés.",
    "topics": ["domotique"],
    "category": "affinity",
    "language": "fr",
    "country": "FR",
    "platforms": [{"network": "youtube", "handle": "@zoecapteurs", "followers": 5400, "engagement_rate": 0.05}],
}
CONTENT_EXAMPLE = {
    "id": "cnt-zoe-01",
    "influencer_id": "inf-zoe-capteurs",
    "format": "review",
    "language": "fr",
    "title": "J'ai démonté le détecteur de fumée Homelive",
    "text": "Pile lithium, chambre optique.",
    "published_at": "2026-11-20T10:00:00+01:00",
    "products": ["homelive"],
}


def _read(kind: str, record_id: str) -> Any:
    """A record as ``render`` dumps it (through the contract schema, extra fields included)."""
    audit = g.api_key is not None and g.api_key.role == "admin"  # the audit trail: opted-out records too
    found = (
        engine().influencer(record_id, include_opted_out=audit)
        if kind == "influencers"
        else engine().content(record_id, include_opted_out=audit)
    )
    return jsonify(SCHEMAS[kind][1](found))


def _record(kind: str, path_id: str | None) -> Any:
    """The body as a contract record; on PUT, the id comes from the path (a different one in the body is an error)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["The body must be a JSON object."]})
    if path_id is not None:
        if "id" in body and body["id"] != path_id:
            raise InvalidRequestError(
                "The id in the body differs from the id in the path.", {"id": [f"Must be {path_id!r} or absent."]}
            )
        body = {**body, "id": path_id}
    schema: Schema = SCHEMAS[kind][0]()
    return schema.load(body)


def _written(kind: str, record_id: str, outcome: str) -> Any:
    status = 201 if outcome == "inserted" else 200
    location = url_for(f"records.get_{'influencer' if kind == 'influencers' else 'content'}", record_id=record_id)
    stored = (
        engine().influencer(record_id, include_opted_out=True)
        if kind == "influencers"
        else engine().content(record_id, include_opted_out=True)
    )
    return reply(
        WrittenSchema(), {"outcome": outcome, "record": SCHEMAS[kind][1](stored)}, status, {"Location": location}
    )


def _create(kind: str) -> Any:
    record = _record(kind, None)
    return _written(kind, record.id, engine().put(kind, record, create=True).outcome)


def _replace(kind: str, record_id: str) -> Any:
    record = _record(kind, record_id)
    return _written(kind, record.id, engine().put(kind, record).outcome)


def _delete(kind: str, record_id: str) -> Any:
    deleted = engine().delete(kind, record_id)
    return reply(DeletedSchema(), {"id": record_id, "deleted": True, "content_deleted": len(deleted.content_keys)})


@bp.get("/influencers")
@operation(
    roles=READERS,
    tag="influencers",
    query=InfluencerSearchQuerySchema,
    example={"q": "julien"},
    responses={200: (InfluencerSearchSchema, "Up to `limit`, names starting with `q` first, then by audience.")},
)
def find_influencers() -> Any:
    """Look influencers up by part of a name, id or handle (to add one to a plan); opted-out people are not found."""
    args = InfluencerSearchQuerySchema().load(request.args.to_dict())
    found = engine().find_influencers(args["q"], args.get("category"), args["limit"])
    return reply(InfluencerSearchSchema(), {"influencers": found})


@bp.get("/influencers/<path:record_id>")
@operation(
    roles=READERS,
    tag="influencers",
    path_example="inf-julien-domotique",
    responses={200: (InfluencerRecordSchema, "The influencer.")},
    errors=(404,),
)
def get_influencer(record_id: str) -> Any:
    """One influencer as in the data contract, with their audience and content count.

    Opted-out influencers are not found, except by admin keys (the audit trail).
    """
    return _read("influencers", record_id)


@bp.post("/influencers")
@operation(
    roles=ADMIN,
    tag="influencers",
    body=InfluencerSchema,
    max_body=256 * KiB,
    example=INFLUENCER_EXAMPLE,
    responses={201: (WrittenSchema, "Created.")},
    errors=(409,),
)
def create_influencer() -> Any:
    """Create an influencer (409 if the id exists); searchable as soon as the answer arrives."""
    return _create("influencers")


@bp.put("/influencers/<path:record_id>")
@operation(
    roles=ADMIN,
    tag="influencers",
    body=InfluencerSchema,
    max_body=256 * KiB,
    example=INFLUENCER_EXAMPLE,
    responses=WRITTEN,
    path_example="inf-zoe-capteurs",
)
def replace_influencer(record_id: str) -> Any:
    """Create or replace an influencer; ``opted_out: true`` keeps the record but hides it and its content."""
    return _replace("influencers", record_id)


@bp.delete("/influencers/<path:record_id>")
@operation(
    roles=ADMIN,
    tag="influencers",
    path_example="inf-zoe-capteurs",
    responses={200: (DeletedSchema, "Deleted, with their content.")},
    errors=(404,),
)
def delete_influencer(record_id: str) -> Any:
    """Forget an influencer: the record, their content and their vectors are deleted."""
    return _delete("influencers", record_id)


@bp.get("/content/<path:record_id>")
@operation(
    roles=READERS,
    tag="content",
    path_example="cnt-orange-01",
    responses={200: (ContentRecordSchema, "The piece of content.")},
    errors=(404,),
)
def get_content(record_id: str) -> Any:
    """One piece of content as in the data contract, with its network and author."""
    return _read("content", record_id)


@bp.post("/content")
@operation(
    roles=ADMIN,
    tag="content",
    body=ContentSchema,
    max_body=256 * KiB,
    example=CONTENT_EXAMPLE,
    responses={201: (WrittenSchema, "Created.")},
    errors=(409,),
)
def create_content() -> Any:
    """Create a piece of content (409 if the id exists); its author must exist."""
    return _create("content")


@bp.put("/content/<path:record_id>")
@operation(
    roles=ADMIN,
    tag="content",
    body=ContentSchema,
    max_body=256 * KiB,
    example=CONTENT_EXAMPLE,
    responses=WRITTEN,
    path_example="cnt-zoe-01",
)
def replace_content(record_id: str) -> Any:
    """Create or replace a piece of content."""
    return _replace("content", record_id)


@bp.delete("/content/<path:record_id>")
@operation(
    roles=ADMIN, tag="content", path_example="cnt-zoe-01", responses={200: (DeletedSchema, "Deleted.")}, errors=(404,)
)
def delete_content(record_id: str) -> Any:
    """Delete a piece of content and its vector."""
    return _delete("content", record_id)


@bp.post("/import")
@operation(
    roles=ADMIN,
    tag="import",
    lines=True,
    max_body=64 * 1024 * KiB,
    responses={200: (ImportReportSchema, "What happened to every line.")},
)
def import_records() -> Any:
    """Import JSON Lines (or CSV with a header, as text/csv) in the data contract: one transaction, a report of
    every line. ``?kind=influencers|content``, or it is told from the first record."""
    raw = body_bytes()
    is_csv = request.mimetype == "text/csv" or request.args.get("format") == "csv"
    kind = request.args.get("kind") or detect_kind_of_text(raw, csv=is_csv)
    report = engine().import_lines(kind, raw.splitlines(keepends=True), "request body", csv=is_csv)
    return reply(ImportReportSchema(), report.as_dict())
