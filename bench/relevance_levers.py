"""Where does Relais lose relevance, and do the usual levers of search engines win it back? Prints, per evaluation
set, where the judged records sit in the order of the served score, then hybrid nDCG@10 for each lever swapped into
the engine for the run (nothing here is served; every variant runs in this one process on the same loaded data):

- depth: the share of the judged records (all, and those graded 2) at ranks 1-10, 11-30, 31-100 and below 100 of
  the score's order (per-author diversity lifted); then, of the ideal pieces (graded 2) at 11-100, how many the
  relevance alone puts in its first 10 and beyond its first 30 (is it the relevance or the other parts that holds
  them back?), and of those below 100, how many the relevance puts in its first 30 and how many neither meaning
  (dense rank 50 or better) nor words (a tenth of the best BM25) find: what no re-weighting can reach;
- bm25 b=0.5, b=0.3: less length normalisation than FTS5's 0.75 (tweets and articles side by side);
- bm25 idf never 0: Lucene's idf, ln(1 + (N - n + 0.5) / (n + 0.5)), where FTS5's gives a word in more than half
  the records (the brand's name) nothing;
- author 0.15, 0.3: a piece's relevance blended with its author's profile relevance (brand pieces unchanged);
- best 2 pieces: an influencer's content relevance from their two best pieces (0.8 / 0.2) instead of the best one;
- passages mean, passages max: each piece also cut into 50-word passages, each embedded after the title, its dense
  similarity the mean (or the max) of the whole text's and its best passage's.

    python bench/relevance_levers.py                   # the tuned sets of eval/sets.json whose files are here
    python bench/relevance_levers.py --set homelive --lever depth --lever "bm25 b=0.5"

Each set is loaded once into --work (default .cache/bench-levers; kept between runs). Vélonia (unseen) is run only
with --set velonia: nothing should be chosen by its figures.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.encoder_ensemble import figures, loaded, row  # noqa: E402
from matcher import bm25, evaluation, ranking  # noqa: E402
from matcher.config import PROJECT_DIR, Settings  # noqa: E402
from matcher.embedding import MAX_TEXT_CHARS  # noqa: E402
from matcher.service import Engine  # noqa: E402

PASSAGE_WORDS = 50
DEPTHS = ((1, 10), (11, 30), (31, 100))


def depth(engine: Engine, judgements: list[evaluation.Judgement]) -> list[str]:
    """Lines: per kind, where the judged records (all, then grade 2) sit in the score's order, the first 100. The
    per-author diversity is lifted for this: it holds an author's third piece back until every other author has had
    two, which would put it below 100 whatever its score."""
    kind_of = evaluation._kinds(engine, judgements)
    ranks: dict[tuple[str, str], list[float]] = {}
    diversity = engine.ranker.config["diversity"]
    served, diversity["max_per_influencer"] = diversity["max_per_influencer"], 10**6
    targets: list = []  # each request's target, as rank_content received it
    rank_content = engine.ranker.rank_content

    def kept(target, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 (the served signature)
        targets.append(target)
        return rank_content(target, *args, **kwargs)

    engine.answers.clear()
    engine.ranker.rank_content = kept
    try:
        answers = [engine.match(j.moment, j.query, limit=100) for j in judgements]
    finally:
        del engine.ranker.rank_content
        diversity["max_per_influencer"] = served
        engine.answers.clear()
    missed, ordered = [], []  # signals of the ideal pieces below 100, and of those at 11-100
    for j, result, target in zip(judgements, answers, targets, strict=True):
        signals = Signals(engine, target)
        for kind, found in (("influencers", result.influencers), ("content", result.content)):
            at = {r.row["id"]: rank for rank, r in enumerate(found, start=1)}
            for record, grade in j.relevant.items():
                if kind_of.get(record) != kind:
                    continue
                rank = at.get(record, math.inf)  # below the first 100
                ranks.setdefault((kind, "all judged"), []).append(rank)
                if grade == 2:
                    ranks.setdefault((kind, "graded 2"), []).append(rank)
                if grade == 2 and kind == "content" and rank > 10:
                    (missed if rank > 100 else ordered).append(signals.of(record))
    lines = []
    for (kind, graded), found in sorted(ranks.items()):
        r = np.array(found)
        shares = [np.mean((r >= low) & (r <= high)) for low, high in DEPTHS] + [np.mean(r > 100)]
        label = f"{kind} {graded} (n={len(r)})"
        lines.append(f"  {label:32}" + "".join(f"{s:8.2f}" for s in shares))
    if ordered:
        m = np.array(ordered)
        lines.append(
            f"  of the {len(m)} ideal pieces at 11-100, the relevance alone puts {np.mean(m[:, 0] <= 10):.2f} in its "
            f"first 10, {np.mean(m[:, 0] > 30):.2f} beyond its first 30"
        )
    if missed:
        m = np.array(missed)
        lines.append(
            f"  of the {len(m)} ideal pieces below 100: {np.mean(m[:, 0] <= 30):.2f} in the relevance's first 30; "
            f"{np.mean((m[:, 1] > 50) & (m[:, 2] < 0.1)):.2f} found by neither meaning (first 50) nor words"
        )
    return lines


class Signals:
    """Where a piece stands among every visible piece for one request's target: its rank by fused relevance, its
    rank by dense similarity, and its BM25 over the best one's (every piece scored once, on first use)."""

    def __init__(self, engine: Engine, target) -> None:  # noqa: ANN001 (a retrieval Target)
        self.engine, self.target, self.every = engine, target, None

    def of(self, record: str) -> tuple[int, int, float]:
        engine = self.engine
        if self.every is None:
            visible = engine.catalogue.visible("content")
            self.every = engine.ranker.retriever.candidates("content", self.target, int(visible.sum()), visible)
        every = self.every
        key = next(iter(engine.store.keys_by_id("content", [record]).values()))
        at = int(np.flatnonzero(every.keys == key)[0])
        by_meaning = int(np.sum(every.dense > every.dense[at])) + 1
        best = every.best_lexical
        return at + 1, by_meaning, float(every.lexical[at] / best) if best > 0 else 0.0


@contextlib.contextmanager
def bm25_b(b: float) -> Iterator[None]:
    saved, bm25.B = bm25.B, b
    try:
        yield
    finally:
        bm25.B = saved


@contextlib.contextmanager
def lucene_idf() -> Iterator[None]:
    """BM25 with an idf that is never 0 (the rest as served)."""
    served, bm25.idf = bm25.idf, lambda count, hits: math.log(1 + (count - hits + 0.5) / (hits + 0.5))
    try:
        yield
    finally:
        bm25.idf = served


@contextlib.contextmanager
def candidates_within(method: str, wrap: Callable) -> Iterator[None]:
    """While ``Ranker.<method>`` runs, its retriever's candidates pass through ``wrap(ranker, served, kind, *rest)``,
    ``served`` being the retriever's own ``candidates``."""
    rank = getattr(ranking.Ranker, method)

    def patched(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 (the served signature)
        self.retriever.candidates = functools.partial(wrap, self, self.retriever.candidates)
        try:
            return rank(self, *args, **kwargs)
        finally:
            del self.retriever.candidates

    setattr(ranking.Ranker, method, patched)
    try:
        yield
    finally:
        setattr(ranking.Ranker, method, rank)


def author_blend(weight: float) -> contextlib.AbstractContextManager:
    """In ``rank_content``, the candidates' relevance blended with their author's profile relevance (the influencer
    candidates' fused relevance, their authors included); brand pieces keep their own."""

    def blend(ranker, served, kind, target, need, allowed, include=None):  # noqa: ANN001, ANN202
        found = served(kind, target, need, allowed, include)
        if kind != "content" or target.query is None or not len(found.keys):
            return found
        catalogue = ranker.catalogue
        author = catalogue.tables["content"].values["author"][found.keys]
        people = served("influencers", target, need, catalogue.visible("influencers"), np.unique(author[author >= 0]))
        by_key = np.full(catalogue.tables["influencers"].size, np.nan)
        by_key[people.keys] = people.relevance
        theirs = np.where(author >= 0, by_key[np.maximum(author, 0)], np.nan)
        blended = (1 - weight) * found.relevance + weight * theirs
        found.relevance = np.where(np.isnan(theirs), found.relevance, blended)
        return found

    return candidates_within("rank_content", blend)


def best_two(second: float = 0.2) -> contextlib.AbstractContextManager:
    """An influencer's best-content relevance from their two best pieces, (1 - second) * best + second * next (0
    without one), in place of the best alone: each author's first piece among the content candidates of
    ``rank_influencers`` (the one it reads) carries the blend."""

    def blend(ranker, served, kind, *rest, **named):  # noqa: ANN001, ANN002, ANN003, ANN202
        found = served(kind, *rest, **named)
        if kind != "content":
            return found
        at: dict[int, list[int]] = {}
        for i, author in enumerate(ranker.catalogue.tables["content"].values["author"][found.keys].tolist()):
            if author >= 0:  # best first
                at.setdefault(author, []).append(i)
        relevance = found.relevance.copy()
        for positions in at.values():
            after = found.relevance[positions[1]] if len(positions) > 1 else 0.0
            relevance[positions[0]] = (1 - second) * found.relevance[positions[0]] + second * after
        found.relevance = relevance
        return found

    return candidates_within("rank_influencers", blend)


def passage_vectors(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """(content key, vector) of every visible piece's passages: the title, then PASSAGE_WORDS words of its text."""
    keys = np.flatnonzero(engine.catalogue.visible("content"))
    rows = engine.catalogue.rows("content", keys)
    owners, texts = [], []
    for key in keys.tolist():
        title, words = rows[key]["title"] or "", (rows[key]["text"] or "").split()
        for start in range(0, max(len(words), 1), PASSAGE_WORDS):
            owners.append(key)
            texts.append(f"{title}\n{' '.join(words[start : start + PASSAGE_WORDS])}"[:MAX_TEXT_CHARS])
    return np.array(owners, np.int64), engine.encoder.encode(texts)


@contextlib.contextmanager
def passages(engine: Engine, passages_of: tuple[np.ndarray, np.ndarray], combine: str) -> Iterator[None]:
    table = engine.catalogue.tables["content"]
    served = table.similarities
    owners, vectors = passages_of

    def similarities(query: np.ndarray) -> np.ndarray:
        whole = served(query)
        best = np.full(len(whole), -np.inf, np.float32)
        np.maximum.at(best, owners, vectors @ query)
        joined = np.maximum(whole, best) if combine == "max" else (whole + best) / 2
        return np.where(np.isfinite(best), joined, whole).astype(np.float32)

    table.similarities = similarities
    try:
        yield
    finally:
        del table.similarities


def levers(engine: Engine) -> dict[str, Callable[[], contextlib.AbstractContextManager]]:
    cached: list[tuple[np.ndarray, np.ndarray]] = []

    def cut() -> tuple[np.ndarray, np.ndarray]:
        if not cached:
            cached.append(passage_vectors(engine))
        return cached[0]

    return {
        "served": contextlib.nullcontext,
        "bm25 b=0.5": lambda: bm25_b(0.5),
        "bm25 b=0.3": lambda: bm25_b(0.3),
        "bm25 idf never 0": lucene_idf,
        "author 0.15": lambda: author_blend(0.15),
        "author 0.3": lambda: author_blend(0.3),
        "best 2 pieces": best_two,
        "passages mean": lambda: passages(engine, cut(), "mean"),
        "passages max": lambda: passages(engine, cut(), "max"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", help="an evaluation set of eval/sets.json (default: the tuned ones)")
    parser.add_argument("--lever", action="append", help="depth, or a lever's name (default: all)")
    parser.add_argument("--work", type=Path, default=PROJECT_DIR / ".cache" / "bench-levers")
    args = parser.parse_args()
    for name, s in evaluation.load_sets().items():
        if (args.set and name not in args.set) or (not args.set and not s.tuned) or s.judgements is None:
            continue
        if not all(Path(f).exists() for f in [*s.load, s.judgements]):
            continue
        print(f"== {name}{'' if s.tuned else ' (unseen: nothing was tuned on it)'}", flush=True)
        judgements = evaluation.load_judgements(s.judgements)
        settings = Settings.from_env({"data_dir": args.work / name})
        loaded(settings.data_dir, s.load, settings)
        engine = Engine(settings)
        engine.served_log = False
        if not args.lever or "depth" in args.lever:
            print(f"  where the judged records rank{'':6}{'1-10':>8}{'11-30':>8}{'31-100':>8}{'> 100':>8}")
            print("\n".join(depth(engine, judgements)), flush=True)
        chosen = {k: v for k, v in levers(engine).items() if not args.lever or k in args.lever}
        if chosen:
            print(f"  nDCG@10{'':17}{'overall':>8}{'infl':>8}{'content':>8}{'fr':>8}{'en':>8}{'en-fr':>8}")
        for label, lever in chosen.items():
            engine.answers.clear()
            with lever():
                print(row(f"  {label}", figures(engine, judgements)), flush=True)
        engine.close()


if __name__ == "__main__":
    main()
