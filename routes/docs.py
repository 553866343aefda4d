"""The API describing itself: /openapi.json (OpenAPI 3, built by apispec from the routes' ``@operation`` and
their marshmallow schemas) and /docs (the same document, rendered for people; no script, nothing fetched)."""

from __future__ import annotations

import json
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify, render_template_string
from markupsafe import Markup, escape
from werkzeug.routing import Rule

import matcher
from models.api_schemas import ErrorSchema
from routes import PUBLIC, Operation, operation

bp = Blueprint("docs", __name__)

INTRO = """Relais returns the influencers and the content that fit each micro-moment of a customer journey
(discovery, desirability, technical validation), for a moment, a query or a customer's words, with the reasons
for every score.

Send an API key as `Authorization: Bearer <key>` (or `X-API-Key`). Roles: **widget** (match and detect only;
bound to the web origins it was created for), **planner** (read everything), **admin** (also write, import,
delete). Errors always read `{"error": {"status", "code", "message", "fields"?}}`. Every response carries an
`X-Request-ID` (send your own to trace a call). Rate limits are per key; over them, 429 with `Retry-After`."""

ERRORS = {
    304: "Not modified.",
    400: "Invalid request: `fields` says what to fix.",
    401: "No API key, or an unknown or revoked one.",
    403: "The key's role may not do this, or a widget key is used from an origin it is not bound to.",
    404: "No such record (opted-out records are found only by admin keys).",
    409: "A conflict: the id exists already (PUT replaces), or the change breaks a rule the message names.",
    413: "The body is larger than this route takes.",
    414: "The request line (path and query string) is over 8 KB: send a match as POST.",
    415: "The body's Content-Type is not accepted here.",
    429: "Too many requests for this key: wait for `Retry-After` seconds.",
    503: "The database cannot be read (damaged: restore it, then `matcher check`) or written (a read-only disk).",
    507: "The disk holding the data dir is full: nothing was written.",
}
WRITES = {"post", "put", "patch", "delete"}


@bp.get("/openapi.json")
@operation(roles=PUBLIC, tag="service", responses={200: (None, "This document (OpenAPI 3.0).")})
def openapi() -> Any:
    """The OpenAPI 3 document of this API."""
    return jsonify(document())


@bp.get("/docs")
@operation(roles=PUBLIC, tag="service", responses={200: (None, "This page (HTML).")})
def docs() -> Any:
    """The API reference, for people."""
    spec = document()
    html = render_template_string(
        PAGE,
        spec=spec,
        intro=_paragraphs(INTRO),
        fields=lambda s: _fields(spec, s),
        as_json=lambda v: json.dumps(v, ensure_ascii=False, indent=2),
        paragraphs=_paragraphs,
    )
    return html, 200, {"Content-Type": "text/html; charset=utf-8"}


def document() -> dict[str, Any]:
    """Built once per app (the routes and moments do not change while it runs)."""
    app = current_app
    if "relais.openapi" not in app.extensions:
        app.extensions["relais.openapi"] = build(app)
    return app.extensions["relais.openapi"]


def build(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="Relais API",
        version=matcher.__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": INTRO},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    spec.components.schema("Error", schema=ErrorSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        op: Operation | None = getattr(app.view_functions[rule.endpoint], "operation", None)
        if op is None:
            continue
        path, parameters = _path(rule, op.path_example)
        operations = {
            method.lower(): _operation(op, rule.endpoint, parameters, method.lower() in WRITES)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        }
        spec.path(path=path, operations=operations)
    out = spec.to_dict()
    moments = sorted(app.extensions["relais"].moments)
    out["components"]["schemas"]["MatchRequest"]["properties"]["moment"]["enum"] = moments
    for param in out["paths"]["/v1/match"]["get"]["parameters"]:
        if param["name"] == "moment":
            param["schema"]["enum"] = moments
    return out


def _operation(op: Operation, endpoint: str, parameters: list[dict[str, Any]], writes: bool) -> dict[str, Any]:
    description = op.description.split("\n", 1)[1].strip() if "\n" in op.description else ""
    roles = ", ".join(op.roles) if op.roles else "public: no key"
    out: dict[str, Any] = {
        "summary": op.summary,
        "description": f"{description}\n\nWho may call it: {roles}.".strip(),
        "operationId": endpoint.replace(".", "_"),
        "tags": [op.tag],
        "x-roles": list(op.roles) or ["public"],
        "security": [{"bearer": []}, {"apiKey": []}] if op.roles else [],
    }
    params = list(parameters)
    if op.query is not None:
        params.append({"in": "query", "schema": op.query})
    if params:
        out["parameters"] = params
    if op.body is not None:
        body: dict[str, Any] = {"schema": op.body}
        if op.example:
            body["example"] = op.example
        out["requestBody"] = {"required": True, "content": {"application/json": body}}
    elif op.lines:
        text = {"schema": {"type": "string"}}
        out["requestBody"] = {
            "required": True,
            "description": "JSON Lines in the data contract, or CSV with a header "
            "(Content-Type: text/csv). `kind` may be given, else it is told from the first record.",
            "content": {"application/x-ndjson": text, "text/csv": text},
        }
        out["parameters"] = [
            *params,
            {
                "in": "query",
                "name": "kind",
                "required": False,
                "schema": {"type": "string", "enum": ["influencers", "content"]},
            },
        ]
    responses: dict[str, Any] = {}
    for status, (schema, text) in op.responses.items():
        responses[str(status)] = {"description": text}
        if schema is not None:
            responses[str(status)]["content"] = {"application/json": {"schema": schema}}
    if op.tag == "service" and op.summary.startswith("The API reference"):
        responses["200"]["content"] = {"text/html": {"schema": {"type": "string"}}}
    elif op.tag == "service" and op.summary.startswith("The OpenAPI"):
        responses["200"]["content"] = {"application/json": {"schema": {"type": "object"}}}
    for status in _error_statuses(op, has_path=bool(parameters), writes=writes):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == 429:
            responses["429"]["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
            }
    out["responses"] = responses
    return out


def _error_statuses(op: Operation, has_path: bool, writes: bool) -> list[int]:
    statuses = set(op.errors) | {429}
    if op.roles:  # every route with a key reads the store (the public ones serve documents and pages)
        statuses.add(503)
    if writes:
        statuses.add(507)
    if has_path:
        statuses.add(404)  # an id that names nothing, or that does not route
    if op.roles:
        statuses |= {401, 403}
    if op.accepts_body or op.query is not None:
        statuses.add(400)
    if has_path or op.query is not None:
        statuses.add(414)
    if op.accepts_body:
        statuses |= {413, 415}
    return sorted(statuses - {s for s in op.responses})


def _path(rule: Rule, example: str | None) -> tuple[str, list[dict[str, Any]]]:
    """'/v1/influencers/<path:record_id>' -> '/v1/influencers/{record_id}' and its path parameter."""
    names = re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule.rule)
    path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
    params = []
    for name in names:
        param: dict[str, Any] = {
            "in": "path",
            "name": name,
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        }
        if example:
            param["example"] = example
        params.append(param)
    return path, params


def _fields(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The properties of a (referenced) schema, as rows for the page."""
    schema = _resolve(spec, schema)
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(spec, prop) if "$ref" in prop and "properties" not in prop else prop
        kind = prop.get("type", "object")
        if kind == "array":
            items = prop.get("items", {})
            kind = f"list of {items.get('type') or items.get('$ref', '').rsplit('/', 1)[-1] or 'values'}"
        constraints = [
            f"one of {', '.join(map(str, prop['enum']))}" if "enum" in prop else "",
            f"≥ {prop['minimum']}" if "minimum" in prop else "",
            f"≤ {prop['maximum']}" if "maximum" in prop else "",
            f"at most {prop['maxLength']} characters" if "maxLength" in prop else "",
        ]
        rows.append(
            {
                "name": name,
                "type": kind + (" or null" if prop.get("nullable") else ""),
                "required": name in required,
                "description": prop.get("description", ""),
                "constraints": "; ".join(c for c in constraints if c),
            }
        )
    return rows


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def _paragraphs(text: str) -> list[Markup]:
    """Paragraphs, with `code` and **bold** marked up (everything else escaped)."""
    out = []
    for paragraph in text.strip().split("\n\n"):
        html = escape(" ".join(paragraph.split()))
        html = re.sub(r"`([^`]+)`", r"<code>\1</code>", str(html))
        out.append(Markup(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)))
    return [p for p in out if p]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ spec.info.title }} {{ spec.info.version }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:0} h2{margin-top:2.5rem;border-bottom:1px solid #ddd} h3{margin:2rem 0 .3rem;font-size:1.05rem}
code,pre{font:13px/1.4 ui-monospace,monospace;background:#f5f5f5;border-radius:4px}
pre{padding:.7rem;overflow-x:auto} code{padding:0 .25rem}
.method{font-weight:700;display:inline-block;min-width:4.2rem} .get{color:#0a7} .post{color:#06c} .put{color:#a60}
.patch{color:#86a} .delete{color:#c33}
.roles{font-size:12px;background:#eef;border-radius:3px;padding:0 .4rem;margin-left:.5rem}
table{border-collapse:collapse;width:100%;font-size:14px} td,th{border-bottom:1px solid #eee;padding:.25rem .4rem;
text-align:left;vertical-align:top} nav a{margin-right:1rem}
</style></head><body>
<h1>{{ spec.info.title }}</h1>
<p>version {{ spec.info.version }} · OpenAPI document: <a href="/openapi.json">/openapi.json</a></p>
{% for p in intro %}<p>{{ p }}</p>{% endfor %}
<nav>{% for path, ops in spec.paths.items() %}{% for method, op in ops.items() %}
<a href="#{{ op.operationId }}"><span class="method {{ method }}">{{ method|upper }}</span>{{ path }}</a><br>
{% endfor %}{% endfor %}</nav>
{% for path, ops in spec.paths.items() %}{% for method, op in ops.items() %}
<h3 id="{{ op.operationId }}"><span class="method {{ method }}">{{ method|upper }}</span><code>{{ path }}</code>
<span class="roles">{{ op['x-roles']|join(', ') }}</span></h3>
<p><strong>{{ op.summary }}</strong></p>{% for p in paragraphs(op.description) %}<p>{{ p }}</p>{% endfor %}
{% if op.parameters %}<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>notes</th></tr>
{% for prm in op.parameters %}<tr><td><code>{{ prm.name }}</code></td><td>{{ prm['in'] }}</td>
<td>{{ prm.schema.type }}</td><td>{{ 'yes' if prm.required else '' }}</td>
<td>{{ prm.description or '' }}{% if prm.schema.enum %} one of {{ prm.schema.enum|join(', ') }}{% endif %}
{% if prm.example %} e.g. <code>{{ prm.example }}</code>{% endif %}</td></tr>{% endfor %}</table>{% endif %}
{% if op.requestBody %}{% for media, body in op.requestBody.content.items() %}
<p>Body (<code>{{ media }}</code>){% if op.requestBody.description %}: {{ op.requestBody.description }}{% endif %}</p>
{% if body.schema.get('$ref') %}<table><tr><th>field</th><th>type</th><th>required</th><th>notes</th></tr>
{% for f in fields(body.schema) %}<tr><td><code>{{ f.name }}</code></td><td>{{ f.type }}</td>
<td>{{ 'yes' if f.required else '' }}</td>
<td>{{ f.description }}{% if f.constraints %} ({{ f.constraints }}){% endif %}</td></tr>{% endfor %}</table>{% endif %}
{% if body.example %}<pre>{{ as_json(body.example) }}</pre>{% endif %}{% endfor %}{% endif %}
<table><tr><th>status</th><th>answer</th></tr>{% for status, r in op.responses.items() %}
<tr><td>{{ status }}</td><td>{{ r.description }}{% for media, c in (r.content or {}).items() %}
{% if c.schema.get('$ref') %} <code>{{ c.schema['$ref'].rsplit('/', 1)[-1] }}</code>{% endif %}
{% endfor %}</td></tr>{% endfor %}</table>
{% endfor %}{% endfor %}
</body></html>"""
