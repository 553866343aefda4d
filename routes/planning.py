"""Campaigns, activations and contact holds: what planners record of the influencers they activate."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("planning", __name__, url_prefix="/v1")
