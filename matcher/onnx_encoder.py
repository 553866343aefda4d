"""The text encoder as an ONNX export of a sentence-transformers model, run with onnxruntime (fp32 or int8).

The export is made once into a cache directory (``matcher.onnx_export``); later processes load it without torch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from matcher.embedding import MAX_TEXT_CHARS
from matcher.errors import ConfigError
from matcher.onnx_export import PRECISIONS, ensure_export, read_json, read_spec, slug

# Tokens (rows × width) run at once, unless batch_size stops sooner; measured best on one thread (bench/encoders.py).
BATCH_TOKENS = 512


class OnnxEncoder:
    """A sentence-transformers model exported to ONNX. ``encode`` returns L2-normalised float32 rows."""

    def __init__(
        self,
        model: str,
        precision: str,
        cache_dir: Path,
        threads: int = 1,
        batch_size: int = 32,
        int8_options: dict | None = None,
    ):
        """``int8_options``: how int8 is quantized, if not as ``onnx_export.INT8_OPTIONS`` says."""
        if precision not in PRECISIONS:
            raise ConfigError(
                f"Unknown encoder precision {precision!r}; valid precisions are: {', '.join(PRECISIONS)}."
            )
        if threads < 1 or batch_size < 1:
            raise ConfigError(f"threads and batch_size must be at least 1, not {threads} and {batch_size}.")
        from tokenizers import Tokenizer

        self.spec = read_spec(model)
        self.path = ensure_export(self.spec, precision, Path(cache_dir) / slug(model), int8_options)
        self._session_lock = threading.Lock()
        self.set_threads(threads)
        # Configured once here and never again: changing truncation or padding while another thread encodes fails
        # with "Already borrowed". The file's own settings (often 128 tokens, fixed padding) are not the model's.
        self._tokenizer = Tokenizer.from_file(str(Path(self.spec.source) / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.spec.max_seq_length)
        self._pad_id = _pad_id(Path(self.spec.source), self._tokenizer)
        self.name = model if precision == "onnx" else f"{model}#int8"
        self.dimension = self.spec.dimension
        self.batch_size = batch_size
        self.batch_tokens = BATCH_TOKENS

    def close(self) -> None:
        """Let the session go (its threads with it): before a fork, as a forked child could not open a new one
        while a parent's session had idle threads (measured: it hangs)."""
        self._session = None

    def set_threads(self, threads: int) -> None:
        """Run on ``threads`` threads from the next encoding on: also what a forked worker needs (threads do not
        survive a fork, and a session's pool would wait for them). The session itself opens on first use, so a
        worker that never writes holds no records' encoder (about 90 MB resident each: measured)."""
        self._threads = threads
        self._session = None

    def open(self) -> None:
        """Open the session now rather than on the first encoding (a worker warms its query encoder this way)."""
        self._run_session()

    def _run_session(self):
        session = self._session
        if session is not None:
            return session
        with self._session_lock:
            if self._session is None:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                # Without the arena a session holds 9 MB less (int8, measured in fresh processes), at the same
                # speed: a query's tensors are small.
                options.enable_cpu_mem_arena = False
                self._session = onnxruntime.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"]
                )
                self._inputs = {i.name for i in self._session.get_inputs()}
            return self._session

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, in order."""
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        texts = [t[:MAX_TEXT_CHARS] for t in texts]
        if self.spec.do_lower_case:
            texts = [t.lower() for t in texts]
        encodings = self._tokenizer.encode_batch(texts)
        if self.name.endswith("#int8"):
            # Dynamic quantization scales each run's activations as a whole: in a batch, a text's vector would
            # depend on its neighbours (cosine down to 0.98), and a query (always alone) would not match what a
            # model was fitted on. One text per run: a vector is a function of its text.
            batches: Iterator[list[int]] = ([i] for i in range(len(texts)))
        else:
            batches = self._batches([len(e.ids) for e in encodings])
        for rows in batches:
            vectors[rows] = self._encode_batch([encodings[i] for i in rows])
        return vectors

    def _batches(self, lengths: list[int]) -> Iterator[list[int]]:
        """Rows of similar lengths, at most ``batch_size`` and about ``batch_tokens`` tokens a run."""
        # Longest first, so a batch's first row sets its width. On one thread, long texts run faster alone (the
        # attention grows with the square of the width) and short ones faster together: a budget serves both.
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        start = 0
        while start < len(order):
            size = max(1, min(self.batch_size, self.batch_tokens // lengths[order[start]]))
            yield order[start : start + size]
            start += size

    def _encode_batch(self, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        session = self._run_session()
        tokens = session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        return normalize(pool(tokens, mask, self.spec.pooling))


def pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Token embeddings (batch, sequence, dim) to one vector per text, as sentence-transformers' Pooling does."""
    if mode == "cls":
        return tokens[:, 0]  # padding is on the right, so the first token is the CLS token
    weights = mask[:, :, None].astype(tokens.dtype)
    if mode == "max":
        return np.where(weights > 0, tokens, np.float32(-1e9)).max(axis=1)
    return (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 C-contiguous (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _pad_id(location: Path, tokenizer: object) -> int:
    pad = read_json(location / "tokenizer_config.json", {}).get("pad_token") or "[PAD]"
    pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else pad
    return tokenizer.token_to_id(str(pad)) or 0  # padded positions are masked out: the id only has to exist
