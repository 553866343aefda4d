"""Candidates for a request: the records nearest its target in meaning, and those its words match best, among the
records a filter allows, fused into one relevance.

Dense retrieval reads meaning (and speaks English better than French); lexical retrieval reads the words themselves
(names, products, French). ``mode`` keeps each selectable alone so the evaluation shows what each brings; ``hybrid``
fuses both. Everything here works on the catalogue's arrays: no row is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcher import scoring
from matcher.catalogue import Catalogue
from matcher.errors import InvalidRequestError
from matcher.vector_base import top_k

MODES = ("hybrid", "dense", "lexical")


@dataclass(frozen=True)
class Target:
    """What results should be close to: the query (if any) blended with the moment."""

    moment: str
    query: str | None
    query_vector: np.ndarray | None
    tokens: tuple[str, ...]  # the query's words as the full-text index holds them (stems)
    query_weight: float
    moment_weight: float
    # per kind, what every record scores against this target: computed once per request, used by each ranking
    computed: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Candidates:
    """The pool, best first (fused relevance, then key), with each one's dense similarity to the target, BM25 score
    (0: no word matched) and fused relevance in [0, 1]."""

    keys: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray
    relevance: np.ndarray
    used_words: bool

    @property
    def best_lexical(self) -> float:
        return float(self.lexical.max()) if len(self.lexical) else 0.0


class Retriever:
    def __init__(self, catalogue: Catalogue, config: dict[str, Any], mode: str = "hybrid"):
        if mode not in MODES:
            raise InvalidRequestError(
                f"Unknown retrieval mode {mode!r}.", {"retrieval": [f"Must be one of: {', '.join(MODES)}."]}
            )
        self.catalogue = catalogue
        self.config = config
        self.mode = mode

    def dense(self, kind: str, target: Target, keys: np.ndarray | None = None) -> np.ndarray:
        """Similarity to the target, query_weight * query + moment_weight * moment, of every record by key (or of
        ``keys`` alone)."""
        table = self.catalogue.tables[kind]
        to_moment = table.values[f"similarity:{target.moment}"]
        if target.query_vector is None:
            return to_moment if keys is None else to_moment[keys]
        if keys is not None and self._approximate(kind, target):  # no full pass over the vectors for a few keys
            to_query = table.vectors(keys) @ target.query_vector
            return target.query_weight * to_query + target.moment_weight * to_moment[keys]
        if (kind, "dense") not in target.computed:
            to_query = table.similarities(target.query_vector)
            target.computed[kind, "dense"] = target.query_weight * to_query + target.moment_weight * to_moment
        return target.computed[kind, "dense"] if keys is None else target.computed[kind, "dense"][keys]

    def nearest(self, kind: str, target: Target, need: int, allowed: np.ndarray) -> np.ndarray:
        """Keys of the ``need`` allowed records nearest the target: exactly, or through the base's HNSW graph (and
        exactly among the records written since the base) when it has one."""
        if not self._approximate(kind, target):
            return top_k(self.dense(kind, target), need, allowed)
        table = self.catalogue.tables[kind]
        direction = target.query_weight * target.query_vector
        direction = direction + target.moment_weight * self.catalogue.moment_vectors[target.moment].centroid
        fresh = table.overlay_keys
        in_base = allowed.copy()
        in_base[fresh[fresh < len(in_base)]] = False  # their base rows are outdated
        found = table.base.search(direction.astype(np.float32), need, in_base)
        candidates = np.unique(np.concatenate([found, fresh[allowed[fresh]]]))
        return candidates[top_k(self.dense(kind, target, candidates), need)]

    def _approximate(self, kind: str, target: Target) -> bool:
        return target.query_vector is not None and self.catalogue.tables[kind].base.graph is not None

    def words(self, kind: str, target: Target) -> np.ndarray:
        """BM25 of every record for the target's words, by key."""
        if (kind, "words") not in target.computed:
            table = self.catalogue.tables[kind]
            target.computed[kind, "words"] = table.words.scores(list(target.tokens), table.size)[: table.size]
        return target.computed[kind, "words"]

    def candidates(
        self,
        kind: str,
        target: Target,
        need: int,
        allowed: np.ndarray,
        include: np.ndarray | None = None,
    ) -> Candidates:
        """The ``need`` allowed records nearest the target, those of the ``need`` best BM25 scores among the allowed,
        and the allowed ones of ``include``."""
        use_words = bool(target.tokens) and self.mode != "dense"
        use_dense = self.mode != "lexical" or not use_words
        words = self.words(kind, target) if use_words else None
        pool = [include[allowed[include]]] if include is not None and len(include) else []
        if use_dense:
            pool.append(self.nearest(kind, target, need, allowed))
        if use_words:
            pool.append(top_k(words, need, allowed & (words > 0)))
        keys = np.unique(np.concatenate(pool)) if pool else np.zeros(0, np.int64)
        similarity = self.dense(kind, target, keys).astype(np.float64)
        bm25 = words[keys] if words is not None else np.zeros(len(keys))
        relevance = scoring.relevance(self.config, kind, similarity, bm25, use_dense, use_words)
        order = np.lexsort((keys, -relevance))
        return Candidates(keys[order], similarity[order], bm25[order], relevance[order], use_words)
