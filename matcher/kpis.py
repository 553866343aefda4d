"""The brand team's KPIs, read from one snapshot of the store: how activations went, the activated voices' share
of the conversation and its tone, what customers did with what matches showed, and how activations spread over
the roster.

Every figure is ``{"value", "n", "definition"}``: ``n`` is how many rows or events it rests on, and a rate whose
denominator is 0 is null. Days are ISO dates: an activation's is the day it was sent (created, if never sent), in
UTC as the store keeps it; a publication's is its ``published_at`` as written (the author's local day); an event's
is its ``at`` in UTC.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from matcher.errors import InvalidRequestError
from matcher.scoring import fold, quality
from matcher.store import Store, select_in
from models.records import CATEGORIES

GROUP_KEYS = ("campaign", "moment", "category", "network", "language", "type", "format", "quarter", "item")
LIST_FILTERS = ("campaign", "moment", "category", "network", "language")
FILTER_KEYS = (*LIST_FILTERS, "since", "until")
SECTION_KEYS = {  # the group_by keys each section can split by; the others it ignores (and says so)
    "activations": ("campaign", "moment", "category", "network", "language", "type", "quarter"),
    "share_of_voice": ("quarter", "network", "language", "format"),  # always per quarter and theme
    "tonality": ("quarter", "category", "network", "language", "format"),  # always per quarter
    "customers": ("moment", "category", "format", "network", "language", "quarter", "item"),
    "spread": (),
}
SENT = ("sent", "accepted", "declined", "published")  # reached sent or beyond
RESPONDED = ("accepted", "declined", "published")
ACCEPTED = ("accepted", "published")
POSITIVE, NEGATIVE = 0.2, -0.2  # sentiment above POSITIVE is positive, below NEGATIVE negative
TOP_SHARE = 0.10  # spread: the share of activations that went to this fraction of the roster
REACTIONS = ("likes", "shares", "comments")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFINITIONS = {
    "activations": {
        "activations": "Activations in the group, whatever their status.",
        "sent": "Activations that reached sent (sent, accepted, declined or published).",
        "influencers_activated": "Distinct influencers with an activation that reached sent.",
        "responded": "Sent activations accepted, declined or published.",
        "accepted": "Accepted or published.",
        "declined": "Declined.",
        "published": "Published.",
        "response_rate": "responded / sent.",
        "activation_rate": "published / sent.",
        "publications": "Distinct content ids listed in the activations' publications.",
        "content_quality": "Mean format quality of the publications (scoring.json format_quality; 0.5 for a "
        "format it does not list, or a piece no longer stored).",
        "formats": "Share of each format among the publications ('unknown': a piece no longer stored).",
    },
    "share_of_voice": {
        "publications": "Publications on the theme in the quarter.",
        "voice_publications": "Of them, by the voices.",
        "share": "voice_publications / publications.",
        "engagement_share": "The voices' likes + shares + comments on these publications / everyone's.",
    },
    "tonality": {
        "publications": "The voices' publications with a sentiment.",
        "mean_sentiment": "Mean sentiment, from -1 to 1.",
        "positive_share": f"Share with a sentiment above {POSITIVE}.",
        "negative_share": f"Share with a sentiment below {NEGATIVE}.",
        "net_sentiment": "(positive - negative) / (positive + negative); n = positive + negative.",
    },
    "customers": {
        "impressions": "Impression events.",
        "clicks": "Click events.",
        "conversions": "Conversion events.",
        "dismisses": "Dismiss events.",
        "ctr": "clicks / impressions.",
        "conversion_rate": "conversions / clicks.",
        "conversions_per_impression": "conversions / impressions.",
        "coec": "Clicks over expected clicks: the sum, over the group's impressions, of the CTR at their rank over "
        "every impression in the filters. Events whose rank is known; n = those impressions.",
    },
    "spread": {
        "roster": "Influencers not opted out matching the category, language and network filters.",
        "activations": "Activations that reached sent, of roster members, in the filters.",
        "people_activated": "Roster members with at least one.",
        "max_per_person": "The most any roster member had.",
        "mean_per_person": "activations / roster.",
        "mean_per_activated": "activations / people_activated.",
        "top10_share": f"Share of the activations that went to the ceil({TOP_SHARE:.0%} of the roster) "
        "most-activated roster members.",
        "gini": "Gini coefficient of activations per roster member: 0 when all have as many, towards 1 when a few "
        "have them all.",
    },
}


@dataclass(frozen=True)
class Scope:
    """The filters of one KPI request, checked: each list filter admits any of its values."""

    campaign: frozenset[str] = frozenset()
    moment: frozenset[str] = frozenset()
    category: frozenset[str] = frozenset()
    network: frozenset[str] = frozenset()
    language: frozenset[str] = frozenset()
    since: str | None = None  # ISO dates, inclusive
    until: str | None = None

    def admits(self, attrs: dict[str, tuple[Any, ...]], names: Iterable[str] = LIST_FILTERS) -> bool:
        return all(not getattr(self, n) or any(v in getattr(self, n) for v in attrs[n]) for n in names)

    def admits_day(self, day: str) -> bool:
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def given(self) -> dict[str, Any]:
        out: dict[str, Any] = {n: sorted(getattr(self, n)) for n in LIST_FILTERS if getattr(self, n)}
        return {**out, **{n: getattr(self, n) for n in ("since", "until") if getattr(self, n)}}


def kpis(
    store: Store,
    scoring_config: dict[str, Any],
    filters: dict[str, Any],
    group_by: Sequence[str],
    voices: str = "activated",
    themes: int = 10,
) -> dict[str, Any]:
    """Every KPI section for these filters and groupings, from one consistent state of the store."""
    scope = parse_filters(filters)
    keys = check_group_by(group_by)
    if voices != "activated" and voices not in CATEGORIES:
        raise InvalidRequestError(
            f"Unknown voices {voices!r}.", {"voices": [f"Must be 'activated' or a category: {', '.join(CATEGORIES)}."]}
        )
    if isinstance(themes, bool) or not isinstance(themes, int) or not 1 <= themes <= 100:
        raise InvalidRequestError("themes must be an integer from 1 to 100.", {"themes": ["Out of range."]})
    with store.snapshot() as db:
        people = _people(db)
        activations = [a for a in _activations(db, people) if scope.admits_day(a["day"]) and scope.admits(a["attrs"])]
        formats = _formats(db, {c for a in activations for c in a["publications"]})
        publications = _publications(db, people, scope)
        events = _events(db, scope)
        items = _items(db, people, {(kind, item) for kind, item, *_ in events})
    voice_ids = _voices(voices, activations, people, scope)
    # Voices of a category are who they are, whatever the campaign or moment asked for.
    unused = [n for n in ("campaign", "moment") if getattr(scope, n)] if voices != "activated" else []
    return {
        "filters": scope.given(),
        "group_by": keys,
        "voices": voices,
        "activations": activation_section(activations, formats, scoring_config, keys),
        "share_of_voice": share_of_voice_section(publications, voice_ids, keys, themes, voices, unused),
        "tonality": tonality_section(publications, voice_ids, keys, voices, unused),
        "customers": customer_section(events, items, scope, keys),
        "spread": spread_section(activations, people, scope, keys),
    }


def parse_filters(filters: dict[str, Any]) -> Scope:
    """The filters as a Scope; unknown names, categories and dates that are not ISO days are refused."""
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise InvalidRequestError(
            f"Unknown filter {unknown[0]!r}.", {name: [f"Must be among: {', '.join(FILTER_KEYS)}."] for name in unknown}
        )
    values: dict[str, Any] = {}
    for name in LIST_FILTERS:
        given = filters.get(name) or ()
        given = [given] if isinstance(given, str) else list(given)
        if not all(isinstance(v, str) and v for v in given):
            raise InvalidRequestError(f"{name} must be strings.", {name: ["Must be non-empty strings."]})
        values[name] = frozenset(given)
    wrong = sorted(values["category"] - set(CATEGORIES))
    if wrong:
        raise InvalidRequestError(
            f"Unknown category {wrong[0]!r}.", {"category": [f"Must be among: {', '.join(CATEGORIES)}."]}
        )
    for name in ("since", "until"):
        values[name] = _iso_day(name, filters.get(name))
    if values["since"] and values["until"] and values["until"] < values["since"]:
        raise InvalidRequestError("until is before since.", {"until": ["Must be on or after since."]})
    return Scope(**values)


def check_group_by(group_by: Sequence[str]) -> list[str]:
    """The group_by keys, known ones only, each once, in the order given."""
    if isinstance(group_by, str):
        group_by = [group_by]
    unknown = [k for k in group_by if k not in GROUP_KEYS]
    if unknown:
        raise InvalidRequestError(
            f"Unknown group_by key {unknown[0]!r}.", {"group_by": [f"Must be among: {', '.join(GROUP_KEYS)}."]}
        )
    return list(dict.fromkeys(group_by))


def _iso_day(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()[:10]
    try:
        if not isinstance(value, str) or not DAY.match(value):
            raise ValueError(value)
        return date.fromisoformat(value).isoformat()
    except ValueError as e:
        raise InvalidRequestError(
            f"{name} is not an ISO date: {value!r}.", {name: ["Must be an ISO date such as 2026-07-01."]}
        ) from e


# -- reading the store -------------------------------------------------------------------------------


def _people(db: Any) -> dict[str, dict[str, Any]]:
    sql = "SELECT id, category, language, networks, opted_out FROM influencers"
    return {
        r[0]: {"category": r[1], "language": r[2], "networks": tuple(json.loads(r[3])), "opted_out": bool(r[4])}
        for r in db.execute(sql)
    }


def _activations(db: Any, people: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    sql = """SELECT id, campaign_id, influencer_id, moment, type, status, sent_at, created_at, publications
             FROM activations"""
    out = []
    for row in db.execute(sql):
        person = people.get(row[2], {})
        day = (row[6] or row[7])[:10]
        attrs = {
            "campaign": (row[1],),
            "moment": (row[3],),
            "type": (row[4],),
            "category": (person.get("category"),),
            "language": (person.get("language"),),
            "network": person.get("networks") or (None,),
            "quarter": (quarter_of(day),),
        }
        out.append(
            {"influencer": row[2], "status": row[5], "day": day, "publications": json.loads(row[8]), "attrs": attrs}
        )
    return out


def _formats(db: Any, content_ids: set[str]) -> dict[str, str]:
    return dict(select_in(db, "SELECT id, format FROM content WHERE id IN ({marks})", sorted(content_ids)))


def _publications(db: Any, people: dict[str, dict[str, Any]], scope: Scope) -> list[dict[str, Any]]:
    """Visible content published within the dates, on the networks and in the languages asked for."""
    sql = """
        SELECT c.influencer_id, c.format, c.language, c.network, substr(c.published_at, 1, 10), c.topics,
               c.engagement, c.sentiment
        FROM content c LEFT JOIN influencers a ON a.id = c.influencer_id
        WHERE (c.influencer_id IS NULL OR a.opted_out = 0)
          AND substr(c.published_at, 1, 10) BETWEEN ? AND ?"""
    out = []
    for author, fmt, language, network, day, topics, engagement, sentiment in db.execute(
        sql, [scope.since or "0000-00-00", scope.until or "9999-99-99"]
    ):
        attrs = {
            "network": (network,),
            "language": (language,),
            "format": (fmt,),
            "category": (people.get(author, {}).get("category"),),
            "quarter": (quarter_of(day),),
        }
        if not scope.admits(attrs, ("network", "language")):
            continue
        reactions = json.loads(engagement) if engagement else {}
        out.append(
            {
                "author": author,
                "themes": sorted({fold(t) for t in json.loads(topics) if fold(t)}),
                "engagement": sum(reactions.get(k) or 0 for k in REACTIONS),
                "sentiment": sentiment,
                "attrs": attrs,
            }
        )
    return out


def _events(db: Any, scope: Scope) -> list[tuple[Any, ...]]:
    """(kind, item, type, rank shown, moment, quarter, count): events within the dates, counted; the rank and the
    moment come from what was served when the event does not say."""
    sql = """
        SELECT e.kind, e.item_id, e.type,
               coalesce(e.rank, (SELECT json_extract(j.value, '$[2]') FROM json_each(s.items) j
                                 WHERE json_extract(j.value, '$[0]') = e.kind
                                   AND json_extract(j.value, '$[1]') = e.item_id LIMIT 1)),
               coalesce(e.moment, s.moment),
               strftime('%Y', e.at, 'unixepoch') || '-Q'
                   || ((CAST(strftime('%m', e.at, 'unixepoch') AS INTEGER) + 2) / 3),
               count(*)
        FROM events e LEFT JOIN served s ON s.request_id = e.request_id
        WHERE e.at >= ? AND e.at < ?
        GROUP BY 1, 2, 3, 4, 5, 6"""
    since = _epoch(scope.since) if scope.since else -math.inf
    until = _epoch(scope.until) + 86_400 if scope.until else math.inf
    return db.execute(sql, [since, until]).fetchall()


def _items(db: Any, people: dict[str, dict[str, Any]], wanted: set[tuple[str, str]]) -> dict[tuple, dict]:
    """The attributes events are filtered and grouped by, for each (kind, id) they name."""
    out: dict[tuple[str, str], dict[str, tuple[Any, ...]]] = {}
    for kind, item in wanted:
        if kind == "influencers":
            person = people.get(item, {})
            out[kind, item] = {
                "category": (person.get("category"),),
                "language": (person.get("language"),),
                "network": person.get("networks") or (None,),
                "format": (None,),
            }
    ids = sorted(item for kind, item in wanted if kind == "content")
    sql = "SELECT id, influencer_id, format, language, network FROM content WHERE id IN ({marks})"
    for item, author, fmt, language, network in select_in(db, sql, ids):
        category = people.get(author, {}).get("category")
        out["content", item] = {
            "category": (category,),
            "language": (language,),
            "network": (network,),
            "format": (fmt,),
        }
    unknown = {"category": (None,), "language": (None,), "network": (None,), "format": (None,)}
    return {key: out.get(key, unknown) for key in wanted}


def _voices(voices: str, activations: list[dict], people: dict[str, dict], scope: Scope) -> set[str]:
    """Who the influential voices are (never people who opted out: their content is not counted)."""
    if voices == "activated":
        found = {a["influencer"] for a in activations if a["status"] in SENT}
    else:
        found = {i for i, p in people.items() if p["category"] == voices}
        found = {i for i in found if not scope.category or voices in scope.category}
    return {i for i in found if i in people and not people[i]["opted_out"]}


# -- the sections ------------------------------------------------------------------------------------


def activation_section(
    activations: list[dict], formats: dict[str, str], config: dict[str, Any], keys: list[str]
) -> dict[str, Any]:
    """Per group: how many were sent, answered, published, and what the publications were worth."""
    applied, ignored = _split("activations", keys)
    out = []
    for group, rows in _grouped(activations, applied, lambda a: a["attrs"], always_total=True):
        sent = [a for a in rows if a["status"] in SENT]
        count, n = Counter(a["status"] for a in sent), len(sent)
        responded, published = sum(count[s] for s in RESPONDED), count["published"]
        pub_formats = [formats.get(c) for c in sorted({c for a in rows for c in a["publications"]})]
        shares, pubs = Counter(f or "unknown" for f in pub_formats), len(pub_formats)
        figures = {
            "activations": (len(rows), len(rows)),
            "sent": (n, len(rows)),
            "influencers_activated": (len({a["influencer"] for a in sent}), n),
            "responded": (responded, n),
            "accepted": (sum(count[s] for s in ACCEPTED), n),
            "declined": (count["declined"], n),
            "published": (published, n),
            "response_rate": (ratio(responded, n), n),
            "activation_rate": (ratio(published, n), n),
            "publications": (pubs, pubs),
            "content_quality": (ratio(sum(quality(config, f or "") for f in pub_formats), pubs), pubs),
            "formats": ({f: shares[f] / pubs for f in sorted(shares)}, pubs),
        }
        out.append(_described("activations", group, figures))
    return {"group_by": applied, "ignored_group_by": ignored, "groups": out}


def share_of_voice_section(
    publications: list[dict], voices: set[str], keys: list[str], themes: int, rule: str, unused: list[str]
) -> dict[str, Any]:
    """Per quarter and theme: the voices' publications over all publications on the theme, plain and weighted."""
    applied, ignored = _split("share_of_voice", keys)
    applied = ["quarter", "theme", *(k for k in applied if k != "quarter")]
    totals = Counter(t for p in publications for t in p["themes"])
    top = sorted(totals, key=lambda t: (-totals[t], t))[:themes]
    per_theme = [{**p, "attrs": {**p["attrs"], "theme": (t,)}} for p in publications for t in p["themes"] if t in top]
    out = []
    for group, rows in _grouped(per_theme, applied, lambda p: p["attrs"]):
        theirs, n = [p for p in rows if p["author"] in voices], len(rows)
        engagement = sum(p["engagement"] for p in rows)
        figures = {
            "publications": (n, n),
            "voice_publications": (len(theirs), n),
            "share": (ratio(len(theirs), n), n),
            "engagement_share": (ratio(sum(p["engagement"] for p in theirs), engagement), n),
        }
        out.append(_described("share_of_voice", group, figures))
    return {
        "group_by": applied,
        "ignored_group_by": ignored,
        "ignored_filters": unused,
        "voices": _voices_text(rule, len(voices)),
        "themes": top,
        "definition": "A theme is a content topic tag, accents and case folded; the themes are the most published "
        "ones in the filters. Publications: visible content (not by opted-out people; brand content included) "
        "within the dates, networks and languages asked for.",
        "groups": out,
    }


def tonality_section(
    publications: list[dict], voices: set[str], keys: list[str], rule: str, unused: list[str]
) -> dict[str, Any]:
    """Per quarter (and group): the sentiment of the voices' publications."""
    applied, ignored = _split("tonality", keys)
    applied = ["quarter", *(k for k in applied if k != "quarter")]
    theirs = [p for p in publications if p["author"] in voices and p["sentiment"] is not None]
    out = []
    for group, rows in _grouped(theirs, applied, lambda p: p["attrs"]):
        values = [p["sentiment"] for p in rows]
        n, positive, negative = len(values), sum(v > POSITIVE for v in values), sum(v < NEGATIVE for v in values)
        figures = {
            "publications": (n, n),
            "mean_sentiment": (ratio(sum(values), n), n),
            "positive_share": (ratio(positive, n), n),
            "negative_share": (ratio(negative, n), n),
            "net_sentiment": (ratio(positive - negative, positive + negative), positive + negative),
        }
        out.append(_described("tonality", group, figures))
    return {
        "group_by": applied,
        "ignored_group_by": ignored,
        "ignored_filters": unused,
        "voices": _voices_text(rule, len(voices)),
        "thresholds": {"positive": POSITIVE, "negative": NEGATIVE},
        "groups": out,
    }


def customer_section(events: list[tuple], items: dict[tuple, dict], scope: Scope, keys: list[str]) -> dict[str, Any]:
    """Per group: impressions, clicks, conversions and dismissals of what matches showed, and CTR for position."""
    applied, ignored = _split("customers", keys)
    rows = []
    for kind, item, type_, rank, moment, quarter, count in events:
        attrs = {**items[kind, item], "moment": (moment,), "quarter": (quarter,), "item": (f"{kind}/{item}",)}
        if scope.admits(attrs, ("moment", "category", "network", "language")):
            rows.append({"type": type_, "rank": rank, "count": count, "attrs": attrs})
    at_rank = _ctr_by_rank(rows)
    out = []
    for group, found in _grouped(rows, applied, lambda r: r["attrs"], always_total=True):
        n: Counter[str] = Counter()
        for r in found:
            n[r["type"]] += r["count"]
        ranked = [r for r in found if r["rank"] in at_rank]
        shown = sum(r["count"] for r in ranked if r["type"] == "impression")
        expected = sum(r["count"] * at_rank[r["rank"]] for r in ranked if r["type"] == "impression")
        ranked_clicks = sum(r["count"] for r in ranked if r["type"] == "click")
        impressions, clicks, conversions = n["impression"], n["click"], n["conversion"]
        figures = {
            "impressions": (impressions, impressions),
            "clicks": (clicks, clicks),
            "conversions": (conversions, conversions),
            "dismisses": (n["dismiss"], n["dismiss"]),
            "ctr": (ratio(clicks, impressions), impressions),
            "conversion_rate": (ratio(conversions, clicks), clicks),
            "conversions_per_impression": (ratio(conversions, impressions), impressions),
            "coec": (ratio(ranked_clicks, expected), shown),
        }
        out.append(_described("customers", group, figures))
    return {
        "group_by": applied,
        "ignored_group_by": ignored,
        "ignored_filters": ["campaign"] if scope.campaign else [],
        "definition": "Events tied to what matches served by (request_id, kind, item_id); the rank and moment are "
        "the event's, else the served one's. category: the item's (a piece's author's); network: a piece's, or "
        "each of an influencer's.",
        "groups": out,
    }


def spread_section(activations: list[dict], people: dict[str, dict], scope: Scope, keys: list[str]) -> dict[str, Any]:
    """How concentrated the activations (reaching sent) are over the roster."""
    people_filters = ("category", "language", "network")
    roster = [
        i
        for i, p in people.items()
        if not p["opted_out"]
        and scope.admits(
            {"category": (p["category"],), "language": (p["language"],), "network": p["networks"]}, people_filters
        )
    ]
    per_person = Counter(a["influencer"] for a in activations if a["status"] in SENT)
    counts = sorted((per_person[i] for i in roster), reverse=True)
    total, size, activated = sum(counts), len(counts), sum(1 for c in counts if c)
    top = math.ceil(TOP_SHARE * size)
    figures = {
        "roster": (size, size),
        "activations": (total, total),
        "people_activated": (activated, size),
        "max_per_person": (counts[0] if counts else None, size),
        "mean_per_person": (ratio(total, size), size),
        "mean_per_activated": (ratio(total, activated), activated),
        "top10_share": (ratio(sum(counts[:top]), total), total),
        "gini": (gini(counts), size),
    }
    described = _described("spread", {}, figures)
    described["top10_share"]["definition"] += f" Here: the {top} most-activated."
    return {"group_by": [], "ignored_group_by": list(keys), **described}


# -- arithmetic ----------------------------------------------------------------------------------


def figure(value: Any, n: int, definition: str) -> dict[str, Any]:
    return {"value": value, "n": n, "definition": definition}


def _described(section: str, group: dict[str, Any], figures: dict[str, tuple[Any, int]]) -> dict[str, Any]:
    """A group's figures, each with its n and its definition."""
    meaning = DEFINITIONS[section]
    return {"group": group, **{name: figure(value, n, meaning[name]) for name, (value, n) in figures.items()}}


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is 0."""
    return numerator / denominator if denominator else None


def gini(values: Sequence[int]) -> float | None:
    """Mean absolute difference over twice the mean; None when all are 0 or there are none."""
    total, n = sum(values), len(values)
    if not total:
        return None
    ordered = sorted(values)
    return 2 * sum(i * v for i, v in enumerate(ordered, start=1)) / (n * total) - (n + 1) / n


def quarter_of(day: str) -> str:
    """'2026-08-14' -> '2026-Q3'."""
    return f"{day[:4]}-Q{(int(day[5:7]) + 2) // 3}"


def _epoch(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def _ctr_by_rank(rows: list[dict]) -> dict[int, float]:
    """The CTR at each rank over every impression given (ranks without an impression have none)."""
    shown, clicked = Counter(), Counter()
    for r in rows:
        if r["rank"] is not None and r["type"] in ("impression", "click"):
            (shown if r["type"] == "impression" else clicked)[r["rank"]] += r["count"]
    return {rank: clicked[rank] / shown[rank] for rank in shown}


def _split(section: str, keys: list[str]) -> tuple[list[str], list[str]]:
    applies = SECTION_KEYS[section]
    return [k for k in keys if k in applies], [k for k in keys if k not in applies]


def _grouped(
    rows: list[dict], keys: list[str], attrs_of: Callable[[dict], dict], *, always_total: bool = False
) -> list[tuple[dict[str, Any], list[dict]]]:
    """Rows by the values of ``keys`` (a row with several values of a key, as an influencer's networks, is in each
    of their groups), sorted; without keys, one group of all the rows (even none, with ``always_total``)."""
    if not keys:
        return [({}, rows)] if rows or always_total else []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        attrs = attrs_of(row)
        for values in itertools.product(*(attrs[k] for k in keys)):
            groups[values].append(row)
    ordered = sorted(groups, key=lambda vs: [(v is None, str(v)) for v in vs])
    return [(dict(zip(keys, values, strict=True)), groups[values]) for values in ordered]


def _voices_text(rule: str, count: int) -> dict[str, Any]:
    if rule == "activated":
        text = "Influencers (not opted out) with at least one activation that reached sent, in the filters."
    else:
        text = f"Influencers (not opted out) of the category {rule!r}; none if the category filter leaves it out."
    return {"rule": rule, "count": count, "definition": text}
