"""How much should the sentence embedding weigh beside the n-grams in the moment detector?

The detector's features are three blocks side by side: character n-grams, word n-grams (each a unit TF-IDF row)
and the embedding (a unit vector). Multiplying the embedding by a scale s (the detector's ``embedding_weight``)
gives it more (s > 1) or less (s < 1) say in the logistic regression at the same C. Prints, per scale: accuracy on
the training examples' 5-fold cross-validation (the examples of no moment left out, as `matcher eval --moments`
does), with its spread over the folds, and on each evaluation set's held-out utterances (and their ambiguous ones).
Choose on the cross-validation and the tuned sets; read the others.

    python bench/detection_scale.py                 # scales 0.25 0.5 0.7 1 2
    python bench/detection_scale.py --scales 0.5 1
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher.config import Settings, read_jsonl  # noqa: E402
from matcher.detection import (  # noqa: E402
    EMBEDDING_WEIGHT,
    MomentDetector,
    _CachedEncoder,
    moments_taught,
    training_examples,
)
from matcher.embedding import detector_encoder, encoders  # noqa: E402
from matcher.evaluation import load_sets  # noqa: E402
from matcher.moments import detection_settings, load_moments  # noqa: E402


def main() -> None:
    from sklearn.model_selection import StratifiedKFold

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 0.7, 1.0, 2.0])
    args = parser.parse_args()
    settings = Settings.from_env()
    moments = load_moments(settings.moments_file)
    examples_file, threshold = detection_settings(settings.moments_file)
    texts, labels = training_examples(moments, examples_file)
    served = _CachedEncoder(detector_encoder(settings, encoders(settings)[0]))
    moments_of = moments_taught(texts, labels)
    chosen = {n: s for n, s in load_sets().items() if s.utterances is not None and s.utterances.exists()}
    sets = {n: (read_jsonl(s.utterances), s.tuned) for n, s in chosen.items()}
    splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(texts, labels))
    print(f"detector: {served.name} embedding + n-grams, C as served; scale {EMBEDDING_WEIGHT} is the served detector")
    for scale in args.scales:
        hits = []
        for train, test in splits:
            fold = MomentDetector(
                served,
                [texts[i] for i in train],
                [labels[i] for i in train],
                threshold=threshold,
                embedding_weight=scale,
            )
            test = [i for i in test if len(moments_of[texts[i]]) == 1]
            guess = fold.probabilities([texts[i] for i in test]).argmax(axis=1)
            hits.append(np.mean([fold.moments[g] == labels[i] for g, i in zip(guess, test, strict=True)]))
        detector = MomentDetector(served, texts, labels, threshold=threshold, embedding_weight=scale)
        row = [f"scale {scale:4.2f}: cv {np.mean(hits):.4f} ± {np.std(hits):.4f}"]
        for name, (heldout, tuned) in sets.items():
            p = detector.probabilities([u["text"] for u in heldout])
            guess = np.array([detector.moments[i] for i in p.argmax(axis=1)])
            right = guess == np.array([u["moment"] for u in heldout])
            ambiguous = np.array([bool(u.get("ambiguous")) for u in heldout])
            amb = f" (ambiguous {right[ambiguous].mean():.3f})" if ambiguous.any() else ""
            row.append(f"{name}{'' if tuned else ' (unseen)'} {right.mean():.3f}{amb}")
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
