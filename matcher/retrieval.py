"""Candidates for a request: nearest neighbours in FAISS and BM25 matches in FTS5, filtered and fused.

Dense retrieval reads meaning (and speaks English better than French); lexical retrieval reads the words
themselves (names, products, French). ``mode`` keeps each selectable alone so the evaluation shows what each
brings; ``hybrid`` fuses both into one relevance in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from matcher import lexical
from matcher.index import VectorIndex
from matcher.store import Store

MODES = ("hybrid", "dense", "lexical")
Keep = Callable[[dict[int, dict[str, Any]]], set[int]]


@dataclass
class Candidates:
    """Accepted records with, for each key, its dense similarity, its BM25 score (0: no word matched) and the
    fused relevance."""

    rows: dict[int, dict[str, Any]]
    dense: dict[int, float]
    lexical: dict[int, float]
    relevance: dict[int, float]

    @property
    def keys(self) -> list[int]:
        return sorted(self.rows, key=lambda k: (-self.relevance[k], k))


class Retriever:
    def __init__(self, store: Store, indexes: dict[str, VectorIndex], config: dict[str, Any], mode: str = "hybrid"):
        if mode not in MODES:
            raise ValueError(f"Unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}.")
        self.store = store
        self.indexes = indexes
        self.config = config
        self.mode = mode

    def candidates(
        self,
        kind: str,
        vector: np.ndarray,
        query: str | None,
        need: int,
        keep: Keep,
        similarity: Callable[[np.ndarray], np.ndarray],
        include: list[int] | None = None,
        narrow: tuple[str, list[Any]] | None = None,
    ) -> Candidates:
        """At least ``need`` accepted records when there are that many, widening both searches as needed.

        ``similarity`` scores unit vectors against the target (query and moment) exactly; ``include`` names keys
        to consider whatever the searches find (still subject to ``keep``); ``narrow`` is an SQL condition that
        every record ``keep`` accepts meets (see ``Filters.sql_condition``): other rows are never read.
        """
        index = self.indexes[kind]
        expression = lexical.match_expression(query) if query and self.mode != "dense" else None
        use_dense = self.mode != "lexical" or expression is None
        weights = self.config["lexical"]["column_weights"][kind]
        rows: dict[int, dict[str, Any]] = self.store.rows(kind, include or [], narrow)
        seen = set(include or [])
        kept: set[int] = keep(rows)
        k = need
        while True:
            found: list[int] = []
            if use_dense and index.count:
                found += [int(i) for i in index.search(vector, k)[1][0] if i >= 0]
            matched = lexical.search(self.store.db, kind, expression, weights, k) if expression else []
            found += [key for key, _ in matched]
            new = self.store.rows(kind, [key for key in set(found) if key not in seen], narrow)
            seen.update(found)
            rows.update(new)
            kept |= keep(new)
            exhausted = (not use_dense or k >= index.count) and len(matched) < k
            if len(kept) >= need or exhausted:
                break
            k *= 4
        # A record another process committed a moment ago may be in the full-text index before it is in ours:
        # it waits for the next refresh.
        keys = sorted(k for k in kept if index.has(k))
        dense = (
            dict(zip(keys, similarity(index.vectors(np.array(keys, dtype=np.int64))).tolist(), strict=True))
            if keys
            else {}
        )
        scores = dict(lexical.search(self.store.db, kind, expression, weights, len(keys), keys)) if expression else {}
        lexical_scores = {key: scores.get(key, 0.0) for key in keys}
        relevance = self._fuse(kind, keys, dense, lexical_scores, use_dense, expression is not None)
        return Candidates({key: rows[key] for key in keys}, dense, lexical_scores, relevance)

    def _fuse(
        self,
        kind: str,
        keys: list[int],
        dense: dict[int, float],
        words: dict[int, float],
        use_dense: bool,
        use_words: bool,
    ) -> dict[int, float]:
        """Relevance in [0, 1]: dense similarity placed within the candidates, BM25 over its best, then fused."""
        if not keys:
            return {}
        low, high = min(dense.values()), max(dense.values())
        dense_rel = {k: (dense[k] - low) / (high - low) if high > low else 1.0 for k in keys}
        if not use_words:
            return dense_rel
        best = max(words.values())
        word_rel = {k: words[k] / best if best > 0 else 0.0 for k in keys}
        if not use_dense:
            return word_rel
        fusion = self.config["lexical"]
        if fusion["fusion"] == "rrf":
            return _reciprocal_rank_fusion(keys, dense_rel, word_rel, fusion["rrf_k"])
        alpha = fusion["dense_weight"][kind]
        return {k: alpha * dense_rel[k] + (1 - alpha) * word_rel[k] for k in keys}


def _reciprocal_rank_fusion(
    keys: list[int], dense: dict[int, float], words: dict[int, float], k: int
) -> dict[int, float]:
    """Sum of 1 / (k + rank) over both rankings (a record no word matched has no lexical rank), scaled to [0, 1]."""
    fused = dict.fromkeys(keys, 0.0)
    for ranking in (dense, words):
        ordered = sorted((key for key in keys if ranking is dense or words[key] > 0), key=lambda key: -ranking[key])
        for rank, key in enumerate(ordered, start=1):
            fused[key] += 1 / (k + rank)
    top = max(fused.values())
    return {key: value / top for key, value in fused.items()}
