"""Service routes: health."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from models.api_schemas import HealthSchema
from routes import engine, reply

bp = Blueprint("system", __name__)


@bp.get("/health")
def health() -> Any:
    """Liveness, and what is loaded: model, record and index counts, store and index versions."""
    return reply(HealthSchema(), engine().health())
