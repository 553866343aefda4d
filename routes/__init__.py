"""The HTTP routes, one blueprint per resource, and what they share.

Each route says once, with ``@operation``, who may call it, what body it takes and what it answers; the guard
(``routes.guard``) enforces it and the OpenAPI document (``routes.docs``) describes it from the same words.
Routes parse, call the engine, render: no ranking, storage or index logic here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, jsonify, request
from marshmallow import Schema

from matcher.errors import IncompleteBodyError, MalformedJSONError
from matcher.keys import ROLES
from matcher.loader import invalid_text, parse_json
from matcher.service import Engine

ANYONE = ROLES  # widget, planner, admin
READERS = ("planner", "admin")
ADMIN = ("admin",)
PUBLIC: tuple[str, ...] = ()  # no key needed

KiB = 1024


@dataclass(frozen=True)
class Operation:
    """What a route promises: roles, body, answers. Read by the guard and by the OpenAPI document."""

    summary: str
    roles: tuple[str, ...]
    tag: str
    body: type[Schema] | None = None  # a JSON body, checked against this schema
    lines: bool = False  # a JSON Lines or CSV body instead (imports)
    max_body: int = 64 * KiB
    query: type[Schema] | None = None
    responses: dict[int, tuple[type[Schema] | None, str]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    description: str = ""
    example: dict[str, Any] | None = None
    path_example: str | None = None  # a real id from the fixtures, for the docs and the fuzzer

    @property
    def accepts_body(self) -> bool:
        return self.body is not None or self.lines


def operation(**details: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach an Operation to a view (the first line of its docstring is the summary)."""

    def attach(view: Callable[..., Any]) -> Callable[..., Any]:
        summary = (view.__doc__ or "").strip().splitlines()[0]
        view.operation = Operation(summary=summary, description=(view.__doc__ or "").strip(), **details)
        return view

    return attach


def current_operation() -> Operation | None:
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "operation", None)


def engine() -> Engine:
    return current_app.extensions["relais"]


def reply(schema: Schema, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return jsonify(schema.dump(body)), status, headers or {}


def body_bytes() -> bytes:
    """The request's body, whole: a body shorter than its Content-Length (a client gone mid-upload) is refused,
    never half-read as if it were complete."""
    raw = request.get_data(cache=True)
    if request.content_length is not None and len(raw) != request.content_length:
        raise IncompleteBodyError(
            f"The body ended after {len(raw)} of the {request.content_length} bytes its Content-Length announced: "
            "nothing was done. Send it again."
        )
    return raw


def json_body() -> Any:
    """The request's JSON, whatever its content type (``curl -d`` sends form encoding)."""
    raw = body_bytes()
    if not raw.strip():
        raise MalformedJSONError("The request body is empty: send a JSON object.")
    try:
        body = parse_json(raw)
    except ValueError as e:
        raise MalformedJSONError(f"The request body is not valid JSON: {e}") from e
    problem = invalid_text(body)
    if problem:
        raise MalformedJSONError(f"The request body is not valid: {problem}.")
    return body
