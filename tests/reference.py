"""A plain reference for the ranking: what a match returns, computed the slow and obvious way.

Every record is read from SQLite and judged row by row in Python: filters on the decoded rows, vectors from the
stored embeddings, BM25 from FTS5 itself, each score part from its ``matcher.scoring`` function, one record at a time.
No catalogue, no arrays kept between requests, no in-memory BM25. The serving path must give the same results
(``tests/test_reference.py``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from matcher import embedding, lexical, scoring
from matcher.filters import Filters
from matcher.products import ProductNames
from matcher.service import Engine
from matcher.store import KINDS


def match(
    engine: Engine, moment: str, query: str | None, filters: dict | None = None, limit: int = 10, data: Any = None
) -> dict:
    """{"influencers": [(id, score)], "content": [(id, score)]}, best first. ``data``: ``read(engine)``, to share
    between calls while the store does not change."""
    data = data or read(engine)
    target = _target(engine, moment, query)
    filters = Filters.from_mapping(filters)
    return {
        "influencers": _rank_influencers(engine, data, target, moment, filters, limit),
        "content": _rank_content(engine, data, target, moment, filters, limit),
    }


def read(engine: Engine) -> _Data:
    """Every row and vector of the store, for ``match``."""
    return _Data(engine)


class _Data:
    """Every row and vector of the store, read now."""

    def __init__(self, engine: Engine):
        store = engine.store
        self.rows = {
            kind: store.rows(kind, [r[0] for r in store.db.execute(f"SELECT key FROM {kind}")]) for kind in KINDS
        }
        self.by_id = {kind: {r["id"]: r for r in rows.values()} for kind, rows in self.rows.items()}
        content_keys, content_vectors = store.embeddings("content", visible_only=False)
        self.vectors = {"content": dict(zip(content_keys.tolist(), content_vectors, strict=True))}
        keys, profiles = store.embeddings("influencers", visible_only=False)
        authors = {
            c["key"]: self.by_id["influencers"][c["influencer_id"]]["key"]
            for c in self.rows["content"].values()
            if c["influencer_id"]
        }
        empty_bio = {k for k in keys.tolist() if self.rows["influencers"][k]["bio"] == ""}
        combined = embedding.influencer_vectors(
            keys, profiles, content_keys, content_vectors, authors, empty_bio, engine.scoring["profile_vector"]
        )
        self.vectors["influencers"] = dict(zip(keys.tolist(), combined, strict=True))

    def author(self, row: dict[str, Any]) -> dict[str, Any] | None:
        return self.by_id["influencers"].get(row["influencer_id"]) if row["influencer_id"] else None


def _target(engine: Engine, moment: str, query: str | None) -> dict[str, Any]:
    relevance = engine.scoring["relevance"]
    query = (query or "").strip() or None
    return {
        "query": query,
        # the query's words and their French equivalents (lexical.with_french, as the translations file gives them)
        "vector": engine.query_encoder.encode([lexical.with_french(query, engine.translations)])[0] if query else None,
        "centroid": engine.moment_vectors[moment].centroid,
        "profile": engine.moment_vectors[moment].profile,
        "qw": relevance["query_weight"],
        "mw": relevance["moment_weight"],
    }


def _candidates(engine, data, kind, target, need, accepted_keys, include=()) -> dict[int, float]:  # noqa: ANN001
    """key -> fused relevance: the ``need`` nearest, the ``need`` best by BM25, and ``include``, all accepted."""
    keys = sorted(accepted_keys)
    if not keys:
        return {}
    vectors = np.vstack([data.vectors[kind][k] for k in keys])
    dense = vectors @ target["centroid"]
    if target["vector"] is not None:
        dense = target["qw"] * (vectors @ target["vector"]) + target["mw"] * dense
    similarity = dict(zip(keys, dense.tolist(), strict=True))
    expression = lexical.match_expression(target["query"], engine.translations) if target["query"] else None
    weights = engine.scoring["lexical"]["column_weights"][kind]
    bm25 = dict(lexical.search(engine.store.db, kind, expression, weights, 10**9)) if expression else {}
    pool = {k for k in include if k in similarity}
    pool |= set(sorted(keys, key=lambda k: (-similarity[k], k))[:need])
    matched = [k for k in keys if bm25.get(k, 0) > 0]
    pool |= set(sorted(matched, key=lambda k: (-bm25[k], k))[:need])
    low, high = min(similarity[k] for k in pool), max(similarity[k] for k in pool)
    best = max((bm25.get(k, 0.0) for k in pool), default=0.0)
    alpha = engine.scoring["lexical"]["dense_weight"][kind]
    out = {}
    for k in pool:
        dense_rel = (similarity[k] - low) / (high - low) if high > low else 1.0
        if not expression:
            out[k] = dense_rel
        else:
            out[k] = alpha * dense_rel + (1 - alpha) * (bm25.get(k, 0.0) / best if best > 0 else 0.0)
    return out


def _visible_influencer(row: dict[str, Any]) -> bool:
    return not row["opted_out"]


def _visible_content(data: _Data, row: dict[str, Any]) -> bool:
    author = data.author(row)
    return row["influencer_id"] is None or (author is not None and not author["opted_out"])


def _influencer_fit(engine, data, moment, row) -> scoring.Part:  # noqa: ANN001
    profile = float(data.vectors["influencers"][row["key"]] @ engine.moment_vectors[moment].profile)
    return scoring.influencer_fit(engine.scoring, engine.moments[moment], row, profile)


def _rank_content(engine, data, target, moment, filters, limit) -> list[tuple[str, float]]:  # noqa: ANN001
    config, chosen = engine.scoring, engine.moments[moment]
    accepted = {
        k
        for k, r in data.rows["content"].items()
        if _visible_content(data, r) and accepts_content(filters, r, data.author(r), data)
    }
    need = max(config["candidates"]["minimum"], config["candidates"]["per_result"] * limit)
    relevance = _candidates(engine, data, "content", target, need, accepted)
    named = _named_products(engine, data, target["query"])
    asked = engine.ranker.facet_names.named_in(target["query"])
    present = {name for name, there in (("product", named), ("asked", asked)) if there}
    weights = scoring.weights_for(config, chosen, "content", target["query"] is not None, present)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    scored = []
    for key, rel in relevance.items():
        row = data.rows["content"][key]
        author = data.author(row)
        author_fit = _influencer_fit(engine, data, moment, author).value if author else None
        parts = {
            "relevance": rel,
            "moment_fit": scoring.content_fit(config, chosen, row, author_fit).value,
            "quality": scoring.quality(config, row["format"]),
            "influence": scoring.content_influence(config, row, author).value,
            "freshness": scoring.freshness(config, (today - row["published_ts"]) / 86400),
            "tonality": scoring.tonality(row["sentiment"]),
            "engagement": _engagement(engine, "content", moment, row["id"]),
        }
        if named:
            parts["product"] = float(bool(named & {scoring.fold(p) for p in row["products"]}))
        if asked:
            matches = [row["format"] in asked.formats] if asked.formats else []
            if asked.categories:
                matches.append(author is not None and author["category"] in asked.categories)
            if asked.networks:
                matches.append(row["network"] in asked.networks)
            if asked.languages:
                matches.append(row["language"] in asked.languages)
            parts["asked"] = float(scoring.asked(matches))
        scored.append((scoring.weighted_mean(parts, weights), key, row))
    scored.sort(key=lambda s: (-s[0], s[1]))
    chosen_rows, held, per_author = [], [], defaultdict(int)
    for score, _, row in scored:
        author = row["influencer_id"] or ""
        if per_author[author] < config["diversity"]["max_per_influencer"]:
            per_author[author] += 1
            chosen_rows.append((row["id"], score))
        else:
            held.append((row["id"], score))
        if len(chosen_rows) == limit:
            return chosen_rows
    return chosen_rows + held[: limit - len(chosen_rows)]


def _rank_influencers(engine, data, target, moment, filters, limit) -> list[tuple[str, float]]:  # noqa: ANN001
    config, chosen = engine.scoring, engine.moments[moment]
    visible_content = {k for k, r in data.rows["content"].items() if _visible_content(data, r)}
    pool = _candidates(
        engine, data, "content", target, config["candidates"]["content_for_influencers"], visible_content
    )
    best_piece: dict[int, float] = {}
    for key, rel in sorted(pool.items(), key=lambda item: (-item[1], item[0])):
        author = data.author(data.rows["content"][key])
        if author is not None:
            best_piece.setdefault(author["key"], rel)
    accepted = {
        k
        for k, r in data.rows["influencers"].items()
        if _visible_influencer(r) and accepts_influencer(filters, r, data)
    }
    need = max(config["candidates"]["minimum"], config["candidates"]["per_result"] * limit)
    relevance = _candidates(engine, data, "influencers", target, need, accepted, include=best_piece)
    published = defaultdict(int)
    for row in data.rows["content"].values():
        if row["influencer_id"]:
            published[row["influencer_id"]] += 1
    named = _named_products(engine, data, target["query"])
    asked = engine.ranker.facet_names.named_in(target["query"])
    present = {name for name, there in (("product", named), ("asked", asked)) if there}
    weights = scoring.weights_for(config, chosen, "influencer", target["query"] is not None, present)
    in_format = defaultdict(int)  # pieces each person published in a format the query asks for
    for r in data.rows["content"].values():
        if r["influencer_id"] and r["format"] in asked.formats:
            in_format[r["influencer_id"]] += 1
    about = {
        r["influencer_id"] for r in data.rows["content"].values() if named & {scoring.fold(p) for p in r["products"]}
    }
    scored = []
    for key, profile in relevance.items():
        row = data.rows["influencers"][key]
        if key in best_piece:
            best = best_piece[key]
        else:
            best = 0.0 if published[row["id"]] else profile
        parts = {
            "relevance": scoring.influencer_relevance(config, profile, best),
            "moment_fit": _influencer_fit(engine, data, moment, row).value,
            "influence": scoring.influencer_influence(config, row).value,
            "engagement": _engagement(engine, "influencers", moment, row["id"]),
            "fatigue": _fatigue(engine, row),
        }
        if named:
            parts["product"] = float(row["id"] in about)
        if asked:
            share = scoring.asked_share(in_format[row["id"]], published[row["id"]])
            matches = [float(share)] if asked.formats else []
            if asked.categories:
                matches.append(row["category"] in asked.categories)
            if asked.networks:
                matches.append(bool(set(row["networks"]) & set(asked.networks)))
            if asked.languages:
                matches.append(row["language"] in asked.languages)
            parts["asked"] = float(scoring.asked(matches))
        scored.append((scoring.weighted_mean(parts, weights), key, row["id"]))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [(record_id, score) for score, _, record_id in scored[:limit]]


def _named_products(engine: Engine, data: _Data, query: str | None) -> set[str]:
    """The products the query names, among every stored piece's tags (the name finder itself is matcher.products')."""
    products = {p for r in data.rows["content"].values() for p in r["products"]}
    return set(ProductNames(products, engine.ranker.aliases).named_in(query))


# -- what the loop adds, from the events and activations tables, one row at a time ------------------------


def _engagement(engine: Engine, kind: str, moment: str, item_id: str) -> float:
    """Clicks over examination-weighted views of the item at the moment, each event decayed from the newest one
    learned, shrunk towards the moment's mean: rate / (rate + mean)."""
    config = engine.scoring["engagement"]
    learned = []  # (type, item, rank, at) of every event the loop may learn from, at this moment and kind
    for (
        kind_of_event,
        event_kind,
        item,
        rank,
        event_moment,
        at,
        source,
        items,
        served_moment,
    ) in engine.store.db.execute(
        "SELECT e.type, e.kind, e.item_id, e.rank, e.moment, e.at, e.source, s.items, s.moment"
        " FROM events e LEFT JOIN served s ON s.request_id = e.request_id"
    ):
        if kind_of_event not in ("impression", "click"):
            continue
        if items is not None:
            slots = {(k, i): r for k, i, r, _ in json.loads(items)}
            rank, event_moment = slots.get((event_kind, item)), served_moment
        elif source != "import":
            continue
        if rank is not None and event_moment in engine.moments:
            learned.append((kind_of_event, event_kind, event_moment, item, rank, at))
    clock = max((e[5] for e in learned), default=0.0)
    half_life = config["half_life_days"] * 86400
    clicks = views = all_clicks = all_views = 0.0
    for kind_of_event, event_kind, event_moment, item, rank, at in learned:
        if event_kind != kind or event_moment != moment or item not in _ids(engine, kind):
            continue
        weight = 0.5 ** ((clock - at) / half_life)
        examined = (
            config["examination"][rank - 1] if rank <= len(config["examination"]) else config["examination_beyond"]
        )
        is_click = kind_of_event == "click"
        all_clicks, all_views = all_clicks + weight * is_click, all_views + weight * examined * (not is_click)
        if item == item_id:
            clicks, views = clicks + weight * is_click, views + weight * examined * (not is_click)
    prior_views = config["prior_views"]
    mean = config["prior_ctr"]
    if all_views or all_clicks:
        mean = (all_clicks + prior_views * config["prior_ctr"]) / (all_views + prior_views)
    rate = (clicks + prior_views * mean) / (views + prior_views)
    k = config["sharpness"]
    return rate**k / (rate**k + mean**k)


def _ids(engine: Engine, kind: str) -> set[str]:
    return {r[0] for r in engine.store.db.execute(f"SELECT id FROM {kind}")}


def _fatigue(engine: Engine, row: dict[str, Any]) -> float:
    """The fullest window of the person's category: 1 - activations sent in it / its cap; 0 while on hold."""
    rules = engine.loop.fatigue.rules
    today = datetime.now(UTC).date()
    hold = engine.store.db.execute("SELECT until FROM contact_holds WHERE influencer_id = ?", [row["id"]]).fetchone()
    if hold and hold[0] > today.isoformat():
        return 0.0
    sent = [
        date.fromisoformat(day[:10])
        for status, day in engine.store.db.execute(
            "SELECT status, coalesce(sent_at, created_at) FROM activations WHERE influencer_id = ?", [row["id"]]
        )
        if status in rules["counted_statuses"]
    ]
    value = 1.0
    for window in rules["categories"].get(row["category"], rules["default"]):
        count = sum(1 for d in sent if 0 <= (today - d).days < window["days"])
        value = min(value, max(0.0, 1 - count / window["max"]))
    return value


# -- filters, on decoded rows ---------------------------------------------------------------------------


def accepts_influencer(filters: Filters, row: dict[str, Any], data: _Data) -> bool:
    if filters.category and row["category"] not in filters.category:
        return False
    if filters.language and (row["language"] or "") not in filters.language:
        return False
    if filters.network and not set(filters.network) & set(row["networks"]):
        return False
    if not _audience_ok(filters, row):
        return False
    if filters.topics and not set(filters.topics) & {scoring.fold(t) for t in row["topics"]}:
        return False
    if filters.products:
        published = {
            scoring.fold(p)
            for c in data.rows["content"].values()
            if c["influencer_id"] == row["id"]
            for p in c["products"]
        }
        return bool(set(filters.products) & published)
    return True


def accepts_content(filters: Filters, row: dict[str, Any], author: dict[str, Any] | None, data: _Data) -> bool:
    if filters.category and (author is None or author["category"] not in filters.category):
        return False
    if filters.language and (row["language"] or "") not in filters.language:
        return False
    if filters.network and row["network"] not in filters.network:
        return False
    if (filters.min_followers is not None or filters.max_followers is not None) and (
        author is None or not _audience_ok(filters, author)
    ):
        return False
    if filters.topics and not set(filters.topics) & {scoring.fold(t) for t in row["topics"]}:
        return False
    return not (filters.products and not set(filters.products) & {scoring.fold(p) for p in row["products"]})


def _audience_ok(filters: Filters, row: dict[str, Any]) -> bool:
    """Followers on the filtered networks if a network filter is set, else on the largest platform."""
    if filters.min_followers is None and filters.max_followers is None:
        return True
    platforms = row["platforms"]
    if filters.network:
        platforms = [p for p in platforms if p["network"] in filters.network]
    followers = max((p["followers"] for p in platforms), default=0)
    if filters.min_followers is not None and followers < filters.min_followers:
        return False
    return filters.max_followers is None or followers <= filters.max_followers
