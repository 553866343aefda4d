"""The widget for web pages: /widget.js (a custom element, <relais-moment>, that shows the content serving a page's
moment) and /widget/demo, a fake Homelive product page that uses it under a strict Content-Security-Policy.

The demo is served in dev mode only (404 otherwise): a fake product page has no place on a production API's
domain. In dev mode no key is needed; `?key=` tries a real widget key (what its origins allow or refuse), `?api=`
points the widgets at another API origin (another port, or one that is down)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, render_template, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates
from werkzeug.exceptions import NotFound

from routes import PUBLIC, operation
from routes.assets import serve

bp = Blueprint("widget", __name__, template_folder="templates")

# The script's URL is not versioned (sites paste one tag), so browsers and CDNs keep it for an hour and then
# revalidate it with its ETag: a fix reaches every page within the hour, at the cost of a 304.
SCRIPT_MAX_AGE = 3600
ORIGIN = re.compile(r"^https?://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?/?$", re.IGNORECASE)
DEMO_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'{api}; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@bp.get("/widget.js")
@operation(
    roles=PUBLIC,
    tag="widget",
    responses={
        200: (None, "The widget's script (text/javascript): no framework, under 10 KB gzipped."),
        304: (None, "Not modified: the script your cache holds (If-None-Match)."),
    },
)
def script() -> Any:
    """The widget's script, for web pages: one script tag, then an element wherever content should show.

    `<script async src="https://relais.example/widget.js"></script>`, then
    `<relais-moment key="rk_…" moment="desirability" products="homelive" language="fr" limit="3">` shows the
    content that serves the moment (or, with `query`, a customer's words), as accessible cards in a shadow root,
    fetched with GET /v1/match when the element nears the viewport. It reports impressions (a card half seen for
    a second) and clicks to POST /v1/events. The key is a widget key made for the page's origin
    (`matcher keys create --role widget --origin https://www.example.com`). Cached for an hour, then revalidated.
    """
    return serve(
        "widget.js",
        "text/javascript",
        {
            "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE}",
            "Access-Control-Allow-Origin": "*",  # public and cookie-free: <script crossorigin> may load it too
            "Cross-Origin-Resource-Policy": "cross-origin",  # pages with COEP: require-corp may embed it
        },
    )


class DemoQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a shared link's tracking parameters are not an error

    key = fields.String(
        validate=validate.Regexp(r"^rk_[A-Za-z0-9_-]{1,200}$", error="A key reads rk_<id>_<secret>."),
        metadata={"description": "A widget key to try (dev mode needs none)."},
    )
    api = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "Another API origin for the widgets, e.g. http://127.0.0.1:8001."},
    )

    @validates("api")
    def _origin(self, value: str, **kwargs: Any) -> None:
        if not ORIGIN.match(value):
            raise ValidationError("An origin: scheme, host and port, e.g. http://127.0.0.1:8001.")


DEMO_QUERY = DemoQuerySchema()


@bp.get("/widget/demo")
@operation(
    roles=PUBLIC,
    tag="widget",
    query=DemoQuerySchema,
    errors=(404,),
    responses={200: (None, "The demo page (text/html), with its Content-Security-Policy.")},
)
def demo() -> Any:
    """A fake Homelive product page in French with one widget per moment, under a strict CSP (dev mode only).

    Outside dev mode it is 404: a fake product page has no place on a production API's domain.
    """
    _dev_only()
    args = DEMO_QUERY.load(request.args.to_dict())
    api = args["api"].rstrip("/") if "api" in args else ""
    html = render_template("widget_demo.html", key=args.get("key", ""), api=api)
    headers = {
        "Content-Security-Policy": DEMO_CSP.format(api=f" {api}" if api else ""),
        "Cache-Control": "no-store",  # it may carry a key
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    return html, 200, {"Content-Type": "text/html; charset=utf-8", **headers}


@bp.get("/widget/demo.css")
@operation(
    roles=PUBLIC,
    tag="widget",
    errors=(404,),
    responses={200: (None, "The demo page's stylesheet (text/css).")},
)
def demo_css() -> Any:
    """The demo page's own stylesheet (a file: the page's CSP allows no inline style), dev mode only."""
    _dev_only()
    return serve("widget-demo.css", "text/css", {"Cache-Control": "no-cache"})


def _dev_only() -> None:
    if not current_app.config["DEV_MODE"]:
        raise NotFound("The widget demo is served in dev mode only (matcher serve --dev).")
