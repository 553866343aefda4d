"""Which moment a customer's words belong to, for chatbots that send words, not moments.

A logistic regression over two views of the text: the sentence embedding (meaning, strongest in English) and
n-grams of the accent-folded text: character 2-5-grams (French morphology, typos, SMS spelling) and word 1-2-grams
("c'est quoi", "is it out", "with my": phrases that mark a moment whatever their letters share). ``matcher eval
--moments`` prints the figures of each view alone and of both, per evaluation set. The word n-grams were chosen on
the training examples' cross-validation (0.931 -> 0.945) and Homelive's held-out utterances (0.926 -> 0.956).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matcher.config import read_jsonl
from matcher.embedding import Encoder
from matcher.errors import ConfigError
from matcher.lexical import STOPWORDS, WORD
from matcher.scoring import fold
from matcher.vector_base import atomic_write
from models.moments import Moment

logger = logging.getLogger(__name__)

# 5-fold cross-validation on the training examples only (`matcher eval --moments`) puts C from 4 to 64 within
# noise of each other; 16 it is.
REGULARISATION = 16.0
# The embedding's weight beside the n-grams (each n-gram view is a unit TF-IDF row, the embedding a unit vector, so
# this scales the embedding's say at the same C). `python bench/detection_scale.py` measures it: 0.5 against 1 gave
# the training examples' cross-validation 0.953 against 0.949, Homelive 0.952 against 0.941, Aubéa 0.881 against
# 0.869, with the 480 hard-case examples of writers i and j (before them, Aubéa and Homelive preferred 1).
EMBEDDING_WEIGHT = 0.5
NGRAMS = (2, 5)  # characters, within word boundaries
WORD_NGRAMS = (1, 2)
DEFAULT_VIEWS = ("embedding", "ngrams")


@dataclass(frozen=True)
class Detection:
    moment: str
    confidence: float
    scores: dict[str, float]
    low_confidence: bool
    says_nothing: bool = False  # no word of the text tells a moment ("hello there"): unsure however confident


class MomentDetector:
    """Fitted on (text, moment) examples; ``detect`` gives the likeliest moment and the probability of each."""

    def __init__(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        threshold: float,
        views: tuple[str, ...] = DEFAULT_VIEWS,
        c: float = REGULARISATION,
        embedding_weight: float = EMBEDDING_WEIGHT,
        vectors: np.ndarray | None = None,
    ):
        """``vectors``: the texts' embeddings by ``encoder``, if the caller has them (``example_vectors``)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if len(set(labels)) < 2:
            raise ConfigError("The moment detector needs examples of at least two moments.")
        self.encoder = encoder
        self.threshold = threshold
        self.views = views
        self.embedding_weight = embedding_weight
        self._ngrams = [
            TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAMS, preprocessor=fold, sublinear_tf=True, min_df=2),
            TfidfVectorizer(
                analyzer="word",
                ngram_range=WORD_NGRAMS,
                preprocessor=fold,
                token_pattern=r"(?u)\b\w+\b",  # one-letter words too: "c", "j", "u" carry SMS French and English
                sublinear_tf=True,
                min_df=2,
            ),
        ]
        for vectorizer in self._ngrams:
            vectorizer.fit(texts)
        self._model = LogisticRegression(C=c, max_iter=5000)
        self._model.fit(self._features(texts, vectors), labels)
        self.moments = [str(m) for m in self._model.classes_]
        # Words that say nothing of a moment: stop words and those of the examples taught for every moment.
        said_nothing = (t for t, m in moments_taught(texts, labels).items() if len(m) == len(self.moments))
        self.empty_words = STOPWORDS | {w for t in said_nothing for w in WORD.findall(fold(t))}

    def says_something(self, text: str) -> bool:
        """Whether ``text`` has a word that may tell a moment: "hello there" or "oui d'accord" has none, and no
        confidence in their moment is honest, however the n-grams of such words lean."""
        return any(len(w) > 1 and w not in self.empty_words for w in WORD.findall(fold(text)))

    def _features(self, texts: Sequence[str], vectors: np.ndarray | None = None):  # noqa: ANN202 (scipy sparse)
        from scipy.sparse import csr_matrix, hstack

        views = []
        if "ngrams" in self.views:
            views.extend(vectorizer.transform(texts) for vectorizer in self._ngrams)
        if "embedding" in self.views:
            embedded = self.encoder.encode(list(texts)) if vectors is None else vectors
            views.append(csr_matrix(embedded * self.embedding_weight))
        return hstack(views).tocsr()

    def probabilities(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """One row per text, one column per moment (in ``self.moments`` order); ``vectors``: the texts' embeddings
        by this detector's encoder, if the caller has them."""
        return self._model.predict_proba(self._features(texts, vectors))

    def detect(self, text: str, vector: np.ndarray | None = None) -> Detection:
        p = self.probabilities([text], None if vector is None else vector[None])[0]
        best = int(np.argmax(p))
        scores = {m: round(float(v), 4) for m, v in zip(self.moments, p, strict=True)}
        empty = not self.says_something(text)
        return Detection(self.moments[best], float(p[best]), scores, float(p[best]) < self.threshold or empty, empty)


def training_examples(moments: dict[str, Moment], examples_file: Path | None) -> tuple[list[str], list[str]]:
    """The moments file's examples, then those of the examples file (lines for unknown moments are skipped). A
    line whose moment is null says nothing of a moment ("bonjour", "ok", "merci"): it is learned once for every
    moment, so that such words alone are answered as unsure instead of with the moment they most often open."""
    texts = [e.text for m in moments.values() for e in m.examples]
    labels = [name for name, m in moments.items() for _ in m.examples]
    if examples_file is None:
        return texts, labels
    skipped = 0
    for number, record in enumerate(read_jsonl(Path(examples_file)), start=1):
        try:
            text, moment = str(record["text"]), record["moment"]
        except KeyError as e:
            raise ConfigError(f"{examples_file}: example {number}: expected {{text, moment}}: missing {e}") from e
        if moment is None:
            texts.extend([text] * len(moments))
            labels.extend(moments)
        elif moment in moments:
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


def moments_taught(texts: Sequence[str], labels: Sequence[str]) -> dict[str, set[str]]:
    """Each distinct example's moments: one for most, all of them for an example of no moment."""
    out: dict[str, set[str]] = defaultdict(set)
    for text, label in zip(texts, labels, strict=True):
        out[text].add(label)
    return out


@functools.lru_cache(maxsize=4)
def fitted_detector(
    encoder: Encoder, texts: tuple[str, ...], labels: tuple[str, ...], threshold: float, cache_dir: Path | None = None
) -> MomentDetector:
    """One fitted detector per encoder and training set in a process; the examples' embeddings are kept in
    ``cache_dir`` between processes (every server start embedded the 2,547 examples again: ~9 s)."""
    logger.info("fitting the moment detector on %d examples", len(texts))
    vectors = example_vectors(encoder, texts, cache_dir)
    return MomentDetector(encoder, texts, labels, threshold=threshold, vectors=vectors)


def example_vectors(encoder: Encoder, texts: Sequence[str], cache_dir: Path | None) -> np.ndarray:
    """The embeddings of ``texts`` by ``encoder``: read from ``cache_dir`` when this encoder embedded exactly these
    texts before (a file named by the encoder and a hash of the texts), else computed and written there."""
    if cache_dir is None:
        return encoder.encode(list(texts))
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"detector-{re.sub(r'[^A-Za-z0-9._-]', '_', encoder.name)}-{digest}.npy"
    try:
        vectors = np.load(path)
        if vectors.shape == (len(texts), encoder.dimension):
            return vectors
    except (OSError, ValueError):  # none yet, or a damaged one: computed again
        pass
    vectors = encoder.encode(list(texts))
    try:
        atomic_write(path, lambda f: np.save(f, vectors))  # whole or not at all, whichever process writes it last
    except OSError as e:  # a read-only cache costs the next start the encoding, nothing else
        logger.warning("could not keep the detector's example vectors in %s: %s", cache_dir, e)
    return vectors


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
    heldout_sets: dict[str, list[dict]],
    threshold: float,
    folds: int = 5,
) -> dict:
    """For each set of held-out utterances: accuracy, macro-F1, per-language accuracy and confusion matrix of the
    detector and of simpler ones, its accuracy on utterances marked ambiguous, and a reliability table (is a
    confidence of 0.8 right 8 times in 10?). Then the detector's cross-validated accuracy on the training examples
    for a few regularisations."""
    from sklearn.model_selection import StratifiedKFold

    cached = _CachedEncoder(encoder)
    texts, labels = training
    names = sorted(moments)
    detector = MomentDetector(cached, texts, labels, threshold=threshold)
    simpler = {
        f"{view} only": MomentDetector(cached, texts, labels, threshold=threshold, views=(view,))
        for view in ("embedding", "ngrams")
    }
    centroids = np.vstack([cached.encode(moments[n].texts()).mean(axis=0) for n in names])
    moments_of = moments_taught(texts, labels)
    report: dict = {
        "training_examples": sum(len(m) == 1 for m in moments_of.values()),
        "examples_of_no_moment": sum(len(m) == len(names) for m in moments_of.values()),
        "sets": {},
    }
    for set_name, heldout in heldout_sets.items():
        utterances = [u["text"] for u in heldout]
        p = detector.probabilities(utterances)
        found = {"relais (embedding + n-grams)": _measure(heldout, [detector.moments[i] for i in p.argmax(1)])}
        for name, alone in simpler.items():
            found[name] = _measure(heldout, [alone.moments[i] for i in alone.probabilities(utterances).argmax(1)])
        nearest = (cached.encode(utterances) @ centroids.T).argmax(axis=1)
        found["nearest moment prototype"] = _measure(heldout, [names[i] for i in nearest])
        main = found["relais (embedding + n-grams)"]
        empty = np.array([not detector.says_something(t) for t in utterances], dtype=bool)
        main.update(_calibration(heldout, p, detector.moments, names, threshold, empty))
        report["sets"][set_name] = {"heldout_utterances": len(heldout), "detectors": found}

    cv = {}
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, labels))
    scored = [len(moments_of[t]) == 1 for t in texts]  # not the examples of no moment: no answer is right for them
    for c in (1.0, 4.0, 16.0, 64.0):
        scores = []
        for train, test in splits:
            fold = MomentDetector(
                cached, [texts[i] for i in train], [labels[i] for i in train], threshold=threshold, c=c
            )
            test = [i for i in test if scored[i]]
            guess = fold.probabilities([texts[i] for i in test]).argmax(axis=1)
            scores.append(np.mean([fold.moments[g] == labels[i] for g, i in zip(guess, test, strict=True)]))
        cv[str(c)] = {"mean": round(float(np.mean(scores)), 4), "std": round(float(np.std(scores)), 4)}
    report["cross_validation"] = {"folds": folds, "regularisation": cv, "chosen": REGULARISATION}
    return report


def _measure(heldout: list[dict], predicted: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    truth = [u["moment"] for u in heldout]
    by_language = defaultdict(list)
    for u, guess in zip(heldout, predicted, strict=True):
        by_language[u.get("language", "?")].append(u["moment"] == guess)
    ambiguous = [u["moment"] == guess for u, guess in zip(heldout, predicted, strict=True) if u.get("ambiguous")]
    return {
        "accuracy": round(accuracy_score(truth, predicted), 4),
        "macro_f1": round(f1_score(truth, predicted, average="macro"), 4),
        "by_language": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_language.items())},
        "ambiguous": {"n": len(ambiguous), "accuracy": round(float(np.mean(ambiguous)), 4) if ambiguous else None},
    }


RELIABILITY_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


def _calibration(
    heldout: list[dict], p: np.ndarray, columns: list[str], names: list[str], threshold: float, empty: np.ndarray
) -> dict:
    """The confusion matrix, accuracy of the answers flagged unsure (below the low-confidence threshold, or
    ``empty``: no word that may tell a moment) and of the others, and accuracy per confidence bin against the mean
    confidence in it (a calibrated detector has them close)."""
    from sklearn.metrics import confusion_matrix

    truth = [u["moment"] for u in heldout]
    predicted = [columns[i] for i in p.argmax(axis=1)]
    confidence = p.max(axis=1)
    hits = np.array([a == b for a, b in zip(truth, predicted, strict=True)])
    confident = (confidence >= threshold) & ~empty
    bins = []
    for low, high in zip(RELIABILITY_BINS, RELIABILITY_BINS[1:], strict=False):
        inside = (confidence >= low) & (confidence < high)
        if inside.any():
            bins.append(
                {
                    "from": low,
                    "to": min(high, 1.0),
                    "n": int(inside.sum()),
                    "confidence": round(float(confidence[inside].mean()), 4),
                    "accuracy": round(float(hits[inside].mean()), 4),
                }
            )
    return {
        "confusion": {"labels": names, "matrix": confusion_matrix(truth, predicted, labels=names).tolist()},
        "low_confidence": {
            "threshold": threshold,
            "share": round(float(1 - confident.mean()), 4),
            "accuracy_confident": round(float(hits[confident].mean()), 4) if confident.any() else None,
            "accuracy_low": round(float(hits[~confident].mean()), 4) if (~confident).any() else None,
        },
        "reliability": bins,
    }


def format_detection_report(report: dict, tuned: dict[str, bool] | None = None) -> str:
    """Each set's tables, then (``tuned``: set name -> whether anything was tuned on it) the generalisation line."""
    tuned = tuned or {}
    lines = [
        f"Moment detection: trained on {report['training_examples']} examples "
        f"and {report['examples_of_no_moment']} of no moment"
    ]
    for set_name, found in report["sets"].items():
        unseen = " (unseen: nothing was tuned on it)" if tuned.get(set_name) is False else ""
        lines += ["", f"== {set_name}{unseen}: {found['heldout_utterances']} held-out utterances", ""]
        lines.append(f"{'detector':32}{'accuracy':>10}{'macro-F1':>10}{'ambiguous':>11}  by language")
        for name, r in found["detectors"].items():
            langs = ", ".join(f"{k} {v:.3f}" for k, v in r["by_language"].items())
            amb = r["ambiguous"]["accuracy"]
            lines.append(
                f"{name:32}{r['accuracy']:10.3f}{r['macro_f1']:10.3f}{(f'{amb:.3f}' if amb is not None else '-'):>11}"
                f"  {langs}"
            )
        main = next(iter(found["detectors"].values()))
        labels, matrix = main["confusion"]["labels"], main["confusion"]["matrix"]
        width = max(len(x) for x in labels) + 2
        lines += [
            "",
            "Confusion matrix (rows: true moment, columns: detected)",
            " " * width + "".join(f"{x:>{width}}" for x in labels),
        ]
        lines += [
            f"{label:{width}}" + "".join(f"{v:{width}d}" for v in row)
            for label, row in zip(labels, matrix, strict=True)
        ]
        low = main["low_confidence"]
        lines += [
            "",
            f"Flagged unsure (below {low['threshold']} confidence, or no telling word): {low['share']:.1%} of "
            f"utterances (accuracy {low['accuracy_low']}); the others: accuracy {low['accuracy_confident']}",
            "Reliability: "
            + ", ".join(
                f"[{b['from']:.1f}, {b['to']:.1f}) n={b['n']} conf {b['confidence']:.2f} acc {b['accuracy']:.2f}"
                for b in main["reliability"]
            ),
        ]
    unseen = [n for n in report["sets"] if tuned.get(n) is False]
    if unseen:
        mains = [next(iter(report["sets"][u]["detectors"].values())) for u in unseen]
        sizes = [report["sets"][u]["heldout_utterances"] for u in unseen]
        accuracy = sum(m["accuracy"] * n for m, n in zip(mains, sizes, strict=True)) / sum(sizes)
        amb = [(m["ambiguous"]["accuracy"], m["ambiguous"]["n"]) for m in mains if m["ambiguous"]["n"]]
        ambiguous = sum(a * n for a, n in amb) / sum(n for _, n in amb) if amb else None
        lines += [
            "",
            f"generalisation (sets nothing was tuned on: {', '.join(unseen)}): accuracy {accuracy:.3f}"
            + (f", ambiguous {ambiguous:.3f}" if ambiguous is not None else ""),
        ]
    cv = report["cross_validation"]
    lines += ["", f"{cv['folds']}-fold cross-validation on the training examples (chosen C = {cv['chosen']}):"]
    lines += [f"  C = {c:>5}: {r['mean']:.3f} ± {r['std']:.3f}" for c, r in cv["regularisation"].items()]
    return "\n".join(lines)
