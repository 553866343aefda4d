"""Which moment a customer's words belong to, for chatbots that send words, not moments.

A logistic regression over two views of the text: the sentence embedding (meaning, strongest in English) and
character 2-5-grams of the accent-folded text (French morphology, typos, SMS spelling). Measured on the 270 held-out
utterances (``matcher eval --moments``): embeddings alone 0.87, n-grams alone 0.92, both 0.94 accuracy; the nearest
moment prototype 0.71. A second, multilingual encoder (USE v3) did not beat both views (0.93 with n-grams, 0.94 with
MiniLM and n-grams; ``bench/detection_encoders.py``), so there is none.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matcher.embedding import Encoder
from matcher.errors import ConfigError
from matcher.scoring import fold
from models.moments import Moment

logger = logging.getLogger(__name__)

# 5-fold cross-validation on the training examples only (`matcher eval --moments`) puts C from 4 to 64 within
# noise of each other; 16 it is.
REGULARISATION = 16.0
NGRAMS = (2, 5)


@dataclass(frozen=True)
class Detection:
    moment: str
    confidence: float
    scores: dict[str, float]
    low_confidence: bool


class MomentDetector:
    """Fitted on (text, moment) examples; ``detect`` gives the likeliest moment and the probability of each."""

    def __init__(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        threshold: float,
        views: tuple[str, ...] = ("embedding", "ngrams"),
        c: float = REGULARISATION,
    ):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if len(set(labels)) < 2:
            raise ConfigError("The moment detector needs examples of at least two moments.")
        self.encoder = encoder
        self.threshold = threshold
        self.views = views
        self._ngrams = TfidfVectorizer(
            analyzer="char_wb", ngram_range=NGRAMS, preprocessor=fold, sublinear_tf=True, min_df=2
        )
        self._ngrams.fit(texts)
        self._model = LogisticRegression(C=c, max_iter=5000)
        self._model.fit(self._features(texts), labels)
        self.moments = [str(m) for m in self._model.classes_]

    def _features(self, texts: Sequence[str], vectors: np.ndarray | None = None):  # noqa: ANN202 (scipy sparse)
        from scipy.sparse import csr_matrix, hstack

        views = []
        if "ngrams" in self.views:
            views.append(self._ngrams.transform(texts))
        if "embedding" in self.views:
            views.append(csr_matrix(self.encoder.encode(list(texts)) if vectors is None else vectors))
        return hstack(views).tocsr()

    def probabilities(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """One row per text, one column per moment (in ``self.moments`` order); ``vectors``: the texts' embeddings
        by this detector's encoder, if the caller has them."""
        return self._model.predict_proba(self._features(texts, vectors))

    def detect(self, text: str, vector: np.ndarray | None = None) -> Detection:
        p = self.probabilities([text], None if vector is None else vector[None])[0]
        best = int(np.argmax(p))
        scores = {m: round(float(v), 4) for m, v in zip(self.moments, p, strict=True)}
        return Detection(self.moments[best], float(p[best]), scores, float(p[best]) < self.threshold)


def training_examples(moments: dict[str, Moment], examples_file: Path | None) -> tuple[list[str], list[str]]:
    """The moments file's examples, then those of the examples file (lines for unknown moments are skipped)."""
    texts = [e.text for m in moments.values() for e in m.examples]
    labels = [name for name, m in moments.items() for _ in m.examples]
    if examples_file is None:
        return texts, labels
    skipped = 0
    try:
        lines = Path(examples_file).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"Cannot read the moment examples file {examples_file}: {e}") from e
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text, moment = record["text"], record["moment"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{examples_file}:{number}: expected {{text, moment}}: {e}") from e
        if moment in moments:
            texts.append(text)
            labels.append(moment)
        else:
            skipped += 1
    if skipped:
        logger.warning(
            "%s: %d examples name moments that the moments file does not define; add the moment or remove the lines",
            examples_file,
            skipped,
        )
    return texts, labels


@functools.lru_cache(maxsize=4)
def fitted_detector(
    encoder: Encoder, texts: tuple[str, ...], labels: tuple[str, ...], threshold: float
) -> MomentDetector:
    """One fitted detector per encoder and training set in a process (fitting embeds every example)."""
    logger.info("fitting the moment detector on %d examples", len(texts))
    return MomentDetector(encoder, texts, labels, threshold=threshold)


# -- measuring it -----------------------------------------------------------------------------------


class _CachedEncoder:
    """Embeds each distinct text once, so cross-validation folds do not pay for it again."""

    def __init__(self, encoder: Encoder):
        self.name, self.dimension, self._encoder = encoder.name, encoder.dimension, encoder
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        self._cache.update(zip(missing, self._encoder.encode(missing), strict=True))
        return np.vstack([self._cache[t] for t in texts]) if texts else np.empty((0, self.dimension), np.float32)


def evaluate_detection(
    encoder: Encoder,
    moments: dict[str, Moment],
    training: tuple[list[str], list[str]],
    heldout: list[dict],
    threshold: float,
    folds: int = 5,
) -> dict:
    """Held-out accuracy, macro-F1, per-language accuracy and confusion matrix of the detector and of simpler
    ones; and the detector's cross-validated accuracy on the training examples for a few regularisations."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.model_selection import StratifiedKFold

    cached = _CachedEncoder(encoder)
    texts, labels = training
    truth = [u["moment"] for u in heldout]
    names = sorted(moments)
    report: dict = {"training_examples": len(texts), "heldout_utterances": len(heldout), "detectors": {}}

    def measure(predicted: list[str]) -> dict:
        by_language = defaultdict(list)
        for u, p in zip(heldout, predicted, strict=True):
            by_language[u.get("language", "?")].append(u["moment"] == p)
        return {
            "accuracy": round(accuracy_score(truth, predicted), 4),
            "macro_f1": round(f1_score(truth, predicted, average="macro"), 4),
            "by_language": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_language.items())},
        }

    utterances = [u["text"] for u in heldout]
    detector = MomentDetector(cached, texts, labels, threshold=threshold)
    p = detector.probabilities(utterances)
    predicted = [detector.moments[i] for i in p.argmax(axis=1)]
    confident = p.max(axis=1) >= threshold
    hits = np.array([a == b for a, b in zip(truth, predicted, strict=True)])
    report["detectors"]["relais (embedding + n-grams)"] = {
        **measure(predicted),
        "confusion": {"labels": names, "matrix": confusion_matrix(truth, predicted, labels=names).tolist()},
        "low_confidence": {
            "threshold": threshold,
            "share": round(float(1 - confident.mean()), 4),
            "accuracy_confident": round(float(hits[confident].mean()), 4) if confident.any() else None,
            "accuracy_low": round(float(hits[~confident].mean()), 4) if (~confident).any() else None,
        },
    }
    for view in ("embedding", "ngrams"):
        alone = MomentDetector(cached, texts, labels, threshold=threshold, views=(view,))
        report["detectors"][f"{view} only"] = measure(
            [alone.moments[i] for i in alone.probabilities(utterances).argmax(1)]
        )
    centroids = np.vstack([cached.encode(moments[n].texts()).mean(axis=0) for n in names])
    nearest = (cached.encode(utterances) @ centroids.T).argmax(axis=1)
    report["detectors"]["nearest moment prototype"] = measure([names[i] for i in nearest])

    cv = {}
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, labels))
    for c in (1.0, 4.0, 16.0, 64.0):
        scores = []
        for train, test in splits:
            fold = MomentDetector(
                cached, [texts[i] for i in train], [labels[i] for i in train], threshold=threshold, c=c
            )
            guess = fold.probabilities([texts[i] for i in test]).argmax(axis=1)
            scores.append(np.mean([fold.moments[g] == labels[i] for g, i in zip(guess, test, strict=True)]))
        cv[str(c)] = {"mean": round(float(np.mean(scores)), 4), "std": round(float(np.std(scores)), 4)}
    report["cross_validation"] = {"folds": folds, "regularisation": cv, "chosen": REGULARISATION}
    return report


def format_detection_report(report: dict) -> str:
    lines = [
        f"Moment detection: trained on {report['training_examples']} examples, "
        f"tested on {report['heldout_utterances']} held-out utterances",
        "",
        f"{'detector':32}{'accuracy':>10}{'macro-F1':>10}  by language",
    ]
    for name, r in report["detectors"].items():
        langs = ", ".join(f"{k} {v:.3f}" for k, v in r["by_language"].items())
        lines.append(f"{name:32}{r['accuracy']:10.3f}{r['macro_f1']:10.3f}  {langs}")
    main = next(iter(report["detectors"].values()))
    labels, matrix = main["confusion"]["labels"], main["confusion"]["matrix"]
    width = max(len(x) for x in labels) + 2
    lines += [
        "",
        "Confusion matrix (rows: true moment, columns: detected)",
        " " * width + "".join(f"{x:>{width}}" for x in labels),
    ]
    lines += [
        f"{label:{width}}" + "".join(f"{v:{width}d}" for v in row) for label, row in zip(labels, matrix, strict=True)
    ]
    low = main["low_confidence"]
    lines += [
        "",
        f"Below {low['threshold']} confidence: {low['share']:.1%} of utterances "
        f"(accuracy {low['accuracy_low']}); above: accuracy {low['accuracy_confident']}",
    ]
    cv = report["cross_validation"]
    lines += ["", f"{cv['folds']}-fold cross-validation on the training examples (chosen C = {cv['chosen']}):"]
    lines += [f"  C = {c:>5}: {r['mean']:.3f} ± {r['std']:.3f}" for c, r in cv["regularisation"].items()]
    return "\n".join(lines)
