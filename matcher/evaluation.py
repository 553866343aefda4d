"""Relevance as numbers: nDCG@k, recall@k and MRR on labelled queries, for Relais and for baselines.

A judgements file is JSON Lines ``{query, moment, language, relevant: {id: grade}}`` (grade 2 = ideal,
1 = acceptable; ids of influencers and of content may be mixed: each is looked up in the store). Every system
answers the same queries on the same data dir in the same run.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher import lexical
from matcher.config import PROJECT_DIR, read_jsonl
from matcher.errors import ConfigError
from matcher.service import Engine
from matcher.store import KINDS
from matcher.vector_base import top_k

METRICS = ("ndcg", "recall", "mrr")


@dataclass(frozen=True)
class Judgement:
    id: str
    query: str
    moment: str
    language: str
    relevant: dict[str, int]


@dataclass(frozen=True)
class EvalSet:
    """A brand's evaluation material: its catalogue (contract files), graded queries, customer utterances, and
    whether anything was tuned by looking at its figures."""

    name: str
    load: tuple[Path, ...]
    judgements: Path | None
    utterances: Path | None
    tuned: bool

    def missing(self, purpose: str) -> list[Path]:
        """Files this set needs for ``purpose`` ('ranking' or 'moments') that are not on this machine."""
        wanted = [self.utterances] if purpose == "moments" else [*self.load, self.judgements]
        return [p for p in wanted if p is not None and not p.exists()]


SETS_FILE = PROJECT_DIR / "eval" / "sets.json"


def load_sets(path: Path = SETS_FILE) -> dict[str, EvalSet]:
    """The evaluation sets of ``eval/sets.json`` (paths relative to the project)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))["sets"]
        return {
            name: EvalSet(
                name,
                tuple(PROJECT_DIR / f for f in s["load"]),
                PROJECT_DIR / s["judgements"] if s.get("judgements") else None,
                PROJECT_DIR / s["utterances"] if s.get("utterances") else None,
                bool(s["tuned"]),
            )
            for name, s in raw.items()
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: expected {{sets: {{name: {{load, judgements, utterances, tuned}}}}}}: {e}") from e


def load_judgements(path: Path) -> list[Judgement]:
    out = []
    for number, raw in enumerate(read_jsonl(path), start=1):
        try:
            relevant = {str(k): int(v) for k, v in raw["relevant"].items()}
            out.append(
                Judgement(str(raw.get("id", number)), raw["query"], raw["moment"], raw.get("language") or "?", relevant)
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(
                f"{path}: judgement {number}: expected {{query, moment, language, relevant: {{id: grade}}}}: {e}"
            ) from e
    return out


# -- metrics (graded gains 2^g - 1, log2 discount) ------------------------------------------------


def dcg(grades: Sequence[int]) -> float:
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    ideal = dcg(sorted(relevant.values(), reverse=True)[:k])
    return dcg([relevant.get(i, 0) for i in ranked[:k]]) / ideal if ideal else 0.0


def recall_at(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    wanted = {i for i, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: dict[str, int]) -> float:
    return next((1 / rank for rank, i in enumerate(ranked, start=1) if relevant.get(i, 0) > 0), 0.0)


# -- systems: each answers a judgement with ranked ids per kind ------------------------------------

System = Callable[[Judgement, int], dict[str, list[str]]]


def relais(engine: Engine, mode: str) -> System:
    def answer(j: Judgement, k: int) -> dict[str, list[str]]:
        result = engine.match(j.moment, j.query, limit=k, retrieval=mode)
        return {
            "influencers": [r.row["id"] for r in result.influencers],
            "content": [r.row["id"] for r in result.content],
        }

    return answer


def dense_only(engine: Engine) -> System:
    """Nearest neighbours of the query alone: no moment, no other score part."""

    def answer(j: Judgement, k: int) -> dict[str, list[str]]:
        vector = engine.query_encoder.encode([j.query])[0]
        out = {}
        for kind in KINDS:
            table = engine.catalogue.tables[kind]
            ids = top_k(table.similarities(vector), k, engine.catalogue.visible(kind)).tolist()
            rows = engine.store.rows(kind, ids)
            out[kind] = [rows[i]["id"] for i in ids]
        return out

    return answer


def bm25_only(engine: Engine) -> System:
    """BM25 of the query's words alone (visible records only)."""
    visible = _visible_ids(engine)
    weights = engine.scoring["lexical"]["column_weights"]

    def answer(j: Judgement, k: int) -> dict[str, list[str]]:
        expression = lexical.match_expression(j.query)
        out = {}
        for kind in KINDS:
            matched = lexical.search(engine.store.db, kind, expression, weights[kind], k * 3) if expression else []
            rows = engine.store.rows(kind, [key for key, _ in matched])
            out[kind] = [rows[key]["id"] for key, _ in matched if rows[key]["id"] in visible[kind]][:k]
        return out

    return answer


def popularity(engine: Engine) -> System:
    """The Klout-era habit: the biggest audiences (and the most-liked posts), whatever the question."""
    ranked = {
        "influencers": [
            r[0]
            for r in engine.store.db.execute(
                "SELECT id FROM influencers WHERE opted_out = 0 ORDER BY followers DESC, key"
            )
        ],
        "content": [
            r[0]
            for r in engine.store.db.execute(
                """SELECT c.id FROM content c LEFT JOIN influencers i ON i.id = c.influencer_id
               WHERE c.influencer_id IS NULL OR i.opted_out = 0
               ORDER BY coalesce(json_extract(c.engagement, '$.likes'), 0)
                      + coalesce(json_extract(c.engagement, '$.shares'), 0)
                      + coalesce(json_extract(c.engagement, '$.comments'), 0) DESC, c.key"""
            )
        ],
    }
    return lambda j, k: {kind: ids[:k] for kind, ids in ranked.items()}


def random_baseline(engine: Engine) -> System:
    visible = {kind: sorted(ids) for kind, ids in _visible_ids(engine).items()}

    def answer(j: Judgement, k: int) -> dict[str, list[str]]:
        rng = random.Random(j.id)  # the same draw on every run
        return {kind: rng.sample(ids, min(k, len(ids))) for kind, ids in visible.items()}

    return answer


def systems(engine: Engine) -> dict[str, System]:
    return {
        "relais (hybrid)": relais(engine, "hybrid"),
        "relais (dense)": relais(engine, "dense"),
        "relais (lexical)": relais(engine, "lexical"),
        "dense only": dense_only(engine),
        "bm25 only": bm25_only(engine),
        "popularity": popularity(engine),
        "random": random_baseline(engine),
    }


def _visible_ids(engine: Engine) -> dict[str, set[str]]:
    """Ids of the records that may appear in results (those in the indexes)."""
    out = {}
    for kind in KINDS:
        keys = engine.store.embeddings(kind)[0].tolist()
        out[kind] = {row["id"] for row in engine.store.rows(kind, keys).values()}
    return out


# -- running ----------------------------------------------------------------------------------------


def evaluate(
    engine: Engine, judgements: list[Judgement], k: int = 10, chosen: dict[str, System] | None = None
) -> dict[str, Any]:
    """{"k", "queries", "systems": {name: {group: {kind: {ndcg, recall, mrr, n}}}}}; groups are 'all',
    'moment:<name>' and 'language:<code>'. A query counts for a kind only if it judges some record of that kind."""
    kind_of = _kinds(engine, judgements)
    out: dict[str, Any] = {"k": k, "queries": len(judgements), "systems": {}}
    for name, system in (chosen or systems(engine)).items():
        sums: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
        for j in judgements:
            answer = system(j, k)
            for kind in KINDS:
                relevant = {i: g for i, g in j.relevant.items() if kind_of.get(i) == kind}
                if not relevant:
                    continue
                ranked = answer[kind]
                scores = np.array(
                    [
                        ndcg_at(ranked, relevant, k),
                        recall_at(ranked, relevant, k),
                        reciprocal_rank(ranked[:k], relevant),
                    ]
                )
                for group in ("all", f"moment:{j.moment}", f"language:{j.language}"):
                    sums[(group, kind)].append(scores)
        table: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        for (group, kind), rows in sums.items():
            mean = np.mean(rows, axis=0)
            table[group][kind] = {**{m: round(float(v), 4) for m, v in zip(METRICS, mean, strict=True)}, "n": len(rows)}
        out["systems"][name] = dict(table)
    return out


def _kinds(engine: Engine, judgements: list[Judgement]) -> dict[str, str]:
    ids = {i for j in judgements for i in j.relevant}
    kinds = {}
    for kind in KINDS:
        kinds.update(dict.fromkeys(engine.store.keys_by_id(kind, ids), kind))
    unknown = ids - set(kinds)
    if unknown:
        raise ConfigError(
            f"{len(unknown)} judged ids are not in this data dir, e.g. {sorted(unknown)[:3]}: "
            "load the dataset the judgements were written for."
        )
    return kinds


def headline(report: dict[str, Any], system: str = "relais (hybrid)") -> dict[str, float | None]:
    """The figures issue 15 sets targets on: nDCG@k of influencers, of content, overall (their mean over queries),
    by query language, and content for English queries against French ones."""
    table = report["systems"][system]

    def overall(group: str) -> float | None:
        cells = [table.get(group, {}).get(kind) for kind in KINDS]
        cells = [c for c in cells if c]
        total = sum(c["n"] for c in cells)
        return round(sum(c["ndcg"] * c["n"] for c in cells) / total, 4) if total else None

    def cell(group: str, kind: str) -> float | None:
        found = table.get(group, {}).get(kind)
        return found["ndcg"] if found else None

    return {
        "influencers": cell("all", "influencers"),
        "content": cell("all", "content"),
        "overall": overall("all"),
        "fr": overall("language:fr"),
        "en": overall("language:en"),
        "content_fr": cell("language:fr", "content"),
        "content_en": cell("language:en", "content"),
    }


def format_headlines(found: dict[str, dict[str, float | None]], tuned: dict[str, bool], k: int = 10) -> str:
    """One line per set, then the generalisation line: the sets nothing was tuned on."""

    def f(v: float | None) -> str:
        return f"{v:.3f}" if v is not None else "  -  "

    lines = [f"{'set':24}{'overall':>9}{'infl.':>8}{'content':>9}{'fr':>8}{'en':>8}{'content en-fr':>15}"]
    for name, h in found.items():
        gap = h["content_en"] - h["content_fr"] if None not in (h["content_en"], h["content_fr"]) else None
        label = f"{name}{'' if tuned[name] else ' (unseen)'}"
        lines.append(
            f"{label:24}{f(h['overall']):>9}{f(h['influencers']):>8}{f(h['content']):>9}{f(h['fr']):>8}"
            f"{f(h['en']):>8}{(f'{gap:+.3f}' if gap is not None else '  -  '):>15}"
        )
    unseen = [n for n in found if not tuned[n]]
    if unseen:
        mean = np.mean([found[n]["overall"] for n in unseen])
        lines.append(f"generalisation (nDCG@{k} on sets nothing was tuned on: {', '.join(unseen)}): {mean:.3f}")
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    """One table per group: systems as rows, nDCG / recall / MRR for influencers and for content as columns."""
    k = report["k"]
    systems_ = report["systems"]
    groups = sorted({g for s in systems_.values() for g in s}, key=lambda g: (g != "all", g))
    header = f"{'':18}  {'influencers':^26}  {'content':^26}"
    sub = f"{'system':18}  " + "  ".join(f"{f'nDCG@{k}':>8}{f'R@{k}':>8}{'MRR':>8}  " for _ in KINDS)
    lines = [f"{report['queries']} labelled queries, k = {k}"]
    for group in groups:
        sizes = ", ".join(
            f"{kind} n={next(iter(systems_.values()))[group].get(kind, {}).get('n', 0)}" for kind in KINDS
        )
        lines += ["", f"== {group} ({sizes})", header, sub.rstrip()]
        for name, table in systems_.items():
            cells = []
            for kind in KINDS:
                m = table.get(group, {}).get(kind)
                cells.append("".join(f"{m[x]:8.3f}" for x in METRICS) if m else f"{'-':>8}" * 3)
            lines.append(f"{name:18}  " + "    ".join(cells))
    return "\n".join(lines)
