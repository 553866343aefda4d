"""The catalogue and its vector bases kept in agreement with the store: opened or built, followed, compacted, checked.

The store is the truth. A *base* is the vectors of one kind at one store version, saved once (``matcher.vector_base``)
and memory-mapped by every process; records written since live in each process's overlay, read from the store by
following the change log. Once an overlay grows, the process that wrote saves a new base and says so in the store
(``meta.base:<kind>``); the others switch to it at their next catch-up. Each base records the model and the
settings its vectors came from; one that disagrees is rebuilt from the embeddings stored in SQLite (no text is
encoded again, unless the model changed).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from matcher import embedding
from matcher.catalogue import Catalogue, influencer_vectors, stored_vectors
from matcher.embedding import Encoder
from matcher.errors import IndexMismatchError, storage_error
from matcher.locking import ProcessLock
from matcher.rows import content_from_row, influencer_from_row
from matcher.store import KINDS, Store
from matcher.vector_base import VectorIndex, load_meta, stale_temporary

logger = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total)
# A new base is saved once more records of a kind were written since the last one than this, or than a twentieth
# of the base: the overlay is private to each process, the base is shared, and saving one reads every vector.
REBASE_AFTER = 32


class Indexes:
    def __init__(
        self, store: Store, encoder: Encoder, catalogue: Catalogue, data_dir: Path, approximate_from: int = 150_000
    ):
        self.store = store
        self.approximate_from = approximate_from
        self.encoder = encoder
        self.catalogue = catalogue
        self.data_dir = Path(data_dir)
        self.lock = ProcessLock(self.data_dir / "write.lock")  # one writer at a time, across processes

    @property
    def expected(self) -> dict[str, object]:
        """What a base must have been built with to be used."""
        profile = json.dumps(self.catalogue.config["profile_vector"], sort_keys=True)
        return {"model": self.encoder.name, "dimension": self.encoder.dimension, "profile_vector": profile}

    # -- opening ------------------------------------------------------------------------------------

    def open(self) -> str:
        """Embed what is stale, open the newest usable bases (building those missing), load the catalogue.
        Says 'loaded', 'built' or 'repaired (why)'."""
        with self.lock:
            for leftover in stale_temporary(self.directory):
                leftover.unlink(missing_ok=True)  # a save cut short by a crash; the files it replaced are intact
            embedded = self._embed_stale(None)
            outcome, bases = "loaded", {}
            for kind in KINDS:
                try:
                    bases[kind] = self._usable_base(kind)
                except FileNotFoundError:
                    logger.info("no %s vectors in %s yet: building them", kind, self.directory)
                    outcome = "built" if outcome == "loaded" else outcome
                except (IndexMismatchError, OSError, ValueError) as e:
                    logger.warning("repairing the %s vectors from the database: %s", kind, e)
                    outcome = f"repaired ({e})"
                if kind not in bases:
                    bases[kind] = self._save_base(kind)
            if embedded and outcome == "loaded":
                outcome = f"repaired ({embedded} records embedded again)"
        self.catalogue.load(bases)
        return outcome

    @property
    def directory(self) -> Path:
        return self.data_dir / "vectors"

    def _usable_base(self, kind: str, verify: bool = True) -> VectorIndex:
        """The base the store names for ``kind``, if it exists, matches (and its checksums, with ``verify``) and the
        change log reaches back to it."""
        version = self.store.meta(f"base:{kind}")
        if version is None:
            raise FileNotFoundError(kind)
        base = VectorIndex.load(self._prefix(kind, int(version)), self.expected, verify)
        if not self.store.changes_since(int(version))[1]:
            raise IndexMismatchError(f"the change log no longer reaches back to version {version}")
        return base

    def _save_base(self, kind: str) -> VectorIndex:
        """Every current vector of ``kind``, from the store, saved as a new base that the store then names."""
        started = time.perf_counter()
        with self.store.snapshot():
            version = self.store.version
            keys = self.store.all_keys(kind)
            vectors = stored_vectors(self.store, kind, keys, self.catalogue.config, self.encoder.dimension)
        meta = {**self.expected, "store_version": version}
        base = VectorIndex.build(keys, vectors, self.encoder.dimension, meta, approximate_from=self.approximate_from)
        base.save(self._prefix(kind, version))
        previous = self.store.meta(f"base:{kind}")
        with self.store.transaction() as db:  # a new version with no changed keys: other processes look and switch
            self.store.set_meta(db, f"base:{kind}", str(version))
        if previous is not None and int(previous) != version:
            for path in VectorIndex.files(self._prefix(kind, int(previous))):
                path.unlink(missing_ok=True)  # processes mapping it keep their mapping until they switch
        logger.info(
            "saved %s vectors at version %s (%d, %s) in %.2fs",
            kind,
            version,
            base.count,
            base.kind,
            time.perf_counter() - started,
        )
        return VectorIndex.load(self._prefix(kind, version), self.expected, verify=False)  # checksummed as written

    def _prefix(self, kind: str, version: int) -> Path:
        return self.directory / f"{kind}-v{version}"

    # -- following writes -----------------------------------------------------------------------------

    def refresh(self, wait: bool = True) -> None:
        """Catch up with every write committed since the catalogue's version, by this process or another
        (``wait=False``, a request's: unless another thread of this process is already on it)."""
        try:
            changed = self.catalogue.catch_up(wait)
        except IndexMismatchError as e:  # this process fell further behind than the change log reaches
            logger.warning("reloading the catalogue: %s", e)
            self.open()
            return
        if changed:
            self._follow_bases()

    def after_write(self) -> None:
        """Called by the writer (holding ``lock``) once its write is committed: apply it here at once, and save a
        new base of a kind whose overlay has grown."""
        self.catalogue.catch_up()
        for kind, table in self.catalogue.tables.items():
            if table.overlay_count > max(REBASE_AFTER, table.base.count // 20):
                try:
                    base = self._save_base(kind)
                except (OSError, sqlite3.OperationalError) as e:
                    if storage_error(e, self.data_dir) is None:
                        raise
                    # The write is committed and applied (the overlay holds it, the change log replays it at the
                    # next start): a base is only a shortcut, saved at a later write once there is room again.
                    logger.warning("could not save new %s vectors (%s); keeping them in memory for now", kind, e)
                    continue
                self.catalogue.rebase(kind, base)

    def _follow_bases(self) -> None:
        for kind, table in self.catalogue.tables.items():
            named = self.store.meta(f"base:{kind}")
            if named is not None and int(named) > table.base.meta.get("store_version", -1):
                try:
                    self.catalogue.rebase(kind, VectorIndex.load(self._prefix(kind, int(named)), self.expected))
                except (FileNotFoundError, IndexMismatchError) as e:  # replaced again meanwhile: the next one
                    logger.info("could not switch to the %s vectors of version %s: %s", kind, named, e)

    # -- rebuilding -----------------------------------------------------------------------------------

    def rebuild(self, *, reembed: bool = False, progress: Progress | None = None) -> int:
        """Embed what is stale (everything with ``reembed``), save new bases, reload. Returns how many records
        were embedded."""
        with self.lock:
            if reembed:
                with self.store.transaction(bump=False) as db:
                    db.execute("DELETE FROM embeddings")
            embedded = self._embed_stale(progress)
            bases = {kind: self._save_base(kind) for kind in KINDS}
        self.catalogue.load(bases)
        return embedded

    def _embed_stale(self, progress: Progress | None) -> int:
        """Embed records whose embedding is missing, outdated or from another model."""
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

    # -- checking ---------------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems between the database and the saved vectors, or in the full-text index; empty when they agree."""
        problems = []
        stale = {kind: len(self.store.stale_embeddings(kind, self.encoder.name)) for kind in KINDS}
        problems += [f"{kind}: {n} records without a current embedding" for kind, n in stale.items() if n]
        for kind in KINDS:
            version = self.store.meta(f"base:{kind}")
            meta = load_meta(self._prefix(kind, int(version))) if version is not None else None
            if meta is None:
                problems.append(f"{kind}: no saved vectors")
                continue
            for key, value in self.expected.items():
                if meta.get(key) != value:
                    problems.append(f"{kind}: vectors built with {key}={meta.get(key)!r}, not {value!r}")
        if problems:
            return problems
        bases = {}
        for kind in KINDS:
            try:
                bases[kind] = self._usable_base(kind)
            except (IndexMismatchError, OSError, ValueError) as e:
                problems.append(f"{kind}: {e}")
                try:  # compared all the same: which records differ is what to know next
                    bases[kind] = self._usable_base(kind, verify=False)
                except (IndexMismatchError, OSError, ValueError, IndexError):  # not even readable
                    return problems
        catalogue = self.catalogue.copy_empty()  # what a server would load, compared with the store itself
        catalogue.load(bases)
        with self.store.snapshot():
            for kind in KINDS:
                keys = self.store.all_keys(kind)
                table = catalogue.tables[kind]
                if set(np.flatnonzero(table.alive).tolist()) != set(keys.tolist()):
                    problems.append(f"{kind}: the catalogue's records differ from the database's")
                    continue
                expected = stored_vectors(self.store, kind, keys, catalogue.config, self.encoder.dimension)
                if len(keys) and not np.allclose(table.vectors(keys), expected, atol=1e-5):
                    problems.append(f"{kind}: saved vectors differ from the stored embeddings")
        problems += self.store.check_fts()
        return problems


def text_of(kind: str, row: dict) -> str:
    """The text that stands for a stored row."""
    if kind == "influencers":
        return embedding.influencer_text(influencer_from_row(row))
    return embedding.content_text(content_from_row(row))


__all__ = ["Indexes", "Progress", "influencer_vectors", "text_of"]
