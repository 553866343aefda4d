"""The data contract's schemas: normalisation, round trip, refusals."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from models.contract import ContentSchema, InfluencerSchema

INFLUENCER = {
    "id": " inf-a ",
    "name": "A",
    "category": "partner",
    "language": "FR-be",
    "bio": None,
    "topics": ["Tech", " tech ", "", "Réseau"],
    "platforms": [{"network": "YouTube", "followers": 10, "engagement_rate": 0.02, "verified": True}],
    "source_note": "kept",
}


def test_influencer_is_normalised_and_round_trips():
    record = InfluencerSchema().load(INFLUENCER)
    assert (record.id, record.language, record.bio, record.topics) == ("inf-a", "fr", "", ["Tech", "Réseau"])
    assert record.platforms[0].network == "youtube" and record.platforms[0].extra == {"verified": True}
    dumped = InfluencerSchema().dump(record)
    assert dumped["source_note"] == "kept" and dumped["platforms"][0]["verified"] is True
    assert InfluencerSchema().load(dumped) == record


@pytest.mark.parametrize(
    ("published_at", "iso"),
    [
        ("2026-01-05T10:00:00+01:00", "2026-01-05T10:00:00+01:00"),
        ("2026-01-05T10:00:00Z", "2026-01-05T10:00:00+00:00"),
        ("2026-01-05T10:00:00", "2026-01-05T10:00:00+00:00"),  # no offset: read as UTC
        ("2026-01-05", "2026-01-05T00:00:00+00:00"),
    ],
)
def test_content_dates(published_at, iso):
    record = ContentSchema().load({"id": "c", "format": "tweet", "text": "x", "published_at": published_at})
    assert record.published_at.isoformat() == iso


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"format": "podcast"}, "format"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"engagement": {"likes": -1}}, "engagement"),
        ({"products": "homelive"}, "products"),
        ({"title": "", "text": ""}, "text"),
        ({"published_at": None}, "published_at"),
    ],
)
def test_content_refusals_name_the_field(changes, field):
    with pytest.raises(ValidationError) as caught:
        ContentSchema().load({"id": "c", "format": "tweet", "text": "x", "published_at": "2026-01-01", **changes})
    assert field in caught.value.messages


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "   "}, "name"),
        ({"platforms": [{"network": " ", "followers": 1}]}, "platforms"),
        ({"platforms": [{"network": "x", "followers": 10**13}]}, "platforms"),
        ({"platforms": [{"network": "x", "followers": 1, "engagement_rate": 1e308}]}, "platforms"),
    ],
)
def test_influencer_refusals_name_the_field(changes, field):
    with pytest.raises(ValidationError) as caught:
        InfluencerSchema().load({**INFLUENCER, **changes})
    assert field in caught.value.messages


def test_empty_author_means_brand_owned():
    record = ContentSchema().load(
        {"id": "c", "influencer_id": " ", "format": "tweet", "text": "x", "published_at": "2026-01-01"}
    )
    assert record.influencer_id is None
