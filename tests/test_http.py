"""HTTP behaviour: request ids, JSON logs, body limits, rate limits, caching."""

from __future__ import annotations

import json
import logging

import pytest

from api import create_app
from matcher.errors import ConfigError
from matcher.keys import create_key
from routes.guard import JsonFormatter

MATCH = {"moment": "discovery", "limit": 1}


@pytest.fixture
def app(homelive_copy):
    return create_app(
        {
            "DATA_DIR": str(homelive_copy),
            "WARM_DETECTOR": False,
            "RATE_LIMITS": {
                "widget": "3 per minute",
                "planner": "600 per minute",
                "admin": "600 per minute",
                "anonymous": "600 per minute",
            },
        }
    )


@pytest.fixture
def key(app):
    return create_key(app.extensions["relais"].store, "admin")[1]


def headers(key, **more):
    return {"Authorization": f"Bearer {key}", **more}


@pytest.mark.parametrize(
    ("sent", "echoed"), [("trace-123.a_b", True), ("bad id with spaces", False), ("x" * 65, False), (None, False)]
)
def test_request_ids(app, key, sent, echoed):
    extra = {"X-Request-ID": sent} if sent else {}
    response = app.test_client().post("/v1/match", data=json.dumps(MATCH), headers=headers(key, **extra))
    got = response.headers["X-Request-ID"]
    assert (got == sent) is echoed
    if not echoed:
        assert len(got) == 32 and all(c in "0123456789abcdef" for c in got)


def test_one_json_log_line_per_request(app, key, caplog):
    with caplog.at_level(logging.INFO, logger="relais.access"):
        app.test_client().post("/v1/match", data=json.dumps(MATCH), headers=headers(key, **{"X-Request-ID": "abc"}))
        app.test_client().get("/v1/nowhere")
    records = [r for r in caplog.records if r.name == "relais.access"]
    assert [r.status for r in records] == [200, 404]
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == "abc" and line["route"] == "/v1/match" and line["method"] == "POST"
    assert line["role"] == "admin" and line["key_id"] and line["duration_ms"] > 0 and line["level"] == "INFO"
    assert key not in json.dumps(line)  # the key itself never reaches the logs


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "code"),
    [
        (
            "/v1/match",
            json.dumps({"moment": "discovery", "query": "x" * 70_000}),
            "application/json",
            413,
            "request_entity_too_large",
        ),
        (
            "/v1/influencers",
            json.dumps({"id": "x", "bio": "y" * 300_000}),
            "application/json",
            413,
            "request_entity_too_large",
        ),
        ("/v1/match", json.dumps(MATCH), "text/xml", 415, "unsupported_media_type"),
        ("/v1/match", json.dumps(MATCH), "multipart/form-data", 415, "unsupported_media_type"),
        ("/v1/import", "<a/>", "application/xml", 415, "unsupported_media_type"),
    ],
)
def test_body_limits(app, key, path, body, content_type, status, code):
    version = app.extensions["relais"].store.version
    response = app.test_client().post(path, data=body, content_type=content_type, headers=headers(key))
    assert response.status_code == status and response.get_json()["error"]["code"] == code
    assert app.extensions["relais"].store.version == version


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", "application/merge-patch+json", None]
)
def test_json_routes_accept_json_and_curls_default(app, key, content_type):
    response = app.test_client().post(
        "/v1/match", data=json.dumps(MATCH), content_type=content_type, headers=headers(key)
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**MATCH, "limit": 101}, "limit"),
        ({**MATCH, "query": "q" * 1001}, "query"),
        ({**MATCH, "filters": {"topics": ["t"] * 51}}, "filters"),
        ({**MATCH, "filters": {"topics": ["t" * 101]}}, "filters"),
    ],
)
def test_input_size_limits(app, key, body, field):
    response = app.test_client().post("/v1/match", data=json.dumps(body), headers=headers(key))
    assert response.status_code == 400 and field in response.get_json()["error"]["fields"]


def test_rate_limit_per_key_with_retry_after(app):
    store = app.extensions["relais"].store
    site = "https://www.example.com"
    first = create_key(store, "widget", [site])[1]
    second = create_key(store, "widget", [site])[1]
    client = app.test_client()
    statuses = [
        client.post("/v1/match", data=json.dumps(MATCH), headers=headers(first, Origin=site)).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = client.post("/v1/match", data=json.dumps(MATCH), headers=headers(first, Origin=site))
    assert limited.get_json()["error"]["code"] == "too_many_requests"
    assert int(limited.headers["Retry-After"]) > 0 and "Retry-After" in limited.get_json()["error"]["message"]
    # limits are per key: another widget key is not affected
    assert client.post("/v1/match", data=json.dumps(MATCH), headers=headers(second, Origin=site)).status_code == 200
    # a widget key's limit is per visitor: the site's other visitors are not affected
    visitor = {"REMOTE_ADDR": "203.0.113.9"}
    other = client.post("/v1/match", data=json.dumps(MATCH), headers=headers(first, Origin=site), environ_base=visitor)
    assert other.status_code == 200


@pytest.mark.parametrize("hops", [0, 1])
def test_a_widget_visitor_behind_a_proxy_is_counted_by_the_address_the_proxy_saw(homelive_copy, hops):
    """Behind a load balancer every request comes from its address: with TRUSTED_PROXIES=1 the last hop of
    X-Forwarded-For is the visitor (one visitor over the limit leaves the others theirs); with 0, the header is
    anyone's claim and is ignored (a script cannot get a fresh allowance by inventing addresses)."""
    app = create_app(
        {
            "DATA_DIR": str(homelive_copy),
            "WARM_DETECTOR": False,
            "TRUSTED_PROXIES": hops,
            "RATE_LIMITS": {"widget": "2 per minute"},
        }
    )
    site = "https://www.example.com"
    widget = create_key(app.extensions["relais"].store, "widget", [site])[1]
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}

    def visit(visitor: str) -> int:
        sent = headers(widget, Origin=site, **{"X-Forwarded-For": f"198.51.100.7, {visitor}"})
        return client.post("/v1/match", data=json.dumps(MATCH), headers=sent, environ_base=proxy).status_code

    assert [visit("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert visit("203.0.113.2") == (200 if hops else 429)


def test_widget_requests_are_cacheable(app, key):
    client = app.test_client()
    url = "/v1/match?moment=discovery&types=content&products=homelive&limit=3"
    first = client.get(url, headers=headers(key))
    assert first.status_code == 200 and len(first.get_json()["content"]) == 3
    assert "Retry-After" not in first.headers and first.headers["X-RateLimit-Limit"]
    assert first.headers["Cache-Control"].startswith("public, max-age=") and first.headers["ETag"]
    assert "Origin" in first.headers["Vary"]
    again = client.get(url, headers=headers(key, **{"If-None-Match": first.headers["ETag"]}))
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == first.headers["ETag"]
    other = client.get(url.replace("limit=3", "limit=2"), headers=headers(key))
    assert other.headers["ETag"] != first.headers["ETag"]
    # a write changes the answer's ETag
    client.put(
        "/v1/influencers/inf-etag",
        data=json.dumps({"name": "E", "category": "customer", "platforms": []}),
        headers=headers(key),
    )
    assert client.get(url, headers=headers(key)).headers["ETag"] != first.headers["ETag"]
    # POST answers are not cached
    assert client.post("/v1/match", data=json.dumps(MATCH), headers=headers(key)).headers["Cache-Control"] == "no-store"


def test_get_and_post_give_the_same_answer(app, key):
    client = app.test_client()
    got = client.get(
        "/v1/match?moment=technical_validation&query=installation&limit=3&language=fr", headers=headers(key)
    ).get_json()
    posted = client.post(
        "/v1/match",
        data=json.dumps(
            {"moment": "technical_validation", "query": "installation", "limit": 3, "filters": {"language": ["fr"]}}
        ),
        headers=headers(key),
    ).get_json()
    assert got == posted


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=abc", "limit"), ("colour=red", "colour"), ("types=people", "types"), ("", "moment")],
)
def test_get_match_validates_its_query_string(app, key, query, field):
    url = f"/v1/match?{'moment=discovery&' if field != 'moment' else ''}{query}"
    response = app.test_client().get(url, headers=headers(key))
    assert response.status_code == 400 and field in json.dumps(response.get_json()["error"]["fields"])


def test_a_rate_limit_setting_may_name_one_role(homelive_copy):
    app = create_app({"DATA_DIR": str(homelive_copy), "WARM_DETECTOR": False, "RATE_LIMITS": {"widget": "2 per hour"}})
    assert app.config["RATE_LIMITS"]["widget"] == "2 per hour"
    response = app.test_client().get("/health")  # anonymous: the default limit still applies
    assert response.status_code == 200 and int(response.headers["X-RateLimit-Limit"]) > 2


@pytest.mark.parametrize(
    "setting",
    [{"RATE_LIMITS": {"widget": "often"}}, {"RATE_LIMITS": {"robots": "1 per second"}}, {"RATELIMIT_STRATEGY": "x"}],
)
def test_a_wrong_rate_limit_setting_stops_the_start(homelive_copy, setting):
    with pytest.raises(ConfigError) as raised:
        create_app({"DATA_DIR": str(homelive_copy), "WARM_DETECTOR": False, **setting})
    assert next(iter(setting)) in str(raised.value)


def test_unreachable_counters_let_requests_through_and_say_so(homelive_copy, caplog, monkeypatch):
    """A rate-limit store that is down must not take the API down with it."""
    from routes import guard
    from tests.test_server import free_port

    monkeypatch.setattr(guard, "_outage_logged", -guard.OUTAGE_LOG_EVERY_S)  # as in a process that never logged it

    app = create_app(
        {
            "DATA_DIR": str(homelive_copy),
            "WARM_DETECTOR": False,
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}",  # nothing listens there
        }
    )
    key = create_key(app.extensions["relais"].store, "admin")[1]
    with caplog.at_level(logging.ERROR, logger="relais.api"):
        response = app.test_client().post("/v1/match", data=json.dumps(MATCH), headers=headers(key))
    assert response.status_code == 200 and "X-RateLimit-Remaining" not in response.headers
    assert any("rate-limit counters unavailable" in r.getMessage() for r in caplog.records)
