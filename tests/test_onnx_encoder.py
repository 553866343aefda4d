"""The ONNX encoder against PyTorch: the same vectors in fp32, close ones in int8, one export for all processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from matcher.config import PROJECT_DIR
from matcher.embedding import MAX_TEXT_CHARS, load_encoder, resolve_model
from matcher.errors import ConfigError
from matcher.onnx_encoder import OnnxEncoder, pool
from matcher.onnx_export import read_spec

MODEL = "all-MiniLM-L6-v2"
SENTENCES = [
    "Comment installer un capteur d'ouverture sur une porte de garage ?",
    "Le thermostat connecté a réduit notre facture de chauffage de 15 % cet hiver.",
    "Test complet de la caméra extérieure : vision nocturne, détection de personnes et stockage local.",
    "Tuto : automatiser l'éclairage du salon avec Home Assistant et des ampoules Zigbee.",
    "Est-ce que la box domotique est compatible avec les volets roulants Somfy ?",
    "Déballage",
    "How to pair a Zigbee motion sensor with the hub in under five minutes.",
    "Our smart lock review after six months of daily use: battery life, app and security.",
    "Unboxing the new video doorbell",
    "Why my heat pump makes noise at night, and the simple fix that worked.",
    "Best budget smart plugs of the year, tested for energy monitoring accuracy.",
    "ok",
]
# Builds the encoder in a fresh interpreter and says whether it needed torch.
CONSTRUCT = """
import json, sys
from pathlib import Path
from matcher.onnx_encoder import OnnxEncoder
names = [OnnxEncoder(sys.argv[1], p, Path(sys.argv[2])).name for p in sys.argv[3:]]
print(json.dumps({"torch": "torch" in sys.modules, "names": names}))
"""


def construct_elsewhere(cache_dir: Path, *precisions: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT_DIR)}
    command = [sys.executable, "-c", CONSTRUCT, MODEL, str(cache_dir), *precisions]
    return subprocess.Popen(
        command, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def report(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return json.loads(out.splitlines()[-1])


def files_of(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export, made once for the session by two processes started together: one exports, the other waits."""
    path = tmp_path_factory.mktemp("onnx-cache")
    processes = [construct_elsewhere(path, "onnx-int8"), construct_elsewhere(path, "onnx-int8")]
    reports = [report(p) for p in processes]
    assert sorted(r["torch"] for r in reports) == [False, True], reports
    return path


@pytest.fixture(scope="session")
def fp32(cache_dir: Path) -> OnnxEncoder:
    return OnnxEncoder(MODEL, "onnx", cache_dir)


@pytest.fixture(scope="session")
def int8(cache_dir: Path) -> OnnxEncoder:
    return OnnxEncoder(MODEL, "onnx-int8", cache_dir)


@pytest.fixture(scope="session")
def reference() -> np.ndarray:
    return load_encoder(MODEL).encode(SENTENCES)


@pytest.mark.slow
def test_fp32_gives_the_pytorch_vectors(fp32, reference):
    vectors = fp32.encode(SENTENCES)
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous and vectors.shape == (len(SENTENCES), 384)
    # Measured: at most 2.2e-7 apart, float32 rounding; a bound 45 times that.
    assert np.abs(vectors - reference).max() < 1e-5
    assert fp32.name == MODEL and fp32.dimension == 384


def test_int8_is_close_to_pytorch(int8, reference):
    cosines = (int8.encode(SENTENCES) * reference).sum(axis=1)
    # Measured: mean 0.988, min 0.970 (on "ok": the shortest texts move most); 100 Homelive records: mean 0.988,
    # min 0.977. With asymmetric weights on a CPU without VNNI (saturating), this failed: Homelive's queries to 0.16.
    assert cosines.mean() > 0.98 and cosines.min() > 0.93, cosines
    assert int8.name == f"{MODEL}#int8" and int8.dimension == 384


def test_vectors_are_unit_length(fp32, int8):
    for encoder in (fp32, int8):
        assert np.allclose(np.linalg.norm(encoder.encode(SENTENCES), axis=1), 1, atol=1e-5)


def test_a_batch_of_mixed_lengths_equals_one_by_one(fp32, int8):
    texts = ["a", SENTENCES[2], " ".join(SENTENCES * 4), "Déballage", SENTENCES[6] * 3, "x" * 5000, SENTENCES[0]]
    one_by_one = np.vstack([fp32.encode([t]) for t in texts])
    assert np.abs(fp32.encode(texts) - one_by_one).max() < 1e-5
    # int8 runs one text at a time (its activations' scale would depend on its neighbours): exactly the same
    int8_alone = np.vstack([int8.encode([t]) for t in texts])
    np.testing.assert_array_equal(int8.encode(texts), int8_alone)


def test_empty_input(fp32, int8):
    for encoder in (fp32, int8):
        vectors = encoder.encode([])
        assert vectors.shape == (0, 384) and vectors.dtype == np.float32


def test_a_text_longer_than_the_model_reads_is_cut_as_pytorch_cuts_it(fp32):
    """Beyond MAX_TEXT_CHARS and 256 word pieces (tokenizer.json itself says 128: a cut there gives cosine 0.91)."""
    text = " ".join(f"capteur {i} porte" for i in range(400))
    assert len(text) > MAX_TEXT_CHARS
    expected = load_encoder(MODEL).encode([text])
    assert np.abs(fp32.encode([text]) - expected).max() < 1e-5
    assert np.array_equal(fp32.encode([text]), fp32.encode([text[:MAX_TEXT_CHARS]]))


def test_threads_share_one_encoder(fp32):
    expected = fp32.encode(SENTENCES)
    with ThreadPoolExecutor(4) as pool_:
        results = list(pool_.map(lambda i: fp32.encode(SENTENCES[i:] + SENTENCES[:i]), range(8)))
    for i, vectors in enumerate(results):
        assert np.abs(np.roll(vectors, i, axis=0) - expected).max() < 1e-5


def test_a_second_construction_reuses_the_export_without_torch(cache_dir, fp32, int8):
    before = files_of(cache_dir)
    answer = report(construct_elsewhere(cache_dir, "onnx", "onnx-int8"))
    assert answer == {"torch": False, "names": [MODEL, f"{MODEL}#int8"]}
    assert files_of(cache_dir) == before


def test_a_changed_source_is_exported_again(cache_dir, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(cache_dir, copy, copy_function=os.link)  # links: the same inodes until a file is replaced
    [meta_path] = copy.glob("*/model-int8.json")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta_path.write_text(json.dumps({**meta, "source": "/elsewhere/all-MiniLM-L6-v2"}), encoding="utf-8")
    before = files_of(copy)
    OnnxEncoder(MODEL, "onnx-int8", copy)
    after = files_of(copy)
    int8_file = f"{meta_path.stem}.onnx"
    assert after[int8_file] != before[int8_file] and after["model.onnx"] == before["model.onnx"]
    assert json.loads(meta_path.read_text(encoding="utf-8"))["source"] == read_spec(MODEL).source


@pytest.mark.parametrize(
    ("precision", "threads", "message"),
    [
        ("fp16", 1, "Unknown encoder precision 'fp16'; valid precisions are: onnx, onnx-int8."),
        ("int8", 1, "Unknown encoder precision 'int8'"),
        ("onnx", 0, "threads and batch_size must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, precision, threads, message):
    with pytest.raises(ConfigError, match=message):
        OnnxEncoder(MODEL, precision, tmp_path, threads=threads)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("pooling", "message"),
    [
        ({"pooling_mode_lasttoken": True}, r"cannot pool like .* \('lasttoken'\)"),
        ({"pooling_mode": "weightedmean"}, r"\('weightedmean'\); it supports mean, cls, max"),
        ({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, r"\['max', 'mean'\]|\['mean', 'max'\]"),
    ],
)
def test_an_unsupported_pooling_is_refused(tmp_path, pooling, message):
    model = model_copy(tmp_path, {"1_Pooling/config.json": {"word_embedding_dimension": 384, **pooling}})
    with pytest.raises(ConfigError, match=message):
        OnnxEncoder(model, "onnx", tmp_path / "cache")


def test_a_model_with_more_modules_is_refused(tmp_path):
    modules = json.loads((Path(resolve_model(MODEL)) / "modules.json").read_text(encoding="utf-8"))
    dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    model = model_copy(tmp_path, {"modules.json": [*modules, dense]})
    with pytest.raises(ConfigError, match=r"modules \['sentence_transformers.models.Dense'\] are not supported"):
        OnnxEncoder(model, "onnx", tmp_path / "cache")


@pytest.mark.parametrize("mode", ["mean", "cls", "max"])
def test_pooling_matches_sentence_transformers(mode):
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling

    rng = np.random.default_rng(7)
    tokens = rng.standard_normal((3, 9, 384)).astype(np.float32)
    mask = np.array([[1] * 9, [1] * 4 + [0] * 5, [1] + [0] * 8])
    features = {"token_embeddings": torch.from_numpy(tokens), "attention_mask": torch.from_numpy(mask)}
    expected = Pooling(384, pooling_mode=mode)(features)["sentence_embedding"].numpy()
    assert np.abs(pool(tokens, mask, mode) - expected).max() < 1e-5


def model_copy(tmp_path: Path, replaced: dict[str, object]) -> str:
    """The packaged model's directory, linked file by file, with some JSON files replaced."""
    source, target = Path(resolve_model(MODEL)), tmp_path / "model"
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).symlink_to(path)
    for name, content in replaced.items():
        (target / name).unlink()
        (target / name).write_text(json.dumps(content), encoding="utf-8")
    return str(target)
