"""The API describes itself: every route is in the OpenAPI document, with the roles the guard enforces."""

from __future__ import annotations

import pytest
import schemathesis

from api import create_app


@pytest.fixture(scope="module")
def app(homelive_dir):
    return create_app({"DATA_DIR": str(homelive_dir), "WARM_DETECTOR": False})


@pytest.fixture(scope="module")
def spec(app):
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_valid_openapi(app, spec):
    assert spec["openapi"].startswith("3.0")
    schema = schemathesis.openapi.from_dict(spec)  # refuses documents that break the OpenAPI schema
    routes = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if hasattr(app.view_functions[rule.endpoint], "operation")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    ]
    assert len(list(schema.get_all_operations())) == len(routes) > 16


def test_every_route_is_documented_with_its_roles(app, spec):
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        assert hasattr(view, "operation"), f"{rule.rule} has no @operation: undocumented and unguarded"
        path = rule.rule.replace("<path:", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented
            documented_roles = spec["paths"][path][method.lower()]["x-roles"]
            assert documented_roles == (list(view.operation.roles) or ["public"])


def test_errors_share_one_schema_and_are_listed(spec):
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorBody")
    body = spec["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"status", "code", "message"} and "fields" in body["properties"]
    match = spec["paths"]["/v1/match"]["post"]["responses"]
    assert {"200", "400", "401", "403", "413", "415", "429"} <= set(match)
    assert "Retry-After" in match["429"]["headers"]
    assert set(spec["paths"]["/health"]["get"]["responses"]) == {"200", "429", "503"}  # public: no 401


def test_storage_errors_are_documented_where_they_can_happen(spec):
    """Issue 14: any keyed route reads the store (503 when it cannot be read), any write can meet a full disk
    (507); the public documents and pages touch neither."""
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            keyed = bool(op.get("security"))
            assert ("503" in op["responses"]) is (keyed or path == "/health"), (method, path)
            assert ("507" in op["responses"]) is (keyed and method in ("post", "put", "patch", "delete")), (
                method,
                path,
            )


def test_bodies_have_examples_from_the_fixtures(app, spec):
    body = spec["paths"]["/v1/match"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"]["query"] == "compatibilité des capteurs avec la box"
    moments = spec["components"]["schemas"]["MatchRequest"]["properties"]["moment"]["enum"]
    assert moments == sorted(app.extensions["relais"].moments)
    assert spec["components"]["schemas"]["MatchRequest"]["additionalProperties"] is False


def test_docs_page_renders_every_operation(app, spec):
    response = app.test_client().get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.data.decode()
    for path, ops in spec["paths"].items():
        assert f"<code>{path}</code>" in html
        for op in ops.values():
            assert f'id="{op["operationId"]}"' in html
    assert "<script" not in html  # nothing to run, nothing fetched
    assert "compatibilité des capteurs avec la box" in html
