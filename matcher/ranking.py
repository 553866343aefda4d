"""From a target (query and moment) to ranked influencers and content.

candidates (nearest neighbours in FAISS, widened while filters leave too few) -> filters -> score parts
(``scoring``) -> diversity -> explanations. The store and the indexes are only read here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from matcher import scoring
from matcher.filters import Filters
from matcher.index import VectorIndex
from matcher.moments import MomentVectors
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
    similarity: float
    author: dict[str, Any] | None = None
    evidence: list[tuple[dict[str, Any], float]] = field(default_factory=list)

    @property
    def explanation(self) -> str:
        """The parts, largest contribution first, each with its reason."""
        ordered = sorted(self.parts.items(), key=lambda item: -item[1].contribution)
        return "; ".join(f"{name.replace('_', ' ')} {p.value:.2f} ({p.reason})" for name, p in ordered) + "."


Keep = Callable[[dict[int, dict[str, Any]]], set[int]]


class Ranker:
    def __init__(self, store: Store, indexes: dict[str, VectorIndex], config: dict[str, Any]):
        self.store = store
        self.indexes = indexes
        self.config = config

    def pool_size(self, limit: int) -> int:
        candidates = self.config["candidates"]
        return max(candidates["minimum"], candidates["per_result"] * limit)

    # -- content --------------------------------------------------------------------------------

    def rank_content(self, target: Target, filters: Filters, limit: int, now: datetime) -> list[Ranked]:
        authors: dict[str, dict[str, Any]] = {}

        def keep(rows: dict[int, dict[str, Any]]) -> set[int]:
            authors.update(self.store.influencer_rows_by_id(r["influencer_id"] for r in rows.values()))
            return {k for k, r in rows.items() if filters.accepts_content(r, authors.get(r["influencer_id"] or ""))}

        keys, rows = self._nearest("content", target, self.pool_size(limit), keep)
        if not keys:
            return []
        similarities = target.similarity(self.indexes["content"].vectors(np.array(keys)))
        author_fits = self._influencer_fits(target, [authors[r["influencer_id"]] for r in rows.values() if r["influencer_id"] in authors])
        weights = scoring.weights_for(self.config, target.moment, "content")
        pool = scoring.pool_range(similarities.tolist())
        ranked = []
        for key, similarity in zip(keys, similarities.tolist()):
            row = rows[key]
            author = authors.get(row["influencer_id"] or "")
            fit = scoring.content_fit(self.config, target.moment, row, author_fits.get(author["key"]) if author else None)
            age_days = (now.timestamp() - row["published_ts"]) / 86400
            parts = {
                "relevance": Part(scoring.relevance(similarity, pool), weights["relevance"],
                                  f"similarity {similarity:.2f} to {_what(target)}"),
                "moment_fit": fit.weighted(weights["moment_fit"]),
                "quality": Part(self.config["format_quality"].get(row["format"], 0.5), weights["quality"],
                                f"{row['format']} format"),
                "influence": scoring.content_influence(self.config, row, author).weighted(weights["influence"]),
                "freshness": Part(scoring.freshness(self.config, age_days), weights["freshness"],
                                  f"published {row['published_at'][:10]}"),
                "tonality": Part(scoring.tonality(row["sentiment"]), weights["tonality"],
                                 "sentiment unknown" if row["sentiment"] is None else f"sentiment {row['sentiment']:+.1f}"),
            }
            ranked.append(Ranked(row, scoring.combine(parts), parts, similarity, author=author))
        ranked.sort(key=lambda r: (-r.score, r.row["key"]))
        return diversify(ranked, self.config["diversity"]["max_per_influencer"], limit)

    # -- influencers ----------------------------------------------------------------------------

    def rank_influencers(self, target: Target, filters: Filters, limit: int) -> list[Ranked]:
        def keep(rows: dict[int, dict[str, Any]]) -> set[int]:
            with_products = None
            if filters.products:
                ids = [r["id"] for r in rows.values()]
                with_products = self.store.influencers_with_products(ids, filters.products)
            return {k for k, r in rows.items() if filters.accepts_influencer(r, with_products)}

        keys, rows = self._nearest("influencers", target, self.pool_size(limit), keep)
        pool, pool_floor = self._content_pool(target)
        by_author: dict[str, list[tuple[dict[str, Any], float]]] = defaultdict(list)
        for row, similarity in pool:
            if row["influencer_id"]:
                by_author[row["influencer_id"]].append((row, similarity))
        # People found through what they publish join those found through their profile.
        missing = [i for i in by_author if i not in {r["id"] for r in rows.values()}]
        found = {r["key"]: r for r in self.store.influencer_rows_by_id(missing).values()}
        for key in keep(found):
            rows[key] = found[key]
            keys.append(key)
        if not keys:
            return []
        similarities = target.similarity(self.indexes["influencers"].vectors(np.array(keys)))
        fits = self._influencer_fits(target, [rows[k] for k in keys])
        weights = scoring.weights_for(self.config, target.moment, "influencer")
        profile_weight = self.config["relevance"]["influencer_profile_weight"]
        profile_pool = scoring.pool_range(similarities.tolist())
        content_pool = scoring.pool_range([s for _, s in pool])
        ranked = []
        for key, profile_similarity in zip(keys, similarities.tolist()):
            row = rows[key]
            evidence = by_author.get(row["id"], [])[:3]
            if evidence:
                best, why = evidence[0][1], f"best content {evidence[0][1]:.2f} «{_title(evidence[0][0])}»"
            elif pool_floor is not None:
                best, why = min(pool_floor, profile_similarity), "no content among the closest"
            else:
                best, why = profile_similarity, "no content"
            value = profile_weight * scoring.relevance(profile_similarity, profile_pool) + (
                1 - profile_weight) * scoring.relevance(best, content_pool)
            parts = {
                "relevance": Part(value, weights["relevance"], f"profile {profile_similarity:.2f} to {_what(target)}, {why}"),
                "moment_fit": fits[key].weighted(weights["moment_fit"]),
                "influence": scoring.influencer_influence(self.config, row).weighted(weights["influence"]),
            }
            ranked.append(Ranked(row, scoring.combine(parts), parts, profile_similarity, evidence=evidence))
        ranked.sort(key=lambda r: (-r.score, r.row["key"]))
        return ranked[:limit]

    # -- shared steps ---------------------------------------------------------------------------

    def _nearest(self, kind: str, target: Target, need: int, keep: Keep) -> tuple[list[int], dict[int, dict[str, Any]]]:
        """Nearest keys that ``keep`` accepts, in order, widening the search until ``need`` are found."""
        index = self.indexes[kind]
        rows: dict[int, dict[str, Any]] = {}
        kept: set[int] = set()
        k = need
        while index.count:
            _, ids = index.search(target.vector, k)
            ordered = [int(i) for i in ids[0] if i >= 0]
            new = self.store.rows(kind, [key for key in ordered if key not in rows])
            rows.update(new)
            kept |= keep(new)
            if sum(1 for key in ordered if key in kept) >= need or k >= index.count:
                keys = [key for key in ordered if key in kept][:need]
                return keys, {key: rows[key] for key in keys}
            k = min(index.count, k * 4)
        return [], {}

    def _content_pool(self, target: Target) -> tuple[list[tuple[dict[str, Any], float]], float | None]:
        """The content closest to the target, with similarities; and the lowest one if the pool is not all content."""
        index = self.indexes["content"]
        size = self.config["candidates"]["content_for_influencers"]
        if index.count == 0:
            return [], None
        _, ids = index.search(target.vector, size)
        keys = [int(i) for i in ids[0] if i >= 0]
        similarities = target.similarity(index.vectors(np.array(keys))).tolist()
        rows = self.store.rows("content", keys)
        pool = sorted(((rows[k], s) for k, s in zip(keys, similarities) if k in rows), key=lambda p: -p[1])
        floor = pool[-1][1] if pool and index.count > len(keys) else None
        return pool, floor

    def _influencer_fits(self, target: Target, rows: list[dict[str, Any]]) -> dict[int, Part]:
        """Moment fit of each influencer (unweighted), by key."""
        if not rows:
            return {}
        keys = np.array(sorted({r["key"] for r in rows}))
        profile = self.indexes["influencers"].vectors(keys) @ target.moment_vectors.profile
        by_key = {r["key"]: r for r in rows}
        return {
            int(k): scoring.influencer_fit(self.config, target.moment, by_key[int(k)], float(s))
            for k, s in zip(keys, profile.tolist())
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


def _what(target: Target) -> str:
    return "the query" if target.query else f"the {target.moment.name} moment"


def _title(row: dict[str, Any]) -> str:
    title = row["title"] or row["text"]
    return title if len(title) <= 70 else title[:67] + "..."
