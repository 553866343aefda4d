"""The vector index against brute-force cosine similarity on small hand-made vectors; saving and mapping it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.errors import IndexMismatchError
from matcher.vector_base import VectorIndex, load_meta, top_k


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int, allowed=None) -> list[int]:
    order = [i for i in np.argsort(-(vectors @ query), kind="stable") if allowed is None or ids[i] in allowed]
    return ids[order[:k]].tolist()


@pytest.fixture(params=["exact", "hnsw"])
def kind(request):
    return request.param


def build(ids, vectors, d, kind, meta=None):
    return VectorIndex.build(ids, vectors, d, meta, approximate_from=100 if kind == "hnsw" else 10**9)


def test_search_matches_brute_force(kind):
    vectors, ids = unit_rows(1000, 16, 1), np.arange(10, 1010, dtype=np.int64)
    index = build(ids, vectors, 16, kind)
    assert index.kind == kind
    allowed = np.zeros(1010, bool)
    allowed[ids] = True
    for query in unit_rows(5, 16, 2):
        found = index.search(query, 10, allowed).tolist()
        expected = brute_force(vectors, ids, query, 10)
        assert found == expected if kind == "exact" else len(set(found) & set(expected)) >= 9


def test_search_keeps_to_the_allowed_keys(kind):
    vectors, ids = unit_rows(600, 8, 3), np.arange(600, dtype=np.int64)
    index = build(ids, vectors, 8, kind)
    allowed = np.zeros(600, bool)
    allowed[::3] = True  # a third of the keys
    query = unit_rows(1, 8, 4)[0]
    found = index.search(query, 20, allowed).tolist()
    assert all(k % 3 == 0 for k in found) and len(found) == 20
    assert len(set(found) & set(brute_force(vectors, ids, query, 20, set(ids[::3].tolist())))) >= 18
    few = np.zeros(600, bool)
    few[[5, 6, 7]] = True  # fewer than asked for: exactly those
    assert sorted(index.search(query, 20, few).tolist()) == [5, 6, 7]


def test_hand_made_vectors_rank_by_cosine():
    vectors = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    index = VectorIndex.build(np.array([7, 8, 9, 10]), vectors, 3)
    query = np.array([1, 0, 0], dtype=np.float32)
    allowed = np.ones(11, bool)
    assert index.search(query, 3, allowed).tolist() == [7, 8, 9]  # 9 and 10 tie at 0: the lower key first
    assert index.similarities(query)[[7, 8, 9, 10]].tolist() == pytest.approx([1.0, 0.6, 0.0, 0.0])
    assert index.similarities(query)[:7].tolist() == [0.0] * 7  # keys that hold no record


def test_top_k_breaks_ties_by_position_and_respects_the_mask():
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1])
    assert top_k(scores, 3).tolist() == [1, 3, 0]
    assert top_k(scores, 2, np.array([True, False, True, False, True])).tolist() == [0, 2]
    assert top_k(scores, 10, np.array([False, False, False, False, True])).tolist() == [4]
    assert top_k(scores, 0).tolist() == []


def test_save_and_load_map_the_same_vectors(tmp_path, kind):
    vectors, ids = unit_rows(400, 12, 5), np.arange(1, 401, dtype=np.int64)
    index = build(ids, vectors, 12, kind, {"model": "m1", "store_version": 3})
    index.save(tmp_path / "content-v3")
    assert all(p.exists() for p in VectorIndex.files(tmp_path / "content-v3") if kind == "hnsw" or "hnsw" not in p.name)
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    loaded = VectorIndex.load(tmp_path / "content-v3", {"model": "m1", "store_version": 3})
    assert isinstance(loaded.rows, np.memmap) and loaded.kind == kind  # mapped, not read
    query = unit_rows(1, 12, 6)[0]
    allowed = np.ones(401, bool)
    assert loaded.search(query, 20, allowed).tolist() == index.search(query, 20, allowed).tolist()
    np.testing.assert_array_equal(loaded.vectors(ids[:5]), vectors[:5])
    assert load_meta(tmp_path / "content-v3")["count"] == 400


@pytest.mark.parametrize(
    ("expect", "message"), [({"model": "other-model"}, "model='m1'"), ({"dimension": 5}, "dimension=4")]
)
def test_load_refuses_vectors_from_another_model_or_shape(tmp_path, expect, message):
    VectorIndex.build(np.arange(3), unit_rows(3, 4, 7), 4, {"model": "m1"}).save(tmp_path / "i")
    with pytest.raises(IndexMismatchError, match=message):
        VectorIndex.load(tmp_path / "i", expect)


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (np.array([1, 1]), unit_rows(2, 4, 8), "Duplicate keys"),
        (np.array([1, 2]), unit_rows(2, 5, 8), "dimension 4"),
        (np.array([1, 2, 3]), unit_rows(2, 4, 8), "Expected 3 vectors"),
        (np.array([-1, 2]), unit_rows(2, 4, 8), "negative"),
    ],
)
def test_bad_batches_are_refused(ids, vectors, message):
    with pytest.raises(ValueError, match=message):
        VectorIndex.build(ids, vectors, 4)


def test_empty_index_searches_to_nothing():
    index = VectorIndex.build(np.array([], dtype=np.int64), np.empty((0, 4), np.float32), 4)
    assert index.search(unit_rows(1, 4, 9)[0], 5, np.ones(0, bool)).tolist() == [] and index.count == 0


def _reverse_keys(path):
    np.save(path, np.load(path)[::-1].copy())  # a valid file, the same keys: only the order, hence the rows, lie


def _overwrite_rows(path):
    with path.open("r+b") as f:
        f.seek(path.stat().st_size - 200)
        f.write(bytes(range(200)))  # the header still parses


@pytest.mark.parametrize(("suffix", "damage"), [(".keys.npy", _reverse_keys), (".vectors.npy", _overwrite_rows)])
def test_a_damaged_file_is_refused_with_its_name(tmp_path, suffix, damage):
    """Bytes changed after the save (a disk, a copy, a hand): the checksum the save recorded no longer matches."""
    VectorIndex.build(np.arange(50), unit_rows(50, 8, 3), 8, {"model": "m1"}).save(tmp_path / "i")
    damage(tmp_path / f"i{suffix}")
    with pytest.raises(IndexMismatchError, match=f"i{suffix} is damaged"):
        VectorIndex.load(tmp_path / "i")
    assert VectorIndex.load(tmp_path / "i", verify=False).count == 50  # what `check` still compares


def test_a_base_written_without_checksums_is_refused(tmp_path):
    VectorIndex.build(np.arange(3), unit_rows(3, 4, 7), 4, {"model": "m1"}).save(tmp_path / "i")
    meta = json.loads((tmp_path / "i.json").read_text())
    del meta["checksums"]
    (tmp_path / "i.json").write_text(json.dumps(meta))
    with pytest.raises(IndexMismatchError, match="without checksums"):
        VectorIndex.load(tmp_path / "i")
