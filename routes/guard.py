"""What every request goes through before and after its route: a request id, CORS, the key and its role, the
origin a widget key is bound to, body size and type, the rate limit, and one JSON log line.

Order: preflight answered -> 401 no valid key -> 403 wrong role or origin -> 413 body too large -> 415 body type
-> 429 rate limit -> the route. Rate limits are counted with ``limits`` directly (per key, or per address without
one): Flask-Limiter, which wraps it, spent 40% of a cached GET resolving and filtering limits on every request.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse, storage, strategies
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from matcher.errors import ConfigError, ForbiddenError, TooManyRequestsError, UnauthorizedError
from matcher.keys import ApiKey, allowed_origins, verify_key
from routes import current_operation, engine

access = logging.getLogger("relais.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DEV_KEY = ApiKey("dev", "admin", (), "dev mode: no authentication", "")
# What a JSON route accepts: JSON, curl -d's default form type, or nothing said.
JSON_TYPES = {"", "application/json", "application/x-www-form-urlencoded"}
LINES_TYPES = JSON_TYPES | {
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
    "text/plain",
    "text/csv",
}
CORS_HEADERS = "Authorization, X-API-Key, Content-Type, If-None-Match, X-Request-ID"


DEFAULT_RATE_LIMITS = {  # per key; anonymous: per address, on public routes and in dev mode
    "widget": "120 per minute",
    "planner": "600 per minute",
    "admin": "600 per minute",
    "anonymous": "300 per minute",
    "failed": "30 per minute",  # failed authentications (401, 403) per client address: then every request is 429
}
STRATEGIES = {
    "moving-window": strategies.MovingWindowRateLimiter,  # exact: no burst at a window's edge
    "fixed-window": strategies.FixedWindowRateLimiter,
    "sliding-window-counter": strategies.SlidingWindowCounterRateLimiter,
}


def install(app: Flask) -> None:
    """Register the hooks, and the rate limiter over its storage (memory, redis://…, memcached://…)."""
    app.before_request(_start)
    app.before_request(_guard)
    app.after_request(_finish)
    if app.config["WORKERS"] > 1 and app.config["RATELIMIT_STORAGE_URI"].startswith("memory"):
        logging.getLogger("relais.api").warning(
            "%s workers and rate-limit counters in memory: each worker allows its share of every limit. Set "
            "RELAIS_RATELIMIT_STORAGE_URI=redis://… to share the counters.",
            app.config["WORKERS"],
        )
    app.config["RATE_LIMITS"] = _rate_limits(app.config["RATE_LIMITS"])
    strategy = app.config["RATELIMIT_STRATEGY"]
    if strategy not in STRATEGIES:
        raise ConfigError(f"RATELIMIT_STRATEGY {strategy!r} is not one of: {', '.join(STRATEGIES)}.")
    counters = storage.storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions["relais.limiter"] = STRATEGIES[strategy](counters)


def _rate_limits(configured: Any) -> dict[str, str]:
    """The configured limits over the defaults (a setting may name only the roles it changes), each checked now:
    a limit that does not parse stops the start, rather than failing every request."""
    if not isinstance(configured, dict):
        raise ConfigError(f"RATE_LIMITS must map roles to limits such as '120 per minute', not {configured!r}.")
    unknown = sorted(set(configured) - set(DEFAULT_RATE_LIMITS))
    if unknown:
        raise ConfigError(f"RATE_LIMITS names unknown roles {unknown}; roles are: {', '.join(DEFAULT_RATE_LIMITS)}.")
    merged = {**DEFAULT_RATE_LIMITS, **configured}
    for role, limit in merged.items():
        try:
            parse(limit)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"RATE_LIMITS[{role!r}] = {limit!r} is not a limit such as '120 per minute'.") from e
    return merged


def _start() -> None:
    presented = request.headers.get("X-Request-ID", "")
    g.request_id = presented if REQUEST_ID.match(presented) else uuid.uuid4().hex
    g.started = time.perf_counter()
    g.api_key = None


def _guard() -> Response | None:
    if request.method == "OPTIONS":
        return _preflight()
    op = current_operation()
    if op is None:
        _count()  # a scan of unknown paths is still bounded
        return None  # unknown route or method: Flask answers 404 / 405
    presented = _presented_key()
    if current_app.config["DEV_MODE"] and not presented:
        g.api_key = DEV_KEY  # no key needed; a key that is sent is still honoured, to try roles locally
    elif op.roles:
        _refuse_if_failing()
        try:
            g.api_key = _authenticate(presented)
            if g.api_key.role not in op.roles:
                raise ForbiddenError(
                    f"A {g.api_key.role} key cannot call {request.method} {request.path}; this needs "
                    f"one of: {', '.join(op.roles)}."
                )
            origin = request.headers.get("Origin")
            if g.api_key.role == "widget" and not g.api_key.allows_origin(origin):
                raise ForbiddenError(
                    f"This widget key is not allowed from {origin or 'a request without an Origin'}: "
                    "it works only from the web pages it was created for."
                )
        except (UnauthorizedError, ForbiddenError):
            _count_failure()
            raise
    if op.accepts_body:
        _check_body(op.max_body, LINES_TYPES if op.lines else JSON_TYPES)
    _count()
    return None


OUTAGE_LOG_EVERY_S = 60.0
_outage_logged = -OUTAGE_LOG_EVERY_S


def _count() -> None:
    """One more request for this key (or address): 429 with Retry-After once over its limit."""
    item = _item(_rate_limit())
    who = _rate_key()
    limiter = current_app.extensions["relais.limiter"]
    try:
        allowed = limiter.hit(item, who)
        reset, remaining = limiter.get_window_stats(item, who)
    except Exception:  # noqa: BLE001 (a counters outage must not take the API down with it: logged, let through)
        global _outage_logged  # noqa: PLW0603
        if time.monotonic() - _outage_logged > OUTAGE_LOG_EVERY_S:  # once a minute, not once a request
            _outage_logged = time.monotonic()
            logging.getLogger("relais.api").exception("rate-limit counters unavailable; requests let through")
        return
    g.rate = (item.amount, remaining, int(reset))
    if not allowed:
        raise TooManyRequestsError(
            f"Too many requests: this key may make {item}. Wait and retry (see Retry-After).",
            max(1, math.ceil(reset - time.time())),
        )


def _failures() -> tuple[RateLimitItem, str]:
    """The failed-authentication limit and the counter of this request's address."""
    return _item(_this_process(current_app.config["RATE_LIMITS"]["failed"])), f"failed:ip:{request.remote_addr}"


def _refuse_if_failing() -> None:
    """429 for an address whose authentications failed too often lately, whatever key it sends now: a correct key
    let through would tell a guesser when it had found one."""
    item, who = _failures()
    limiter = current_app.extensions["relais.limiter"]
    try:
        if limiter.test(item, who):
            return
        reset = limiter.get_window_stats(item, who)[0]
    except Exception:  # noqa: BLE001 (counters down: let through, as _count does)
        return
    raise TooManyRequestsError(
        f"Too many failed authentications from this address ({item}): wait and retry (see Retry-After).",
        max(1, math.ceil(reset - time.time())),
    )


def _count_failure() -> None:
    item, who = _failures()
    with contextlib.suppress(Exception):  # counters down: the refusal stands, uncounted
        current_app.extensions["relais.limiter"].hit(item, who)


@functools.lru_cache(maxsize=64)
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def _presented_key() -> str:
    header = request.headers.get("Authorization", "")
    return (header[7:] if header.lower().startswith("bearer ") else request.headers.get("X-API-Key", "")).strip()


def _authenticate(presented: str) -> ApiKey:
    if not presented:
        raise UnauthorizedError("An API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key'.")
    key = verify_key(engine().store, presented)
    if key is None:
        raise UnauthorizedError("This API key is unknown or revoked.")
    return key


def _check_body(limit: int, types: set[str]) -> None:
    request.max_content_length = limit  # enforced while reading, chunked bodies included
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The body is {request.content_length} bytes; this route takes {limit} at most.")
    mimetype = request.mimetype
    if mimetype not in types and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type {mimetype!r} is not accepted here; send {' or '.join(sorted(t for t in types if t))}."
        )


def _preflight() -> Response:
    """A browser asks before a cross-origin request; no key comes with the question."""
    response = current_app.make_response(("", 204))
    origin = request.headers.get("Origin", "")
    if origin and (current_app.config["DEV_MODE"] or origin in allowed_origins(engine().store)):
        response.headers.update(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": "600",
            }
        )
    response.headers["Vary"] = "Origin"
    return response


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    rate = g.get("rate")
    if rate is not None:
        response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"] = str(rate[0]), str(rate[1])
        response.headers["X-RateLimit-Reset"] = str(rate[2])
    key: ApiKey | None = g.get("api_key")
    origin = request.headers.get("Origin")
    if origin and key is not None and (key is DEV_KEY or key.allows_origin(origin)):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "ETag, X-Request-ID, Retry-After, X-RateLimit-Remaining"
    elif origin and response.status_code in (401, 403):  # a page may read why it was refused (no data in it)
        response.headers["Access-Control-Allow-Origin"] = origin
    response.vary.add("Origin")
    if request.method != "OPTIONS":
        access.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule else None,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", 0)) * 1000, 1),
                "key_id": key.key_id if key else None,
                "role": key.role if key else None,
                "origin": origin,
            },
        )
    return response


def _rate_key() -> str:
    """Whose counter a request counts on: its key's; a widget key's per visitor (every visitor of a site shares the
    site's key, and one of them must not empty the site's allowance); an address's without a key."""
    key: ApiKey | None = g.get("api_key")
    if key is not None and key is not DEV_KEY:
        return f"key:{key.key_id}:ip:{request.remote_addr}" if key.role == "widget" else f"key:{key.key_id}"
    return f"ip:{request.remote_addr}"


def _rate_limit() -> str:
    key: ApiKey | None = g.get("api_key")
    limits = current_app.config["RATE_LIMITS"]
    return _this_process(limits[key.role] if key is not None and key is not DEV_KEY else limits["anonymous"])


def _this_process(limit: str) -> str:
    """A limit as this process keeps it: the whole when counters are shared, else its share (``_share``)."""
    shared = not current_app.config["RATELIMIT_STORAGE_URI"].startswith("memory")
    return limit if shared else _share(limit, current_app.config["WORKERS"])


@functools.lru_cache(maxsize=64)
def _share(limit: str, workers: int) -> str:
    """A limit as each worker must keep it when the counters are not shared (memory): its share of the limit, so
    that together they never allow more than the limit. (Redis or Memcached counters are shared: the whole.)"""
    if workers <= 1:
        return limit
    item = parse(limit)
    return f"{max(1, item.amount // workers)} per {item.multiples} {item.GRANULARITY.name}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and what the record carries (request fields)."""

    STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in self.STANDARD})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)
