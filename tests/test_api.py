"""The Flask app through its test client: contract of every route, and errors in one shape."""

from __future__ import annotations

import json

import pytest

from api import create_app
from matcher.keys import create_key
from models.api_schemas import ErrorSchema, MatchResponseSchema


@pytest.fixture(scope="module")
def app(homelive_dir):
    return create_app({"DATA_DIR": str(homelive_dir), "TESTING": True, "DEV_MODE": True})


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, body, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/v1/match", data=data, **kwargs)


def test_match_returns_ranked_explained_results(client):
    response = post(
        client,
        {"moment": "technical_validation", "query": "compatibilité des capteurs avec la box", "limit": 3},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.get_json()
    assert MatchResponseSchema().validate(body) == {}
    assert body["moment"] == "technical_validation" and len(body["influencers"]) == len(body["content"]) == 3
    first = body["influencers"][0]
    assert list(first)[:2] == ["id", "name"]
    assert {"relevance", "moment_fit", "influence", "engagement", "fatigue"} == set(first["score_parts"])
    assert first["explanation"] and first["evidence"]
    scores = [r["score"] for r in body["content"]]
    assert scores == sorted(scores, reverse=True)


def test_match_accepts_curl_form_encoding(client):
    """`curl -d '{...}'` sends application/x-www-form-urlencoded: the body is still JSON."""
    response = post(client, '{"moment":"discovery"}', content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and response.get_json()["content"]


def test_types_and_filters_shape_the_answer(client):
    body = post(
        client,
        {
            "moment": "desirability",
            "types": ["content"],
            "limit": 4,
            "filters": {"category": "customer", "language": ["fr"]},
        },
    ).get_json()
    assert body["influencers"] == [] and len(body["content"]) == 4
    assert all(c["influencer"]["category"] == "customer" and c["language"] == "fr" for c in body["content"])
    assert body["filters"] == {"category": ["customer"], "language": ["fr"]}


ERRORS = [  # (body, status, code, field named in the error or None)
    ("{", 400, "malformed_json", None),
    ("", 400, "malformed_json", None),
    (b"\xff\xfe", 400, "malformed_json", None),
    ("[1, 2]", 400, "invalid_request", "_schema"),
    ("null", 400, "invalid_request", "_schema"),
    ({}, 400, "invalid_request", "moment"),
    ({"moment": "purchase"}, 400, "unknown_moment", "moment"),
    ({"moment": 3}, 400, "invalid_request", "moment"),
    ({"moment": "discovery", "limit": 0}, 400, "invalid_request", "limit"),
    ({"moment": "discovery", "limit": 101}, 400, "invalid_request", "limit"),
    ({"moment": "discovery", "limit": "10"}, 400, "invalid_request", "limit"),
    ({"moment": "discovery", "query": "x" * 1001}, 400, "invalid_request", "query"),
    ({"moment": "discovery", "types": ["people"]}, 400, "invalid_request", "types"),
    ({"moment": "discovery", "types": []}, 400, "invalid_request", "types"),
    ({"moment": "discovery", "filters": {"category": "celebrity"}}, 400, "invalid_request", "filters"),
    ({"moment": "discovery", "filters": {"colour": "red"}}, 400, "invalid_request", "filters"),
    ({"moment": "discovery", "filters": {"min_followers": -1}}, 400, "invalid_request", "filters"),
    (
        {"moment": "discovery", "filters": {"min_followers": 10, "max_followers": 1}},
        400,
        "invalid_request",
        "min_followers",
    ),
    ({"moment": "discovery", "filters": "partner"}, 400, "invalid_request", "filters"),
    ({"moment": "discovery", "filter": {}}, 400, "invalid_request", "filter"),
]


@pytest.mark.parametrize(("body", "status", "code", "field"), ERRORS)
def test_bad_requests_get_a_clear_json_error_and_change_nothing(client, app, body, status, code, field):
    version = app.extensions["relais"].store.version
    response = post(client, body)
    assert response.status_code == status
    payload = response.get_json()
    assert ErrorSchema().validate(payload) == {}
    assert payload["error"]["status"] == status and payload["error"]["code"] == code
    assert payload["error"]["message"]
    if field:
        assert field in payload["error"]["fields"]
    assert app.extensions["relais"].store.version == version


def test_unknown_moment_names_the_valid_ones(client):
    message = post(client, {"moment": "purchase"}).get_json()["error"]["message"]
    assert all(name in message for name in ("discovery", "desirability", "technical_validation"))


def test_moments(client):
    body = client.get("/v1/moments").get_json()
    names = [m["name"] for m in body["moments"]]
    assert names == ["discovery", "desirability", "technical_validation"]
    validation = body["moments"][2]
    assert validation["formats"]["comparison_test"] > validation["formats"]["tweet"]
    assert {e["language"] for e in validation["examples"]} == {"fr", "en"}


def test_get_records(client, influencers, contents):
    some_influencer = next(i for i, r in influencers.items() if not r.get("opted_out"))
    body = client.get(f"/v1/influencers/{some_influencer}").get_json()
    assert body["id"] == some_influencer and body["name"] == influencers[some_influencer]["name"]
    assert body["content_count"] == sum(1 for c in contents.values() if c["influencer_id"] == some_influencer)
    brand = next(c for c, r in contents.items() if r["influencer_id"] is None)
    body = client.get(f"/v1/content/{brand}").get_json()
    assert body["title"] == contents[brand]["title"] and body["influencer"] is None


def test_unknown_and_opted_out_ids_are_not_found(client, app, influencers, contents):
    _, key = create_key(app.extensions["relais"].store, "planner")
    hidden = next(i for i, r in influencers.items() if r.get("opted_out"))
    hidden_content = next(c for c, r in contents.items() if r["influencer_id"] == hidden)
    for url in (
        "/v1/influencers/nobody",
        f"/v1/influencers/{hidden}",
        "/v1/content/nothing",
        f"/v1/content/{hidden_content}",
        "/v1/nowhere",
    ):
        response = client.get(url, headers={"X-API-Key": key})
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found", url


def test_wrong_method_is_a_json_405(client):
    response = client.delete("/v1/match")
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_health(client):
    body = client.get("/health").get_json()
    assert body["status"] == "ok" and body["records"] == {"influencers": 64, "content": 332}
    assert body["indexed"]["influencers"] == 61  # three influencers opted out
    assert body["store_version"] == body["index_version"]


@pytest.mark.parametrize(
    "body",
    [
        {"moment": "technical_validation", "query": "compatibilité des capteurs avec la box", "limit": 5},
        {"moment": "discovery", "types": ["content"], "filters": {"products": "homelive"}, "limit": 3},
        {"text": "est-ce que ça marche avec ma freebox ?", "limit": 2},
        {"moment": "desirability", "query": "rien à voir", "filters": {"language": "de"}},
    ],
)
def test_the_answer_is_the_response_schema_exactly(client, body):
    """The route writes match_dict's answer without dumping it through the schema (a third of a request's
    time): that is only right while dumping would change nothing."""
    answer = post(client, body).get_json()
    assert MatchResponseSchema().validate(answer) == {}
    assert MatchResponseSchema().dump(answer) == answer
    for result in answer["influencers"] + answer["content"]:
        assert isinstance(result["score"], float) and all(
            isinstance(p["value"], float) for p in result["score_parts"].values()
        )
