"""FAISS behind a small interface: build, add, remove, search, vectors, save, load, count.

Ids are the store's integer keys. Vectors are L2-normalised, so inner product is cosine similarity.
Small catalogues use an exact flat index; from ``IVF_THRESHOLD`` vectors on, an inverted file with a
hash-table direct map (so ids can still be removed and vectors read back).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from matcher.errors import IndexMismatchError

IVF_THRESHOLD = 200_000
FORMAT_VERSION = 1


class VectorIndex:
    """A FAISS index of unit vectors keyed by int64 ids, with the metadata that says where it came from."""

    def __init__(self, dimension: int, meta: dict[str, Any] | None = None, index: faiss.Index | None = None):
        self.dimension = dimension
        self.meta = dict(meta or {})
        self._index = index if index is not None else _flat(dimension)
        self._ids = set(_stored_ids(self._index))  # reconstructing an absent id is an error in FAISS

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, dimension: int, meta: dict[str, Any] | None = None
    ) -> VectorIndex:
        """A new index over ``vectors``; its type depends on how many there are."""
        ids, vectors = _check(ids, vectors, dimension)
        if len(ids) >= IVF_THRESHOLD:
            nlist = int(4 * math.sqrt(len(ids)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
            index.nprobe = max(8, nlist // 16)
        else:
            index = _flat(dimension)
        built = cls(dimension, meta, index)
        built._index.add_with_ids(vectors, ids)
        built._ids.update(ids.tolist())
        built.meta["built_at"] = time.time()
        return built

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    def has(self, key: int) -> bool:
        return key in self._ids

    @property
    def ids(self) -> set[int]:
        return set(self._ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; an id already present is replaced."""
        ids, vectors = _check(ids, vectors, self.dimension)
        self.remove(ids)
        self._index.add_with_ids(vectors, ids)
        self._ids.update(ids.tolist())

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (absent ones are ignored); returns how many were removed."""
        ids = np.ascontiguousarray([i for i in np.asarray(ids).tolist() if i in self._ids], dtype=np.int64)
        if len(ids) == 0:
            return 0
        self._ids.difference_update(ids.tolist())
        # IDSelectorArray, not Batch: an IVF's hash-table direct map removes only by array
        return int(self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (similarities, ids) per query row; missing places have id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dimension:
            raise ValueError(f"Query dimension {queries.shape[1]} does not match the index ({self.dimension}).")
        k = max(1, min(k, self.count))
        if self.count == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self._index.search(queries, k)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (all must be present)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self._index.reconstruct_batch(ids)

    def save(self, path: Path) -> None:
        """Write ``path`` and ``path.json`` atomically (temporary file, fsync, rename)."""
        path = Path(path)
        meta = {
            **self.meta,
            "dimension": self.dimension,
            "count": self.count,
            "type": self.kind,
            "format": FORMAT_VERSION,
            "faiss": faiss.__version__,
        }
        _atomic_write(path, faiss.serialize_index(self._index).tobytes())
        _atomic_write(_meta_path(path), json.dumps(meta, indent=2).encode())

    @classmethod
    def load(cls, path: Path, expect: dict[str, Any] | None = None) -> VectorIndex:
        """Read an index saved by ``save``; refuse it if its metadata disagrees with ``expect``."""
        path = Path(path)
        meta = json.loads(_meta_path(path).read_text())
        for key, value in (expect or {}).items():
            if meta.get(key) != value:
                raise IndexMismatchError(f"{path.name} was built with {key}={meta.get(key)!r}, expected {value!r}.")
        index = faiss.deserialize_index(np.frombuffer(path.read_bytes(), dtype=np.uint8))
        if index.ntotal != meta.get("count") or index.d != meta.get("dimension"):
            raise IndexMismatchError(f"{path.name} does not match its metadata file.")
        return cls(index.d, meta, index)


def load_meta(path: Path) -> dict[str, Any] | None:
    """The metadata saved beside an index, or None if there is none."""
    try:
        return json.loads(_meta_path(Path(path)).read_text())
    except (OSError, ValueError):
        return None


def _stored_ids(index: faiss.Index) -> list[int]:
    """The ids an index holds: its id map (flat) or its inverted lists (IVF)."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).tolist()
    ivf = faiss.extract_index_ivf(index)
    ids: list[int] = []
    for n in range(ivf.nlist):
        size = ivf.invlists.list_size(n)
        if size:
            ids.extend(faiss.rev_swig_ptr(ivf.invlists.get_ids(n), size).tolist())
    return ids


def _flat(dimension: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def _check(ids: np.ndarray, vectors: np.ndarray, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(ids) == 0:
        vectors = vectors.reshape(0, dimension)
    if vectors.shape != (len(ids), dimension):
        raise ValueError(
            f"Expected {len(ids)} vectors of dimension {dimension}, got an array of shape {vectors.shape}."
        )
    if len(np.unique(ids)) != len(ids):
        raise ValueError("Duplicate ids in one batch.")
    return ids, vectors


def _meta_path(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".json")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an index is no more secret than the database beside it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash
    finally:
        os.close(dir_fd)
