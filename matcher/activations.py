"""Campaigns, activations and contact holds: what planners record of the influencers they activate.

An activation is one influencer activated for a campaign at a moment of the customer journey; a brand makes 50
to 60 a year. Its status moves along a lifecycle (``NEXT``) and the time each status is reached is kept: KPIs and
the fatigue rules read ``sent_at``. Every write is one transaction that leaves the records' version alone and
counts one more ``planning_version``, which the fatigue arrays follow.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import sqlite_utils
from marshmallow import Schema, ValidationError

from matcher.errors import ConflictError, InvalidRequestError, NotFoundError
from matcher.store import Store, now_iso, select_in
from models.planning_schemas import (
    MAX_LIMIT,
    ActivationChangesSchema,
    ActivationSchema,
    CampaignSchema,
    HoldSchema,
)

logger = logging.getLogger(__name__)

ACTIVATION_TYPES = (
    "event",  # an event the brand hosts or takes them to
    "interview",  # a one-to-one interview (an expert, a product manager)
    "visit",  # a small-group visit (a lab, a factory, a shop)
    "product_test",  # a product lent or given to test
    "press",  # press and PR: a release, a kit, a briefing
    "sponsored_post",  # a paid post
)
STATUSES = ("proposed", "sent", "accepted", "declined", "published")
NEXT = {  # the lifecycle: where each status may go
    "proposed": ("sent",),
    "sent": ("accepted", "declined", "published"),
    "accepted": ("published",),
    "declined": (),
    "published": (),
}
STAMPS = ("sent_at", "responded_at", "published_at")
IMPLIED = {  # the timestamps an activation in this status has (given, or the time it got there)
    "proposed": (),
    "sent": ("sent_at",),
    "accepted": ("sent_at", "responded_at"),
    "declined": ("sent_at", "responded_at"),
    "published": ("sent_at", "published_at"),  # straight from sent, or through accepted
}
ALLOWED = {**IMPLIED, "published": STAMPS}  # ... and those it may have
EDITABLE = {  # what PUT replaces, with the value a field left out takes
    "influencer_id": None,
    "campaign_id": None,
    "moment": None,
    "type": None,
    "starts_on": None,
    "ends_on": None,
    "publications": [],
    "notes": "",
}
CAMPAIGN_FIELDS = ("name", "products", "brief", "starts_on", "ends_on")
BUMP = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'planning_version'"
# An activation's days: when it takes place, else the day it was sent, else the day it was recorded.
STARTS = "coalesce(starts_on, substr(sent_at, 1, 10), substr(created_at, 1, 10))"
ENDS = "coalesce(ends_on, starts_on, substr(sent_at, 1, 10), substr(created_at, 1, 10))"
CAMPAIGN_SELECT = (
    "SELECT c.*, (SELECT count(*) FROM activations a WHERE a.campaign_id = c.id) AS activations FROM campaigns c"
)
CHANGES, ACTIVATION, CAMPAIGN, HOLD = ActivationChangesSchema(), ActivationSchema(), CampaignSchema(), HoldSchema()


class Planning:
    """The planning records of one store; ``moments``: the names an activation may name."""

    def __init__(self, store: Store, moments: Collection[str], on_write: Callable[[], Any] | None = None):
        self.store = store
        self.moments = set(moments)
        self.on_write = on_write  # told once a write has committed (this process's fatigue follows at once)

    def version(self) -> int:
        """How many planning writes the store has seen (the fatigue arrays follow it)."""
        return int(self.store.meta("planning_version", "0") or 0)

    @contextmanager
    def _writing(self) -> Iterator[sqlite_utils.Database]:
        """One transaction that counts one more planning write, and not a records' version."""
        with self.store.transaction(bump=False) as db:
            yield db
            db.execute(BUMP)
        self._written()

    def _written(self) -> None:
        if self.on_write is not None:
            self.on_write()

    # -- campaigns ------------------------------------------------------------------------------

    def create_campaign(self, data: Any) -> dict[str, Any]:
        """Record a campaign (409 if its id exists)."""
        fields = _load(CAMPAIGN, data)
        campaign_id = fields.get("id") or f"cmp-{uuid.uuid4().hex[:12]}"
        stamp = now_iso()
        with self._writing() as db:
            if _exists(db, "campaigns", campaign_id):
                raise ConflictError(
                    f"Campaign {campaign_id!r} exists already: replace it (PUT) or choose another id.",
                    {"id": ["Already exists."]},
                )
            db["campaigns"].insert(
                {"id": campaign_id, **_campaign_row(fields), "created_at": stamp, "updated_at": stamp}
            )
        return self.get_campaign(campaign_id)

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        """One campaign, with how many activations belong to it."""
        found = next(self.store.db.query(f"{CAMPAIGN_SELECT} WHERE c.id = ?", [campaign_id]), None)
        if found is None:
            raise NotFoundError(f"No campaign {campaign_id!r}.")
        return _campaign(found)

    def list_campaigns(self) -> list[dict[str, Any]]:
        """Every campaign, the latest first (those without dates last)."""
        sql = f"{CAMPAIGN_SELECT} ORDER BY c.starts_on IS NULL, c.starts_on DESC, c.id"
        return [_campaign(row) for row in self.store.db.query(sql)]

    def update_campaign(self, campaign_id: str, data: Any) -> dict[str, Any]:
        """Replace a campaign's fields (those left out take their defaults)."""
        fields = _load(CAMPAIGN, data)
        _same_id(fields, campaign_id)
        with self._writing() as db:
            if not _exists(db, "campaigns", campaign_id):
                raise NotFoundError(f"No campaign {campaign_id!r}: create it with POST.")
            db["campaigns"].update(campaign_id, {**_campaign_row(fields), "updated_at": now_iso()})
        return self.get_campaign(campaign_id)

    def delete_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Delete a campaign that no activation belongs to (409 otherwise)."""
        with self._writing() as db:
            if not _exists(db, "campaigns", campaign_id):
                raise NotFoundError(f"No campaign {campaign_id!r}.")
            count = db.execute("SELECT count(*) FROM activations WHERE campaign_id = ?", [campaign_id]).fetchone()[0]
            if count:
                raise ConflictError(
                    f"Campaign {campaign_id!r} has {count} activation{'s' * (count != 1)}: delete or move "
                    f"{'them' if count != 1 else 'it'} to another campaign first."
                )
            db.execute("DELETE FROM campaigns WHERE id = ?", [campaign_id])
        return {"id": campaign_id, "deleted": True}

    # -- activations ----------------------------------------------------------------------------

    def create_activation(self, data: Any) -> dict[str, Any]:
        """Record an activation, in any status: a later one (backfill) gets the timestamps it implies, given or
        now."""
        fields = _load(ACTIVATION, data)
        activation_id = fields.pop("id", None) or f"act-{uuid.uuid4().hex[:12]}"
        stamp = now_iso()
        row = {**EDITABLE, **{s: None for s in STAMPS}, "status": "proposed", **fields}
        with self._writing() as db:
            if _exists(db, "activations", activation_id):
                raise ConflictError(
                    f"Activation {activation_id!r} exists already: change it (PATCH) or choose another id.",
                    {"id": ["Already exists."]},
                )
            self._check(db, row, None, stamp)
            db["activations"].insert({"id": activation_id, **_stored(row), "created_at": stamp, "updated_at": stamp})
        return self.get_activation(activation_id)

    def get_activation(self, activation_id: str) -> dict[str, Any]:
        """One activation, with the statuses it may move to."""
        found = next(self.store.db.query("SELECT * FROM activations WHERE id = ?", [activation_id]), None)
        if found is None:
            raise NotFoundError(f"No activation {activation_id!r}.")
        return _activation(found)

    def list_activations(
        self,
        campaign: str | None = None,
        influencer: str | None = None,
        status: str | None = None,
        moment: str | None = None,
        type: str | None = None,
        since: date | str | None = None,
        until: date | str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """A page of the activations that pass every filter given (the latest first), and how many pass."""
        problems = self._unknown_words({"status": status, "moment": moment, "type": type})
        if problems:
            raise InvalidRequestError(f"Unknown {' and '.join(problems)}; see fields.", problems)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}.", {"limit": ["Out of range."]})
        if offset < 0:
            raise InvalidRequestError("offset must be 0 or more.", {"offset": ["Out of range."]})
        conditions = {
            "campaign_id = ?": campaign,
            "influencer_id = ?": influencer,
            "status = ?": status,
            "moment = ?": moment,
            "type = ?": type,
            f"{ENDS} >= ?": _iso_day(since),
            f"{STARTS} <= ?": _iso_day(until),
        }
        given = {condition: value for condition, value in conditions.items() if value is not None}
        params = list(given.values())
        where = " WHERE " + " AND ".join(given) if given else ""
        with self.store.snapshot() as db:
            total = db.execute(f"SELECT count(*) FROM activations{where}", params).fetchone()[0]
            sql = f"SELECT * FROM activations{where} ORDER BY {STARTS} DESC, id LIMIT ? OFFSET ?"
            rows = [_activation(r) for r in db.query(sql, [*params, limit, offset])]
        return {"activations": rows, "total": total, "limit": limit, "offset": offset}

    def update_activation(self, activation_id: str, changes: Any, *, replace: bool = False) -> dict[str, Any]:
        """Change an activation (PATCH: the fields given); ``replace`` (PUT): the whole of it, the fields left out
        taking their defaults, except the status and its timestamps, which move only along the lifecycle."""
        fields = _load(ACTIVATION if replace else CHANGES, changes)
        _same_id(fields, activation_id)
        fields.pop("id", None)
        stamp = now_iso()
        with self._writing() as db:
            found = next(db.query("SELECT * FROM activations WHERE id = ?", [activation_id]), None)
            if found is None:
                raise NotFoundError(f"No activation {activation_id!r}.")
            before = _activation(found)
            row = {k: before[k] for k in (*EDITABLE, *STAMPS, "status")}
            row.update({**EDITABLE, **fields} if replace else fields)
            if row["status"] != before["status"] and row["status"] in STATUSES:
                _check_transition(before["status"], row["status"])
            self._check(db, row, before, stamp)
            db["activations"].update(activation_id, {**_stored(row), "updated_at": stamp})
        return self.get_activation(activation_id)

    def delete_activation(self, activation_id: str) -> dict[str, Any]:
        """Forget an activation."""
        with self._writing() as db:
            if not db.execute("DELETE FROM activations WHERE id = ?", [activation_id]).rowcount:
                raise NotFoundError(f"No activation {activation_id!r}.")
        return {"id": activation_id, "deleted": True}

    def _check(self, db: sqlite_utils.Database, row: dict[str, Any], before: dict[str, Any] | None, stamp: str) -> None:
        """Check an activation about to be written (``before``: as it was, None if new) and fill in the timestamps
        its status implies; InvalidRequestError with every problem found."""
        problems = self._unknown_words({"status": row["status"], "moment": row["moment"], "type": row["type"]})
        problems.update(_missing_references(db, row, before or EDITABLE))
        if row["starts_on"] and row["ends_on"] and row["ends_on"] < row["starts_on"]:
            problems["ends_on"] = ["Must be on or after starts_on."]
        if row["status"] in STATUSES:
            problems.update(_fill_stamps(row, stamp))
        if problems:
            raise InvalidRequestError("The activation is invalid; see fields. Nothing was written.", problems)

    def _unknown_words(self, words: dict[str, str | None]) -> dict[str, list[str]]:
        """The vocabulary: statuses, moments and types that exist."""
        known = {"status": STATUSES, "moment": sorted(self.moments), "type": ACTIVATION_TYPES}
        return {
            name: [f"Must be one of: {', '.join(known[name])}."]
            for name, value in words.items()
            if value is not None and value not in known[name]
        }

    # -- contact holds --------------------------------------------------------------------------

    def set_hold(self, influencer_id: str, until: date | str, reason: str = "") -> dict[str, Any]:
        """Do not contact this influencer before ``until`` (replaces the hold they had)."""
        fields = _load(HOLD, {"until": _iso_day(until), "reason": reason})
        with self._writing() as db:
            if not _exists(db, "influencers", influencer_id):
                raise NotFoundError(f"No influencer {influencer_id!r}.")
            db["contact_holds"].insert(
                {"influencer_id": influencer_id, **fields, "updated_at": now_iso()}, pk="influencer_id", replace=True
            )
        if fields["until"] <= _today():
            logger.warning(
                "The hold on %s ends on %s, which is not after today: it has no effect. Send a later date to hold "
                "them, or DELETE the hold.",
                influencer_id,
                fields["until"],
            )
        return self.get_hold(influencer_id)

    def get_hold(self, influencer_id: str) -> dict[str, Any]:
        """An influencer's hold (``until`` null when there is none)."""
        db = self.store.db
        found = next(db.query("SELECT * FROM contact_holds WHERE influencer_id = ?", [influencer_id]), None)
        if found is None:
            if not _exists(db, "influencers", influencer_id):
                raise NotFoundError(f"No influencer {influencer_id!r}.")
            return {"influencer_id": influencer_id, "until": None, "reason": "", "active": False, "updated_at": None}
        return {**found, "active": found["until"] > _today()}

    def clear_hold(self, influencer_id: str) -> bool:
        """Lift an influencer's hold; False if they had none (nothing is written then)."""
        with self.store.transaction(bump=False) as db:
            cleared = db.execute("DELETE FROM contact_holds WHERE influencer_id = ?", [influencer_id]).rowcount > 0
            if cleared:
                db.execute(BUMP)
            elif not _exists(db, "influencers", influencer_id):
                raise NotFoundError(f"No influencer {influencer_id!r}.")
        if cleared:
            self._written()
        return cleared


def _load(schema: Schema, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidRequestError("The body must be a JSON object.", {"_schema": ["Must be a JSON object."]})
    try:
        return schema.load(data)
    except ValidationError as e:
        raise InvalidRequestError("The request is invalid; see fields. Nothing was written.", e.messages) from e


def _missing_references(db: sqlite_utils.Database, row: dict[str, Any], was: dict[str, Any]) -> dict[str, list[str]]:
    """The influencer, campaign and content named that do not exist. Only what changes is checked: an activation
    outlives the records it names."""
    problems = {}
    if row["influencer_id"] != was["influencer_id"] and not _exists(db, "influencers", row["influencer_id"]):
        problems["influencer_id"] = [f"No influencer {row['influencer_id']!r}: record them first."]
    if row["campaign_id"] not in (None, was["campaign_id"]) and not _exists(db, "campaigns", row["campaign_id"]):
        problems["campaign_id"] = [f"No campaign {row['campaign_id']!r}: create it first."]
    row["publications"] = list(dict.fromkeys(row["publications"]))  # a repeat says nothing more
    new = [c for c in row["publications"] if c not in was["publications"]]
    missing = sorted(set(new) - _existing_content(db, new))
    if missing:
        problems["publications"] = [f"No content {', '.join(map(repr, missing))}: record it first."]
    return problems


def _fill_stamps(row: dict[str, Any], stamp: str) -> dict[str, list[str]]:
    """Give the timestamps the status implies (``stamp``: now) unless sent; problems with those it has."""
    for name in IMPLIED[row["status"]]:
        row[name] = row[name] or stamp
    problems = {
        name: [f"An activation that is {row['status']} has no {name}."]
        for name in STAMPS
        if row[name] is not None and name not in ALLOWED[row["status"]]
    }
    reached = [(name, row[name]) for name in STAMPS if row[name] is not None]
    for (first, earlier), (then, later) in zip(reached, reached[1:], strict=False):
        if later < earlier:
            problems.setdefault(then, []).append(f"Must not be before {first} ({earlier}).")
    return problems


def _check_transition(current: str, wanted: str) -> None:
    allowed = NEXT[current]
    if wanted not in allowed:
        after = f"it can only become {' or '.join(allowed)}" if allowed else f"{current} is final"
        raise ConflictError(
            f"An activation that is {current} cannot become {wanted}: {after}.",
            {"status": [f"Must be one of: {', '.join(allowed)}." if allowed else f"{current} is final."]},
        )


def _same_id(fields: dict[str, Any], path_id: str) -> None:
    if fields.get("id", path_id) != path_id:
        raise InvalidRequestError(
            "The id in the body differs from the id in the path.", {"id": [f"Must be {path_id!r} or absent."]}
        )


def _exists(db: sqlite_utils.Database, table: str, record_id: str) -> bool:
    return db.execute(f"SELECT 1 FROM {table} WHERE id = ?", [record_id]).fetchone() is not None


def _existing_content(db: sqlite_utils.Database, ids: list[str]) -> set[str]:
    return {r[0] for r in select_in(db, "SELECT id FROM content WHERE id IN ({marks})", ids)}


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "publications": json.dumps(row["publications"])}


def _campaign_row(fields: dict[str, Any]) -> dict[str, Any]:
    return {**{k: fields[k] for k in CAMPAIGN_FIELDS}, "products": json.dumps(fields["products"])}


def _activation(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "publications": json.loads(row["publications"]), "next_statuses": list(NEXT[row["status"]])}


def _campaign(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "products": json.loads(row["products"])}


def _iso_day(value: date | str | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
