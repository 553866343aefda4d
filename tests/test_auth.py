"""Keys and roles: every role on every route, origins for widget keys, revocation, CORS."""

from __future__ import annotations

import json

import pytest

from api import create_app
from matcher.keys import create_key, revoke_key

SITE = "https://www.example.com"
PERSON = {"name": "Zoé", "category": "affinity", "platforms": [{"network": "youtube", "followers": 10}]}
PIECE = {"influencer_id": None, "title": "Un titre", "format": "tweet", "published_at": "2026-01-01"}
ACTIVATION = {"influencer_id": "inf-julien-domotique", "type": "event"}

# (method, path, body) and who may: "anyone" = any key, "readers" = planner or admin, "admin", "public" = no key
ROUTES = [
    ("post", "/v1/match", {"moment": "discovery", "limit": 1}, "anyone"),
    ("get", "/v1/match?moment=discovery&limit=1", None, "anyone"),
    ("post", "/v1/moments/detect", {"text": "c'est quoi ?"}, "anyone"),
    ("get", "/v1/moments", None, "anyone"),
    ("get", "/v1/influencers/inf-julien-domotique", None, "readers"),
    ("get", "/v1/content/cnt-orange-01", None, "readers"),
    ("post", "/v1/influencers", {**PERSON, "id": "inf-new-{role}"}, "admin"),
    ("put", "/v1/influencers/inf-put-{role}", PERSON, "admin"),
    ("delete", "/v1/influencers/inf-put-admin", None, "admin"),
    ("post", "/v1/content", {**PIECE, "id": "cnt-new-{role}"}, "admin"),
    ("put", "/v1/content/cnt-put-{role}", PIECE, "admin"),
    ("delete", "/v1/content/cnt-put-admin", None, "admin"),
    ("post", "/v1/import?kind=influencers", json.dumps({**PERSON, "id": "inf-imported"}), "admin"),
    ("post", "/v1/campaigns", {"id": "cmp-auth-{role}", "name": "Rentrée"}, "readers"),
    ("get", "/v1/campaigns", None, "readers"),
    ("get", "/v1/campaigns/cmp-auth-{role}", None, "readers"),
    ("put", "/v1/campaigns/cmp-auth-{role}", {"name": "Rentrée 2026"}, "readers"),
    ("post", "/v1/activations", {**ACTIVATION, "id": "act-auth-{role}", "campaign_id": "cmp-auth-{role}"}, "readers"),
    ("get", "/v1/activations?campaign=cmp-auth-{role}", None, "readers"),
    ("get", "/v1/activations/act-auth-{role}", None, "readers"),
    ("patch", "/v1/activations/act-auth-{role}", {"status": "sent"}, "readers"),
    ("put", "/v1/activations/act-auth-{role}", {**ACTIVATION, "type": "press"}, "readers"),
    ("delete", "/v1/activations/act-auth-{role}", None, "readers"),
    ("delete", "/v1/campaigns/cmp-auth-{role}", None, "readers"),
    ("put", "/v1/influencers/inf-julien-domotique/hold", {"until": "2027-03-01"}, "readers"),
    ("get", "/v1/influencers/inf-julien-domotique/hold", None, "readers"),
    ("delete", "/v1/influencers/inf-julien-domotique/hold", None, "readers"),
    (
        "post",
        "/v1/events",
        {"events": [{"event_id": "auth-{role}", "type": "impression", "item_id": "cnt-orange-01", "rank": 1}]},
        "anyone",
    ),
    ("get", "/health", None, "public"),
    ("get", "/openapi.json", None, "public"),
    ("get", "/docs", None, "public"),
]
ALLOWED = {
    "anyone": {"widget", "planner", "admin"},
    "readers": {"planner", "admin"},
    "admin": {"admin"},
    "public": {None, "widget", "planner", "admin"},
}


@pytest.fixture(scope="module")
def app(homelive_dir, tmp_path_factory):
    from tests.conftest import copy_data_dir

    data = copy_data_dir(homelive_dir, tmp_path_factory.mktemp("auth") / "data")
    # Every refusal here comes from one address: the limit on failed authentications is tested on its own
    # (tests/test_hardening.py), not by every test that expects a 401 or a 403.
    many = {"failed": "1000000 per minute"}
    return create_app({"DATA_DIR": str(data), "WARM_DETECTOR": False, "RATE_LIMITS": many})


@pytest.fixture(scope="module")
def keys(app):
    store = app.extensions["relais"].store
    return {
        role: create_key(store, role, [SITE] if role == "widget" else [])[1] for role in ("widget", "planner", "admin")
    }


def call(client, method, path, body, key=None, origin=SITE, role=""):
    headers = {"Origin": origin} if origin else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else body if isinstance(body, str) else json.dumps(body).replace("{role}", role)
    return getattr(client, method)(path.replace("{role}", role), data=data, headers=headers)


@pytest.mark.parametrize("role", [None, "widget", "planner", "admin"])
@pytest.mark.parametrize(("method", "path", "body", "who"), ROUTES)
def test_every_role_on_every_route(app, keys, role, method, path, body, who):
    client = app.test_client()
    response = call(client, method, path, body, keys.get(role), role=role or "none")
    if role in ALLOWED[who]:
        assert response.status_code < 300, (response.status_code, response.get_json())
    elif role is None:
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    else:
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
        assert role in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (SITE, True),
        ("https://www.example.com:443", True),
        ("https://evil.example", False),
        ("http://www.example.com", False),
        (None, False),
    ],
)
def test_a_widget_key_works_only_from_its_origins(app, keys, origin, allowed):
    response = call(app.test_client(), "post", "/v1/match", {"moment": "discovery", "limit": 1}, keys["widget"], origin)
    assert response.status_code == (200 if allowed else 403)
    # a refused page may read why (the widget tells its site), and nothing else: the answer is the error alone
    assert ("Access-Control-Allow-Origin" in response.headers) is (allowed or origin is not None)
    if not allowed:
        assert set(response.get_json()) == {"error"}
    if allowed:
        assert response.headers["Access-Control-Allow-Origin"] == origin and "Origin" in response.headers["Vary"]


def test_planner_and_admin_keys_need_no_origin(app, keys):
    for role in ("planner", "admin"):
        assert call(app.test_client(), "get", "/v1/moments", None, keys[role], origin=None).status_code == 200


@pytest.mark.parametrize("key", ["", "rk_", "rk_nothing_here", "not-a-key", "rk_000000000000_" + "x" * 43])
def test_malformed_or_unknown_keys_are_401(app, key):
    response = call(app.test_client(), "get", "/v1/moments", None, key or None)
    assert response.status_code == 401


def test_a_revoked_key_is_refused_at_once(app):
    store = app.extensions["relais"].store
    record, key = create_key(store, "planner", label="temp")
    assert call(app.test_client(), "get", "/v1/moments", None, key).status_code == 200
    assert revoke_key(store, record.key_id)
    response = call(app.test_client(), "get", "/v1/moments", None, key)
    assert response.status_code == 401 and "revoked" in response.get_json()["error"]["message"]


def test_x_api_key_header_works_too(app, keys):
    response = app.test_client().get("/v1/moments", headers={"X-API-Key": keys["planner"]})
    assert response.status_code == 200


def test_preflight_answers_only_known_origins(app, keys):
    client = app.test_client()
    ok = client.options("/v1/match", headers={"Origin": SITE, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == SITE
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    other = client.options(
        "/v1/match", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert other.status_code == 204 and "Access-Control-Allow-Origin" not in other.headers


def test_dev_mode_is_off_by_default_and_explicit(homelive_dir):
    assert (
        create_app({"DATA_DIR": str(homelive_dir), "WARM_DETECTOR": False}).test_client().get("/v1/moments").status_code
        == 401
    )
    dev = create_app({"DATA_DIR": str(homelive_dir), "WARM_DETECTOR": False, "DEV_MODE": True})
    assert dev.test_client().get("/v1/moments").status_code == 200
