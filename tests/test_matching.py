"""Matching on the Homelive fixtures: the right voices and formats for each moment, in French and English."""

from __future__ import annotations

import logging
import shutil

import pytest

from matcher.config import Settings
from matcher.embedding import resolve_model
from matcher.errors import ConfigError
from matcher.ranking import NEUTRAL
from matcher.scoring import fold
from matcher.service import Engine

# Who carries each moment, written from the brand team's practice (not from the engine's own moments file).
TECH = {
    "domotique",
    "maison connectée",
    "high-tech",
    "tests produits",
    "réseau",
    "sécurité",
    "tech",
    "smart home",
    "home automation",
    "électronique",
    "mesures",
    "jeedom",
    "home assistant",
    "livebox",
    "télécoms",
    "gadgets",
    "objets connectés",
    "tutoriels",
    "vie privée",
    "cybersécurité",
}
HOME = {
    "décoration",
    "déco",
    "maison",
    "intérieur",
    "architecture intérieure",
    "lifestyle",
    "famille",
    "parentalité",
    "rénovation",
    "home staging",
    "slow living",
    "interiors",
    "interior styling",
    "diy",
    "bricolage",
    "animaux",
}
MARKETING = {
    "marketing",
    "marketing digital",
    "communication",
    "publicité",
    "médias",
    "nouveautés",
    "tendances",
    "relations presse",
    "influence",
    "événementiel",
    "bons plans",
    "brand launches",
    "marketing analytics",
    "journalisme",
    "journalism",
}
VALIDATION_FORMATS = {"tutorial", "comparison_test", "review", "article", "blog_post"}
DESIRABILITY_FORMATS = {"instagram_post", "video", "testimonial", "blog_post"}
DISCOVERY_FORMATS = {"tweet", "instagram_post", "video", "infographic", "article"}


def has_topic(row: dict, vocabulary: set[str]) -> bool:
    return any(fold(t) in {fold(v) for v in vocabulary} for t in row["topics"])


def carries(moment: str, row: dict) -> bool:
    if moment == "technical_validation":
        return has_topic(row, TECH)
    if moment == "desirability":
        return row["category"] == "customer" or has_topic(row, HOME)
    return row["category"] == "statutory" or has_topic(row, MARKETING)


FORMATS = {
    "technical_validation": VALIDATION_FORMATS,
    "desirability": DESIRABILITY_FORMATS,
    "discovery": DISCOVERY_FORMATS,
}

QUERIES = [
    ("technical_validation", "compatibilité des capteurs avec la box"),
    ("technical_validation", "does the motion sensor work with my box?"),
    ("desirability", "une caméra discrète et jolie dans mon salon"),
    ("desirability", "peace of mind when we're away on holiday"),
    ("discovery", "c'est quoi Homelive ?"),
    ("discovery", "what is this new Orange smart home offer?"),
]


@pytest.mark.parametrize(("moment", "query"), QUERIES)
def test_each_moment_gets_its_voices_and_formats(engine, moment, query):
    result = engine.match(moment, query, limit=5)
    top = result.influencers[0].row
    assert carries(moment, top), f"{top['name']} ({top['category']}, {top['topics']}) does not carry {moment}"
    assert sum(carries(moment, r.row) for r in result.influencers) >= 4
    assert result.content[0].row["format"] in FORMATS[moment]
    assert sum(r.row["format"] in FORMATS[moment] for r in result.content) >= 4
    brand = [r.row for r in result.content if r.row["influencer_id"] is None]  # the brand also has other offers
    assert all("homelive" in r["products"] for r in brand), [(r["id"], r["products"]) for r in brand]


@pytest.mark.parametrize("moment", ["discovery", "desirability", "technical_validation"])
def test_a_moment_alone_is_enough(engine, moment):
    """A widget sends only a moment (and a product): results still fit the moment."""
    result = engine.match(moment, filters={"products": ["homelive"]}, limit=3, types=["content"])
    assert len(result.content) == 3 and result.influencers == []
    assert all("homelive" in [p.lower() for p in r.row["products"]] for r in result.content)
    assert sum(r.row["format"] in FORMATS[moment] for r in result.content) >= 2


def test_every_result_explains_its_score(engine):
    result = engine.match("technical_validation", "autonomie des piles du détecteur", limit=5)
    for item in result.influencers + result.content:
        assert item.score == pytest.approx(sum(p.contribution for p in item.parts.values()))
        assert all(0 <= p.value <= 1 and p.reason for p in item.parts.values())
        informative = {n: p for n, p in item.parts.items() if NEUTRAL.get(n) != p.value}  # loop parts at rest last
        leading = max(informative, key=lambda n: informative[n].contribution)
        assert item.explanation.startswith(leading.replace("_", " "))
    assert {"relevance", "moment_fit", "influence", "engagement", "fatigue"} == set(result.influencers[0].parts)
    assert {"relevance", "moment_fit", "quality", "influence", "freshness", "tonality", "engagement"} == set(
        result.content[0].parts
    )


def test_in_depth_formats_outweigh_short_ones(engine):
    """Same subject, same moment: an article or test ranks above a tweet about it."""
    result = engine.match("technical_validation", "Homelive", limit=40, types=["content"])
    formats = [r.row["format"] for r in result.content]
    assert "tweet" in formats and "comparison_test" in formats  # both cases occur in this list
    quality = {r.row["format"]: r.parts["quality"].value for r in result.content}
    assert quality["comparison_test"] > quality["tweet"]
    assert min(formats.index(f) for f in VALIDATION_FORMATS if f in formats) < formats.index("tweet")


def test_opted_out_people_and_their_content_never_appear(engine, influencers, contents):
    hidden = {i for i, r in influencers.items() if r.get("opted_out")}
    hidden_content = {c for c, r in contents.items() if r["influencer_id"] in hidden}
    assert hidden and hidden_content
    for moment in ("discovery", "desirability", "technical_validation"):
        for query in (None, "Homelive", "caméra", "gadget review", "soirée de lancement", "déco méditerranéenne"):
            result = engine.match(moment, query, limit=100)
            assert not hidden & {r.row["id"] for r in result.influencers}
            assert not hidden_content & {r.row["id"] for r in result.content}
            assert not hidden & {r.row["influencer_id"] for r in result.content}


@pytest.mark.parametrize("query", ["Homelive", "installation du hub", "la caméra dans le salon"])
def test_one_influencer_does_not_crowd_out_the_list(engine, query):
    result = engine.match("technical_validation", query, limit=10, types=["content"])
    authors = [r.row["influencer_id"] or "(brand)" for r in result.content]
    assert len(authors) == 10
    assert max(authors.count(a) for a in set(authors)) <= 2


def test_people_with_empty_bios_are_found_through_their_content(engine, influencers, contents):
    quiet = [i for i, r in influencers.items() if not r["bio"] and not r.get("opted_out")]
    assert len(quiet) >= 3
    for influencer_id in quiet:
        piece = next(c for c in contents.values() if c["influencer_id"] == influencer_id and c["title"])
        for moment in ("discovery", "desirability", "technical_validation"):
            result = engine.match(moment, piece["title"], limit=10, types=["influencers"])
            assert influencer_id in [r.row["id"] for r in result.influencers], (influencer_id, moment)
            found = next(r for r in result.influencers if r.row["id"] == influencer_id)
            assert found.evidence and found.evidence[0][0]["influencer_id"] == influencer_id


FILTER_CASES = [  # (filters, holds for an influencer, holds for a piece of content and its author or None)
    (
        {"category": "customer"},
        lambda i: i["category"] == "customer",
        lambda c, a: a is not None and a["category"] == "customer",
    ),
    ({"network": "instagram"}, lambda i: "instagram" in i["networks"], lambda c, a: c["network"] == "instagram"),
    ({"language": "en"}, lambda i: i["language"] == "en", lambda c, a: c["language"] == "en"),
    (
        {"min_followers": 100_000},
        lambda i: i["followers"] >= 100_000,
        lambda c, a: a is not None and a["followers"] >= 100_000,
    ),
    (
        {"max_followers": 10_000},
        lambda i: i["followers"] <= 10_000,
        lambda c, a: a is not None and a["followers"] <= 10_000,
    ),
    (
        {"topics": ["Maison connectée"]},
        lambda i: "maison connectée" in i["topics"],
        lambda c, a: "maison connectée" in c["topics"],
    ),
    (
        {"category": ["partner", "affinity"], "network": "youtube"},
        lambda i: i["category"] in ("partner", "affinity") and "youtube" in i["networks"],
        lambda c, a: a is not None and a["category"] in ("partner", "affinity") and c["network"] == "youtube",
    ),
]


@pytest.mark.parametrize(("filters", "influencer_holds", "content_holds"), FILTER_CASES)
def test_filters_hold_on_every_result(engine, filters, influencer_holds, content_holds):
    result = engine.match("technical_validation", "Homelive", filters=filters, limit=10)
    assert result.influencers and result.content
    assert all(influencer_holds(r.row) for r in result.influencers)
    assert all(content_holds(r.row, r.author) for r in result.content)


def test_products_filter_keeps_people_who_published_about_it(engine, contents):
    result = engine.match("desirability", "décoration", filters={"products": "homelive"}, limit=20)
    published = {c["influencer_id"] for c in contents.values() if "homelive" in c.get("products", [])}
    assert result.influencers and {r.row["id"] for r in result.influencers} <= published
    assert all("homelive" in r.row["products"] for r in result.content)


def test_a_filter_that_matches_nothing_returns_empty_lists(engine):
    result = engine.match("discovery", "Homelive", filters={"network": "myspace"})
    assert result.influencers == [] and result.content == []


def test_reloading_from_disk_gives_identical_results(homelive_copy, caplog):
    built = Engine(Settings(data_dir=homelive_copy))
    built.reindex()  # rebuilt in memory, then saved
    with caplog.at_level(logging.INFO, logger="matcher.indexing"):
        reloaded = Engine(Settings(data_dir=homelive_copy))
    assert reloaded.opened == "loaded" and "repairing" not in caplog.text
    for moment, query in QUERIES:
        a, b = built.match(moment, query), reloaded.match(moment, query)
        assert [(r.row["id"], r.score) for r in a.influencers] == [(r.row["id"], r.score) for r in b.influencers]
        assert [(r.row["id"], r.score) for r in a.content] == [(r.row["id"], r.score) for r in b.content]


@pytest.mark.slow
def test_a_new_model_rebuilds_the_index(homelive_copy, tmp_path, caplog):
    """Another model (here the same weights at another path, so another name) re-embeds and rebuilds; on PyTorch,
    so that the suite runs the sentence-transformers encoder too."""
    model_dir = shutil.copytree(resolve_model("all-MiniLM-L6-v2"), tmp_path / "my-model")
    with caplog.at_level(logging.INFO, logger="matcher.indexing"):
        engine = Engine(Settings(data_dir=homelive_copy, model=str(model_dir), encoder="torch", query_encoder=""))
    assert engine.opened.startswith("repaired") and "model" in engine.opened
    assert "vectors from the database" in caplog.text
    assert engine.catalogue.tables["content"].base.meta["model"] == str(model_dir)
    assert engine.store.stale_embeddings("content", str(model_dir)) == []
    assert engine.match("technical_validation", "installation").content


def test_an_unknown_encoder_is_refused_clearly(tmp_path):
    with pytest.raises(ConfigError, match="Unknown encoder 'gpu'; valid encoders are: onnx, onnx-int8, torch"):
        Engine(Settings(data_dir=tmp_path, query_encoder="gpu"))
