"""The planner's page, /planner: from a brief to a plan per moment and category, edited by hand, turned into
activations and exported; with the KPI charts of past activations and of what customers did.

The page is a shell with no data in it, so it is served to anyone; everything it shows comes from the API, called
by the page with the planner's key (kept in the tab's sessionStorage, sent as a Bearer header), or with no key in
dev mode. A widget key is refused by every route the page calls. No build step and nothing fetched elsewhere: its
script, stylesheet and Chart.js (vendored, see static/vendor/README.md) are files of static/.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from marshmallow import EXCLUDE, Schema, fields, validate

from routes import PUBLIC, operation
from routes.assets import serve

bp = Blueprint("planner", __name__, template_folder="templates")

LANGUAGES = ("fr", "en")  # French first: the brand team is French
CHART = "vendor/chart.js-4.6.1/chart.umd.min.js"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class PageQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a shared link's tracking parameters are not an error

    lang = fields.String(
        validate=validate.OneOf(LANGUAGES),
        metadata={"description": "fr or en (default: the browser's preference, else fr)."},
    )


@bp.get("/planner")
@operation(
    roles=PUBLIC,
    tag="planner",
    query=PageQuerySchema,
    responses={200: (None, "The page (text/html), under a strict Content-Security-Policy.")},
)
def page() -> Any:
    """The planner's page: brief, plan per moment and category, edits, activations, CSV export and KPI charts.

    A shell with no data: what it shows comes from the API with a planner or admin key that the page asks for
    (none in dev mode). French or English (`?lang=`, else the browser's preference).
    """
    args = PageQuerySchema().load(request.args.to_dict())
    lang = args.get("lang") or request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]
    html = render_template("planner.html", lang=lang, dev=current_app.config["DEV_MODE"], chart=CHART)
    return html, 200, {"Content-Type": "text/html; charset=utf-8", **PAGE_HEADERS}


@bp.get("/planner/planner.js")
@operation(roles=PUBLIC, tag="planner", responses={200: (None, "The page's script (text/javascript).")})
def script() -> Any:
    """The planner page's script (no framework, no build step)."""
    return serve("planner.js", "text/javascript", {"Cache-Control": "no-cache"})


@bp.get("/planner/planner.css")
@operation(roles=PUBLIC, tag="planner", responses={200: (None, "The page's stylesheet (text/css).")})
def stylesheet() -> Any:
    """The planner page's stylesheet."""
    return serve("planner.css", "text/css", {"Cache-Control": "no-cache"})


@bp.get(f"/planner/{CHART}")
@operation(roles=PUBLIC, tag="planner", responses={200: (None, "Chart.js 4.6.1, as published (MIT).")})
def chart_library() -> Any:
    """Chart.js, vendored: its URL names its version, so browsers keep it for a year."""
    return serve(CHART, "text/javascript", {"Cache-Control": "public, max-age=31536000, immutable"})
