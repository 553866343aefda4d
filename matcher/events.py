"""Outcome events in, and the log of what each match showed: the two halves every measure of the loop joins.

``record`` stores a batch of customer events (impression, click, conversion, dismiss) in one transaction; an
``event_id`` already stored is ignored, so a client may resend a batch it is unsure of. ``served`` notes what a
match showed (items, ranks, and the probability each had of being in its slot), in memory: ``flush`` writes the
notes in batches, off the request's path (``matcher.loop`` calls it). Neither bumps the records' version.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from matcher.errors import InvalidRequestError
from matcher.loader import Rejection, parse_jsonl
from matcher.store import Store
from models.event_schemas import EventSchema

COLUMNS = ("event_id", "type", "request_id", "kind", "item_id", "rank", "moment", "at", "value")
INSERT = (
    "INSERT OR IGNORE INTO events (event_id, type, request_id, kind, item_id, rank, moment, at, value, received_at,"
    " key_id, origin, source) VALUES (:event_id, :type, :request_id, :kind, :item_id, :rank, :moment, :at, :value,"
    " :received_at, :key_id, :origin, :source)"
)
SERVED_KEPT = 20_000  # notes held in memory at most: beyond (the store unreachable), the oldest are dropped


@dataclass(frozen=True)
class Shown:
    """One item a match showed: its kind ('content' or 'influencers'), id, slot (1 = first), and the probability
    that this item was in this slot (1.0 unless exploring)."""

    kind: str
    id: str
    rank: int
    propensity: float = 1.0


class EventLog:
    def __init__(self, store: Store, moments: Iterable[str]):
        self.store = store
        self.moments = set(moments)
        self._pending: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    # -- customer events ------------------------------------------------------------------------

    def record(
        self, events: Sequence[dict[str, Any]], *, key_id: str | None, origin: str | None, source: str = "api"
    ) -> dict[str, int]:
        """Store validated events (``EventSchema``'s output) in one transaction: all of them or none.

        The sender is the key that sent them (``key_id``, ``origin``), never what a body says. Returns how many were
        stored and how many were repeats of stored ones."""
        unknown = {
            i: {"moment": [f"Unknown moment {e['moment']!r}."]}
            for i, e in enumerate(events)
            if e.get("moment") is not None and e["moment"] not in self.moments
        }
        if unknown:
            raise InvalidRequestError("Some events name an unknown moment; nothing was stored.", {"events": unknown})
        now = time.time()
        rows = [
            {
                **{c: e.get(c) for c in COLUMNS},
                "at": e.get("at") or now,
                "received_at": now,
                "key_id": key_id,
                "origin": origin,
                "source": source,
            }
            for e in events
        ]
        with self.store.transaction(bump=False) as db:
            before = db.conn.total_changes
            db.conn.executemany(INSERT, rows)
            stored = db.conn.total_changes - before
        return {"accepted": stored, "duplicates": len(rows) - stored}

    def import_lines(self, lines: Iterable[str], *, csv_format: bool, batch: int = 1000) -> dict[str, Any]:
        """Events from elsewhere (JSON Lines, or CSV with a header of EventSchema's fields): every valid line
        stored (source 'import'), every invalid one reported with its line number; one transaction per batch."""
        schema = EventSchema()
        accepted = duplicates = 0
        rejected: list[dict[str, Any]] = []
        chunk: list[dict[str, Any]] = []
        for number, raw in _records(lines, csv_format):
            try:
                if isinstance(raw, str):
                    raise ValidationError({"_line": [raw]})
                event = schema.load(raw)
                if event["moment"] is not None and event["moment"] not in self.moments:
                    raise ValidationError({"moment": [f"Unknown moment {event['moment']!r}."]})
            except ValidationError as e:
                if len(rejected) < 1000:
                    rejected.append({"line": number, "errors": e.messages})
                continue
            chunk.append(event)
            if len(chunk) >= batch:
                done = self.record(chunk, key_id=None, origin=None, source="import")
                accepted, duplicates, chunk = accepted + done["accepted"], duplicates + done["duplicates"], []
        if chunk:
            done = self.record(chunk, key_id=None, origin=None, source="import")
            accepted, duplicates = accepted + done["accepted"], duplicates + done["duplicates"]
        return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}

    # -- what matches showed --------------------------------------------------------------------

    def served(self, request_id: str, moment: str, key_id: str | None, policy: str, items: Sequence[Shown]) -> None:
        """Note what a match showed; written by the next ``flush`` (a request never waits for SQLite here)."""
        note = (
            request_id,
            time.time(),
            moment,
            key_id,
            policy,
            json.dumps([[s.kind, s.id, s.rank, round(s.propensity, 6)] for s in items]),
        )
        with self._lock:
            self._pending.append(note)
            if len(self._pending) > SERVED_KEPT:
                del self._pending[: len(self._pending) - SERVED_KEPT]

    def flush(self) -> int:
        """Write the notes taken since the last flush, in one transaction; returns how many."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        try:
            with self.store.transaction(bump=False) as db:
                db.conn.executemany(
                    "INSERT OR IGNORE INTO served (request_id, at, moment, key_id, policy, items)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    pending,
                )
        except Exception:
            with self._lock:  # kept for the next flush
                self._pending[:0] = pending
            raise
        return len(pending)


def _records(lines: Iterable[str], csv_format: bool) -> Iterable[tuple[int, dict[str, Any] | str]]:
    """(line number, record or the reason it is not one)."""
    if csv_format:
        reader = csv.DictReader(io.StringIO("".join(lines)))
        for number, row in enumerate(reader, start=2):
            record: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v not in ("", None)}
            for name in ("rank",):
                if name in record:
                    record[name] = int(record[name]) if record[name].isdigit() else record[name]
            if "value" in record:
                try:
                    record["value"] = float(record["value"])
                except ValueError:
                    pass
            if "at" in record and _is_number(record["at"]):
                record["at"] = float(record["at"])
            yield number, record
        return
    for item in parse_jsonl(lines):  # the contract's reader: depth guard, NaN, lone surrogates
        if isinstance(item, Rejection):
            yield item.line, item.reason
        else:
            number, parsed = item
            yield number, parsed if isinstance(parsed, dict) else "Not a JSON object."


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
