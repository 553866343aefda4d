"""Vectors by record key, memory-mapped so that every serving process shares one copy, with exact or approximate search.

A ``VectorIndex`` holds the vectors of one kind at one store version (a *base*): row ``key`` of its ``.npy`` file is
the vector of record ``key`` (rows of absent keys are zero and never returned: callers pass which keys may be). It is
written once, atomically, and opened read-only with ``mmap``. Small bases are searched exactly, a matrix-vector product
over the mapped rows; from ``APPROXIMATE_FROM`` vectors on, a FAISS HNSW graph is built as well and searched instead
(ids are the keys), the exact rows still giving every similarity that is scored. Records written after a base was
built are the catalogue's overlay, not this module's concern.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from matcher.errors import IndexMismatchError

# Exact search reads every row: at 384 dimensions, about 1.5 KB per record and query. From this many vectors on
# (by default: Settings.approximate_from), an HNSW graph answers in a fraction of that time.
APPROXIMATE_FROM = 150_000
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
FORMAT_VERSION = 3  # 3: the metadata records each file's SHA-256, checked when a base is opened


class VectorIndex:
    """Unit vectors by key (rows of a matrix), with the metadata that says where they came from."""

    def __init__(self, rows: np.ndarray, keys: np.ndarray, meta: dict[str, Any], graph: faiss.Index | None = None):
        self.rows = rows  # (max key + 1, dimension), float32; memory-mapped once saved and loaded
        self.keys = keys  # the keys present, ascending
        self.meta = meta
        self.graph = graph  # an HNSW graph over the rows, for large bases
        self.present = np.zeros(len(rows), bool)
        self.present[keys] = True

    @classmethod
    def build(
        cls,
        keys: np.ndarray,
        vectors: np.ndarray,
        dimension: int,
        meta: dict[str, Any] | None = None,
        *,
        approximate_from: int = APPROXIMATE_FROM,
    ) -> VectorIndex:
        """A new base over ``vectors`` (one per key); it gets an HNSW graph when there are many."""
        keys, vectors = _check(keys, vectors, dimension)
        order = np.argsort(keys)
        keys, vectors = keys[order], vectors[order]
        rows = np.zeros((int(keys[-1]) + 1 if len(keys) else 0, dimension), dtype=np.float32)
        rows[keys] = vectors
        graph = None
        if len(keys) >= approximate_from:
            graph = faiss.IndexIDMap(faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT))
            faiss.downcast_index(graph.index).hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            graph.add_with_ids(vectors, keys)
        info = {**(meta or {}), "dimension": dimension, "count": len(keys), "built_at": time.time()}
        return cls(rows, keys, info, graph)

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    @property
    def count(self) -> int:
        return len(self.keys)

    @property
    def kind(self) -> str:
        return "hnsw" if self.graph is not None else "exact"

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """Inner product of ``query`` with every row (zero for absent keys)."""
        return self.rows @ np.asarray(query, dtype=np.float32)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
        """Keys of the ``k`` rows nearest ``query`` (about, when approximate) among the ``allowed`` keys (a boolean
        mask over keys, at least as long as ``rows``), best first."""
        allowed = allowed[: len(self.rows)] & self.present
        count = int(np.count_nonzero(allowed))
        if self.graph is None or count < 4 * k:  # exact; when a filter leaves few, on those rows alone
            if count < len(self.rows) // 8:
                candidates = np.flatnonzero(allowed)
                return candidates[top_k(self.rows[candidates] @ query, k)]
            return top_k(self.similarities(query), k, allowed)
        params = faiss.SearchParametersHNSW(sel=faiss.IDSelectorBitmap(_bitmap(allowed)), efSearch=HNSW_EF_SEARCH)
        found = self.graph.search(np.ascontiguousarray(query[None], dtype=np.float32), k, params=params)[1][0]
        return found[found >= 0]

    def vectors(self, keys: np.ndarray) -> np.ndarray:
        return np.asarray(self.rows[np.asarray(keys, dtype=np.int64)])

    def save(self, path: Path) -> None:
        """Write the files of ``path`` (a name without suffix): rows, keys, graph if any, each atomically, then the
        metadata with each file's checksum (a base without it does not exist)."""
        path = Path(path)
        checksums = {
            ".vectors.npy": atomic_write(
                _sibling(path, ".vectors.npy"), lambda f: np.save(_Chunked(f), np.ascontiguousarray(self.rows))
            ),
            ".keys.npy": atomic_write(_sibling(path, ".keys.npy"), lambda f: np.save(_Chunked(f), self.keys)),
        }
        if self.graph is not None:
            checksums[".hnsw"] = atomic_write(
                _sibling(path, ".hnsw"), lambda f: f.write(faiss.serialize_index(self.graph).tobytes())
            )
        meta = {
            **self.meta,
            "type": self.kind,
            "format": FORMAT_VERSION,
            "faiss": faiss.__version__,
            "checksums": checksums,
        }
        atomic_write(_sibling(path, ".json"), lambda f: f.write(json.dumps(meta, indent=2).encode()))

    @classmethod
    def load(cls, path: Path, expect: dict[str, Any] | None = None, verify: bool = True) -> VectorIndex:
        """Open a base saved by ``save``, memory-mapped; refuse it if its metadata disagrees with ``expect`` or (with
        ``verify``) a file's bytes with the checksum recorded when it was written: a damaged base raises
        IndexMismatchError, and is rebuilt from the stored vectors, instead of being served."""
        path = Path(path)
        meta = json.loads(_sibling(path, ".json").read_text())
        for key, value in (expect or {}).items():
            if meta.get(key) != value:
                raise IndexMismatchError(f"{path.name} was built with {key}={meta.get(key)!r}, expected {value!r}.")
        if verify:
            _verify(path, meta)
        rows = np.load(_sibling(path, ".vectors.npy"), mmap_mode="r")
        keys = np.load(_sibling(path, ".keys.npy"))
        if len(keys) != meta.get("count") or (rows.ndim != 2 or rows.shape[1:] != (meta.get("dimension"),)):
            raise IndexMismatchError(f"{path.name} does not match its metadata file.")
        graph = None
        if meta.get("type") == "hnsw":
            graph = faiss.read_index(str(_sibling(path, ".hnsw")), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        return cls(rows, keys, meta, graph)

    @staticmethod
    def files(path: Path) -> list[Path]:
        """Every file ``save`` writes for ``path``."""
        return [_sibling(Path(path), s) for s in (".vectors.npy", ".keys.npy", ".hnsw", ".json")]


def load_meta(path: Path) -> dict[str, Any] | None:
    """The metadata saved beside a base, or None if there is none."""
    try:
        return json.loads(_sibling(Path(path), ".json").read_text())
    except (OSError, ValueError):
        return None


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``k`` best ``scores`` (only ``allowed`` ones), best first, ties broken by position: the same
    answer however the work is split."""
    if allowed is not None:
        scores = np.where(allowed[: len(scores)], scores, -np.inf)
        k = min(k, int(np.count_nonzero(allowed[: len(scores)])))
    k = min(k, len(scores))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < len(scores):
        threshold = scores[np.argpartition(-scores, k - 1)[k - 1]]
        candidates = np.flatnonzero(scores >= threshold)  # every tie at the threshold, so ties break by position
    else:
        candidates = np.arange(len(scores))
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[:k]]


def _bitmap(allowed: np.ndarray) -> np.ndarray:
    return np.packbits(allowed.astype(np.uint8), bitorder="little")


def _check(keys: np.ndarray, vectors: np.ndarray, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(keys) == 0:
        vectors = vectors.reshape(0, dimension)
    if vectors.shape != (len(keys), dimension):
        raise ValueError(
            f"Expected {len(keys)} vectors of dimension {dimension}, got an array of shape {vectors.shape}."
        )
    if len(np.unique(keys)) != len(keys):
        raise ValueError("Duplicate keys in one batch.")
    if len(keys) and keys.min() < 0:
        raise ValueError("Keys must not be negative.")
    return keys, vectors


TEMPORARY = re.compile(r"\.(\d+)\.[^.]+\.tmp$")  # .<file>.<pid>.<random>.tmp, as atomic_write names them
STALE_AFTER_S = 3600.0  # a temporary file whose writer cannot be told (no pid in its name) is stale after this


def stale_temporary(directory: Path, now: float | None = None) -> list[Path]:
    """The temporary files of saves cut short (their process is gone), not those another process is writing."""
    now = time.time() if now is None else now
    out = []
    for path in directory.glob(".*.tmp"):
        found = TEMPORARY.search(path.name)
        try:
            if found is not None:
                alive = _alive(int(found.group(1)))
            else:
                alive = now - path.stat().st_mtime < STALE_AFTER_S
        except FileNotFoundError:  # finished (renamed) meanwhile
            continue
        if not alive:
            out.append(path)
    return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is opening: none of its saves is under way
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except (OverflowError, OSError):
        return False
    return True


class _Chunked:
    """A file numpy writes in chunks through ``write`` instead of ``ndarray.tofile``: a full disk then raises
    ENOSPC, where tofile's short write raises an OSError with no errno ('N requested and M written')."""

    def __init__(self, f: IO[bytes]):
        self.write = f.write


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _verify(path: Path, meta: dict[str, Any]) -> None:
    """Every file of a base has the bytes it was written with (one read of each, at start-up and on switching)."""
    recorded = meta.get("checksums")
    if not isinstance(recorded, dict):
        raise IndexMismatchError(f"{path.name} was written without checksums (format {meta.get('format')}).")
    for suffix, digest in recorded.items():
        if _digest(_sibling(path, suffix)) != digest:
            raise IndexMismatchError(f"{path.name}{suffix} is damaged: its bytes do not match the recorded checksum.")


def _digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> str:
    """Write through ``write`` into a temporary file, fsync, rename over ``path``, fsync the directory. Returns the
    file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named by the process writing it, so that another process sweeping leftovers leaves it alone (stale_temporary).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an index is no more secret than the database beside it
        digest = _digest(Path(tmp))  # of what reached the disk, read back (from the page cache)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash
    finally:
        os.close(dir_fd)
    return digest
