"""Service routes: health."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from models.api_schemas import HealthSchema
from routes import PUBLIC, engine, operation, reply

bp = Blueprint("system", __name__)


@bp.get("/health")
@operation(
    roles=PUBLIC,
    tag="service",
    responses={
        200: (HealthSchema, "Alive, and what is loaded."),
        503: (HealthSchema, "Alive, but the database cannot be read: the problem and what to do."),
    },
)
def health() -> Any:
    """Liveness, and what is loaded: model, record and index counts, store and index versions."""
    found = engine().health()
    return reply(HealthSchema(), found, 200 if found["status"] == "ok" else 503)
