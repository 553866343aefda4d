"""The serving path against the plain reference (``tests/reference.py``): the same results, in the same order, with
the same scores, on every evaluation query, and with filters and moments alone."""

from __future__ import annotations

import pytest

from matcher.config import PROJECT_DIR
from matcher.evaluation import load_judgements
from matcher.service import Engine
from models.contract import ContentSchema
from tests import reference

JUDGEMENTS = load_judgements(PROJECT_DIR / "eval" / "homelive.judgements.jsonl")
NEW_PIECE = {
    "id": "cnt-cargo",
    "influencer_id": None,
    "title": "Vélo cargo électrique : trois mois à Lyon",
    "text": "Le vélo cargo électrique a remplacé la voiture pour l'école et les courses.",
    "format": "article",
    "language": "fr",
    "published_at": "2026-11-01",
}
FILTERED = [
    ("technical_validation", "compatibilité avec ma box", {"language": "fr"}),
    ("desirability", "une caméra discrète dans le salon", {"category": ["affinity", "customer"]}),
    ("discovery", "what is Homelive", {"network": ["instagram", "youtube"], "min_followers": 20_000}),
    ("technical_validation", "installer les capteurs", {"products": "homelive", "topics": ["domotique"]}),
    ("desirability", None, {"language": "en"}),
]


def same_results(engine: Engine, moment: str, query: str | None, filters: dict | None = None, data=None) -> None:
    fast = engine.match(moment, query, filters, limit=10)
    plain = reference.match(engine, moment, query, filters, limit=10, data=data)
    for kind, results in (("influencers", fast.influencers), ("content", fast.content)):
        assert [r.row["id"] for r in results] == [i for i, _ in plain[kind]], (kind, moment, query, filters)
        assert [r.score for r in results] == pytest.approx([s for _, s in plain[kind]], abs=1e-6)


@pytest.fixture(scope="module")
def data(engine):
    return reference.read(engine)


@pytest.mark.parametrize("judgement", JUDGEMENTS, ids=[j.id for j in JUDGEMENTS])
def test_every_evaluation_query_ranks_as_the_reference_does(engine, data, judgement):
    same_results(engine, judgement.moment, judgement.query, data=data)


@pytest.mark.parametrize("moment", ["discovery", "desirability", "technical_validation"])
def test_a_moment_alone_ranks_as_the_reference_does(engine, data, moment):
    same_results(engine, moment, None, data=data)


@pytest.mark.parametrize(("moment", "query", "filters"), FILTERED)
def test_filtered_matches_rank_as_the_reference_does(engine, data, moment, query, filters):
    same_results(engine, moment, query, filters, data=data)


def test_the_explanation_adds_up_to_the_score(engine):
    result = engine.match("technical_validation", "compatibilité des capteurs avec la box", limit=10)
    for r in result.influencers + result.content:
        assert sum(p.contribution for p in r.parts.values()) == pytest.approx(r.score, abs=1e-12)


def test_an_approximate_index_finds_what_exact_search_finds(homelive_dir, tmp_path, engine):
    """With an HNSW graph over every base (from 1 vector on), text queries search the graph: on the judged
    queries, the same results as exact search nearly always, and records written since the base are found."""
    from matcher.config import Settings
    from tests.conftest import copy_data_dir

    approximate = Engine(Settings(data_dir=copy_data_dir(homelive_dir, tmp_path / "d"), approximate_from=1))
    approximate.reindex()
    assert {t.base.kind for t in approximate.catalogue.tables.values()} == {"hnsw"}
    overlap = []
    for j in JUDGEMENTS:
        exact, found = engine.match(j.moment, j.query), approximate.match(j.moment, j.query)
        for a, b in ((exact.influencers, found.influencers), (exact.content, found.content)):
            overlap.append(len({r.row["id"] for r in a} & {r.row["id"] for r in b}) / max(1, len(a)))
    assert sum(overlap) / len(overlap) > 0.97, sum(overlap) / len(overlap)
    approximate.put("content", ContentSchema().load(NEW_PIECE))
    assert approximate.catalogue.tables["content"].overlay_count >= 1
    hits = approximate.match("desirability", "vélo cargo électrique à Lyon", limit=3, types=["content"]).content
    assert hits[0].row["id"] == NEW_PIECE["id"]
