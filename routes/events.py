"""Outcome events: what customers did with what a match showed them."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("events", __name__, url_prefix="/v1")
