"""The brand team's KPIs: activations, share of voice, tonality, and what customers did with what was shown."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from models.kpi_schemas import KpiQuerySchema, KpiResponseSchema
from routes import READERS, engine, operation, reply

bp = Blueprint("kpis", __name__, url_prefix="/v1")
QUERY, ANSWER = KpiQuerySchema(), KpiResponseSchema()


@bp.get("/kpis")
@operation(
    roles=READERS,
    tag="kpis",
    query=KpiQuerySchema,
    example={"campaign": "cmp-2026-rentree-securite", "group_by": "quarter,type", "since": "2026-07-01"},
    responses={200: (KpiResponseSchema, "Every section; each figure with its n and its definition.")},
)
def get_kpis() -> Any:
    """The brand team's KPIs, per activation and per quarter, from one consistent state of the data.

    Sections: `activations` (sent, responded, published, response and activation rates, the publications'
    quality and formats), `share_of_voice` and `tonality` of the influential voices (`voices`: the activated
    ones, or a category) per quarter and theme, `customers` (impressions, clicks, conversions, CTR, and COEC: CTR
    corrected for rank) and `spread` (how concentrated activations are over the roster: top 10% share, Gini).
    Each section splits by the `group_by` keys that apply to it and lists the others in `ignored_group_by`.
    Every figure reads `{value, n, definition}`; a rate over nothing is null.
    """
    # Repeated parameters (group_by=quarter&group_by=type) arrive as lists, single ones as strings.
    args = QUERY.load({name: v if len(v) > 1 else v[0] for name, v in request.args.lists()})
    return reply(ANSWER, engine().kpis(**QUERY.arguments(args)))
