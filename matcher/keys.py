"""API keys: random, stored hashed, each with a role and (for browsers) the origins allowed to use it.

A key reads ``rk_<key id>_<secret>``. Only the key id and a SHA-256 of the whole key are stored: the key is shown
once, when it is created. Keys are long random strings, so a plain hash (not a slow password hash) is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlparse

from matcher.errors import InvalidRequestError
from matcher.store import Store, now_iso

ROLES = ("widget", "planner", "admin")
PREFIX = "rk_"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    origins: tuple[str, ...]
    label: str
    created_at: str
    revoked_at: str | None = None

    def allows_origin(self, origin: str | None) -> bool:
        # What a browser sends is not ours to refuse with a 500: an unusable Origin matches no origin.
        return origin is not None and normalize_origin(origin, strict=False) in self.origins


def create_key(
    store: Store, role: str, origins: list[str] | tuple[str, ...] = (), label: str = ""
) -> tuple[ApiKey, str]:
    """A new key; returns its record and the key itself (the only time it is seen)."""
    if role not in ROLES:
        raise InvalidRequestError(f"Unknown role {role!r}.", {"role": [f"Must be one of: {', '.join(ROLES)}."]})
    allowed = tuple(dict.fromkeys(normalize_origin(o) for o in origins))
    if role == "widget" and not allowed:
        raise InvalidRequestError(
            "A widget key is used from web pages: give the origins allowed to use it "
            "(--origin https://www.example.com).",
            {"origins": ["At least one."]},
        )
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(key_id, role, allowed, label, now_iso())
    with store.transaction(bump=False) as db:  # keys are not data: no index, no cache depends on them
        db.execute(
            "INSERT INTO api_keys (key_id, secret_hash, role, origins, label, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [key_id, _hash(key), role, json.dumps(list(allowed)), label, record.created_at],
        )
    return record, key


def verify_key(store: Store, presented: str) -> ApiKey | None:
    """The active key this string is, or None."""
    if not presented.startswith(PREFIX) or presented.count("_") < 2:
        return None
    key_id = presented[len(PREFIX) :].split("_", 1)[0]
    row = next(store.db.query("SELECT * FROM api_keys WHERE key_id = ?", [key_id]), None)
    if row is None or row["revoked_at"] or not hmac.compare_digest(row["secret_hash"], _hash(presented)):
        return None
    return _record(row)


def list_keys(store: Store) -> list[ApiKey]:
    return [_record(row) for row in store.db.query("SELECT * FROM api_keys ORDER BY created_at, key_id")]


def revoke_key(store: Store, key_id: str) -> bool:
    """Revoke at once (the next request with it gets 401); False if there is no such active key."""
    with store.transaction(bump=False) as db:
        cursor = db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", [now_iso(), key_id]
        )
        return cursor.rowcount == 1


def allowed_origins(store: Store) -> set[str]:
    """Every origin some active key allows (what a CORS preflight, which carries no key, may be told)."""
    rows = store.db.execute("SELECT origins FROM api_keys WHERE revoked_at IS NULL")
    return {origin for (origins,) in rows for origin in json.loads(origins)}


def normalize_origin(origin: str, *, strict: bool = True) -> str:
    """'https://WWW.Example.com:443/' -> 'https://www.example.com': scheme, host and port, as browsers send."""
    try:
        parsed = urlparse(origin.strip())
        port = parsed.port  # ValueError for a port out of range, as urlparse's for 'https://[::1'
    except ValueError:
        parsed, port = urlparse(""), None
    valid = parsed.scheme in ("http", "https") and parsed.hostname and parsed.path in ("", "/") and not parsed.query
    if not valid:
        if strict:
            raise InvalidRequestError(
                f"{origin!r} is not an origin such as https://www.example.com.",
                {"origins": ["Scheme and host (and port), nothing else."]},
            )
        return ""
    default = {"http": 80, "https": 443}[parsed.scheme]
    shown = f":{port}" if port and port != default else ""
    return f"{parsed.scheme}://{parsed.hostname}{shown}"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _record(row: dict) -> ApiKey:
    return ApiKey(
        row["key_id"],
        row["role"],
        tuple(json.loads(row["origins"])),
        row["label"],
        row["created_at"],
        row["revoked_at"],
    )
