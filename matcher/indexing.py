"""The two FAISS indexes, kept in agreement with the store: opened or repaired, synced key by key, saved, checked.

The store is the truth. Each index file records the model that built it and the store version it matches;
an index that disagrees is rebuilt from the embeddings stored in SQLite (no text is encoded again).
A write changes the indexes in memory under the write lock, then they are saved under the read lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from matcher import embedding
from matcher.embedding import Encoder
from matcher.errors import IndexMismatchError
from matcher.index import VectorIndex, load_meta
from matcher.locking import ReadWriteLock
from matcher.rows import content_from_row, influencer_from_row
from matcher.store import KINDS, Store

logger = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total)


class IndexSet:
    def __init__(self, store: Store, encoder: Encoder, data_dir: Path, profile_weights: dict[str, float]):
        self.store = store
        self.encoder = encoder
        self.data_dir = Path(data_dir)
        self.profile_weights = profile_weights
        self.lock = ReadWriteLock()
        self.indexes: dict[str, VectorIndex] = {}
        self.version = -1  # the store version the indexes in memory reflect
        self._local_writes = 0  # writes of this process committed and not yet synced
        self._counter = threading.Lock()

    # -- opening and rebuilding -----------------------------------------------------------------

    def open(self) -> str:
        """Load the saved indexes if they match this model and store state; otherwise repair. Says which."""
        with self.lock.writing():
            return self._open()

    def _open(self) -> str:
        for leftover in self.data_dir.glob(".*.faiss*.tmp"):
            leftover.unlink(missing_ok=True)  # a save cut short by a crash; the files it was replacing are intact
        expect = {"model": self.encoder.name, "store_version": self.store.version, "dimension": self.encoder.dimension}
        try:
            loaded = {kind: VectorIndex.load(self.path(kind), expect) for kind in KINDS}
        except FileNotFoundError:
            logger.info("no index in %s yet: building it", self.data_dir)
            outcome = "built"
        except (IndexMismatchError, OSError, ValueError, RuntimeError) as e:
            logger.warning("repairing the indexes from the database: %s", e)
            outcome = f"repaired ({e})"
        else:
            self.indexes.update(loaded)
            self.version = expect["store_version"]
            return "loaded"
        self._embed_stale(None)
        self._build()
        self._save()
        return outcome

    def rebuild(self, *, reembed: bool = False, progress: Progress | None = None) -> int:
        """Embed what is stale (everything with ``reembed``), rebuild both indexes, save them. Returns how many
        records were embedded."""
        embedded = self.embed_stale(progress, reembed=reembed)
        with self.lock.writing():
            self._build()
        with self.lock.reading():
            self._save()
        return embedded

    def refresh(self) -> None:
        """Catch up with writes made by another process (a CLI import while the server runs)."""
        if self.store.version == self.version or self._local_writes:
            return  # up to date, or our own write is about to be synced
        with self.lock.writing():
            if self.store.version != self.version:
                logger.info("the database changed outside this process: reopening the indexes")
                self._open()

    def embed_stale(self, progress: Progress | None, *, reembed: bool = False) -> int:
        """Embed records whose embedding is missing, outdated or from another model (all with ``reembed``)."""
        if reembed:
            with self.store.transaction() as db:
                db.execute("DELETE FROM embeddings")
        return self._embed_stale(progress)

    def _embed_stale(self, progress: Progress | None) -> int:
        done = 0
        for kind in KINDS:
            stale = self.store.stale_embeddings(kind, self.encoder.name)
            for start in range(0, len(stale), embedding.ENCODE_CHUNK):
                chunk = stale[start : start + embedding.ENCODE_CHUNK]
                rows = self.store.rows(kind, [key for key, _ in chunk])
                vectors = self.encoder.encode([text_of(kind, rows[key]) for key, _ in chunk])
                self.store.save_embeddings(
                    kind, self.encoder.name, [(k, h, v) for (k, h), v in zip(chunk, vectors, strict=True)]
                )
                done += len(chunk)
                if progress:
                    progress(f"embedding {kind}", start + len(chunk), len(stale))
        return done

    def _build(self) -> None:
        started = time.perf_counter()
        version = self.store.version
        meta = {"model": self.encoder.name}
        content_keys, content_vectors = self.store.embeddings("content")
        influencer_keys, influencer_vectors = self._influencer_vectors(None)
        self.indexes["content"] = VectorIndex.build(content_keys, content_vectors, self.encoder.dimension, meta)
        self.indexes["influencers"] = VectorIndex.build(
            influencer_keys, influencer_vectors, self.encoder.dimension, meta
        )
        self.version = version
        logger.info(
            "built indexes at store version %s in %.2fs: %s",
            version,
            time.perf_counter() - started,
            {k: i.count for k, i in self.indexes.items()},
        )

    # -- following writes -----------------------------------------------------------------------

    @contextmanager
    def following(self) -> Iterator[None]:
        """Around a write of this process: from before its commit until its sync, readers do not mistake it
        for another process's write (and reopen the indexes)."""
        with self._counter:
            self._local_writes += 1
        try:
            yield
        finally:
            with self._counter:
                self._local_writes -= 1

    def sync(self, influencer_keys: Iterable[int], content_keys: Iterable[int], version: int) -> None:
        """Bring these keys in line with the store after the write that made ``version``: (re)add visible
        records, remove the others. The caller holds the write lock.

        An influencer's vector mixes in their content, so the authors of the given content must be among
        ``influencer_keys``. If another process wrote meanwhile (``version`` is not the next one), the indexes
        are marked stale and the next refresh reopens them.
        """
        content_keys = sorted(set(content_keys))
        if content_keys:
            keys, vectors = self.store.embeddings("content", content_keys)
            self.indexes["content"].remove(np.array(content_keys))
            self.indexes["content"].add(keys, vectors)
        influencer_keys = sorted(set(influencer_keys))
        if influencer_keys:
            keys, vectors = self._influencer_vectors(influencer_keys)
            self.indexes["influencers"].remove(np.array(influencer_keys))
            self.indexes["influencers"].add(keys, vectors)
        self.version = version if version == self.version + 1 else -1

    def save(self) -> None:
        """Write both index files (the caller holds at least the read lock, so no write runs meanwhile)."""
        self._save()

    def _save(self) -> None:
        for kind, index in self.indexes.items():
            index.meta.update(model=self.encoder.name, store_version=self.version)
            index.save(self.path(kind))

    def path(self, kind: str) -> Path:
        return self.data_dir / f"{kind}.faiss"

    def _influencer_vectors(self, keys: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(keys, vectors) of visible influencers (all, or those asked for): profile mixed with their content."""
        profile_keys, profiles = self.store.embeddings("influencers", keys)
        if len(profile_keys) == 0:
            return profile_keys, np.empty((0, self.encoder.dimension), np.float32)
        authors = self.store.content_authors(None if keys is None else profile_keys.tolist())
        content_keys, content_vectors = self.store.embeddings("content", sorted(authors))
        empty_bio = self.store.keys_with_empty_bio(profile_keys.tolist())
        combined = embedding.influencer_vectors(
            profile_keys, profiles, content_keys, content_vectors, authors, empty_bio, self.profile_weights
        )
        return profile_keys, combined

    # -- checking ---------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems found comparing the saved indexes with the database (empty when they agree)."""
        problems = []
        version = self.store.version
        for kind in KINDS:
            meta = load_meta(self.path(kind))
            if meta is None or not self.path(kind).exists():
                problems.append(f"{kind}: no index file")
                continue
            if meta.get("model") != self.encoder.name:
                problems.append(f"{kind}: built with model {meta.get('model')!r}, not {self.encoder.name!r}")
            if meta.get("store_version") != version:
                problems.append(f"{kind}: matches database version {meta.get('store_version')}, not {version}")
        stale = {kind: len(self.store.stale_embeddings(kind, self.encoder.name)) for kind in KINDS}
        problems += [f"{kind}: {n} records without a current embedding" for kind, n in stale.items() if n]
        if problems:
            return problems
        saved = {kind: VectorIndex.load(self.path(kind)) for kind in KINDS}
        # What the indexes should hold: every visible record, with the vector the database gives it.
        expected = {"content": self.store.embeddings("content"), "influencers": self._influencer_vectors(None)}
        for kind in KINDS:
            keys, vectors = expected[kind]
            visible, indexed = set(keys.tolist()), saved[kind].ids
            if visible != indexed:
                problems.append(
                    f"{kind}: {len(visible - indexed)} visible records not indexed, "
                    f"{len(indexed - visible)} indexed records not visible (deleted or opted out)"
                )
            present = [i for i, k in enumerate(keys.tolist()) if saved[kind].has(k)]
            if present and not np.allclose(saved[kind].vectors(keys[present]), vectors[present], atol=1e-5):
                problems.append(f"{kind}: indexed vectors differ from the stored embeddings")
        problems += self.store.check_fts()
        return problems


def text_of(kind: str, row: dict[str, Any]) -> str:
    """The text that stands for a stored row."""
    if kind == "influencers":
        return embedding.influencer_text(influencer_from_row(row))
    return embedding.content_text(content_from_row(row))
