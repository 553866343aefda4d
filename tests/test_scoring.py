"""Score parts against values computed by hand."""

from __future__ import annotations

import math
import re

import pytest

from matcher import scoring
from matcher.config import Settings
from matcher.moments import load_moments
from matcher.ranking import diversify

CONFIG = scoring.load_scoring(Settings().scoring_file)
MOMENTS = load_moments(Settings().moments_file)


@pytest.mark.parametrize(
    ("followers", "expected"),
    [
        (0, 0.0),
        (9, 1 / 7),  # log10(10) / log10(1e7)
        (9_999, 4 / 7),
        (9_999_999, 1.0),
        (50_000_000, 1.0),  # capped
    ],
)
def test_reach_is_log_scaled(followers, expected):
    assert scoring.reach(CONFIG, followers) == pytest.approx(expected)


def test_audience_alone_never_wins():
    """A 1000x larger audience moves an influencer's score less than a modest gain in relevance."""
    weights = CONFIG["weights"]["influencer"]
    total = sum(weights.values())
    reach_gain = scoring.reach(CONFIG, 9_999_999) - scoring.reach(CONFIG, 9_999)
    assert reach_gain == pytest.approx(3 / 7)
    from_audience = reach_gain * CONFIG["influence"]["reach_weight"] * weights["influence"] / total
    from_relevance = 0.2 * weights["relevance"] / total  # e.g. cosine 0.40 -> 0.54
    assert from_audience < from_relevance


@pytest.mark.parametrize(("rate", "expected"), [(None, 0.5), (0.0, 0.0), (0.03, 0.5), (0.09, 0.75)])
def test_resonance_saturates(rate, expected):
    assert scoring.resonance(CONFIG, rate) == pytest.approx(expected)


@pytest.mark.parametrize(("days", "expected"), [(-10, 1.0), (0, 1.0), (365, 0.5), (730, 0.25)])
def test_freshness_halves_each_year(days, expected):
    assert scoring.freshness(CONFIG, days) == pytest.approx(expected)


@pytest.mark.parametrize(("sentiment", "expected"), [(None, 0.5), (-1, 0.0), (0.5, 0.75), (1, 1.0)])
def test_tonality(sentiment, expected):
    assert scoring.tonality(sentiment) == pytest.approx(expected)


def test_interactions_weigh_shares_and_comments_double():
    value = scoring.interactions(CONFIG, {"likes": 97, "shares": 1, "comments": 1, "views": 0})
    assert value == pytest.approx(math.log10(1 + 101) / 6)
    assert scoring.interactions(CONFIG, None) is None


def test_contributions_add_up_to_the_weighted_mean():
    """Issue 13: a planner who adds the contributions gets the score, whatever the weights sum to."""
    values, weights = {"a": 1.0, "b": 0.0, "c": 0.5}, {"a": 3.0, "b": 1.0, "c": 0.6}
    parts = scoring.parts_of(values, weights, dict.fromkeys(values, ""))
    assert sum(p.share for p in parts.values()) == pytest.approx(1.0)
    assert sum(p.contribution for p in parts.values()) == pytest.approx(scoring.weighted_mean(values, weights))
    assert parts["a"].weight == 3.0 and parts["a"].contribution == pytest.approx(3.0 / 4.6)


@pytest.mark.parametrize(
    ("topics", "expected"),
    [
        (["Domotique", "cuisine"], ["Domotique"]),
        (["maison connectee"], ["maison connectee"]),  # accents folded
        (["High-Tech"], ["High-Tech"]),  # 'tech' as a whole word
        (["technocratie"], []),  # not inside another word
        ([], []),
    ],
)
def test_topic_matches(topics, expected):
    assert scoring.topic_matches(topics, MOMENTS["technical_validation"].influencer_topics) == expected


def test_influencer_fit_prefers_the_right_people():
    moment = MOMENTS["technical_validation"]
    expert = {"category": "partner", "topics": ["domotique", "tests produits"]}
    decorator = {"category": "affinity", "topics": ["décoration", "lifestyle"]}
    floor = CONFIG["moment_fit"]["profile_similarity_floor"]
    fit_expert = scoring.influencer_fit(CONFIG, moment, expert, floor).value
    fit_decorator = scoring.influencer_fit(CONFIG, moment, decorator, floor).value
    w = CONFIG["moment_fit"]["influencer"]
    cat = moment.category_weights
    topical = min(1.0, 2 / CONFIG["moment_fit"]["topic_matches_for_full_fit"])  # both topics are the moment's
    assert fit_expert == pytest.approx((w["category"] * cat["partner"] + w["topics"] * topical) / sum(w.values()))
    # no topic of the moment and a profile at the floor: the category alone
    assert fit_decorator == pytest.approx(w["category"] * cat["affinity"] / sum(w.values()))
    assert fit_expert > fit_decorator


def test_weights_take_the_moment_overrides():
    override = MOMENTS["discovery"].weights["influencer"]["influence"]  # the moments file's own
    assert override != CONFIG["weights"]["influencer"]["influence"]
    assert scoring.weights_for(CONFIG, MOMENTS["discovery"], "influencer")["influence"] == override
    plain = {k: v for k, v in CONFIG["weights"]["influencer"].items() if k not in ("product", "asked")}
    assert scoring.weights_for(CONFIG, MOMENTS["desirability"], "influencer") == plain
    named = scoring.weights_for(CONFIG, MOMENTS["desirability"], "influencer", present={"product"})
    assert named == {**plain, "product": CONFIG["weights"]["influencer"]["product"]}  # only when a product is named
    both = scoring.weights_for(CONFIG, MOMENTS["desirability"], "influencer", present={"product", "asked"})
    assert both == CONFIG["weights"]["influencer"]


def test_diversify_caps_each_author_until_others_run_out():
    authors = [1, 1, 1, 2, -1, -1, -1]  # candidates best first; -1: brand-owned, one author
    order = list(range(7))
    assert [authors[i] for i in diversify(order, authors, 2, 5)] == [1, 1, 2, -1, -1]
    # when the others are used up, the held-back items fill the list in score order
    assert diversify(order, authors, 2, 7)[-2:] == [2, 6]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c["weights"]["content"].pop("quality"), "weights.content: Missing weights for quality"),
        (lambda c: c["lexical"].update(fusion="rrff"), "lexical.fusion"),
        (lambda c: c["relevance"].update(query_weight=1.5), "relevance.query_weight"),
        (lambda c: c["format_quality"].pop("tweet"), "format_quality.tweet"),
        (lambda c: c["candidates"].update(minimun=10), "candidates.minimun: Unknown field"),
        (lambda c: c["engagement"]["explore"].pop("draws"), "engagement.explore.draws"),
        (lambda c: c["moment_fit"].update(profile_similarity_floor=0.9), "moment_fit.profile_similarity_ceiling"),
    ],
)
def test_an_edited_scoring_file_is_checked_when_loaded(tmp_path, edit, named):
    """Issue 13: a brand's edit that the code cannot use is a ConfigError naming the key at start, not a 500 when
    a request reads it."""
    import json

    from matcher.errors import ConfigError

    config = json.loads(Settings().scoring_file.read_text(encoding="utf-8"))
    edit(config)
    path = tmp_path / "scoring.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(named)):
        scoring.load_scoring(path)
