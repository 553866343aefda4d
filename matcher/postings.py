"""Inverted lists by record key: term -> (keys, weights), kept current one key at a time.

Most entries sit in a *base* of flat arrays (CSR: every term's keys are one slice); a write replaces a key's entries
by marking its base entries stale and putting the new ones in a small *overlay* of dicts, which is folded into the
base once it grows. The terms are words (BM25), topic or product tags (filters) or networks (with followers as the
weight). The caller serialises writes against reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

# Fold the overlay into the base once it holds this many keys, or a tenth of the base's keys if that is more.
COMPACT_AT = 2_000


class Postings:
    def __init__(self) -> None:
        self.terms: dict[str, int] = {}
        self._indptr = np.zeros(1, dtype=np.int64)
        self._keys = np.zeros(0, dtype=np.int64)
        self._weights = np.zeros(0, dtype=np.float64)
        self._stale = np.zeros(0, dtype=bool)  # by key: this key's base entries are outdated
        self._base_keys = 0  # distinct keys in the base
        self._overlay: dict[int, dict[int, float]] = {}  # term id -> {key: weight}
        self._overlay_terms: dict[int, list[int]] = {}  # key -> its term ids in the overlay

    @classmethod
    def build(cls, entries: Iterable[tuple[int, str, float]]) -> Postings:
        """From (key, term, weight) entries, one per key and term."""
        vocabulary: dict[str, int] = {}
        keys, terms, weights = [], [], []
        for key, term, weight in entries:
            keys.append(key)
            terms.append(vocabulary.setdefault(term, len(vocabulary)))
            weights.append(weight)
        return cls.from_arrays(list(vocabulary), np.array(terms, np.int64), np.array(keys, np.int64), weights)

    @classmethod
    def from_arrays(
        cls, vocabulary: list[str], term_ids: np.ndarray, keys: np.ndarray, weights: np.ndarray | list[float]
    ) -> Postings:
        """From parallel arrays: entry i gives ``keys[i]`` the term ``vocabulary[term_ids[i]]`` with ``weights[i]``."""
        postings = cls()
        postings.terms = {term: i for i, term in enumerate(vocabulary)}
        postings._set_base(keys.astype(np.int64), term_ids.astype(np.int64), np.asarray(weights, np.float64))
        return postings

    def set(self, key: int, terms: Mapping[str, float]) -> None:
        """Replace every entry of ``key`` (none: the key is gone)."""
        if key >= len(self._stale):
            self._stale = np.concatenate([self._stale, np.zeros(max(key + 1, 2 * len(self._stale)), bool)])
        self._stale[key] = True
        for term_id in self._overlay_terms.pop(key, []):
            del self._overlay[term_id][key]
        if terms:
            ids = [self._term_id(t) for t in terms]
            for term_id, weight in zip(ids, terms.values(), strict=True):
                self._overlay.setdefault(term_id, {})[key] = float(weight)
            self._overlay_terms[key] = ids
        if len(self._overlay_terms) > max(COMPACT_AT, self._base_keys // 10):
            self.compact()

    def get(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The current (keys, weights) of ``term``, in no particular order."""
        term_id = self.terms.get(term)
        if term_id is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        start, end = (self._indptr[term_id], self._indptr[term_id + 1]) if term_id + 1 < len(self._indptr) else (0, 0)
        keys, weights = self._keys[start:end], self._weights[start:end]
        if len(keys) and len(self._stale):
            live = ~self._stale[np.minimum(keys, len(self._stale) - 1)] | (keys >= len(self._stale))
            keys, weights = keys[live], weights[live]
        extra = self._overlay.get(term_id)
        if extra:
            keys = np.concatenate([keys, np.fromiter(extra.keys(), np.int64, len(extra))])
            weights = np.concatenate([weights, np.fromiter(extra.values(), np.float64, len(extra))])
        return keys, weights

    def keys_with_any(self, terms: Iterable[str]) -> np.ndarray:
        """Keys holding at least one of ``terms``."""
        found = [self.get(t)[0] for t in terms]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)

    def compact(self) -> None:
        """Fold the overlay into the base."""
        term_of = np.repeat(np.arange(len(self._indptr) - 1), np.diff(self._indptr))
        live = np.ones(len(self._keys), bool)
        if len(self._stale):
            inside = self._keys < len(self._stale)
            live[inside] = ~self._stale[self._keys[inside]]
        keys, terms, weights = [self._keys[live]], [term_of[live]], [self._weights[live]]
        for term_id, entries in self._overlay.items():
            keys.append(np.fromiter(entries.keys(), np.int64, len(entries)))
            terms.append(np.full(len(entries), term_id, np.int64))
            weights.append(np.fromiter(entries.values(), np.float64, len(entries)))
        self._overlay, self._overlay_terms = {}, {}
        self._stale = np.zeros(0, bool)
        self._set_base(np.concatenate(keys), np.concatenate(terms), np.concatenate(weights))

    def _set_base(self, keys: np.ndarray, terms: np.ndarray, weights: np.ndarray) -> None:
        order = np.lexsort((keys, terms))
        self._keys, self._weights = keys[order], weights[order]
        counts = np.bincount(terms, minlength=len(self.terms)) if len(terms) else np.zeros(len(self.terms), np.int64)
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._base_keys = len(np.unique(keys))

    def _term_id(self, term: str) -> int:
        term_id = self.terms.get(term)
        if term_id is None:
            term_id = self.terms[term] = len(self.terms)
        return term_id
