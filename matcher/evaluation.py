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
from matcher.errors import ConfigError
from matcher.index import top_k
from matcher.service import Engine

KINDS = ("influencers", "content")
METRICS = ("ndcg", "recall", "mrr")


@dataclass(frozen=True)
class Judgement:
    id: str
    query: str
    moment: str
    language: str
    relevant: dict[str, int]


def load_judgements(path: Path) -> list[Judgement]:
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            relevant = {str(k): int(v) for k, v in raw["relevant"].items()}
            out.append(
                Judgement(str(raw.get("id", number)), raw["query"], raw["moment"], raw.get("language") or "?", relevant)
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(
                f"{path}:{number}: expected {{query, moment, language, relevant: {{id: grade}}}}: {e}"
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
