"""Where every score is computed: the parts of a result's score, each in [0, 1], and how they combine.

Numbers come from ``scoring.json`` (and a moment's overrides in the moments file); this module only says what each
part means. What depends on a record alone is computed when it is written (the catalogue stores the values); what
depends on the request is computed per request over arrays of candidates, by the same functions (they take numbers
or NumPy arrays alike). A ``Part`` keeps its reason so that a planner can read why a result ranks where it does.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher.errors import ConfigError
from models.moments import Moment

QUERY_PARTS = ("product", "asked")  # parts that count only when the query names a product, or a kind of result


def load_scoring(path: Path) -> dict[str, Any]:
    """The scoring settings, checked against ``models.scoring_schema`` (every key this module reads, with its type
    and range): a wrong file is a ConfigError naming each key to fix."""
    from marshmallow import ValidationError

    from models.scoring_schema import ScoringFileSchema, dotted_errors

    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read the scoring file {path}: {e}") from e
    try:
        ScoringFileSchema().load(config)
    except ValidationError as e:
        raise ConfigError(f"The scoring file {path} is invalid: {'; '.join(dotted_errors(e.messages))}") from e
    return config


@dataclass(frozen=True)
class Part:
    """One part of a score: its value (0..1), its weight in the scoring file, and its share of the score (the
    weight over the sum of the result's weights), so that the contributions, value times share, add up to the
    score exactly."""

    value: float
    weight: float
    reason: str
    share: float = 0.0

    @property
    def contribution(self) -> float:
        return self.value * self.share


def parts_of(values: dict[str, float], weights: dict[str, float], reasons: dict[str, str]) -> dict[str, Part]:
    """A result's parts, with the shares its score gives them (``weighted_mean`` of the same values and weights)."""
    total = sum(weights[name] for name in values)
    return {
        name: Part(float(values[name]), weights[name], reasons[name], weights[name] / total if total else 0.0)
        for name in values
    }


def weighted_mean(values: dict[str, Any], weights: dict[str, float]) -> Any:
    """Sum of weight times value over the parts (in their order), over the sum of the weights; on numbers or arrays."""
    total = sum(weights[name] for name in values)
    score = sum(values[name] * weights[name] for name in values)
    return score / total if total else 0.0 * score


def weights_for(
    config: dict[str, Any], moment: Moment, kind: str, query: bool = False, present: Collection[str] = ()
) -> dict[str, float]:
    """Score weights for ``kind`` ('influencer' or 'content'), with the moment's overrides. With a ``query``, what
    customers did at the moment weighs less (``engagement.with_query``): it was learned per moment, not per query.
    The parts that depend on what the query names (``product``, ``asked``) count only when ``present``."""
    weights = {**config["weights"][kind], **moment.weights.get(kind, {})}
    for name in QUERY_PARTS:
        if name not in present:
            weights.pop(name, None)
    if query and "engagement" in weights:
        weights["engagement"] *= config["engagement"]["with_query"]
    return weights


# -- the parts ------------------------------------------------------------------------------------


def relevance(
    config: dict[str, Any], kind: str, dense: np.ndarray, words: np.ndarray, use_dense: bool, use_words: bool
) -> np.ndarray:
    """Relevance in [0, 1] of a request's candidates: dense similarity placed within them (lowest 0, best 1), BM25
    over its best, then fused (``lexical.fusion``: convex with ``dense_weight``, or reciprocal rank fusion)."""
    if not len(dense):
        return dense
    low, high = dense.min(), dense.max()
    dense_rel = (dense - low) / (high - low) if high > low else np.ones(len(dense))
    if not use_words:
        return dense_rel
    best = words.max()
    word_rel = words / best if best > 0 else np.zeros(len(words))
    if not use_dense:
        return word_rel
    fusion = config["lexical"]
    if fusion["fusion"] == "rrf":
        return reciprocal_rank_fusion(dense_rel, word_rel, fusion["rrf_k"])
    alpha = fusion["dense_weight"][kind]
    return alpha * dense_rel + (1 - alpha) * word_rel


def influencer_relevance(config: dict[str, Any], profile: Any, best_content: Any) -> Any:
    """A person's relevance: their profile's, blended with their best-matching piece's (``relevance``)."""
    w = config["relevance"]["influencer_profile_weight"]
    return w * profile + (1 - w) * best_content


def reciprocal_rank_fusion(dense: np.ndarray, words: np.ndarray, k: float) -> np.ndarray:
    """Sum of 1 / (k + rank) over both rankings (a record no word matched has no lexical rank), scaled to [0, 1]."""
    fused = np.zeros(len(dense))
    for ranking, ranked in ((dense, np.ones(len(dense), bool)), (words, words > 0)):
        positions = np.flatnonzero(ranked)
        order = positions[np.argsort(-ranking[positions], kind="stable")]
        fused[order] += 1 / (k + np.arange(1, len(order) + 1))
    return fused / fused.max()


def asked(matches: list[np.ndarray]) -> np.ndarray:
    """The ``asked`` part: of what the query names (a format, a kind of voice, a network, a language), the share
    each candidate is (each match 0..1, the kinds named weighing alike)."""
    return np.mean(np.asarray(matches, np.float64), axis=0)


def asked_share(pieces: Any, published: Any) -> Any:
    """A person's match to the formats the query names: the share of what they publish that is in them (0 for
    someone with no content). A share, not a count, so that a format everyone publishes tells no one apart."""
    return np.where(published > 0, pieces / np.maximum(published, 1), 0.0)


def scaled(value: float, floor: float, ceiling: float) -> float:
    """Map [floor, ceiling] to [0, 1], clipped."""
    return min(1.0, max(0.0, (value - floor) / (ceiling - floor)))


def reach(config: dict[str, Any], followers: int) -> float:
    """log10(1 + followers) / log10(ceiling): 10k followers is 0.57, 10M is 1.0."""
    return min(1.0, math.log10(1 + max(0, followers)) / math.log10(config["influence"]["followers_ceiling"]))


def resonance(config: dict[str, Any], engagement_rate: float | None) -> float:
    """Saturating: engagement_half gives 0.5; unknown is neutral (0.5)."""
    if engagement_rate is None:
        return 0.5
    half = config["influence"]["engagement_half"]
    return engagement_rate / (engagement_rate + half)


def interactions(config: dict[str, Any], engagement: dict[str, Any] | None) -> float | None:
    """Log-scaled weighted reactions to one piece of content, or None when it reports none."""
    if not engagement:
        return None
    weights = config["influence"]["interaction_weights"]
    total = sum(weights.get(k, 0) * (engagement.get(k) or 0) for k in weights)
    return min(1.0, math.log10(1 + total) / math.log10(config["influence"]["interactions_ceiling"]))


def freshness(config: dict[str, Any], age_days: Any) -> Any:
    """Halves every ``half_life_days``; future dates count as new."""
    return 0.5 ** (np.maximum(0.0, age_days) / config["freshness"]["half_life_days"])


def quality(config: dict[str, Any], fmt: str) -> float:
    """The editorial weight of a format."""
    weights = config["format_quality"]
    return weights.get(fmt, weights["unknown"])  # unknown: a publication whose piece is no longer stored


def format_fit(config: dict[str, Any], moment: Moment, fmt: str) -> float:
    """How well a format serves a moment."""
    return moment.format_weights.get(fmt, config["moment_fit"]["unlisted_format"])


def tonality(sentiment: float | None) -> float:
    """Sentiment -1..1 as 0..1; unknown is neutral."""
    return 0.5 if sentiment is None else (sentiment + 1) / 2


def topic_matches(topics: list[str], moment_topics: list[str]) -> list[str]:
    """The item's topics that name one of the moment's topics (accents and case folded, whole words)."""
    pattern = _words_pattern(tuple(moment_topics))
    return [t for t in topics if pattern.search(fold(t))]


def influencer_fit(config: dict[str, Any], moment: Moment, row: dict[str, Any], profile_similarity: float) -> Part:
    """How well a person carries the moment: their category, and their topics or profile."""
    fit = config["moment_fit"]
    category = moment.category_weights.get(row["category"], config["moment_fit"]["unlisted_category"])
    matches = topic_matches(row["topics"], moment.influencer_topics)
    overlap = min(1.0, len(matches) / fit["topic_matches_for_full_fit"])
    profile = scaled(profile_similarity, fit["profile_similarity_floor"], fit["profile_similarity_ceiling"])
    topical = max(overlap, profile)
    weights = fit["influencer"]
    value = (weights["category"] * category + weights["topics"] * topical) / (weights["category"] + weights["topics"])
    if matches:
        why = f"topics {', '.join(matches[:3])}"
    else:
        why = f"no topic of this moment, profile fit {profile:.2f}"
    return Part(value, 0.0, f"{row['category']} ({category:.1f} for this moment), {why}")


def content_fit_value(config: dict[str, Any], format_value: Any, author_fit: Any) -> Any:
    """A piece's moment fit from its format's fit and its author's (NaN: brand-owned, which counts as neutral)."""
    fit = config["moment_fit"]
    author = np.where(np.isnan(author_fit), fit["brand_author_fit"], author_fit)
    weights = fit["content"]
    return (weights["format"] * format_value + weights["author"] * author) / (weights["format"] + weights["author"])


def content_fit(config: dict[str, Any], moment: Moment, row: dict[str, Any], author_fit: float | None) -> Part:
    """How well a piece serves the moment: its format, and whether its author carries the moment."""
    fmt = format_fit(config, moment, row["format"])
    value = float(content_fit_value(config, fmt, math.nan if author_fit is None else author_fit))
    who = "brand-owned" if author_fit is None else f"author fit {author_fit:.2f}"
    return Part(value, 0.0, f"{row['format']} serves this moment at {fmt:.1f}; {who}")


def influencer_influence(config: dict[str, Any], row: dict[str, Any]) -> Part:
    r, s = reach(config, row["followers"]), resonance(config, row["engagement_rate"])
    w = config["influence"]["reach_weight"]
    rate = "unknown" if row["engagement_rate"] is None else f"{row['engagement_rate']:.1%}"
    return Part(w * r + (1 - w) * s, 0.0, f"{human(row['followers'])} followers, engagement {rate}")


def content_influence_value(config: dict[str, Any], author_reach: Any, signal: Any) -> Any:
    """The author's reach and the piece's own reactions, either alone when the other is unknown (NaN), else 0."""
    w = config["influence"]["reach_weight"]
    both = w * author_reach + (1 - w) * signal
    alone = np.where(np.isnan(author_reach), np.where(np.isnan(signal), 0.0, signal), author_reach)
    return np.where(np.isnan(author_reach) | np.isnan(signal), alone, both)


def content_influence(config: dict[str, Any], row: dict[str, Any], author: dict[str, Any] | None) -> Part:
    """The author's reach and the piece's own reactions (either alone when the other is unknown)."""
    signal = interactions(config, row["engagement"])
    author_reach = reach(config, author["followers"]) if author else math.nan
    value = float(content_influence_value(config, author_reach, math.nan if signal is None else signal))
    reactions = sum((row["engagement"] or {}).get(k) or 0 for k in ("likes", "shares", "comments"))
    who = f"author {human(author['followers'])} followers, " if author else ""
    return Part(value, 0.0, f"{who}{human(reactions)} reactions")


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut at a word to at most ``width`` characters, an ellipsis saying so: every excerpt,
    title and table cell that Relais shortens."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rsplit(" ", 1)[0] + "…"


def human(n: float) -> str:
    """12345 -> '12k', 2300000 -> '2.3M'."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.0f}k"
    return str(int(n))


@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower case without accents: 'Décoration' -> 'decoration'. Cached: topic tags repeat across requests."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


@functools.lru_cache(maxsize=256)
def _words_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """Any of the (folded) phrases as whole words."""
    alternatives = "|".join(re.escape(fold(p)) for p in phrases) or "(?!)"
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
