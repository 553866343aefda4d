"""Files of ``routes/static`` served with an ETag (read once per version of the file), for the widget and the pages."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from flask import current_app, request

STATIC = Path(__file__).parent / "static"


@functools.lru_cache(maxsize=16)
def _asset(name: str, modified_ns: int) -> tuple[bytes, str]:
    """A file of static/ and its ETag, read once per version of the file."""
    body = (STATIC / name).read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:32]


def serve(name: str, mimetype: str, headers: dict[str, str]) -> Any:
    """A file of static/ (a name the caller chose, never the request's) with its ETag; 304 if the client has it."""
    path = STATIC / name
    body, etag = _asset(name, path.stat().st_mtime_ns)
    headers = {**headers, "ETag": f'"{etag}"', "X-Content-Type-Options": "nosniff"}
    if etag in request.if_none_match:
        return "", 304, headers
    return current_app.response_class(body, mimetype=mimetype, headers=headers)
