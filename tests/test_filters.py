"""Filters: what they accept, as masks over the catalogue, and how they refuse bad values."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.config import Settings
from matcher.errors import InvalidRequestError
from matcher.filters import Filters
from matcher.service import Engine
from models.contract import ContentSchema, InfluencerSchema
from tests import reference

PERSON = {
    "id": "inf-x",
    "name": "Xavier Banc",
    "category": "partner",
    "language": "fr",
    "platforms": [
        {"network": "youtube", "handle": "@x", "followers": 50_000},
        {"network": "blog", "handle": "x.fr", "followers": 4_000},
    ],
    "topics": ["Domotique", "Tests"],
}
OTHERS = [
    {**PERSON, "id": "inf-gone", "name": "Opted Out", "opted_out": True},
    {**PERSON, "id": "inf-y", "name": "Yvonne", "category": "affinity", "language": "en", "topics": ["Décoration"]},
]
PIECE = {
    "id": "c-x",
    "influencer_id": "inf-x",
    "title": "Installer les capteurs",
    "format": "tutorial",
    "language": "fr",
    "published_at": "2026-10-01",
    "url": "https://www.youtube.com/watch?v=x1",
    "topics": ["Installation"],
    "products": ["Homelive"],
}
PIECES = [
    {
        **PIECE,
        "id": "c-brand",
        "influencer_id": None,
        "title": "Homelive, la maison connectée",
        "format": "article",
        "url": "https://www.orange.fr/homelive",
    },
    {**PIECE, "id": "c-gone", "influencer_id": "inf-gone", "title": "Une vidéo d'une personne partie"},
    {
        **PIECE,
        "id": "c-y",
        "influencer_id": "inf-y",
        "title": "My cosy corner",
        "language": "en",
        "products": [],
        "url": "https://www.instagram.com/p/y1",
        "format": "instagram_post",
    },
]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Engine:
    """A catalogue holding the hand-made records above."""
    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("filters")))
    for record in [PERSON, *OTHERS]:
        engine.put("influencers", InfluencerSchema().load(record))
    for record in [PIECE, *PIECES]:
        engine.put("content", ContentSchema().load(record))
    return engine


def accepted(engine: Engine, kind: str, values: dict, record_id: str) -> bool:
    filters = Filters.from_mapping(values)
    catalogue = engine.catalogue
    mask = filters.influencer_mask(catalogue) if kind == "influencers" else filters.content_mask(catalogue)
    key = engine.store.keys_by_id(kind, [record_id])[record_id]
    return bool((mask & catalogue.visible(kind))[key])


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, True),
        ({"category": "partner"}, True),
        ({"category": ["affinity", "customer"]}, False),
        ({"network": "YouTube"}, True),
        ({"network": "tiktok"}, False),
        ({"language": ["en"]}, False),
        ({"min_followers": 50_000}, True),
        ({"min_followers": 50_001}, False),
        ({"max_followers": 10_000}, False),
        ({"network": "blog", "max_followers": 10_000}, True),  # audience on the filtered network
        ({"topics": ["domotique"]}, True),
        ({"topics": ["décoration"]}, False),
        ({"products": ["homelive"]}, True),  # people who published about it
        ({"products": ["livebox"]}, False),
    ],
)
def test_influencer_filters(small, filters, expected):
    assert accepted(small, "influencers", filters, "inf-x") is expected


def test_opted_out_is_never_accepted(small):
    assert not accepted(small, "influencers", {}, "inf-gone")
    assert not accepted(small, "content", {}, "c-gone")  # their content goes with them


@pytest.mark.parametrize(
    ("filters", "record_id", "expected"),
    [
        ({"products": "HOMELIVE"}, "c-x", True),
        ({"products": "livebox"}, "c-x", False),
        ({"topics": "installation"}, "c-x", True),
        ({"category": "partner"}, "c-x", True),
        ({"category": "partner"}, "c-brand", False),  # brand content has no category
        ({"min_followers": 1}, "c-brand", False),  # nor an audience
        ({"language": "fr"}, "c-brand", True),
        ({"network": "instagram"}, "c-x", False),
        ({"network": "instagram"}, "c-y", True),
        ({"min_followers": 40_000, "network": "youtube"}, "c-x", True),  # the author's audience on that network
        ({"min_followers": 40_000, "network": "blog"}, "c-x", False),
    ],
)
def test_content_filters(small, filters, record_id, expected):
    assert accepted(small, "content", filters, record_id) is expected


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"language": "fr"},
        {"language": ["EN", "fr"]},
        {"category": ["partner", "affinity"], "language": "fr"},
        {"network": ["youtube", "blog"]},
        {"network": "instagram", "category": "statutory"},
        {"min_followers": 20_000, "max_followers": 200_000},
        {"network": "instagram", "min_followers": 50_000},
        {"topics": ["domotique", "décoration"]},
        {"products": "homelive", "language": "fr"},
        {"language": "de"},
    ],
)
def test_masks_accept_what_the_row_by_row_reference_accepts(engine, values):
    """On the Homelive data, every record: the catalogue's masks against the plain checks on decoded rows."""
    filters = Filters.from_mapping(values)
    data = reference.read(engine)
    catalogue = engine.catalogue
    for kind, mask in (
        ("influencers", filters.influencer_mask(catalogue)),
        ("content", filters.content_mask(catalogue)),
    ):
        rows = data.rows[kind]
        if kind == "influencers":
            expected = {k for k, r in rows.items() if reference.accepts_influencer(filters, r, data)}
        else:
            expected = {k for k, r in rows.items() if reference.accepts_content(filters, r, data.author(r), data)}
        assert set(np.flatnonzero(mask[: catalogue.tables[kind].size]).tolist()) & set(rows) == expected, kind


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"category": "celebrity"}, "category"),
        ({"min_followers": 10, "max_followers": 5}, "min_followers"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_filters_are_refused_with_the_field(filters, field):
    with pytest.raises(InvalidRequestError) as caught:
        Filters.from_mapping(filters)
    assert field in caught.value.fields
