"""Service routes: health."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from models.api_schemas import HealthSchema
from routes import PUBLIC, engine, operation, reply

bp = Blueprint("system", __name__)


@bp.get("/health")
@operation(roles=PUBLIC, tag="service", responses={200: (HealthSchema, "Alive, and what is loaded.")})
def health() -> Any:
    """Liveness, and what is loaded: model, record and index counts, store and index versions."""
    return reply(HealthSchema(), engine().health())
