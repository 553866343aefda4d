"""Plans: from a brief to shortlists per moment and category, content gaps and suggested activations; the plan's
rows turned into activations in one call; CSV and JSON exports."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, url_for

from models.plan_schemas import (
    PlanActivationsOutSchema,
    PlanActivationsRequestSchema,
    PlanDeletedSchema,
    PlanEditsRequestSchema,
    PlanListSchema,
    PlanOutSchema,
    PlanRequestSchema,
)
from routes import READERS, body_bytes, engine, json_body, operation, reply

bp = Blueprint("plans", __name__, url_prefix="/v1")

PLAN_ID = "pln-2026rentree0"  # an example: not in the fixtures, so its routes answer 404 there
PLAN_EXAMPLE = {
    "products": ["homelive"],
    "brief": "Le détecteur de fumée connecté, testé chez des passionnés de domotique.",
    "moments": ["discovery", "desirability", "technical_validation"],
    "budget": {"partner": 3, "statutory": 1},
    "languages": ["fr"],
    "starts_on": "2026-09-01",
    "ends_on": "2026-10-15",
}
PLAN = {200: (PlanOutSchema, "The plan.")}


def _plans() -> Any:
    return engine().plans


@bp.get("/plans")
@operation(roles=READERS, tag="plans", responses={200: (PlanListSchema, "Every plan, latest first.")})
def list_plans() -> Any:
    """Every plan, the latest first, summarised."""
    return reply(PlanListSchema(), {"plans": _plans().list_plans()})


@bp.post("/plans")
@operation(
    roles=READERS,
    tag="plans",
    body=PlanRequestSchema,
    example=PLAN_EXAMPLE,
    responses={201: (PlanOutSchema, "Planned and stored.")},
)
def create_plan() -> Any:
    """Plan a campaign across moments and influencer categories, and store the plan.

    Per moment (all unless `moments` says): per category, a shortlist of `budget[category]`
    influencers ranked for the brief with their score parts, and `alternates` behind it; who was skipped and why
    (held, at a fatigue cap, excluded, or in the plan at another moment: a person appears once per plan, where they
    score best); the content that already serves the moment for the products; the **gaps** (formats the moment values
    with no good piece in a language of the plan); an activation type suggested per person with its reason, and how
    past activations of that type went at that moment. No two near-identical profiles share a shortlist, and
    shortlists spread over networks where they can. `rules` states every rule with its numbers.
    """
    plan = _plans().create(json_body())
    location = url_for("plans.get_plan", plan_id=plan["id"])
    return reply(PlanOutSchema(), plan, 201, {"Location": location})


@bp.get("/plans/<path:plan_id>")
@operation(roles=READERS, tag="plans", path_example=PLAN_ID, responses=PLAN, errors=(404,))
def get_plan(plan_id: str) -> Any:
    """One plan as made, with the status of the activations it created (people who opted out since are left out)."""
    return reply(PlanOutSchema(), _plans().get(plan_id))


@bp.get("/plans/<path:plan_id>.csv")
@operation(
    roles=READERS,
    tag="plans",
    path_example=PLAN_ID,
    responses={200: (None, "text/csv: one line per person proposed, per moment and category.")},
    errors=(404,),
)
def get_plan_csv(plan_id: str) -> Any:
    """One plan as CSV: moment, category, rank, role, person, suggested activation, fatigue, past rates.

    The same rows as the JSON (shortlists, then alternates); lists are joined by `|`.
    """
    text = _plans().csv_text(plan_id)
    headers = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{plan_id}.csv"',
    }
    return text, 200, headers


@bp.put("/plans/<path:plan_id>")
@operation(
    roles=READERS,
    tag="plans",
    body=PlanRequestSchema,
    example=PLAN_EXAMPLE,
    path_example=PLAN_ID,
    responses=PLAN,
    errors=(404,),
)
def replace_plan(plan_id: str) -> Any:
    """Plan again for a new request under the same id; the activations it created stay tracked."""
    return reply(PlanOutSchema(), _plans().replace(plan_id, json_body()))


@bp.patch("/plans/<path:plan_id>")
@operation(
    roles=READERS,
    tag="plans",
    body=PlanEditsRequestSchema,
    example={"edits": [{"moment": "technical_validation", "influencer": "inf-julien-domotique", "to": "alternates"}]},
    path_example=PLAN_ID,
    responses=PLAN,
    errors=(404, 409),
)
def edit_plan(plan_id: str) -> Any:
    """Edit a plan's lists: move people between a shortlist and its alternates, drop them, add someone.

    Edits apply in order, all or none. `to: dropped` lists the person among the skipped ("dropped by a planner")
    and excludes them if the plan is made again; someone the plan does not hold at that moment is added, scored for
    the brief as the others were, if they may be contacted (else 409) and are not in the plan at another moment
    (409). No shortlist may end above its budget (409): a swap is two edits in one call.
    """
    return reply(PlanOutSchema(), _plans().edit(plan_id, json_body()))


@bp.delete("/plans/<path:plan_id>")
@operation(
    roles=READERS, tag="plans", path_example=PLAN_ID, responses={200: (PlanDeletedSchema, "Deleted.")}, errors=(404,)
)
def delete_plan(plan_id: str) -> Any:
    """Forget a plan; the activations it created stay."""
    return reply(PlanDeletedSchema(), _plans().delete(plan_id))


@bp.post("/plans/<path:plan_id>/activations")
@operation(
    roles=READERS,
    tag="plans",
    body=PlanActivationsRequestSchema,
    example={"influencers": ["inf-julien-domotique"]},
    path_example=PLAN_ID,
    responses={
        201: (PlanActivationsOutSchema, "Activations created."),
        200: (PlanActivationsOutSchema, "Nothing new: every row asked for has its activation."),
    },
    errors=(404, 409),
)
def create_plan_activations(plan_id: str) -> Any:
    """Turn a plan's shortlisted rows (or the people named) into proposed activations, once each.

    Each gets the suggested type, the plan's campaign, moment and dates; the plan then tracks them. A second call
    makes none for rows that have one. An empty body means every shortlisted row.
    """
    body = json_body() if body_bytes().strip() else None
    answer = _plans().create_activations(plan_id, body)
    return reply(PlanActivationsOutSchema(), answer, 201 if answer["created"] else 200)
