"""Everything about a record that does not depend on the query, held in memory as arrays indexed by its key.

Per record: whether it exists and may be shown, its filter attributes (category, language, network, format, audience,
topics, products), its similarity to each moment, its moment fit, influence, quality, tonality and date, its vector
and its words (BM25). They are computed when the record is written, by the functions of ``matcher.scoring``, so that
scoring a request is a few vectorised operations over its candidates (``matcher.ranking``).

The store is the truth: a catalogue is built from it, says which store version it reflects, and catches up by
reading the change log (the keys each write touched) and recomputing only those records. Every serving process
keeps its own and follows the store the same way, whichever process wrote.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from matcher import embedding, lexical, scoring
from matcher.bm25 import BM25
from matcher.errors import IndexMismatchError
from matcher.locking import ReadWriteLock
from matcher.moments import MomentVectors
from matcher.postings import Postings
from matcher.scoring import fold
from matcher.store import KINDS, Store
from matcher.vector_base import VectorIndex
from models.moments import Moment

logger = logging.getLogger(__name__)

# Per-record values, by kind: name -> (dtype, value of a key that holds no record). Per-moment values are named
# "<value>:<moment>".
COLUMNS: dict[str, dict[str, tuple[Any, Any]]] = {
    "influencers": {
        "category": (np.int32, -1),
        "language": (np.int32, -1),
        "opted_out": (bool, True),
        "followers": (np.int64, 0),
        "reach": (np.float64, 0.0),
        "influence": (np.float64, 0.0),
    },
    "content": {
        "author": (np.int64, -1),  # the author's key; -1: brand-owned
        "language": (np.int32, -1),
        "network": (np.int32, -1),
        "format": (np.int32, -1),
        "published": (np.float64, 0.0),  # seconds since the epoch, UTC
        "quality": (np.float64, 0.0),
        "tonality": (np.float64, 0.5),
        "interactions": (np.float64, math.nan),  # unknown: NaN
    },
}
MOMENT_COLUMNS = {
    "influencers": ("similarity", "profile", "fit"),  # to the moment; to who carries it; fit (category, topics)
    "content": ("similarity", "format_fit"),  # to the moment; how well the format serves it
}
FLOAT32 = ("similarity", "profile")  # cosine similarities, as the vectors give them
TAGS = {"influencers": ("topics", "networks"), "content": ("topics", "products")}
ROWS_KEPT = 4096  # decoded rows of recent results kept in memory (a request reads 20 to 60)


class Vocabulary:
    """Strings (categories, languages, networks, formats) as small integer codes, shared by both kinds."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def code(self, value: str | None) -> int:
        return self._codes.setdefault(value or "", len(self._codes))

    def codes(self, values: tuple[str, ...]) -> np.ndarray:
        """Codes of the values this vocabulary knows (the others match nothing)."""
        return np.array([self._codes[v] for v in values if v in self._codes], dtype=np.int32)


class Table:
    """One kind's records: arrays by key, tag postings, words (BM25) and vectors (a base and an overlay)."""

    def __init__(self, kind: str, moments: list[str], lexical_weights: list[float], dimension: int):
        self.kind = kind
        self.dimension = dimension
        self.columns = dict(COLUMNS[kind])
        self.columns.update(
            {
                f"{c}:{m}": (np.float32 if c in FLOAT32 else np.float64, 0.0)
                for c in MOMENT_COLUMNS[kind]
                for m in moments
            }
        )
        self.size = 0
        self.alive = np.zeros(0, bool)
        self.values = {name: np.zeros(0, dtype) for name, (dtype, _) in self.columns.items()}
        self.tags = {name: Postings() for name in TAGS[kind]}
        self.words = BM25.build(lexical_weights, np.zeros(0, np.int64), lexical.Instances.of([], {}))
        self.base = VectorIndex.build(np.zeros(0, np.int64), np.zeros((0, dimension), np.float32), dimension)
        self._overlay_row: dict[int, int] = {}  # key -> row of ``_overlay``: records written since the base
        self._overlay = np.zeros((0, dimension), np.float32)

    @property
    def count(self) -> int:
        return int(self.alive.sum())

    def grow(self, size: int) -> None:
        if size <= self.size:
            return
        size = max(size, 2 * self.size)
        self.alive = np.concatenate([self.alive, np.zeros(size - self.size, bool)])
        for name, (dtype, fill) in self.columns.items():
            self.values[name] = np.concatenate([self.values[name], np.full(size - self.size, fill, dtype)])
        self.size = size

    def set(self, keys: np.ndarray, values: dict[str, np.ndarray], tags: dict[str, list[dict[str, float]]]) -> None:
        """Write these records' values and tags (their vectors and words are set apart)."""
        self.grow(int(keys.max()) + 1 if len(keys) else 0)
        self.alive[keys] = True
        for name, array in values.items():
            self.values[name][keys] = array
        for name, per_key in tags.items():
            for key, terms in zip(keys.tolist(), per_key, strict=True):
                self.tags[name].set(key, terms)

    def remove(self, keys: np.ndarray) -> None:
        keys = keys[keys < self.size]
        self.alive[keys] = False
        for name, (_, fill) in self.columns.items():
            self.values[name][keys] = fill
        for postings in self.tags.values():
            for key in keys.tolist():
                postings.set(key, {})
        self.words.remove(keys.tolist())

    def set_vectors(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Vectors of records written since the base: kept apart, in this process's overlay."""
        for key, vector in zip(keys.tolist(), vectors, strict=True):
            row = self._overlay_row.get(key)
            if row is None:
                row = self._overlay_row[key] = len(self._overlay_row)
                if row >= len(self._overlay):
                    self._overlay = np.concatenate(
                        [self._overlay, np.zeros((max(16, row), self.dimension), np.float32)]
                    )
            self._overlay[row] = vector

    def vectors(self, keys: np.ndarray) -> np.ndarray:
        """The current vectors of these records (zero for a key that holds none)."""
        out = np.zeros((len(keys), self.dimension), np.float32)
        in_base = keys < len(self.base.rows)
        out[in_base] = self.base.vectors(keys[in_base])
        for i, key in enumerate(keys.tolist()):
            row = self._overlay_row.get(key)
            if row is not None:
                out[i] = self._overlay[row]
        return out

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """Inner product of ``query`` with every record's vector, by key (``size`` long)."""
        out = np.zeros(self.size, np.float32)
        base = self.base.similarities(query)
        out[: len(base)] = base
        if self._overlay_row:
            keys = np.fromiter(self._overlay_row.keys(), np.int64, len(self._overlay_row))
            rows = np.fromiter(self._overlay_row.values(), np.int64, len(self._overlay_row))
            out[keys] = self._overlay[rows] @ query
        return out

    @property
    def overlay_count(self) -> int:
        return len(self._overlay_row)

    @property
    def overlay_keys(self) -> np.ndarray:
        """Keys whose vectors were written since the base."""
        return np.fromiter(self._overlay_row.keys(), np.int64, len(self._overlay_row))

    def rebase(self, base: VectorIndex) -> None:
        """Vectors now come from ``base``; the overlay is emptied."""
        self.base, self._overlay_row = base, {}
        self._overlay = np.zeros((0, self.dimension), np.float32)


class Catalogue:
    """Both kinds' tables at one store version, the vocabulary they share, and the lock readers share."""

    def __init__(
        self,
        store: Store,
        config: dict[str, Any],
        moments: dict[str, Moment],
        moment_vectors: dict[str, MomentVectors],
        dimension: int,
    ):
        self.store = store
        self.config = config
        self.moments = moments
        self.moment_vectors = moment_vectors
        self.dimension = dimension
        self.vocabulary = Vocabulary()
        self.lock = ReadWriteLock()
        self.version = -1  # the store version these arrays reflect
        self._catching_up = threading.Lock()
        self._local_write = threading.Event()  # this process's writer has committed, or is about to
        self._rows: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()  # decoded rows, most recent last
        self._rows_lock = threading.Lock()
        weights = config["lexical"]["column_weights"]
        self.tables = {kind: Table(kind, list(moments), weights[kind], dimension) for kind in KINDS}
        self._changed()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One consistent state for a whole request."""
        with self.lock.reading():
            yield

    # -- following the store ----------------------------------------------------------------------

    def load(self, bases: dict[str, VectorIndex]) -> None:
        """Compute every record from the store, with vectors from ``bases`` (and the store, for records written
        since each base)."""
        started = time.perf_counter()
        with self.store.snapshot():
            version = self.store.version
            patch = {}
            for kind in KINDS:
                keys = self.store.all_keys(kind)
                since = self.store.changes_since(int(bases[kind].meta["store_version"]), version)[0][kind]
                overlay = np.intersect1d(np.array(sorted(since), np.int64), keys)
                patch[kind] = self._part(kind, keys, base=bases[kind], overlay=overlay)
        with self.lock.writing():
            weights = self.config["lexical"]["column_weights"]
            self.tables = {kind: Table(kind, list(self.moments), weights[kind], self.dimension) for kind in KINDS}
            for kind, part in patch.items():
                table = self.tables[kind]
                table.rebase(bases[kind])
                table.set_vectors(part["overlay"], part["vectors"][np.searchsorted(part["keys"], part["overlay"])])
                table.set(part["keys"], part["values"], part["tags"])
                table.words = BM25.build(table.words.weights, part["keys"], part["words"])
            self._changed()
            self.version = version
        logger.info(
            "catalogue at store version %s in %.2fs: %s",
            version,
            time.perf_counter() - started,
            {kind: t.count for kind, t in self.tables.items()},
        )

    def catch_up(self, wait: bool = True) -> bool:
        """Apply the writes committed since ``version`` (by any process); True if there were any.

        ``wait=False`` (a request): when another thread is applying them already, or this process's writer has
        committed and is about to, answer from the state there is rather than apply or wait. A search that came
        first otherwise applied a whole import itself (measured: 462 ms of a 484 ms search)."""
        if self.store.version == self.version:
            return False
        if not wait and self._local_write.is_set():
            return False
        if not self._catching_up.acquire(blocking=wait):
            return False
        try:
            return self._apply_changes()
        finally:
            self._catching_up.release()

    @contextmanager
    def local_write(self) -> Iterator[None]:
        """Around a write of this process, from before its commit until it is applied here (``catch_up``)."""
        self._local_write.set()
        try:
            yield
        finally:
            self._local_write.clear()

    def _apply_changes(self) -> bool:
        with self.store.snapshot():
            version = self.store.version
            if version == self.version:
                return False
            changed, complete = self.store.changes_since(self.version, version)
            if not complete:
                raise IndexMismatchError(f"the change log no longer reaches back to version {self.version}")
            patch = {k: self._part(k, np.array(sorted(v), np.int64)) for k, v in changed.items()}
        with self.lock.writing():
            for kind, part in patch.items():
                table = self.tables[kind]
                table.remove(part["gone"])
                table.set(part["keys"], part["values"], part["tags"])
                table.set_vectors(part["keys"], part["vectors"])
                table.words.update(part["keys"].tolist(), part["words"])
            self._changed({kind: np.concatenate([part["keys"], part["gone"]]) for kind, part in patch.items()})
            self.version = version
        return True

    def rebase(self, kind: str, base: VectorIndex) -> None:
        """Take ``kind``'s vectors from a newer base; the overlay keeps only what was written since it."""
        with self._catching_up:
            with self.store.snapshot():
                since = self.store.changes_since(int(base.meta["store_version"]), self.version)[0][kind]
                keys = np.intersect1d(np.array(sorted(since), np.int64), np.flatnonzero(self.tables[kind].alive))
                vectors = stored_vectors(self.store, kind, keys, self.config, self.dimension)
            with self.lock.writing():
                self.tables[kind].rebase(base)
                self.tables[kind].set_vectors(keys, vectors)

    def _changed(self, keys: dict[str, np.ndarray] | None = None) -> None:
        """Forget what was derived from the tables (they just changed), and the rows of ``keys`` (all if None)."""
        self._content_counts: np.ndarray | None = None
        self._visible: dict[str, np.ndarray] = {}
        with self._rows_lock:
            if keys is None:
                self._rows.clear()
            for kind, changed in (keys or {}).items():
                for key in changed.tolist():
                    self._rows.pop((kind, key), None)

    def rows(self, kind: str, keys: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Decoded rows by key (those that exist), from memory when a recent request read them: results repeat."""
        keys = [int(k) for k in keys]
        with self._rows_lock:
            found = {k: self._rows[(kind, k)] for k in keys if (kind, k) in self._rows}
            for k in found:
                self._rows.move_to_end((kind, k))
        missing = [k for k in keys if k not in found]
        if missing:
            read = self.store.rows(kind, missing)
            with self._rows_lock:
                for k, row in read.items():
                    self._rows[(kind, k)] = row
                while len(self._rows) > ROWS_KEPT:
                    self._rows.popitem(last=False)
            found.update(read)
        return found

    def copy_empty(self) -> Catalogue:
        """A catalogue of the same store and settings, not loaded."""
        return Catalogue(self.store, self.config, self.moments, self.moment_vectors, self.dimension)

    def _part(
        self, kind: str, keys: np.ndarray, base: VectorIndex | None = None, overlay: np.ndarray | None = None
    ) -> dict[str, Any]:
        """What these records now are, read from the store (inside one snapshot) and computed, ready to apply.
        With a ``base`` (a full load), vectors come from it but for the ``overlay`` keys, read from the store."""
        rows = self.store.rows(kind, keys)
        present = np.array(sorted(rows), np.int64)
        if base is None:
            vectors = stored_vectors(self.store, kind, present, self.config, self.dimension)
        else:
            vectors = np.zeros((len(present), self.dimension), np.float32)
            inside = present < len(base.rows)
            vectors[inside] = base.vectors(present[inside])
            overlay = np.zeros(0, np.int64) if overlay is None else overlay
            vectors[np.searchsorted(present, overlay)] = stored_vectors(
                self.store, kind, overlay, self.config, self.dimension
            )
        authors = self.store.author_keys(present) if kind == "content" else {}
        ordered = [rows[k] for k in present.tolist()]
        return {
            "keys": present,
            "gone": np.setdiff1d(keys, present),
            "values": self._values(kind, ordered, vectors, authors),
            "tags": _tags(kind, ordered),
            "vectors": vectors,
            "overlay": overlay,
            "words": lexical.indexed_documents(self.store.db, kind)
            if base is not None
            else lexical.TOKENIZER_.documents(self.store.fts_text(kind, present)),
        }

    # -- per-record values ------------------------------------------------------------------------

    def _values(
        self, kind: str, rows: list[dict[str, Any]], vectors: np.ndarray, authors: dict[int, int]
    ) -> dict[str, np.ndarray]:
        """Every column of these rows, computed once here and read by every request."""
        config, code = self.config, self.vocabulary.code
        out: dict[str, np.ndarray] = {}
        for name, moment in self.moment_vectors.items():
            out[f"similarity:{name}"] = vectors @ moment.centroid if len(rows) else np.zeros(0, np.float32)
        if kind == "influencers":
            out["category"] = np.array([code(r["category"]) for r in rows], np.int32)
            out["language"] = np.array([code(r["language"]) for r in rows], np.int32)
            out["opted_out"] = np.array([r["opted_out"] for r in rows], bool)
            out["followers"] = np.array([r["followers"] for r in rows], np.int64)
            out["reach"] = np.array([scoring.reach(config, r["followers"]) for r in rows])
            out["influence"] = np.array([scoring.influencer_influence(config, r).value for r in rows])
            for name, moment in self.moments.items():
                profile = vectors @ self.moment_vectors[name].profile if len(rows) else np.zeros(0, np.float32)
                out[f"profile:{name}"] = profile
                out[f"fit:{name}"] = np.array(
                    [
                        scoring.influencer_fit(config, moment, r, float(p)).value
                        for r, p in zip(rows, profile, strict=True)
                    ]
                )
            return out
        out["author"] = np.array([authors[r["key"]] for r in rows], np.int64)
        out["language"] = np.array([code(r["language"]) for r in rows], np.int32)
        out["network"] = np.array([code(r["network"]) for r in rows], np.int32)
        out["format"] = np.array([code(r["format"]) for r in rows], np.int32)
        out["published"] = np.array([r["published_ts"] for r in rows], np.float64)
        out["quality"] = np.array([scoring.quality(config, r["format"]) for r in rows])
        out["tonality"] = np.array([scoring.tonality(r["sentiment"]) for r in rows])
        signals = [scoring.interactions(config, r["engagement"]) for r in rows]
        out["interactions"] = np.array([math.nan if s is None else s for s in signals], np.float64)
        for name, moment in self.moments.items():
            out[f"format_fit:{name}"] = np.array([scoring.format_fit(config, moment, r["format"]) for r in rows])
        return out

    # -- what requests read -----------------------------------------------------------------------

    def visible(self, kind: str) -> np.ndarray:
        """Records that may appear in results: existing, not opted out, and (content) by someone visible."""
        if kind not in self._visible:
            self._visible[kind] = self._compute_visible(kind)
        return self._visible[kind]

    def _compute_visible(self, kind: str) -> np.ndarray:
        people = self.tables["influencers"]
        shown = people.alive & ~people.values["opted_out"]
        if kind == "influencers":
            return shown
        table = self.tables["content"]
        author = table.values["author"]
        by_author = np.ones(table.size, bool)
        authored = author >= 0
        by_author[authored] = shown[np.minimum(author[authored], people.size - 1)] & (author[authored] < people.size)
        return table.alive & by_author

    def content_counts(self) -> np.ndarray:
        """How many pieces each influencer has published (visible or not), by influencer key."""
        if self._content_counts is None:
            table = self.tables["content"]
            authors = table.values["author"][table.alive & (table.values["author"] >= 0)]
            self._content_counts = np.bincount(authors, minlength=self.tables["influencers"].size)
        return self._content_counts


def _tags(kind: str, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Topics (and products) folded, as filters compare them; networks with the followers on each."""
    out: dict[str, list[dict[str, float]]] = {"topics": [dict.fromkeys(map(fold, r["topics"]), 1.0) for r in rows]}
    if kind == "content":
        out["products"] = [dict.fromkeys(map(fold, r["products"]), 1.0) for r in rows]
    else:
        out["networks"] = [_followers_by_network(r["platforms"]) for r in rows]
    return out


def _followers_by_network(platforms: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in platforms:
        out[p["network"]] = max(out.get(p["network"], 0.0), float(p["followers"]))
    return out


def stored_vectors(store: Store, kind: str, keys: np.ndarray, config: dict[str, Any], dimension: int) -> np.ndarray:
    """The vectors of these records (``keys`` ascending) as the store gives them: a piece's embedding, an
    influencer's profile mixed with what they publish."""
    if kind == "influencers":
        return influencer_vectors(store, keys, config, dimension)
    return _content_vectors(store, keys, dimension)


def _content_vectors(store: Store, keys: np.ndarray, dimension: int) -> np.ndarray:
    found, vectors = store.embeddings("content", keys.tolist(), visible_only=False)
    out = np.zeros((len(keys), dimension), np.float32)
    if len(found):
        out[np.searchsorted(keys, found)] = vectors
    return out


def influencer_vectors(store: Store, keys: np.ndarray, config: dict[str, Any], dimension: int) -> np.ndarray:
    """The vector of each influencer (``keys`` ascending): their profile mixed with what they publish."""
    profile_keys, profiles = store.embeddings("influencers", keys.tolist(), visible_only=False)
    out = np.zeros((len(keys), dimension), np.float32)
    if len(profile_keys) == 0:
        return out
    authors = store.content_authors(profile_keys.tolist(), visible_only=False)
    content_keys, content_vectors = store.embeddings("content", sorted(authors), visible_only=False)
    empty_bio = store.keys_with_empty_bio(profile_keys.tolist())
    combined = embedding.influencer_vectors(
        profile_keys, profiles, content_keys, content_vectors, authors, empty_bio, config["profile_vector"]
    )
    out[np.searchsorted(keys, profile_keys)] = combined
    return out
