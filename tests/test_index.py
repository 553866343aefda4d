"""The FAISS index against brute-force cosine similarity on small hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from matcher import index as index_module
from matcher.errors import IndexMismatchError
from matcher.index import VectorIndex, load_meta


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return ids[order].tolist()


@pytest.fixture(params=["flat", "ivf"])
def kind(request, monkeypatch):
    if request.param == "ivf":
        monkeypatch.setattr(index_module, "IVF_THRESHOLD", 100)
    return request.param


def test_search_matches_brute_force(kind):
    vectors, ids = unit_rows(1000, 16, 1), np.arange(10, 1010, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, 16)
    assert index.kind == kind
    if kind == "ivf":
        index._index.nprobe = index._index.nlist  # exhaustive probing: IVF must then agree exactly
    for query in unit_rows(5, 16, 2):
        sims, found = index.search(query, 10)
        assert found[0].tolist() == brute_force(vectors, ids, query, 10)
        np.testing.assert_allclose(sims[0], np.sort(vectors @ query)[::-1][:10], rtol=1e-5)


def test_hand_made_vectors_rank_by_cosine():
    vectors = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    index = VectorIndex.build(np.array([7, 8, 9, 10]), vectors, 3)
    sims, ids = index.search(np.array([1, 0, 0], dtype=np.float32), 3)
    assert ids[0].tolist() == [7, 8, 9] or ids[0].tolist() == [7, 8, 10]
    assert sims[0][:2].tolist() == pytest.approx([1.0, 0.6])


def test_add_replaces_and_remove_forgets(kind):
    vectors, ids = unit_rows(300, 8, 3), np.arange(300, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, 8)
    new = unit_rows(1, 8, 4)
    index.add(np.array([5]), new)
    assert index.count == 300
    np.testing.assert_allclose(index.vectors(np.array([5]))[0], new[0])
    assert index.remove(np.array([5, 6, 9999])) == 2
    assert index.count == 298
    _, found = index.search(vectors[6], 300)
    assert 6 not in found[0].tolist() and 5 not in found[0].tolist()


def test_save_and_load_give_identical_results(tmp_path, kind):
    vectors, ids = unit_rows(400, 12, 5), np.arange(1, 401, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, 12, {"model": "m1", "store_version": 3})
    index.save(tmp_path / "content.faiss")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.faiss", "content.faiss.json"]  # no temp files
    loaded = VectorIndex.load(tmp_path / "content.faiss", {"model": "m1", "store_version": 3})
    query = unit_rows(1, 12, 6)[0]
    assert loaded.search(query, 20)[1].tolist() == index.search(query, 20)[1].tolist()
    assert load_meta(tmp_path / "content.faiss")["count"] == 400


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ({"model": "other-model"}, "model='m1'"),
        ({"store_version": 4}, "store_version=3"),
    ],
)
def test_load_refuses_an_index_from_another_model_or_state(tmp_path, expect, message):
    VectorIndex.build(np.arange(3), unit_rows(3, 4, 7), 4, {"model": "m1", "store_version": 3}).save(
        tmp_path / "i.faiss"
    )
    with pytest.raises(IndexMismatchError, match=message):
        VectorIndex.load(tmp_path / "i.faiss", expect)


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (np.array([1, 1]), unit_rows(2, 4, 8), "Duplicate ids"),
        (np.array([1, 2]), unit_rows(2, 5, 8), "dimension 4"),
        (np.array([1, 2, 3]), unit_rows(2, 4, 8), "Expected 3 vectors"),
    ],
)
def test_bad_batches_are_refused(ids, vectors, message):
    with pytest.raises(ValueError, match=message):
        VectorIndex.build(ids, vectors, 4)


def test_empty_index_searches_to_nothing():
    index = VectorIndex.build(np.array([], dtype=np.int64), np.empty((0, 4), np.float32), 4)
    sims, ids = index.search(unit_rows(1, 4, 9)[0], 5)
    assert ids.shape == (1, 0) and index.count == 0
