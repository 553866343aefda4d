"""Where every score is computed: the parts of a result's score, each in [0, 1], and how they combine.

Numbers come from ``scoring.json`` (and a moment's overrides in the moments file); this module only says
what each part means. A ``Part`` keeps its reason so that a planner can read why a result ranks where it does.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matcher.errors import ConfigError
from models.moments import Moment

REQUIRED = (
    "weights.influencer",
    "weights.content",
    "relevance.query_weight",
    "relevance.moment_weight",
    "relevance.influencer_profile_weight",
    "profile_vector.profile_weight",
    "profile_vector.profile_weight_without_bio",
    "moment_fit.influencer",
    "moment_fit.content",
    "moment_fit.brand_author_fit",
    "format_quality",
    "influence.followers_ceiling",
    "influence.engagement_half",
    "influence.reach_weight",
    "influence.interactions_ceiling",
    "influence.interaction_weights",
    "freshness.half_life_days",
    "diversity.max_per_influencer",
    "candidates.minimum",
    "candidates.per_result",
    "candidates.content_for_influencers",
    "networks.formats",
    "networks.hosts",
    "lexical.fusion",
    "lexical.dense_weight",
    "lexical.rrf_k",
    "lexical.column_weights",
)


def load_scoring(path: Path) -> dict[str, Any]:
    """The scoring settings, checked for the keys this module reads."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read the scoring file {path}: {e}") from e
    for dotted in REQUIRED:
        node: Any = config
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                raise ConfigError(f"The scoring file {path} lacks {dotted!r}.")
            node = node[key]
    return config


@dataclass(frozen=True)
class Part:
    value: float
    weight: float
    reason: str

    @property
    def contribution(self) -> float:
        return self.value * self.weight

    def weighted(self, weight: float) -> Part:
        return Part(self.value, weight, self.reason)


def combine(parts: dict[str, Part]) -> float:
    """Weighted mean of the parts: weights need not sum to one."""
    total = sum(p.weight for p in parts.values())
    return sum(p.contribution for p in parts.values()) / total if total else 0.0


def weights_for(config: dict[str, Any], moment: Moment, kind: str) -> dict[str, float]:
    """Score weights for ``kind`` ('influencer' or 'content'), with the moment's overrides."""
    return {**config["weights"][kind], **moment.weights.get(kind, {})}


# -- the parts ------------------------------------------------------------------------------------


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


def freshness(config: dict[str, Any], age_days: float) -> float:
    """Halves every ``half_life_days``; future dates count as new."""
    return 0.5 ** (max(0.0, age_days) / config["freshness"]["half_life_days"])


def tonality(sentiment: float | None) -> float:
    """Sentiment -1..1 as 0..1; unknown is neutral."""
    return 0.5 if sentiment is None else (sentiment + 1) / 2


def topic_matches(topics: list[str], moment_topics: list[str]) -> list[str]:
    """The item's topics that name one of the moment's topics (accents and case folded, whole words)."""
    wanted = [fold(t) for t in moment_topics]
    return [t for t in topics if any(_contains_words(fold(t), w) for w in wanted)]


def influencer_fit(config: dict[str, Any], moment: Moment, row: dict[str, Any], profile_similarity: float) -> Part:
    """How well a person carries the moment: their category, and their topics or profile."""
    fit = config["moment_fit"]
    category = moment.category_weights.get(row["category"], 0.5)
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


def content_fit(config: dict[str, Any], moment: Moment, row: dict[str, Any], author_fit: Part | None) -> Part:
    """How well a piece serves the moment: its format, and whether its author carries the moment."""
    fit = config["moment_fit"]
    fmt = moment.format_weights.get(row["format"], 0.3)
    author = author_fit.value if author_fit is not None else fit["brand_author_fit"]
    weights = fit["content"]
    value = (weights["format"] * fmt + weights["author"] * author) / (weights["format"] + weights["author"])
    who = "brand-owned" if author_fit is None else f"author fit {author:.2f}"
    return Part(value, 0.0, f"{row['format']} serves this moment at {fmt:.1f}; {who}")


def influencer_influence(config: dict[str, Any], row: dict[str, Any]) -> Part:
    r, s = reach(config, row["followers"]), resonance(config, row["engagement_rate"])
    w = config["influence"]["reach_weight"]
    rate = "unknown" if row["engagement_rate"] is None else f"{row['engagement_rate']:.1%}"
    return Part(w * r + (1 - w) * s, 0.0, f"{human(row['followers'])} followers, engagement {rate}")


def content_influence(config: dict[str, Any], row: dict[str, Any], author: dict[str, Any] | None) -> Part:
    """The author's reach and the piece's own reactions (either alone when the other is unknown)."""
    signal = interactions(config, row["engagement"])
    author_reach = reach(config, author["followers"]) if author else None
    known = [v for v in (author_reach, signal) if v is not None]
    if len(known) == 2:
        w = config["influence"]["reach_weight"]
        value = w * author_reach + (1 - w) * signal
    else:
        value = known[0] if known else 0.0
    reactions = sum((row["engagement"] or {}).get(k) or 0 for k in ("likes", "shares", "comments"))
    who = f"author {human(author['followers'])} followers, " if author else ""
    return Part(value, 0.0, f"{who}{human(reactions)} reactions")


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


def _contains_words(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None
