"""Moment detection for chatbots: the API contract, /v1/match with words only, and measured accuracy."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from api import create_app
from matcher.config import PROJECT_DIR, Settings
from matcher.detection import EMBEDDING_WEIGHT, MomentDetector, training_examples
from matcher.evaluation import load_sets
from matcher.moments import detection_settings, load_moments
from matcher.scoring import fold
from tests.conftest import read_jsonl


@pytest.fixture(scope="module")
def client(homelive_dir):
    return create_app({"DATA_DIR": str(homelive_dir), "DEV_MODE": True}).test_client()


def detect(client, body):
    return client.post("/v1/moments/detect", data=json.dumps(body))


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("ça marche avec free ?", "technical_validation"),
        ("will the camera look ugly in my living room", "desirability"),
        ("c quoi homelive", "discovery"),
        ("combien ça coûte par mois, il y a un engagement ?", "technical_validation"),
        ("je veux surveiller mon chat quand je suis au bureau", "desirability"),
    ],
)
def test_detect_contract(client, text, moment):
    response = detect(client, {"text": text, "language": "fr"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["moment"] == moment and body["language"] == "fr"
    assert set(body["scores"]) == {"discovery", "desirability", "technical_validation"}
    assert sum(body["scores"].values()) == pytest.approx(1, abs=1e-3)
    assert body["confidence"] == max(body["scores"].values())
    threshold = detection_settings(Settings().moments_file)[1]
    assert body["low_confidence"] is (body["confidence"] < threshold)


@pytest.mark.parametrize("text", ["ok", "Bonjour !", "merci bcp", "hello there", "oui d'accord", "hi there :)"])
def test_low_confidence_is_said_not_hidden(client, text):
    """Words that say nothing of a moment are answered as unsure, not with the moment they most often open (a
    greeting opens more discovery questions: before the examples of no moment, 'bonjour' was discovery at 0.9998)."""
    body = detect(client, {"text": text}).get_json()
    assert body["low_confidence"] is True and "Unsure of the moment" in body["message"]


def test_an_example_of_no_moment_is_learned_for_every_moment(tmp_path):
    moments = load_moments(Settings().moments_file)
    examples = tmp_path / "examples.jsonl"
    examples.write_text('{"text": "ok", "moment": null}\n{"text": "ça marche avec ma box ?", "moment": "discovery"}\n')
    texts, labels = training_examples(moments, examples)
    learned = lambda wanted: sorted(m for t, m in zip(texts, labels, strict=True) if t == wanted)  # noqa: E731
    assert learned("ok") == sorted(moments) and learned("ça marche avec ma box ?") == ["discovery"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 1001}, "text"),
        ({"text": "hi", "language": "French"}, "language"),
        ({"text": "hi", "moment": "x"}, "moment"),
    ],
)
def test_detect_refuses_bad_input(client, body, field):
    response = detect(client, body)
    assert response.status_code == 400 and field in response.get_json()["error"]["fields"]


def test_match_with_words_only_detects_the_moment(client):
    body = client.post("/v1/match", data=json.dumps({"text": "est-ce que ça marche avec ma freebox ?", "limit": 3}))
    body = body.get_json()
    assert body["moment"] == "technical_validation" == body["detection"]["moment"]
    assert not body["detection"]["low_confidence"] and body["query"] == "est-ce que ça marche avec ma freebox ?"
    assert len(body["content"]) == 3 and body["content"][0]["format"] in {
        "article",
        "comparison_test",
        "tutorial",
        "review",
        "blog_post",
    }


def test_a_named_moment_is_not_second_guessed(client):
    body = client.post("/v1/match", data=json.dumps({"moment": "discovery", "text": "combien ça coûte ?"})).get_json()
    assert body["moment"] == "discovery" and body["detection"] is None


def test_held_out_accuracy_stays_above_ninety_percent(engine):
    """The detector never sees eval/utterances.jsonl while training; this guards the measured figure."""
    heldout = read_jsonl(PROJECT_DIR / "eval" / "utterances.jsonl")
    probabilities = engine.detector.probabilities([u["text"] for u in heldout])
    moments = engine.detector.moments
    accuracy = sum(moments[p.argmax()] == u["moment"] for p, u in zip(probabilities, heldout, strict=True)) / len(
        heldout
    )
    assert accuracy >= 0.9


@pytest.fixture(scope="module")
def taught(engine) -> tuple[list[str], list[str]]:
    """The served detector's training examples and their moments (the moments file's, then the examples file's)."""
    examples_file, _ = detection_settings(engine.settings.moments_file)
    return training_examples(load_moments(engine.settings.moments_file), examples_file)


@pytest.mark.parametrize("name", sorted(load_sets()))
def test_no_evaluation_text_is_a_training_example(taught, name):
    """Issue 15: no utterance or query of any evaluation set is among the detector's training examples (the
    moments file's and the examples file's), compared as folded words so a changed accent or comma counts."""
    words = lambda text: " ".join(re.findall(r"\w+", fold(text)))  # noqa: E731
    known = {words(t) for t in taught[0]}
    chosen = load_sets()[name]
    texts = [u["text"] for u in read_jsonl(chosen.utterances)] if chosen.utterances else []
    texts += [j["query"] for j in read_jsonl(chosen.judgements)] if chosen.judgements.exists() else []
    assert texts
    same = known & {words(t) for t in texts}
    assert not same, same


def test_a_detector_needs_two_moments(engine):
    from matcher.errors import ConfigError

    with pytest.raises(ConfigError, match="at least two moments"):
        MomentDetector(engine.encoder, ["a", "b"], ["discovery", "discovery"], threshold=0.5)


def test_the_embedding_weight_is_the_embeddings_say(engine, taught):
    """The embedding view is scaled by ``embedding_weight`` before the regression: at 0 the detector is its n-grams
    alone, and at the served weight its probabilities differ from theirs."""
    texts, labels = taught[0][::8], taught[1][::8]
    probe = ["ça marche avec ma box ?", "will it look nice in the living room", "c'est sorti quand ?"]
    ngrams = MomentDetector(engine.encoder, texts, labels, threshold=0.6, views=("ngrams",)).probabilities(probe)
    at = lambda w: MomentDetector(engine.encoder, texts, labels, threshold=0.6, embedding_weight=w)  # noqa: E731
    assert np.allclose(at(0.0).probabilities(probe), ngrams, atol=1e-4)
    served = at(EMBEDDING_WEIGHT).probabilities(probe)
    assert np.abs(served - ngrams).max() > 0.01


def test_the_examples_embeddings_are_kept_between_processes(engine, taught, tmp_path):
    """A server start used to embed every training example again; they are read back from the cache directory
    when the same encoder embedded the same texts, and a damaged file is computed again."""
    from matcher.detection import example_vectors

    texts, labels = taught[0][::40], taught[1][::40]  # a few of every moment
    first = example_vectors(engine.encoder, texts, tmp_path)
    (kept,) = tmp_path.glob("detector-*.npy")
    np.save(kept, first * 0 + 0.5)  # same shape, other values: what is read back is the file
    assert np.allclose(example_vectors(engine.encoder, texts, tmp_path), 0.5)
    kept.write_bytes(b"not an array")
    assert np.allclose(example_vectors(engine.encoder, texts, tmp_path), first, atol=1e-6)  # damaged: computed
    assert np.allclose(example_vectors(engine.encoder, texts[:-1], tmp_path), first[:-1], atol=1e-6)  # other texts
    fitted = MomentDetector(engine.encoder, texts, labels, threshold=0.5, vectors=first)
    fresh = MomentDetector(engine.encoder, texts, labels, threshold=0.5)
    words = ["est-ce compatible avec ma box ?", "c'est joli dans un salon"]
    assert np.allclose(fitted.probabilities(words), fresh.probabilities(words), atol=1e-6)
