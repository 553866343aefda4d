"""Would MiniLM fine-tuned on the moment examples read customers' words better than the pretrained MiniLM?

Fine-tunes all-MiniLM-L6-v2 (sentence-transformers on PyTorch, seeded) on the training examples only (the moments
file's and ``moment_examples.jsonl``; no evaluation utterance), with one of two objectives:

- ``ce``: a linear head over the unit embedding (times 20), cross-entropy on the moment;
- ``triplet``: SetFit's in-batch triplets (``BatchAllTripletLoss``: same moment near, other moments far), the
  examples of no moment left out (their one text carries every label).

Then prints, per evaluation set with utterances, the accuracy (and on the ambiguous ones) of: the served detector
(pretrained MiniLM embedding + n-grams); the detector over the fine-tuned embedding alone and with the n-grams; and
the served detector's log-probabilities mixed with the fine-tuned embedding's detector's at a few weights (late
fusion: the regression over the fine-tuned embedding and the n-grams trusts an embedding that has seen its own
training examples, so the mix keeps the served detector's view of the n-grams). Two cores: about 2 minutes per epoch.

    python bench/detector_finetune.py [--epochs 2] [--lr 2e-5] [--loss ce]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher.config import DEFAULT_MODEL, Settings, read_jsonl  # noqa: E402
from matcher.detection import MomentDetector, _CachedEncoder, moments_taught, training_examples  # noqa: E402
from matcher.embedding import detector_encoder, encoders, resolve_model  # noqa: E402
from matcher.evaluation import load_sets  # noqa: E402
from matcher.moments import detection_settings, load_moments  # noqa: E402

FUSION_WEIGHTS = (0.2, 0.3, 0.5)  # the fine-tuned detector's share of the log-probabilities
BATCH = 32
SCALE = 20.0  # the unit embedding's scale before the ce head: a cosine classifier's temperature


class Tuned:
    """A fine-tuned sentence-transformers model as an ``embedding.Encoder``."""

    def __init__(self, model, name: str):  # noqa: ANN001 (a SentenceTransformer)
        self.model, self.name, self.dimension = model, name, int(model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def fine_tune(texts: list[str], labels: list[str], moments: list[str], epochs: float, lr: float, loss: str) -> Tuned:
    import torch
    from sentence_transformers import SentenceTransformer, losses

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    model.max_seq_length = 64  # customers' words are short; the longest examples lose their tail
    if loss == "triplet":
        taught = moments_taught(texts, labels)
        kept = [i for i, t in enumerate(texts) if len(taught[t]) == 1]
        texts, labels = [texts[i] for i in kept], [labels[i] for i in kept]
    y = torch.tensor([moments.index(label) for label in labels])
    head = torch.nn.Linear(model.get_embedding_dimension(), len(moments))
    triplets = losses.BatchAllTripletLoss(model)
    groups = [{"params": model.parameters(), "lr": lr}] + ([{"params": head.parameters(), "lr": 1e-3}] * (loss == "ce"))
    optimiser = torch.optim.AdamW(groups, weight_decay=0.01)
    steps = int(epochs * -(-len(texts) // BATCH))
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda i: min(1.0, (i + 1) / warmup) * (steps - i) / steps)
    model.train()
    step, start = 0, time.perf_counter()
    while step < steps:
        order = rng.permutation(len(texts))
        for first in range(0, len(texts), BATCH):
            if step == steps:
                break
            batch = order[first : first + BATCH]
            features = model.preprocess([texts[i] for i in batch])
            if loss == "ce":
                unit = torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)
                value = torch.nn.functional.cross_entropy(SCALE * head(unit), y[batch])
            else:
                value = triplets([features], y[batch])
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
            schedule.step()
            step += 1
    model.eval()
    print(f"fine-tuned ({loss}, {epochs:g} epochs, lr {lr:g}): {steps} steps in {time.perf_counter() - start:.0f} s")
    return Tuned(model, f"{DEFAULT_MODEL}-tuned-{loss}")


def accuracy(guess: list[str], heldout: list[dict]) -> str:
    right = np.array([u["moment"] == g for u, g in zip(heldout, guess, strict=True)])
    ambiguous = np.array([bool(u.get("ambiguous")) for u in heldout])
    return f"{right.mean():.3f}" + (f" ({right[ambiguous].mean():.3f})" if ambiguous.any() else "")


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--loss", choices=("ce", "triplet"), default="ce")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    settings = Settings.from_env()
    moments = load_moments(settings.moments_file)
    examples_file, threshold = detection_settings(settings.moments_file)
    texts, labels = training_examples(moments, examples_file)
    served_encoder = _CachedEncoder(detector_encoder(settings, encoders(settings)[0]))
    tuned = _CachedEncoder(fine_tune(texts, labels, sorted(moments), args.epochs, args.lr, args.loss))

    served = MomentDetector(served_encoder, texts, labels, threshold=threshold)
    alone = MomentDetector(tuned, texts, labels, threshold=threshold, views=("embedding",))
    both = MomentDetector(tuned, texts, labels, threshold=threshold)
    assert served.moments == alone.moments == both.moments
    rows: dict[str, list[str]] = {}
    for name, s in load_sets().items():
        if s.utterances is None or not s.utterances.exists():
            continue
        heldout = read_jsonl(s.utterances)
        words = [u["text"] for u in heldout]
        p_served, p_alone = served.probabilities(words), alone.probabilities(words)
        found = {
            f"served ({served_encoder.name} + n-grams)": p_served,
            "fine-tuned embedding alone": p_alone,
            "fine-tuned embedding + n-grams": both.probabilities(words),
        }
        for w in FUSION_WEIGHTS:
            found[f"served, {w:g} of the fine-tuned alone"] = np.exp((1 - w) * np.log(p_served) + w * np.log(p_alone))
        for label, p in found.items():
            rows.setdefault(label, []).append(f"{name} {accuracy([served.moments[i] for i in p.argmax(1)], heldout)}")
    print("accuracy on each set's held-out utterances (ambiguous ones in brackets)")
    for label, cells in rows.items():
        print(f"{label:42}" + " | ".join(cells))


if __name__ == "__main__":
    main()
