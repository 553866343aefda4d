"""Lexical retrieval and its fusion with dense retrieval."""

from __future__ import annotations

import numpy as np
import pytest

from matcher import lexical, scoring
from matcher.config import Settings
from matcher.errors import InvalidRequestError
from matcher.scoring import load_scoring

CONFIG = load_scoring(Settings().scoring_file)


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Est-ce que la CAMÉRA est discrète ?", ["camera", "discrete"]),  # stop words out, accents folded
        ("does the motion sensor work with my box", ["motion", "sensor", "work", "box"]),
        ('box" OR NEAR(a b) * -x', ["box", "near"]),  # FTS syntax is just words
        ("le la les", []),
        ("capteur capteur Capteur", ["capteur"]),
        ("box_orange wi-fi", ["box", "orange", "wi", "fi"]),  # split as FTS5 splits words
    ],
)
def test_query_terms(text, terms):
    assert lexical.query_terms(text) == terms


def test_match_expression_quotes_every_term():
    assert lexical.match_expression("caméra, salon") == '"camera" OR "salon"'
    assert lexical.match_expression("?!") is None


def test_lexical_search_folds_accents_and_stems(engine):
    weights = CONFIG["lexical"]["column_weights"]["content"]
    for query in ("compatibilité", "compatibilite", "COMPATIBILITÉ"):
        hits = lexical.search(engine.store.db, "content", lexical.match_expression(query), weights, 50)
        titles = [engine.store.rows("content", [k])[k]["title"] for k, _ in hits]
        assert any("compatibilité" in t.lower() for t in titles), query
    singular = lexical.search(engine.store.db, "content", '"detecteur"', weights, 500)
    plural = lexical.search(engine.store.db, "content", '"detecteurs"', weights, 500)
    assert {k for k, _ in singular} == {k for k, _ in plural}  # Porter stems: one word, one set
    scores = [s for _, s in singular]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_search_can_be_restricted_to_keys(engine):
    weights = CONFIG["lexical"]["column_weights"]["content"]
    everything = lexical.search(engine.store.db, "content", '"homelive"', weights, 1000)
    chosen = [k for k, _ in everything[5:8]]
    restricted = lexical.search(engine.store.db, "content", '"homelive"', weights, 10, chosen)
    assert [k for k, _ in restricted] == chosen
    assert lexical.search(engine.store.db, "content", '"homelive"', weights, 10, []) == []


def fused(config: dict, dense: list[float], words: list[float]) -> list[float]:
    return scoring.relevance(config, "content", np.array(dense), np.array(words), True, True).tolist()


def test_convex_fusion_by_hand():
    # dense placed within the candidates: a=1, b=0, c=0.5; words over the best: a=0, b=1, c=0.25
    config = {**CONFIG, "lexical": {**CONFIG["lexical"], "dense_weight": {"content": 0.5}}}
    assert fused(config, [0.6, 0.2, 0.4], [0.0, 8.0, 2.0]) == pytest.approx([0.5, 0.5, 0.375])


def test_reciprocal_rank_fusion_by_hand():
    # dense ranks a=1, c=2, b=3; words rank b=1, c=2 (a matched no word). k = 60.
    got = scoring.reciprocal_rank_fusion(np.array([1.0, 0.0, 0.5]), np.array([0.0, 1.0, 0.25]), 60)
    raw = [1 / 61, 1 / 63 + 1 / 61, 1 / 62 + 1 / 62]
    assert got.tolist() == pytest.approx([v / max(raw) for v in raw])


def test_hybrid_finds_what_words_say_and_meaning_misses(engine):
    """A rare word (a competitor's name) is a lexical strength: dense retrieval alone misses pieces that name it,
    lexical finds only them, and hybrid keeps them at the top."""

    def naming(mode: str) -> list[bool]:
        found = engine.match("technical_validation", "Verisure", limit=5, types=["content"], retrieval=mode).content
        return ["verisure" in (r.row["title"] + r.row["text"]).lower() for r in found]

    assert not all(naming("dense"))  # meaning alone lets in pieces that never say the name
    assert all(naming("lexical"))
    assert all(naming("hybrid")[:3])


def test_each_mode_is_selectable_and_distinct(engine):
    query = "does the motion sensor work with my box?"
    results = {
        m: [r.row["id"] for r in engine.match("technical_validation", query, limit=10, retrieval=m).content]
        for m in ("hybrid", "dense", "lexical")
    }
    assert len({tuple(ids) for ids in results.values()}) == 3
    with pytest.raises(InvalidRequestError, match="Unknown retrieval mode") as refused:  # a clear 400, not a 500
        engine.match("technical_validation", query, retrieval="psychic")
    assert list(refused.value.fields) == ["retrieval"]


def test_filters_still_hold_with_lexical_candidates(engine, influencers):
    hidden = {i for i, r in influencers.items() if r.get("opted_out")}
    for mode in ("hybrid", "lexical"):
        result = engine.match(
            "desirability", "caméra gadget déco méditerranéenne", limit=50, retrieval=mode, filters={"language": "fr"}
        )
        assert all(r.row["language"] == "fr" for r in result.content)
        assert not hidden & (
            {r.row["id"] for r in result.influencers} | {r.row["influencer_id"] for r in result.content}
        )


def test_tokens_read_a_chunk_at_a_time_are_the_tokens_read_at_once(engine, monkeypatch):
    """The tokenizer and the FTS index both give their token instances in chunks (memory): chunk boundaries,
    which cut through one token's entries, must change nothing in the BM25 built from them."""
    from matcher.bm25 import BM25

    store = engine.store
    weights = (1.0, 2.0, 3.0)
    for kind in ("influencers", "content"):
        keys = np.array(sorted(store.rows(kind, store.all_keys(kind))), np.int64)
        whole = BM25.build(weights, keys, lexical.TOKENIZER_.documents(store.fts_text(kind, keys)))
        indexed = BM25.build(weights, keys, lexical.indexed_documents(store.db, kind))
        monkeypatch.setattr(lexical, "DOCUMENTS_CHUNK", 7)
        monkeypatch.setattr(lexical, "INSTANCES_CHUNK", 13)
        chunked = BM25.build(weights, keys, lexical.TOKENIZER_.documents(store.fts_text(kind, keys)))
        indexed_chunked = BM25.build(weights, keys, lexical.indexed_documents(store.db, kind))
        monkeypatch.undo()
        for text in ("homelive", "caméra et box", "sécurité de la maison, capteurs"):
            query = list(lexical.query_tokens(text))
            expected = whole.scores(query, len(keys))
            assert expected.any()
            for other in (indexed, chunked, indexed_chunked):
                np.testing.assert_allclose(other.scores(query, len(keys)), expected, rtol=1e-12)


def test_translations_add_the_first_single_french_word(tmp_path):
    path = tmp_path / "translations.tsv"
    path.write_text(
        "# a comment\nbattery\tbatterie,pile\nweekend\tweek-end,fin\nbread\tpain\npain\tdouleur\nprice\tprix\n",
        encoding="utf-8",
    )
    translations = lexical.Translations.load(path)
    assert lexical.query_terms("battery price this weekend", translations) == [
        "battery", "price", "weekend", "batterie", "prix", "fin"
    ]  # fmt: skip
    assert lexical.query_terms("pain", translations) == ["pain"]  # also a French word of the list: maybe French
    assert lexical.query_terms("battery price") == ["battery", "price"]  # none given, none added
    stop_words = lexical.Translations({"ai": "ia", "now": "maintenant"}, set())
    assert stop_words.of(["ai"]) == ["ia"]
    assert lexical.query_terms("j'ai une caméra now", stop_words) == ["camera"]  # stop words: not translated either
    assert lexical.Translations.load(tmp_path / "missing.tsv").french_of == {}


def test_an_expression_is_translated_as_a_whole_in_place_of_its_words(tmp_path):
    path = tmp_path / "translations.tsv"
    path.write_text(
        "battery\tbatterie\nlife\tvie\nbattery life\tautonomie\nhow to\ttuto\nliving-room\tsalon,séjour\ntest\tessai\n",
        encoding="utf-8",
    )
    translations = lexical.Translations.load(path)
    assert lexical.query_terms("battery life test", translations) == ["battery", "life", "test", "autonomie", "essai"]
    assert lexical.query_terms("battery test", translations) == ["battery", "test", "batterie", "essai"]
    assert "tuto" in lexical.query_terms("how to pair the speaker", translations)  # its words are stop words
    for text in ("a living room lamp", "a living-room lamp"):  # a hyphen splits the English side as a query's
        assert lexical.query_terms(text, translations)[-1] == "salon"
    assert "tuto" not in lexical.query_terms("how fast to charge", translations)  # only the words side by side


def test_a_query_is_embedded_with_the_french_of_its_english_words(tmp_path):
    path = tmp_path / "translations.tsv"
    path.write_text("battery\tbatterie\nlife\tvie\nbattery life\tautonomie\nwinter\thiver\n", encoding="utf-8")
    translations = lexical.Translations.load(path)
    assert lexical.with_french("Battery life in winter?", translations) == "Battery life in winter? (autonomie hiver)"
    assert lexical.with_french("autonomie en hiver", translations) == "autonomie en hiver"  # nothing to translate
    assert lexical.with_french("battery life", lexical.NO_TRANSLATIONS) == "battery life"


def test_the_french_equivalents_bring_an_english_query_nearer_french_pieces(engine, contents, tmp_path):
    """Dense retrieval alone: 'holidays' (translated 'vacances') scores the pieces that only say 'vacances' higher
    than the same query without the translations does, against the same vectors."""
    from matcher.service import Engine

    words = lambda c: scoring.fold(f"{c.get('title', '')} {c.get('text', '')}")  # noqa: E731
    french_only = {i for i, c in contents.items() if "vacances" in words(c) and "holiday" not in words(c)}
    plain = Engine(Settings(data_dir=engine.settings.data_dir, translations_file=tmp_path / "none.tsv"))
    try:
        scores = {}
        for name, e in (("translated", engine), ("plain", plain)):
            found = e.match("desirability", "holidays with the family", limit=100, retrieval="dense").content
            dense = {r.row["id"]: r.parts["relevance"].value for r in found}
            scores[name] = np.mean([dense.get(i, 0.0) for i in french_only])
    finally:
        plain.close()
    assert scores["translated"] > scores["plain"]


def test_a_malformed_translation_line_is_named(tmp_path):
    from matcher.errors import ConfigError

    path = tmp_path / "translations.tsv"
    path.write_text("battery\tbatterie\nprice prix\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        lexical.Translations.load(path)


def test_an_english_word_finds_french_content_by_its_words(homelive_dir, contents, tmp_path):
    """Lexical retrieval alone, so only words can bring a piece: with the translations, 'holidays' finds pieces
    that only say 'vacances'; without them, none of those."""
    from matcher.service import Engine

    words = lambda c: scoring.fold(f"{c.get('title', '')} {c.get('text', '')}")  # noqa: E731
    french_only = {i for i, c in contents.items() if "vacances" in words(c) and "holiday" not in words(c)}
    assert french_only

    def found(settings: Settings) -> set[str]:
        engine = Engine(settings)
        engine.served_log = False
        try:
            result = engine.match("desirability", "holidays", limit=50, retrieval="lexical")
        finally:
            engine.close()
        return {r.row["id"] for r in result.content}

    assert french_only & found(Settings(data_dir=homelive_dir))
    assert not french_only & found(Settings(data_dir=homelive_dir, translations_file=tmp_path / "none.tsv"))
