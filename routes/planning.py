"""Campaigns, activations and contact holds: what planners record of the influencers they activate."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for

from models.api_schemas import load_or_raise
from models.planning_schemas import (
    ActivationChangesSchema,
    ActivationListSchema,
    ActivationOutSchema,
    ActivationQuerySchema,
    ActivationSchema,
    CampaignListSchema,
    CampaignOutSchema,
    CampaignSchema,
    HoldOutSchema,
    HoldSchema,
    PlanningDeletedSchema,
)
from routes import READERS, engine, json_body, operation, reply

bp = Blueprint("planning", __name__, url_prefix="/v1")
QUERY, HOLD = ActivationQuerySchema(), HoldSchema()

CAMPAIGN_ID = "cmp-2026-rentree-securite"  # examples: not in the fixtures, so their routes answer 404 there
ACTIVATION_ID = "act-2026-julien-detecteur"
CAMPAIGN_EXAMPLE = {
    "id": CAMPAIGN_ID,
    "name": "Rentrée : la maison en sécurité",
    "products": ["homelive"],
    "brief": "Le détecteur de fumée connecté, testé chez des passionnés de domotique.",
    "starts_on": "2026-09-01",
    "ends_on": "2026-10-15",
}
ACTIVATION_EXAMPLE = {
    "id": ACTIVATION_ID,
    "influencer_id": "inf-julien-domotique",
    "campaign_id": CAMPAIGN_ID,
    "moment": "technical_validation",
    "type": "product_test",
    "status": "proposed",
    "starts_on": "2026-09-10",
    "ends_on": "2026-09-30",
    "notes": "Un kit détecteur + box, retour attendu en vidéo.",
}
CAMPAIGN = {200: (CampaignOutSchema, "The campaign.")}
ACTIVATION = {200: (ActivationOutSchema, "The activation.")}
HOLD_ANSWER = {200: (HoldOutSchema, "The hold (until null: none).")}
DELETED = {200: (PlanningDeletedSchema, "Deleted.")}


# -- campaigns -----------------------------------------------------------------------------------


@bp.get("/campaigns")
@operation(roles=READERS, tag="campaigns", responses={200: (CampaignListSchema, "Every campaign, latest first.")})
def list_campaigns() -> Any:
    """Every campaign, the latest first, with how many activations each has."""
    return reply(CampaignListSchema(), {"campaigns": engine().planning.list_campaigns()})


@bp.post("/campaigns")
@operation(
    roles=READERS,
    tag="campaigns",
    body=CampaignSchema,
    example=CAMPAIGN_EXAMPLE,
    responses={201: (CampaignOutSchema, "Created.")},
    errors=(409,),
)
def create_campaign() -> Any:
    """Create a campaign (409 if the id exists; without one, an id is made)."""
    campaign = engine().planning.create_campaign(json_body())
    location = url_for("planning.get_campaign", campaign_id=campaign["id"])
    return reply(CampaignOutSchema(), campaign, 201, {"Location": location})


@bp.get("/campaigns/<path:campaign_id>")
@operation(roles=READERS, tag="campaigns", path_example=CAMPAIGN_ID, responses=CAMPAIGN, errors=(404,))
def get_campaign(campaign_id: str) -> Any:
    """One campaign."""
    return reply(CampaignOutSchema(), engine().planning.get_campaign(campaign_id))


@bp.put("/campaigns/<path:campaign_id>")
@operation(
    roles=READERS,
    tag="campaigns",
    body=CampaignSchema,
    example=CAMPAIGN_EXAMPLE,
    path_example=CAMPAIGN_ID,
    responses=CAMPAIGN,
    errors=(404,),
)
def replace_campaign(campaign_id: str) -> Any:
    """Replace a campaign's fields (those left out take their defaults); 404 if there is none: POST creates."""
    return reply(CampaignOutSchema(), engine().planning.update_campaign(campaign_id, json_body()))


@bp.delete("/campaigns/<path:campaign_id>")
@operation(roles=READERS, tag="campaigns", path_example=CAMPAIGN_ID, responses=DELETED, errors=(404, 409))
def delete_campaign(campaign_id: str) -> Any:
    """Delete a campaign; 409 while activations belong to it."""
    return reply(PlanningDeletedSchema(), engine().planning.delete_campaign(campaign_id))


# -- activations ---------------------------------------------------------------------------------


@bp.get("/activations")
@operation(
    roles=READERS,
    tag="activations",
    query=ActivationQuerySchema,
    responses={200: (ActivationListSchema, "A page of the activations that pass the filters.")},
)
def list_activations() -> Any:
    """Activations, the latest first, filtered by campaign, influencer, status, moment, type and dates.

    An activation's days are those it takes place (starts_on to ends_on), else the day it was sent, else the day
    it was recorded; `since` and `until` keep those that overlap them. `total` counts every page.
    """
    args = load_or_raise(QUERY, request.args.to_dict())
    return reply(ActivationListSchema(), engine().planning.list_activations(**args))


@bp.post("/activations")
@operation(
    roles=READERS,
    tag="activations",
    body=ActivationSchema,
    example=ACTIVATION_EXAMPLE,
    responses={201: (ActivationOutSchema, "Created.")},
    errors=(409,),
)
def create_activation() -> Any:
    """Record an activation: one influencer, for a campaign, at a moment (409 if the id exists).

    It is proposed unless told; one recorded in a later status (history) gets the timestamps that status implies:
    those sent, or now.
    """
    activation = engine().planning.create_activation(json_body())
    location = url_for("planning.get_activation", activation_id=activation["id"])
    return reply(ActivationOutSchema(), activation, 201, {"Location": location})


@bp.get("/activations/<path:activation_id>")
@operation(roles=READERS, tag="activations", path_example=ACTIVATION_ID, responses=ACTIVATION, errors=(404,))
def get_activation(activation_id: str) -> Any:
    """One activation, with the statuses it may move to."""
    return reply(ActivationOutSchema(), engine().planning.get_activation(activation_id))


@bp.put("/activations/<path:activation_id>")
@operation(
    roles=READERS,
    tag="activations",
    body=ActivationSchema,
    example=ACTIVATION_EXAMPLE,
    path_example=ACTIVATION_ID,
    responses=ACTIVATION,
    errors=(404, 409),
)
def replace_activation(activation_id: str) -> Any:
    """Replace an activation's fields (those left out take their defaults).

    The status and its timestamps are kept unless sent: the status moves only along its lifecycle (409 otherwise).
    """
    return reply(ActivationOutSchema(), engine().planning.update_activation(activation_id, json_body(), replace=True))


@bp.patch("/activations/<path:activation_id>")
@operation(
    roles=READERS,
    tag="activations",
    body=ActivationChangesSchema,
    example={"status": "sent"},
    path_example=ACTIVATION_ID,
    responses=ACTIVATION,
    errors=(404, 409),
)
def update_activation(activation_id: str) -> Any:
    """Change some of an activation's fields; a new status must follow the lifecycle (409 otherwise).

    proposed → sent → accepted or declined; accepted (or sent) → published. Reaching a status records when
    (`sent_at`, `responded_at`, `published_at`): now, or the time sent.
    """
    return reply(ActivationOutSchema(), engine().planning.update_activation(activation_id, json_body()))


@bp.delete("/activations/<path:activation_id>")
@operation(roles=READERS, tag="activations", path_example=ACTIVATION_ID, responses=DELETED, errors=(404,))
def delete_activation(activation_id: str) -> Any:
    """Forget an activation."""
    return reply(PlanningDeletedSchema(), engine().planning.delete_activation(activation_id))


# -- contact holds -------------------------------------------------------------------------------


@bp.get("/influencers/<path:influencer_id>/hold")
@operation(roles=READERS, tag="holds", path_example="inf-julien-domotique", responses=HOLD_ANSWER, errors=(404,))
def get_hold(influencer_id: str) -> Any:
    """An influencer's "do not contact before" date, if they have one."""
    return reply(HoldOutSchema(), engine().planning.get_hold(influencer_id))


@bp.put("/influencers/<path:influencer_id>/hold")
@operation(
    roles=READERS,
    tag="holds",
    body=HoldSchema,
    example={"until": "2027-03-01", "reason": "A demandé une pause après les tests d'automne."},
    path_example="inf-julien-domotique",
    responses=HOLD_ANSWER,
    errors=(404,),
)
def set_hold(influencer_id: str) -> Any:
    """Do not contact an influencer before a date (replaces the hold they had)."""
    body = load_or_raise(HOLD, json_body())
    return reply(HoldOutSchema(), engine().planning.set_hold(influencer_id, body["until"], body["reason"]))


@bp.delete("/influencers/<path:influencer_id>/hold")
@operation(
    roles=READERS,
    tag="holds",
    path_example="inf-julien-domotique",
    responses={200: (PlanningDeletedSchema, "Lifted (deleted: false if there was none).")},
    errors=(404,),
)
def clear_hold(influencer_id: str) -> Any:
    """Lift an influencer's hold."""
    return reply(PlanningDeletedSchema(), {"id": influencer_id, "deleted": engine().planning.clear_hold(influencer_id)})
