"""What kind of result a query asks for by name (matcher/facets.py), and what asking does to a ranking."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from matcher import facets
from matcher.config import Settings
from matcher.errors import ConfigError
from matcher.facets import Asked, FacetNames
from matcher.service import Engine

WORDS = {
    "formats": {"tutorial": ["tuto", "how to"], "testimonial": ["témoignage", "customer story"]},
    "categories": {"statutory": ["célébrité"], "customer": ["vrais clients"]},
    "networks": {"youtube": ["youtubeur"], "tiktok": ["tiktok"]},
    "languages": {"en": ["anglophone", "in english"]},
}


@pytest.mark.parametrize(
    ("query", "asked"),
    [
        ("un tuto pour installer la caméra", Asked(formats=("tutorial",))),
        ("des TUTOS vidéo", Asked(formats=("tutorial",))),  # case ignored, a plural's s dropped
        ("How to pair the sensor?", Asked(formats=("tutorial",))),  # an expression, as a sequence of words
        ("how do I pair it, to be sure", Asked()),  # its words apart are not the expression
        ("Customer story page", Asked(formats=("testimonial",))),
        ("customer stories", Asked()),  # only a final s or x is dropped: an irregular plural needs its own entry
        ("des célébrités sur TikTok", Asked(categories=("statutory",), networks=("tiktok",))),
        ("temoignages de vrais clients", Asked(formats=("testimonial",), categories=("customer",))),  # accents
        ("youtubeuses et youtubeurs", Asked(networks=("youtube",))),  # "youtubeuses" is not a listed word
        ("des testeurs anglophones", Asked(languages=("en",))),
        ("reviews in English please", Asked(formats=(), languages=("en",))),
        ("le service client est fermé", Asked()),
        ("", Asked()),
        (None, Asked()),
    ],
)
def test_a_query_names_formats_categories_and_networks(query, asked):
    assert FacetNames(WORDS).named_in(query) == asked


def test_what_is_asked_reads_as_a_list_and_is_false_when_nothing_is():
    asked = FacetNames(WORDS).named_in("tuto de youtubeur")
    assert asked and asked.describe() == "tutorial, youtube"
    assert not Asked()


def test_the_file_is_checked_and_may_be_left_out(tmp_path):
    assert not facets.load(tmp_path / "none.json").named_in("un tuto")  # no file: nothing is ever asked for
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps({"formats": {"tutoriel": ["tuto"]}, "categories": {"celebrity": ["star"]}, "languages": {"EN": []}})
    )
    with pytest.raises(ConfigError, match=r"formats\.tutoriel, categories\.celebrity, languages\.EN"):
        facets.load(wrong)
    broken = tmp_path / "broken.json"
    broken.write_text('{"formats": ["tuto"]}')
    with pytest.raises(ConfigError, match="expected"):
        facets.load(broken)


def test_the_shipped_words_load_with_words_for_every_kind():
    loaded = facets.load(Settings().facets_file)  # every format and category in it is the contract's (load checks)
    assert {kind for entries in loaded.starting.values() for _, kind, _ in entries} == set(facets.KINDS)


@pytest.fixture
def engines(homelive_copy, tmp_path):
    words = tmp_path / "facets.json"
    words.write_text(json.dumps(WORDS), encoding="utf-8")
    asking = Engine(Settings(data_dir=homelive_copy, facets_file=words))
    plain = Engine(Settings(data_dir=homelive_copy, facets_file=tmp_path / "none.json"))
    yield asking, plain
    asking.close()
    plain.close()


def test_a_named_format_favours_pieces_of_that_format(engines, contents):
    asking, plain = engines
    query = "tuto pour installer le détecteur d'ouverture"
    asked = asking.match("technical_validation", query, limit=60, types=["content"]).content
    assert {r.row["format"] for r in asked} - {"tutorial"}  # both kinds are among the candidates
    for r in asked:
        tutorial = r.row["format"] == "tutorial"
        assert r.parts["asked"].value == (1.0 if tutorial else 0.0)
        assert r.parts["asked"].reason == ("" if tutorial else "not ") + "what the query asks for (tutorial)"
        assert sum(p.contribution for p in r.parts.values()) == pytest.approx(r.score)
    unasked = plain.match("technical_validation", query, limit=60, types=["content"]).content
    assert all("asked" not in r.parts for r in unasked)

    def tutorials_in_top(results: list, n: int = 10) -> int:
        return sum(r.row["format"] == "tutorial" for r in results[:n])

    assert tutorials_in_top(asked) > tutorials_in_top(unasked)
    assert all("asked" not in r.parts for r in asking.match("technical_validation", "installer le détecteur").content)


def test_a_person_matches_by_category_network_and_the_share_of_their_pieces_in_the_format(engines, contents):
    asking, _ = engines
    query = "des vrais clients youtubeur anglophone"
    people = asking.match("desirability", query, limit=30, types=["influencers"]).influencers
    for r in people:
        kinds = (r.row["category"] == "customer", "youtube" in r.row["networks"], r.row["language"] == "en")
        assert r.parts["asked"].value == pytest.approx(sum(kinds) / 3)
    assert len({r.parts["asked"].value for r in people}) >= 2  # people who are more of what was asked, and less
    published, tutorials = Counter(), Counter()
    for piece in contents.values():
        if piece.get("influencer_id"):
            published[piece["influencer_id"]] += 1
            tutorials[piece["influencer_id"]] += piece["format"] == "tutorial"
    found = asking.match("technical_validation", "un tuto", limit=30, types=["influencers"]).influencers
    shares = {r.row["id"]: r.parts["asked"].value for r in found}
    assert any(0 < s < 1 for s in shares.values())  # someone who publishes tutorials among other things
    for person, share in shares.items():
        assert share == pytest.approx(tutorials[person] / published[person] if published[person] else 0.0)
