"""Reading data-contract files: every line is either a valid record or a rejection with its line number."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from matcher.errors import InvalidRequestError
from models.contract import ContentSchema, InfluencerSchema
from models.records import Content, Influencer

SCHEMAS = {"influencers": InfluencerSchema(), "content": ContentSchema()}


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    id: str | None = None


@dataclass
class FileReport:
    """What happened to each line of one file."""

    source: str
    kind: str
    lines: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "lines": self.lines,
            "accepted": self.accepted,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"line": r.line, "id": r.id, "reason": r.reason} for r in self.rejected],
        }


def detect_kind(path: Path) -> str:
    """'influencers' or 'content', from the file name or else from the first record's fields."""
    name = path.name.lower()
    if "influencer" in name:
        return "influencers"
    if "content" in name:
        return "content"
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                if "format" in record or "influencer_id" in record:
                    return "content"
                if "platforms" in record or "category" in record:
                    return "influencers"
    raise InvalidRequestError(
        f"Cannot tell whether {path} holds influencers or content: name it influencers*.jsonl or content*.jsonl."
    )


def read_records(lines: Iterable[bytes | str], kind: str) -> Iterator[tuple[int, Influencer | Content] | Rejection]:
    """Each non-blank line as (line number, record) or a Rejection; an id repeated in the stream is rejected.

    Byte lines are decoded one by one, so that a bad byte costs one line, not the file; a leading BOM is dropped.
    """
    schema = SCHEMAS[kind]
    first_seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield Rejection(number, f"not UTF-8 text (byte {e.start + 1})")
                continue
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as e:
            yield Rejection(number, f"invalid JSON: {getattr(e, 'msg', e)} at column {getattr(e, 'colno', '?')}")
            continue
        record_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        try:
            record = schema.load(raw)
        except ValidationError as e:
            yield Rejection(number, describe_errors(e.messages), record_id)
            continue
        if record.id in first_seen:
            yield Rejection(number, f"duplicate id, first seen at line {first_seen[record.id]}", record.id)
            continue
        first_seen[record.id] = number
        yield number, record


def describe_errors(messages: Any, prefix: str = "") -> str:
    """Flatten marshmallow's nested messages: 'platforms.0.followers: Must be greater than or equal to 0.'"""
    if isinstance(messages, dict):
        parts = []
        for key, value in messages.items():
            name = "record" if key == "_schema" else str(key)
            parts.append(describe_errors(value, f"{prefix}.{name}" if prefix else name))
        return "; ".join(parts)
    if isinstance(messages, list):
        text = " ".join(str(m) for m in messages if not isinstance(m, (dict, list)))
        nested = [describe_errors(m, prefix) for m in messages if isinstance(m, (dict, list))]
        return "; ".join(([f"{prefix}: {text}"] if text else []) + nested)
    return f"{prefix}: {messages}"
