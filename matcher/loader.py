"""Reading data-contract files: every line is either a valid record or a rejection with its line number."""

from __future__ import annotations

import csv
import json
import re
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


KEPT_REJECTIONS = 1000  # rejected lines reported in full; the others are counted
REASON_KINDS = 50


def reason_kind(reason: str) -> str:
    """A rejection's reason without what names its line (quoted values, numbers), so that 657 posts by 400
    unknown authors count as one kind of reason."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", reason))[:100]


@dataclass
class FileReport:
    """What happened to each line of one file."""

    source: str
    kind: str
    lines: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)  # the first KEPT_REJECTIONS only
    rejected_count: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def reject(self, rejection: Rejection) -> None:
        """Count a rejected line; keep its details for the first KEPT_REJECTIONS only, and a count per kind of
        reason (``reason_kind``, at most REASON_KINDS of them): a file of a million bad lines gives a report of a
        few hundred kilobytes, not of a hundred megabytes."""
        self.rejected_count += 1
        if len(self.rejected) < KEPT_REJECTIONS:
            self.rejected.append(rejection)
        kind = reason_kind(rejection.reason)
        if kind in self.rejected_by_reason or len(self.rejected_by_reason) < REASON_KINDS:
            self.rejected_by_reason[kind] = self.rejected_by_reason.get(kind, 0) + 1
        else:
            self.rejected_by_reason["other"] = self.rejected_by_reason.get("other", 0) + 1

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
            "rejected_count": self.rejected_count,
            "rejected_by_reason": dict(self.rejected_by_reason),
        }


def detect_kind(path: Path) -> str:
    """'influencers' or 'content', from the file name or else from its first record (or CSV header)."""
    name = path.name.lower()
    if "influencer" in name:
        return "influencers"
    if "content" in name:
        return "content"
    with path.open("rb") as f:
        return detect_kind_of_text(f.read(1 << 20), csv=name.endswith(".csv"), source=str(path))


def detect_kind_of_text(raw: bytes, *, csv: bool, source: str = "the body") -> str:
    """'influencers' or 'content', from the first record's fields (or the CSV header)."""
    lines = raw.decode("utf-8", errors="replace").removeprefix("\ufeff").splitlines()
    candidates: Iterable[Any] = [dict.fromkeys(next(iter(lines), "").split(","))] if csv else _json_objects(lines)
    for record in candidates:
        fields = {str(k).strip() for k in record}
        if fields & {"format", "influencer_id"}:
            return "content"
        if fields & {"platforms", "category", "network", "followers"}:
            return "influencers"
    raise InvalidRequestError(
        f"Cannot tell whether {source} holds influencers or content: name the file influencers*.jsonl or "
        "content*.jsonl, or pass kind=influencers|content.",
        {"kind": ["Required: cannot be told from the data."]},
    )


def _json_objects(lines: list[str]) -> Iterator[dict]:
    for line in lines:
        try:
            record = parse_json(line)  # the depth guard too: a line nested 1,000 deep crashed the decoder here
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def read_records(lines: Iterable[bytes | str], kind: str) -> Iterator[tuple[int, Influencer | Content] | Rejection]:
    """Each non-blank JSON Lines line as (line number, record) or a Rejection."""
    return validate(parse_jsonl(lines), kind)


def read_csv_records(lines: Iterable[bytes | str], kind: str) -> Iterator[tuple[int, Influencer | Content] | Rejection]:
    """CSV with a header row, as a spreadsheet exports it, as (line number, record) or a Rejection."""
    return validate(parse_csv(lines, kind), kind)


def parse_jsonl(lines: Iterable[bytes | str]) -> Iterator[tuple[int, Any] | Rejection]:
    """(line number, parsed JSON) for each non-blank line. Bytes are decoded line by line, so that a bad byte
    costs one line, not the file; a leading BOM is dropped."""
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
            parsed = parse_json(line)
        except ValueError as e:
            where = f" at column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
            yield Rejection(number, f"invalid JSON: {getattr(e, 'msg', e)}{where}")
            continue
        problem = invalid_text(parsed)
        if problem:
            yield Rejection(number, problem)
        else:
            yield number, parsed


SURROGATE = re.compile("[\ud800-\udfff]")


MAX_DEPTH = 32  # the contract's deepest value is 3 levels; Python's own limit would be hit, far below, at ~1000


def parse_json(text: str | bytes) -> Any:
    """json.loads without the NaN and Infinity that Python accepts and JSON does not (they would come back out
    as invalid JSON, or as NaN scores), and without values nested deeper than ``MAX_DEPTH``, refused before the
    decoder recurses into them (a RecursionError caught in CPython 3.11 can leave the interpreter's recursion
    bookkeeping wrong: a later compile then fails with 'AST constructor recursion depth mismatch')."""
    if _too_deep(text if isinstance(text, str) else text.decode("utf-8", errors="replace")):
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return json.loads(text, parse_constant=_refuse_constant)


TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')  # a JSON string (brackets in it do not count), or a bracket


def _too_deep(text: str) -> bool:
    """Whether JSON text nests lists and objects more than ``MAX_DEPTH`` levels. Most texts have too few brackets
    to: only those are scanned, and the scan stops at the first level too deep."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for token in TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif mark in "]}":
            depth -= 1
    return False


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def invalid_text(value: Any) -> str | None:
    """What is wrong with the text in parsed JSON, or None. JSON may escape lone UTF-16 surrogates ("\\ud800"),
    which no UTF-8 text can hold: stored or embedded, they would fail far from here."""
    if isinstance(value, str):
        return "the text holds an invalid character (a lone UTF-16 surrogate)" if SURROGATE.search(value) else None
    if isinstance(value, dict):
        return next((p for k, v in value.items() for p in (invalid_text(k), invalid_text(v)) if p), None)
    if isinstance(value, list):
        return next((p for v in value if (p := invalid_text(v))), None)
    return None


# CSV cells are text: these say how a cell becomes the contract's value.
LIST_FIELDS = {"topics", "products"}
JSON_FIELDS = {"platforms", "engagement"}
PLATFORM_COLUMNS = ("network", "handle", "followers", "engagement_rate")  # one platform per row, when no JSON
ENGAGEMENT_COLUMNS = ("likes", "shares", "comments", "views")


def parse_csv(lines: Iterable[bytes | str], kind: str) -> Iterator[tuple[int, Any] | Rejection]:
    """(line number, record dict) per CSV row. Lists are JSON or 'a|b|c'; platforms and engagement are JSON, or
    flat columns (network, handle, followers, engagement_rate; likes, shares, comments, views); empty cells are
    absent."""
    text = (line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line for line in lines)
    reader = csv.DictReader(_drop_bom(text))
    start = 2
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # a cell over the csv module's field limit (128 KiB), a NUL byte: this line only
            yield Rejection(start, f"not readable as CSV: {e}")
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if None in row:
            yield Rejection(number, f"{len(row[None])} more cells than the header has columns")
            continue
        record: dict[str, Any] = {}
        try:
            for column, cell in row.items():
                if cell is None or not cell.strip():
                    continue
                record[column] = _cell(column, cell.strip())
        except ValueError as e:
            yield Rejection(number, str(e), row.get("id"))
            continue
        _gather(record, "platforms", PLATFORM_COLUMNS, as_list=True, when=kind == "influencers")
        _gather(record, "engagement", ENGAGEMENT_COLUMNS, as_list=False, when=kind == "content")
        yield number, record


def _cell(column: str, cell: str) -> Any:
    if column in JSON_FIELDS or (column in LIST_FIELDS and cell.startswith("[")):
        try:
            return parse_json(cell)
        except ValueError as e:
            raise ValueError(f"{column}: not valid JSON ({e})") from e
    if column in LIST_FIELDS:
        return [part.strip() for part in cell.split("|") if part.strip()]
    return cell


def _gather(record: dict[str, Any], field: str, columns: tuple[str, ...], *, as_list: bool, when: bool) -> None:
    """Flat columns become the nested field, unless the record already has it as JSON."""
    if not when or field in record or not any(c in record for c in columns):
        return
    nested = {c: record.pop(c) for c in columns if c in record}
    record[field] = [nested] if as_list else nested


def _drop_bom(lines: Iterator[str]) -> Iterator[str]:
    for number, line in enumerate(lines):
        yield line.removeprefix("\ufeff") if number == 0 else line


def validate(parsed: Iterable[tuple[int, Any] | Rejection], kind: str) -> Iterator[tuple[int, Any] | Rejection]:
    """Validate each parsed record against the contract; an id repeated in the stream is rejected."""
    schema = SCHEMAS[kind]
    first_seen: dict[str, int] = {}
    for item in parsed:
        if isinstance(item, Rejection):
            yield item
            continue
        number, raw = item
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
