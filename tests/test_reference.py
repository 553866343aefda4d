"""The serving path against the plain reference (``tests/reference.py``): the same results, in the same order, with
the same scores, on every evaluation query, and with filters and moments alone."""

from __future__ import annotations

import pytest

from matcher.config import PROJECT_DIR
from matcher.evaluation import load_judgements
from matcher.service import Engine
from tests import reference

JUDGEMENTS = load_judgements(PROJECT_DIR / "eval" / "homelive.judgements.jsonl")
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
        total = sum(p.weight for p in r.parts.values())
        assert sum(p.contribution for p in r.parts.values()) / total == pytest.approx(r.score, abs=1e-12)
