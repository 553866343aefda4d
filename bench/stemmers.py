"""Would a French stemmer serve the lexical side better than FTS5's Porter (an English stemmer)? Prints hybrid and
lexical nDCG@10 per evaluation set, each stemming run in this one process on the same loaded data.

The served tokens are FTS5's ("porter unicode61 remove_diacritics 2"). The others are made here from the same
columns (accent-folded words, then a Snowball stemmer from PyStemmer) and swapped into the engine's lexical side
for the run: the records' tokens (``lexical.indexed_documents``, read at start) and the query's
(``lexical.query_tokens``). The dense side, the weights and the rest of the score are the engine's own.

    .venv/bin/pip install -r bench/requirements.txt -c requirements.txt   # PyStemmer
    python bench/stemmers.py                     # every set of eval/sets.json whose files are here
    python bench/stemmers.py --set homelive      # one set

Each set is loaded once into a scratch data dir (kept in --work, default .cache/bench-stemmers, between runs).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher import evaluation, lexical  # noqa: E402
from matcher.config import PROJECT_DIR, Settings  # noqa: E402
from matcher.scoring import fold  # noqa: E402
from matcher.service import Engine  # noqa: E402


def stemmings() -> dict[str, Callable[[str, str], tuple[str, ...]] | None]:
    """Name -> (folded word, record language) -> tokens; None: FTS5's own tokens, as served."""
    try:
        import Stemmer
    except ImportError:
        sys.exit("pip install -r bench/requirements.txt -c requirements.txt (PyStemmer) to run this comparison.")
    french, porter = Stemmer.Stemmer("french"), Stemmer.Stemmer("porter")
    return {
        "fts5 porter (served)": None,
        "snowball porter (check: as served)": lambda w, lang: (porter.stemWord(w),),
        "snowball french": lambda w, lang: (french.stemWord(w),),
        "french, then porter": lambda w, lang: (porter.stemWord(french.stemWord(w)),),
        "by record language": lambda w, lang: (french.stemWord(w) if lang == "fr" else porter.stemWord(w),),
    }


class Swapped:
    """The engine's lexical tokens made by ``stem`` instead of FTS5, while inside ``with`` (records' tokens as read
    at start: the evaluation writes nothing, whose tokens would come from FTS5's tokenizer)."""

    def __init__(self, stem: Callable[[str, str], tuple[str, ...]]):
        self.stem = functools.lru_cache(maxsize=None)(stem)

    def tokens(self, text: str, language: str) -> collections.Counter:
        return collections.Counter(s for w in lexical.WORD.findall(fold(text or "")) for s in self.stem(w, language))

    def documents(self, db, kind: str) -> lexical.Instances:  # noqa: ANN001 (the store's sqlite_utils database)
        columns = ", ".join(lexical.COLUMNS[kind])
        rows = []
        for key, language, *texts in db.execute(f"SELECT key, language, {columns} FROM {kind}"):
            for number, text in enumerate(texts):
                rows += [(t, key, f"c{number}", n) for t, n in self.tokens(text, language or "fr").items()]
        return lexical.Instances.of(sorted(rows), lexical.COLUMN_NUMBERS)  # one token's entries adjacent

    def query_tokens(self, text: str, translations: lexical.Translations = lexical.NO_TRANSLATIONS) -> list[str]:
        # the query's language is not known: each word's French and English stems (once where they are the same);
        # two words of one stem each count, as in FTS5
        words = lexical.query_terms(text, translations)
        return [s for w in words for s in dict.fromkeys(self.stem(w, "fr") + self.stem(w, "en"))]

    def __enter__(self) -> Swapped:
        self._saved = lexical.indexed_documents, lexical.query_tokens
        lexical.indexed_documents, lexical.query_tokens = self.documents, self.query_tokens
        return self

    def __exit__(self, *exc: object) -> None:
        lexical.indexed_documents, lexical.query_tokens = self._saved


def figures(engine: Engine, judgements: list[evaluation.Judgement]) -> str:
    report = evaluation.evaluate(
        engine,
        judgements,
        10,
        {"hybrid": evaluation.relais(engine, "hybrid"), "lexical": evaluation.relais(engine, "lexical")},
    )
    cells = []
    for system in ("hybrid", "lexical"):
        groups = report["systems"][system]
        both = groups["all"]
        n = both["influencers"]["n"] + both["content"]["n"]
        overall = sum(both[kind]["ndcg"] * both[kind]["n"] for kind in ("influencers", "content")) / n
        en, fr = (groups.get(f"language:{lang}", {}).get("content", {}).get("ndcg") for lang in ("en", "fr"))
        gap = f"{en - fr:+.3f}" if en is not None and fr is not None else "   -  "
        cells.append(f"{overall:7.3f}{both['influencers']['ndcg']:7.3f}{both['content']['ndcg']:7.3f}{gap:>8}")
    return "  ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", help="an evaluation set of eval/sets.json (default: all here)")
    parser.add_argument("--work", type=Path, default=PROJECT_DIR / ".cache" / "bench-stemmers")
    args = parser.parse_args()
    sets = {
        name: s
        for name, s in evaluation.load_sets().items()
        if (not args.set or name in args.set)
        and s.judgements is not None
        and all(Path(f).exists() for f in [*s.load, s.judgements])
    }
    variants = stemmings()
    header = f"{'overall':>7}{'infl':>7}{'content':>8}{'en-fr':>7}"
    print(f"nDCG@10; en-fr: content, English queries minus French ones\n{'':36}{'hybrid':^29}  {'lexical':^29}")
    print(f"{'stemming':36}{header}  {header}")
    for name, s in sets.items():
        data_dir = args.work / name
        if not (data_dir / "relais.db").exists():
            loader = Engine(Settings.from_env({"data_dir": data_dir}))
            loader.load(s.load)
            loader.close()
        judgements = evaluation.load_judgements(s.judgements)
        print(f"== {name}{'' if s.tuned else ' (unseen: nothing was tuned on it)'}")
        for variant, stem in variants.items():
            with Swapped(stem) if stem else contextlib.nullcontext():
                engine = Engine(Settings.from_env({"data_dir": data_dir}))
                engine.served_log = False
                print(f"{variant:36}{figures(engine, judgements)}", flush=True)
                engine.close()


if __name__ == "__main__":
    main()
