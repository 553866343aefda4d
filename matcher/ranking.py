"""From a target (query and moment) to ranked influencers and content.

candidates (``retrieval``: dense + lexical, filtered, fused) -> score parts (``scoring``) -> diversity ->
explanations. The store and the indexes are only read here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from matcher import scoring
from matcher.filters import Filters
from matcher.index import VectorIndex
from matcher.moments import MomentVectors
from matcher.retrieval import Candidates, Keep, Retriever
from matcher.scoring import Part
from matcher.store import Store
from models.moments import Moment


@dataclass(frozen=True)
class Target:
    """What results should be close to: the query (if any) blended with the moment."""

    moment: Moment
    moment_vectors: MomentVectors
    query: str | None
    query_vector: np.ndarray | None
    query_weight: float
    moment_weight: float

    @property
    def vector(self) -> np.ndarray:
        """The unit search vector; its ranking is that of ``similarity``."""
        if self.query_vector is None:
            return self.moment_vectors.centroid
        v = self.query_weight * self.query_vector + self.moment_weight * self.moment_vectors.centroid
        return (v / np.linalg.norm(v)).astype(np.float32)

    def similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Weighted cosine similarity of unit ``vectors`` to the query and the moment."""
        to_moment = vectors @ self.moment_vectors.centroid
        if self.query_vector is None:
            return to_moment
        return self.query_weight * (vectors @ self.query_vector) + self.moment_weight * to_moment


@dataclass
class Ranked:
    """One result: its row, its score and the parts the score is made of."""

    row: dict[str, Any]
    score: float
    parts: dict[str, Part]
    author: dict[str, Any] | None = None
    evidence: list[tuple[dict[str, Any], float]] = field(default_factory=list)

    @property
    def explanation(self) -> str:
        """The parts, largest contribution first, each with its reason."""
        ordered = sorted(self.parts.items(), key=lambda item: -item[1].contribution)
        return "; ".join(f"{name.replace('_', ' ')} {p.value:.2f} ({p.reason})" for name, p in ordered) + "."


class Ranker:
    def __init__(self, store: Store, indexes: dict[str, VectorIndex], config: dict[str, Any], mode: str = "hybrid"):
        self.store = store
        self.indexes = indexes
        self.config = config
        self.retriever = Retriever(store, indexes, config, mode)

    def with_mode(self, mode: str) -> Ranker:
        """The same indexes, retrieving with ``mode`` ('hybrid', 'dense' or 'lexical')."""
        return Ranker(self.store, self.indexes, self.config, mode)

    def pool_size(self, limit: int) -> int:
        candidates = self.config["candidates"]
        return max(candidates["minimum"], candidates["per_result"] * limit)

    # -- content --------------------------------------------------------------------------------

    def rank_content(self, target: Target, filters: Filters, limit: int, now: datetime) -> list[Ranked]:
        authors: dict[str, dict[str, Any]] = {}
        found = self.retriever.candidates(
            "content",
            target.vector,
            target.query,
            self.pool_size(limit),
            self._content_keep(filters, authors),
            target.similarity,
            narrow=filters.sql_condition("content"),
        )
        fits = self._influencer_fits(
            target, [authors[r["influencer_id"]] for r in found.rows.values() if r["influencer_id"] in authors]
        )
        weights = scoring.weights_for(self.config, target.moment, "content")
        ranked = []
        for key in found.keys:
            row = found.rows[key]
            author = authors.get(row["influencer_id"] or "")
            fit = scoring.content_fit(self.config, target.moment, row, fits.get(author["key"]) if author else None)
            age_days = (now.timestamp() - row["published_ts"]) / 86400
            parts = {
                "relevance": Part(found.relevance[key], weights["relevance"], _why_relevant(found, key, target)),
                "moment_fit": fit.weighted(weights["moment_fit"]),
                "quality": Part(
                    self.config["format_quality"].get(row["format"], 0.5), weights["quality"], f"{row['format']} format"
                ),
                "influence": scoring.content_influence(self.config, row, author).weighted(weights["influence"]),
                "freshness": Part(
                    scoring.freshness(self.config, age_days),
                    weights["freshness"],
                    f"published {row['published_at'][:10]}",
                ),
                "tonality": Part(
                    scoring.tonality(row["sentiment"]),
                    weights["tonality"],
                    "sentiment unknown" if row["sentiment"] is None else f"sentiment {row['sentiment']:+.1f}",
                ),
            }
            ranked.append(Ranked(row, scoring.combine(parts), parts, author=author))
        ranked.sort(key=lambda r: (-r.score, r.row["key"]))
        return diversify(ranked, self.config["diversity"]["max_per_influencer"], limit)

    # -- influencers ----------------------------------------------------------------------------

    def rank_influencers(self, target: Target, filters: Filters, limit: int) -> list[Ranked]:
        pool = self.retriever.candidates(
            "content",
            target.vector,
            target.query,
            self.config["candidates"]["content_for_influencers"],
            self._content_keep(Filters(), {}),
            target.similarity,
        )
        by_author: dict[str, list[tuple[dict[str, Any], float]]] = defaultdict(list)
        for key in pool.keys:
            if pool.rows[key]["influencer_id"]:
                by_author[pool.rows[key]["influencer_id"]].append((pool.rows[key], pool.relevance[key]))
        # People found through what they publish are candidates as much as those found through their profile.
        authors = list(self.store.keys_by_id("influencers", by_author).values())
        found = self.retriever.candidates(
            "influencers",
            target.vector,
            target.query,
            self.pool_size(limit),
            self._influencer_keep(filters),
            target.similarity,
            include=authors,
            narrow=filters.sql_condition("influencers"),
        )
        fits = self._influencer_fits(target, list(found.rows.values()))
        weights = scoring.weights_for(self.config, target.moment, "influencer")
        profile_weight = self.config["relevance"]["influencer_profile_weight"]
        publishing = self.store.content_counts(r["id"] for r in found.rows.values())
        ranked = []
        for key in found.keys:
            row = found.rows[key]
            profile = found.relevance[key]
            evidence = by_author.get(row["id"], [])[:3]
            if evidence:
                best, why = evidence[0][1], f"best content {evidence[0][1]:.2f} «{_title(evidence[0][0])}»"
            elif publishing.get(row["id"]):
                best, why = 0.0, "none of their content among the closest"
            else:  # nothing published yet: a new influencer is judged on their profile alone
                best, why = profile, "no content yet"
            value = profile_weight * profile + (1 - profile_weight) * best
            parts = {
                "relevance": Part(
                    value, weights["relevance"], f"profile {profile:.2f} ({_why_relevant(found, key, target)}), {why}"
                ),
                "moment_fit": fits[key].weighted(weights["moment_fit"]),
                "influence": scoring.influencer_influence(self.config, row).weighted(weights["influence"]),
            }
            ranked.append(Ranked(row, scoring.combine(parts), parts, evidence=evidence))
        ranked.sort(key=lambda r: (-r.score, r.row["key"]))
        return ranked[:limit]

    # -- shared steps ---------------------------------------------------------------------------

    def _content_keep(self, filters: Filters, authors: dict[str, dict[str, Any]]) -> Keep:
        """Accept content that passes ``filters``; fetched authors are remembered in ``authors``."""

        def keep(rows: dict[int, dict[str, Any]]) -> set[int]:
            authors.update(self.store.influencer_rows_by_id(r["influencer_id"] for r in rows.values()))
            return {k for k, r in rows.items() if filters.accepts_content(r, authors.get(r["influencer_id"] or ""))}

        return keep

    def _influencer_keep(self, filters: Filters) -> Keep:
        def keep(rows: dict[int, dict[str, Any]]) -> set[int]:
            with_products = None
            if filters.products:
                with_products = self.store.influencers_with_products([r["id"] for r in rows.values()], filters.products)
            return {k for k, r in rows.items() if filters.accepts_influencer(r, with_products)}

        return keep

    def _influencer_fits(self, target: Target, rows: list[dict[str, Any]]) -> dict[int, Part]:
        """Moment fit of each influencer (unweighted), by key."""
        if not rows:
            return {}
        keys = np.array(sorted({r["key"] for r in rows}))
        profile = self.indexes["influencers"].vectors(keys) @ target.moment_vectors.profile
        by_key = {r["key"]: r for r in rows}
        return {
            int(k): scoring.influencer_fit(self.config, target.moment, by_key[int(k)], float(s))
            for k, s in zip(keys, profile.tolist(), strict=True)
        }


def diversify(ranked: list[Ranked], max_per_author: int, limit: int) -> list[Ranked]:
    """Best first, at most ``max_per_author`` per author until others are used up; brand content is one author."""
    chosen: list[Ranked] = []
    held: list[Ranked] = []
    per_author: dict[str, int] = defaultdict(int)
    for item in ranked:
        author = item.row["influencer_id"] or ""
        if per_author[author] < max_per_author:
            per_author[author] += 1
            chosen.append(item)
        else:
            held.append(item)
        if len(chosen) == limit:
            return chosen
    return chosen + held[: limit - len(chosen)]


def _why_relevant(found: Candidates, key: int, target: Target) -> str:
    """'meaning 0.57, words 0.80': cosine similarity and BM25 relative to the best match."""
    if not target.query:
        return f"similarity {found.dense[key]:.2f} to the {target.moment.name} moment"
    best = max(found.lexical.values(), default=0.0)
    words = f", words {found.lexical[key] / best:.2f}" if best > 0 else ""
    return f"meaning {found.dense[key]:.2f}{words}"


def _title(row: dict[str, Any]) -> str:
    title = row["title"] or row["text"]
    return title if len(title) <= 70 else title[:67] + "..."
