"""Would multilingual-e5 help moment detection as a second opinion, asked only when the detector is unsure?

The served detector (MiniLM embedding + n-grams) answers; where its confidence is below a cut-off, the same detector
fitted over e5's embeddings (``RELAIS_DETECTOR_ENCODER=e5-query``) is asked too and the two probabilities are
averaged. Prints, per cut-off: accuracy on the training examples' 5-fold cross-validation (the examples of no moment
left out, as `matcher eval --moments` does), on each evaluation set's held-out utterances (and its ambiguous
ones), and the share of utterances that would pay for an e5 encoding (`python bench/encoders.py`: its cost).

    python bench/second_opinion.py
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher.config import Settings, read_jsonl  # noqa: E402
from matcher.detection import MomentDetector, _CachedEncoder, moments_taught, training_examples  # noqa: E402
from matcher.embedding import detector_encoder, encoders  # noqa: E402
from matcher.evaluation import load_sets  # noqa: E402
from matcher.moments import detection_settings, load_moments  # noqa: E402

CUTOFFS = (0.0, 0.6, 0.7, 0.8, 0.9, 1.01)  # 0: never asked (as served); 1.01: always


def answers(first: np.ndarray, second: np.ndarray, cutoff: float) -> tuple[np.ndarray, float]:
    """Each text's moment (column), and the share for which the second opinion was asked."""
    unsure = first.max(axis=1) < cutoff
    p = first.copy()
    p[unsure] = (first[unsure] + second[unsure]) / 2
    return p.argmax(axis=1), float(unsure.mean())


def main() -> None:
    from sklearn.model_selection import StratifiedKFold

    settings = Settings.from_env()
    moments = load_moments(settings.moments_file)
    examples_file, threshold = detection_settings(settings.moments_file)
    texts, labels = training_examples(moments, examples_file)
    records = encoders(settings)[0]
    served = _CachedEncoder(detector_encoder(settings, records))
    e5 = _CachedEncoder(detector_encoder(dataclasses.replace(settings, detector_encoder="e5-query"), records))

    def pair(train: list[int]) -> tuple[MomentDetector, MomentDetector]:
        t, y = [texts[i] for i in train], [labels[i] for i in train]
        return MomentDetector(served, t, y, threshold=threshold), MomentDetector(e5, t, y, threshold=threshold)

    rows: dict[float, list[str]] = {c: [] for c in CUTOFFS}
    moments_of = moments_taught(texts, labels)
    hits: dict[float, list[float]] = {c: [] for c in CUTOFFS}
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(texts, labels):
        first, second = pair(list(train))
        test = [i for i in test if len(moments_of[texts[i]]) == 1]
        words = [texts[i] for i in test]
        p, q = first.probabilities(words), second.probabilities(words)
        for c in CUTOFFS:
            guess, _ = answers(p, q, c)
            hits[c].append(np.mean([first.moments[g] == labels[i] for g, i in zip(guess, test, strict=True)]))
    for c in CUTOFFS:
        rows[c].append(f"cv {np.mean(hits[c]):.3f}")

    first, second = pair(list(range(len(texts))))
    for name, s in load_sets().items():
        if s.utterances is None or not s.utterances.exists():
            continue
        heldout = read_jsonl(s.utterances)
        truth = np.array([u["moment"] for u in heldout])
        ambiguous = np.array([bool(u.get("ambiguous")) for u in heldout])
        words = [u["text"] for u in heldout]
        p, q = first.probabilities(words), second.probabilities(words)
        for c in CUTOFFS:
            guess, asked = answers(p, q, c)
            right = np.array([first.moments[g] for g in guess]) == truth
            amb = f" (ambiguous {right[ambiguous].mean():.3f})" if ambiguous.any() else ""
            rows[c].append(f"{name} {right.mean():.3f}{amb}, e5 asked {asked:.0%}")
    plain = sum(len(m) == 1 for m in moments_of.values())
    print(f"trained on {plain} examples and {len(moments_of) - plain} of no moment; served detector: {served.name}")
    print(f"second opinion: {e5.name}, fitted on the same examples\n")
    for c in CUTOFFS:
        label = "never (served)" if c == 0 else "always" if c > 1 else f"below {c:.1f}"
        print(f"{label:16}" + " | ".join(rows[c]))


if __name__ == "__main__":
    main()
