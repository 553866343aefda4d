"""Filters: what they accept and how they refuse bad values."""

from __future__ import annotations

import pytest

from matcher.errors import InvalidRequestError
from matcher.filters import Filters


def influencer(**changes):
    row = {
        "id": "inf-x",
        "opted_out": False,
        "category": "partner",
        "language": "fr",
        "networks": ["youtube", "blog"],
        "platforms": [{"network": "youtube", "followers": 50_000}, {"network": "blog", "followers": 4_000}],
        "topics": ["Domotique", "Tests"],
    }
    return {**row, **changes}


def content(**changes):
    row = {
        "influencer_id": "inf-x",
        "language": "fr",
        "network": "youtube",
        "topics": ["Installation"],
        "products": ["Homelive"],
    }
    return {**row, **changes}


@pytest.mark.parametrize(
    ("filters", "accepted"),
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
    ],
)
def test_influencer_filters(filters, accepted):
    assert Filters.from_mapping(filters).accepts_influencer(influencer(), with_products=set()) is accepted


def test_opted_out_is_never_accepted():
    assert not Filters.from_mapping({}).accepts_influencer(influencer(opted_out=True))
    assert not Filters.from_mapping({}).accepts_content(content(), influencer(opted_out=True))


def test_products_filter_for_influencers_uses_what_they_published():
    f = Filters.from_mapping({"products": ["homelive"]})
    assert f.accepts_influencer(influencer(), with_products={"inf-x"})
    assert not f.accepts_influencer(influencer(), with_products=set())


@pytest.mark.parametrize(
    ("filters", "brand_owned", "accepted"),
    [
        ({"products": "HOMELIVE"}, False, True),
        ({"products": "livebox"}, False, False),
        ({"topics": "installation"}, False, True),
        ({"category": "partner"}, False, True),
        ({"category": "partner"}, True, False),  # brand content has no category
        ({"min_followers": 1}, True, False),  # nor an audience
        ({"language": "fr"}, True, True),
        ({"network": "instagram"}, False, False),
    ],
)
def test_content_filters(filters, brand_owned, accepted):
    row = content(influencer_id=None) if brand_owned else content()
    author = None if brand_owned else influencer()
    assert Filters.from_mapping(filters).accepts_content(row, author) is accepted


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


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"language": "fr"},
        {"language": ["EN", "fr"]},
        {"category": ["partner", "affinity"], "language": "fr"},
        {"network": ["youtube", "blog"]},
        {"network": "instagram", "category": "statutory"},
        {"language": "de"},
    ],
)
def test_the_sql_condition_reads_exactly_the_rows_that_can_pass(engine, values):
    """The store reads only rows meeting ``sql_condition``: it must let through every row the filter accepts
    (or results would silently shrink), and leave out those failing its plain columns."""
    filters = Filters.from_mapping(values)
    store = engine.store
    for kind in ("influencers", "content"):
        everything = store.rows(kind, store.embeddings(kind)[0].tolist())
        read = set(store.rows(kind, everything, filters.sql_condition(kind)))
        if kind == "influencers":
            passing = {k for k, r in everything.items() if filters.accepts_influencer(r)}
            plain = ("language", "category")
        else:
            authors = store.influencer_rows_by_id(r["influencer_id"] for r in everything.values())
            passing = {
                k for k, r in everything.items() if filters.accepts_content(r, authors.get(r["influencer_id"] or ""))
            }
            plain = ("language", "network")
        assert passing <= read, (kind, values)
        expected = {
            k
            for k, r in everything.items()
            if all(not getattr(filters, name) or (r[name] or "") in getattr(filters, name) for name in plain)
        }
        if kind == "content" and filters.category:
            expected = {
                k
                for k in expected
                if authors.get(everything[k]["influencer_id"] or "", {}).get("category") in filters.category
            }
        assert read == expected, (kind, values)
