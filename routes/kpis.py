"""The brand team's KPIs: activations, share of voice, tonality, and what customers did with what was shown."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("kpis", __name__, url_prefix="/v1")
