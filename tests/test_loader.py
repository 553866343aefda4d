"""Importing data-contract files: what is accepted, what is rejected (with line numbers), and idempotence."""

from __future__ import annotations

import json

import pytest

from matcher.config import Settings
from matcher.loader import detect_kind, read_records
from matcher.service import Engine

GOOD_INFLUENCER = {
    "id": "inf-jade",
    "name": "Jade Lefort",
    "bio": "Je teste les alarmes connectées.",
    "topics": ["domotique"],
    "category": "affinity",
    "language": "fr",
    "country": "FR",
    "platforms": [{"network": "youtube", "handle": "@jade", "followers": 12000, "engagement_rate": 0.05}],
    "newsletter": "jade.substack.com",
}
GOOD_CONTENT = {
    "id": "cnt-jade-01",
    "influencer_id": "inf-jade",
    "title": "Test : le capteur d'ouverture Homelive",
    "text": "Installé sur ma porte d'entrée, il prévient en deux secondes.",
    "url": "https://youtube.com/watch?v=j1",
    "format": "review",
    "language": "fr",
    "published_at": "2026-03-02T10:00:00+01:00",
    "topics": ["test"],
    "engagement": {"likes": 120, "comments": 14, "views": 4000},
    "sentiment": 0.5,
    "products": ["homelive"],
    "campaign": "launch-2025",
}


def line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)


INFLUENCER_LINES = [
    line(GOOD_INFLUENCER),  # 1 ok
    '{"id": "inf-broken", "name": "Broken",',  # 2 bad JSON
    line({**GOOD_INFLUENCER, "id": "inf-x", "category": "celebrity"}),  # 3 bad category
    line({**GOOD_INFLUENCER, "id": "inf-y", "name": ""}),  # 4 empty name
    line({**GOOD_INFLUENCER, "id": "inf-z", "platforms": [{"network": "x", "followers": -5}]}),  # 5 negative
    "",  # 6 blank: skipped
    line({**GOOD_INFLUENCER, "name": "Jade again"}),  # 7 duplicate id
    '["not", "an", "object"]',  # 8 not an object
    line({**GOOD_INFLUENCER, "id": "inf-lang", "language": "français"}),  # 9 bad language
    line({**GOOD_INFLUENCER, "id": "inf-out", "opted_out": True}),  # 10 ok, opted out
]
CONTENT_LINES = [
    line(GOOD_CONTENT),  # 1 ok
    line({**GOOD_CONTENT, "id": "cnt-orphan", "influencer_id": "inf-nobody"}),  # 2 unknown author
    line({**GOOD_CONTENT, "id": "cnt-empty", "title": "", "text": "  "}),  # 3 nothing to match
    line({**GOOD_CONTENT, "id": "cnt-fmt", "format": "podcast"}),  # 4 unknown format
    line({**GOOD_CONTENT, "id": "cnt-date", "published_at": "last tuesday"}),  # 5 bad date
    line({**GOOD_CONTENT, "id": "cnt-brand", "influencer_id": None}),  # 6 ok, brand-owned
    line({**GOOD_CONTENT, "id": "cnt-sent", "sentiment": 3}),  # 7 out of range
    line({**GOOD_CONTENT, "id": "cnt-out", "influencer_id": "inf-out"}),  # 8 ok (author opted out)
]

EXPECTED_REJECTIONS = {
    "influencers": [
        (2, "invalid JSON"),
        (3, "category: Must be one of"),
        (4, "name: Length"),
        (5, "platforms.0.followers"),
        (7, "duplicate id, first seen at line 1"),
        (8, "The body must be a JSON object|Invalid input type"),
        (9, "language"),
    ],
    "content": [
        (2, "influencer_id 'inf-nobody' is not a known influencer"),
        (3, "title and text are both empty"),
        (4, "format: Must be one of"),
        (5, "published_at: Not a valid datetime"),
        (7, "sentiment: Must be greater than or equal to -1"),
    ],
}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "influencers.jsonl").write_text("\n".join(INFLUENCER_LINES) + "\n", encoding="utf-8")
    (tmp_path / "content.jsonl").write_text("\n".join(CONTENT_LINES) + "\n", encoding="utf-8")
    return [tmp_path / "content.jsonl", tmp_path / "influencers.jsonl"]  # order on purpose: content first


def test_rejected_lines_are_reported_and_the_rest_loads(tmp_path, files):
    engine = Engine(Settings(data_dir=tmp_path / "data"))
    reports = {r.kind: r for r in engine.load(files)}
    assert [r for r in reports] == ["influencers", "content"]  # influencers always first
    for kind, expected in EXPECTED_REJECTIONS.items():
        got = reports[kind].rejected
        assert [r.line for r in got] == [n for n, _ in expected]
        for rejection, (_, pattern) in zip(got, expected, strict=True):
            assert any(p in rejection.reason for p in pattern.split("|")), rejection
    assert (reports["influencers"].inserted, reports["content"].inserted) == (2, 3)
    assert reports["influencers"].lines == 10 and reports["content"].lines == 8
    assert engine.store.count("influencers") == 2 and engine.store.count("content") == 3
    # the opted-out influencer is kept (for the audit trail) but not indexed, nor their content
    assert engine.health()["indexed"] == {"influencers": 1, "content": 2}


def test_unknown_fields_are_kept(tmp_path, files):
    engine = Engine(Settings(data_dir=tmp_path / "data"))
    engine.load(files)
    assert engine.influencer("inf-jade")["record"].extra == {"newsletter": "jade.substack.com"}
    assert engine.content("cnt-jade-01")["record"].extra == {"campaign": "launch-2025"}


def test_loading_twice_changes_nothing_and_an_edit_is_an_update(tmp_path, files):
    engine = Engine(Settings(data_dir=tmp_path / "data"))
    engine.load(files)
    version = engine.store.version
    again = {r.kind: r for r in engine.load(files)}
    assert (again["influencers"].unchanged, again["content"].unchanged) == (2, 3)
    assert again["influencers"].inserted == again["content"].inserted == again["content"].updated == 0
    assert engine.store.version == version

    edited = tmp_path / "content-edit.jsonl"
    edited.write_text(line({**GOOD_CONTENT, "title": "Test : le capteur d'ouverture, six mois après"}) + "\n")
    report = engine.load([edited])[0]
    assert (report.updated, report.inserted) == (1, 0)
    assert engine.content("cnt-jade-01")["record"].title.endswith("six mois après")
    assert engine.store.stale_embeddings("content", engine.encoder.name) == []  # re-embedded


def test_bad_bytes_and_a_bom_cost_one_line_at_most():
    lines = ["\ufeff" + line(GOOD_INFLUENCER), b"\xff\xfe{}", line({**GOOD_INFLUENCER, "id": "inf-2"})]
    encoded = [lines[0].encode(), lines[1], lines[2].encode()]
    out = list(read_records(encoded, "influencers"))
    assert out[0][1].id == "inf-jade" and out[2][1].id == "inf-2"
    assert out[1].line == 2 and "not UTF-8" in out[1].reason


@pytest.mark.parametrize(
    ("name", "first_line", "kind"),
    [
        ("influencers-2026.jsonl", "{}", "influencers"),
        ("posts.jsonl", line(GOOD_CONTENT), "content"),
        ("roster.jsonl", line(GOOD_INFLUENCER), "influencers"),
    ],
)
def test_detect_kind(tmp_path, name, first_line, kind):
    path = tmp_path / name
    path.write_text(first_line + "\n")
    assert detect_kind(path) == kind
