"""From a target (query and moment) to ranked influencers and content.

candidates (``retrieval``, under the filters' mask) -> every score part as arrays over the candidates, from the
catalogue's per-record values (``scoring``) and the loop's (learned engagement, fatigue) -> diversity (and, when
exploring, Thompson sampling of the lower slots) -> explanations, for the page only: rows are read from the store
for what is returned, and nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcher import scoring
from matcher.catalogue import Catalogue
from matcher.facets import NOTHING_ASKED, Asked, FacetNames
from matcher.filters import Filters
from matcher.learning import explore
from matcher.loop import Loop
from matcher.products import ProductNames
from matcher.retrieval import Candidates, Retriever, Target
from matcher.scoring import Part, fold, parts_of, shorten
from matcher.store import Store
from models.moments import Moment

NEUTRAL = {"engagement": 0.5, "fatigue": 1.0}  # the value of a loop part that has learned nothing of the item


@dataclass
class Ranked:
    """One result: its row, its score and the parts the score is made of."""

    row: dict[str, Any]
    score: float
    parts: dict[str, Part]
    author: dict[str, Any] | None = None
    evidence: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    propensity: float = 1.0  # the probability that this result was shown in its slot (below 1 when exploring)

    @property
    def explanation(self) -> str:
        """The parts, largest contribution first, each with its reason; a loop part that says nothing yet (no
        customer history, no recent activation) comes last, whatever it adds."""
        ordered = sorted(
            self.parts.items(), key=lambda item: (NEUTRAL.get(item[0]) == item[1].value, -item[1].contribution)
        )
        return "; ".join(f"{name.replace('_', ' ')} {p.value:.2f} ({p.reason})" for name, p in ordered) + "."


@dataclass(frozen=True)
class Policy:
    """How a request uses what the loop learned: ``learned`` False scores every item's engagement as neutral (the
    static ranking); ``explore`` samples the slots after the first ``engagement.explore.fixed_slots``."""

    learned: bool = True
    explore: bool = False
    rng: np.random.Generator | None = field(default=None, compare=False)
    fixed_slots: int | None = None  # slots kept as ranked when exploring; None: the scoring file's

    @property
    def name(self) -> str:
        return "explore" if self.explore else "learned" if self.learned else "static"


LEARNED = Policy()


class Ranker:
    def __init__(
        self,
        store: Store,
        catalogue: Catalogue,
        config: dict[str, Any],
        loop: Loop,
        aliases: dict[str, str] | None = None,
        facet_names: FacetNames | None = None,
        mode: str = "hybrid",
    ):
        self.store = store
        self.catalogue = catalogue
        self.config = config
        self.loop = loop
        self.aliases = aliases or {}
        self.facet_names = facet_names or FacetNames({})
        self.retriever = Retriever(catalogue, config, mode)
        self._products: tuple[int, ProductNames] | None = None

    def with_mode(self, mode: str) -> Ranker:
        """The same catalogue, retrieving with ``mode`` ('hybrid', 'dense' or 'lexical')."""
        return Ranker(self.store, self.catalogue, self.config, self.loop, self.aliases, self.facet_names, mode)

    def named_products(self, target: Target) -> tuple[str, ...]:
        """The products the query names (``matcher.products``), folded; the names are kept per catalogue version."""
        version = self.catalogue.version
        if self._products is None or self._products[0] != version:
            tags = self.catalogue.tables["content"].tags["products"]
            names = ProductNames([t for t in tags.terms if len(tags.get(t)[0])], self.aliases)  # stored pieces' tags
            self._products = (version, names)
        return self._products[1].named_in(target.query)

    def _about(self, products: tuple[str, ...]) -> np.ndarray:
        """By content key: whether the piece is tagged with one of ``products``."""
        table = self.catalogue.tables["content"]
        about = np.zeros(table.size, bool)
        about[table.tags["products"].keys_with_any(products)] = True
        return about

    def asked(self, target: Target) -> Asked:
        """The formats, kinds of voice, networks and languages the query names (``matcher.facets``)."""
        return self.facet_names.named_in(target.query)

    def _asked_content(self, asked: Asked, keys: np.ndarray) -> np.ndarray:
        """The ``asked`` part of these pieces: of their format, their author's category, their network and their
        language, the share that is what the query asks for."""
        table, vocabulary = self.catalogue.tables["content"], self.catalogue.vocabulary
        values, matches = table.values, []
        if asked.formats:
            matches.append(np.isin(values["format"][keys], vocabulary.codes(asked.formats)))
        if asked.categories:
            author = values["author"][keys]
            categories = self.catalogue.tables["influencers"].values["category"]
            wanted = np.isin(categories, vocabulary.codes(asked.categories))
            matches.append((author >= 0) & wanted[np.maximum(author, 0)])
        if asked.networks:
            matches.append(np.isin(values["network"][keys], vocabulary.codes(asked.networks)))
        if asked.languages:
            matches.append(np.isin(values["language"][keys], vocabulary.codes(asked.languages)))
        return scoring.asked(matches)

    def _asked_influencers(self, asked: Asked, keys: np.ndarray) -> np.ndarray:
        """The ``asked`` part of these people: their category, their networks, their language, and the share of their
        pieces in the formats the query asks for."""
        table, vocabulary = self.catalogue.tables["influencers"], self.catalogue.vocabulary
        matches = []
        if asked.formats:
            content = self.catalogue.tables["content"]
            pieces = content.alive & np.isin(content.values["format"], vocabulary.codes(asked.formats))
            authors = content.values["author"][pieces]
            counts = np.bincount(authors[authors >= 0], minlength=table.size)
            matches.append(scoring.asked_share(counts[keys], self.catalogue.content_counts()[keys]))
        if asked.categories:
            matches.append(np.isin(table.values["category"][keys], vocabulary.codes(asked.categories)))
        if asked.networks:
            on = np.zeros(table.size, bool)
            on[table.tags["networks"].keys_with_any(asked.networks)] = True
            matches.append(on[keys])
        if asked.languages:
            matches.append(np.isin(table.values["language"][keys], vocabulary.codes(asked.languages)))
        return scoring.asked(matches)

    def pool_size(self, limit: int) -> int:
        candidates = self.config["candidates"]
        return max(candidates["minimum"], candidates["per_result"] * limit)

    # -- content --------------------------------------------------------------------------------

    def rank_content(
        self, target: Target, moment: Moment, filters: Filters, limit: int, now: float, policy: Policy = LEARNED
    ) -> list[Ranked]:
        """``now``: seconds since the epoch that freshness counts from."""
        allowed = self.catalogue.visible("content") & filters.content_mask(self.catalogue)
        found = self.retriever.candidates("content", target, self.pool_size(limit), allowed)
        values = self._content_values(found, moment, now)
        named, asked = self.named_products(target), self.asked(target)
        if named:
            values["product"] = self._about(named)[found.keys].astype(np.float64)
        if asked:
            values["asked"] = self._asked_content(asked, found.keys)
        values["engagement"] = self._engagement("content", moment, found.keys, policy)
        weights = scoring.weights_for(self.config, moment, "content", target.query is not None, values)
        scores = scoring.weighted_mean(values, weights)
        authors = self.catalogue.tables["content"].values["author"][found.keys].tolist()
        most = self.config["diversity"]["max_per_influencer"]

        def choose(order: list[int]) -> list[int]:
            return diversify(order, authors, most, limit)

        chosen, propensity = self._order(found, scores, values, weights, "content", moment, policy, choose)
        out = self._content_results(found, chosen, values, scores, weights, moment, target, policy, named, asked)
        return _with_propensities(out, chosen, propensity, found)

    def _why_engaging(self, kind: str, moment: Moment, key: int, policy: Policy) -> str:
        if not policy.learned:
            return "static ranking: what customers did is not used"
        return self.loop.engagement.reason(kind, moment.name, key)

    def _engagement(self, kind: str, moment: Moment, keys: np.ndarray, policy: Policy) -> np.ndarray:
        if not policy.learned:
            return np.full(len(keys), 0.5)
        return self.loop.engagement.values(kind, moment.name, keys)

    def _order(
        self,
        found: Candidates,
        scores: np.ndarray,
        values: dict[str, np.ndarray],
        weights: dict[str, float],
        kind: str,
        moment: Moment,
        policy: Policy,
        choose: Any,
    ) -> tuple[list[int], list[float]]:
        """The positions shown, best first, and the probability of each in its slot."""
        if not policy.explore or not weights.get("engagement") or len(found.keys) == 0:
            chosen = choose(np.lexsort((found.keys, -scores)).tolist())
            return chosen, [1.0] * len(chosen)
        settings = self.loop.config["explore"]
        rng = policy.rng or np.random.default_rng()
        samples = self.loop.engagement.samples(kind, moment.name, found.keys, settings["draws"], rng)
        share = weights["engagement"] / sum(weights[name] for name in values)
        fixed = settings["fixed_slots"] if policy.fixed_slots is None else policy.fixed_slots
        return explore(scores, values["engagement"], samples, share, choose, fixed, found.keys)

    def _content_values(self, found: Candidates, moment: Moment, now: float) -> dict[str, np.ndarray]:
        """Every part's value for each candidate, in the order the parts are shown."""
        table, people = self.catalogue.tables["content"], self.catalogue.tables["influencers"]
        keys, v = found.keys, table.values
        author = v["author"][keys]
        by_author = np.where(author >= 0, author, 0)
        author_fit = np.where(author >= 0, people.values[f"fit:{moment.name}"][by_author], np.nan)
        author_reach = np.where(author >= 0, people.values["reach"][by_author], np.nan)
        return {
            "relevance": found.relevance,
            "moment_fit": scoring.content_fit_value(self.config, v[f"format_fit:{moment.name}"][keys], author_fit),
            "quality": v["quality"][keys],
            "influence": scoring.content_influence_value(self.config, author_reach, v["interactions"][keys]),
            "freshness": scoring.freshness(self.config, (now - v["published"][keys]) / 86400),
            "tonality": v["tonality"][keys],
        }

    def _content_results(
        self,
        found: Candidates,
        chosen: list[int],
        values: dict[str, np.ndarray],
        scores: np.ndarray,
        weights: dict[str, float],
        moment: Moment,
        target: Target,
        policy: Policy,
        named: tuple[str, ...] = (),
        asked: Asked = NOTHING_ASKED,
    ) -> list[Ranked]:
        """The chosen candidates as results: their rows, and every part with its reason."""
        rows = self.catalogue.rows("content", found.keys[chosen])
        author_keys = self.catalogue.tables["content"].values["author"][found.keys[chosen]]
        by_key = self.catalogue.rows("influencers", author_keys[author_keys >= 0])
        authors = {row["id"]: row for row in by_key.values()}
        out = []
        for i in chosen:
            row = rows.get(int(found.keys[i]))
            if row is None:  # deleted by another process a moment ago
                continue
            author = authors.get(row["influencer_id"] or "")
            author_fit = None if author is None else self._fit(author, moment).value
            reasons = {
                "relevance": _why_relevant(found, i, target),
                "moment_fit": scoring.content_fit(self.config, moment, row, author_fit).reason,
                "quality": f"{row['format']} format",
                "influence": scoring.content_influence(self.config, row, author).reason,
                "freshness": f"published {row['published_at'][:10]}",
                "tonality": "sentiment unknown" if row["sentiment"] is None else f"sentiment {row['sentiment']:+.1f}",
                "engagement": self._why_engaging("content", moment, row["key"], policy),
            }
            if named:
                reasons["product"] = _why_product(named, {fold(p) for p in row["products"]})
            if asked:
                reasons["asked"] = _why_asked(asked, values["asked"][i])
            out.append(Ranked(row, float(scores[i]), _parts(values, weights, reasons, i), author=author))
        return out

    # -- influencers ----------------------------------------------------------------------------

    def rank_influencers(
        self,
        target: Target,
        moment: Moment,
        filters: Filters,
        limit: int,
        policy: Policy = LEARNED,
        only: np.ndarray | None = None,
    ) -> list[Ranked]:
        """The ``limit`` best; with ``only`` (keys), those of them the filters allow, scored among the same
        candidates as any request (what a planner adding someone by hand is shown), whatever their rank."""
        content = self.retriever.candidates(
            "content", target, self.config["candidates"]["content_for_influencers"], self.catalogue.visible("content")
        )
        by_author: dict[int, list[int]] = defaultdict(list)  # author key -> positions in ``content``, best first
        for i, author in enumerate(self.catalogue.tables["content"].values["author"][content.keys].tolist()):
            if author >= 0:
                by_author[author].append(i)
        # People found through what they publish are candidates as much as those found through their profile.
        allowed = self.catalogue.visible("influencers") & filters.influencer_mask(self.catalogue)
        include = np.array(sorted(by_author), np.int64)
        if only is not None:
            include = np.union1d(include, only[(only >= 0) & (only < len(allowed))])
        found = self.retriever.candidates("influencers", target, self.pool_size(limit), allowed, include=include)
        table = self.catalogue.tables["influencers"]
        publishing = self.catalogue.content_counts()[found.keys]
        best = np.array([content.relevance[by_author[k][0]] if k in by_author else np.nan for k in found.keys.tolist()])
        best = np.where(np.isnan(best), np.where(publishing > 0, 0.0, found.relevance), best)
        values = {
            "relevance": scoring.influencer_relevance(self.config, found.relevance, best),
            "moment_fit": table.values[f"fit:{moment.name}"][found.keys],
            "influence": table.values["influence"][found.keys],
            "engagement": self._engagement("influencers", moment, found.keys, policy),
            "fatigue": self.loop.fatigue.value(found.keys),
        }
        named, asked = self.named_products(target), self.asked(target)
        if named:
            values["product"] = self._published_about(named)[found.keys].astype(np.float64)
        if asked:
            values["asked"] = self._asked_influencers(asked, found.keys)
        weights = scoring.weights_for(self.config, moment, "influencer", target.query is not None, values)
        scores = scoring.weighted_mean(values, weights)
        if only is not None:
            wanted = np.isin(found.keys, only)
            chosen = [i for i in np.lexsort((found.keys, -scores)).tolist() if wanted[i]]
            propensity = [1.0] * len(chosen)
        else:
            chosen, propensity = self._order(
                found, scores, values, weights, "influencers", moment, policy, lambda order: order[:limit]
            )
        out = self._influencer_results(
            found, chosen, values, scores, weights, moment, target, content, by_author, policy, named, asked
        )
        return _with_propensities(out, chosen, propensity, found)

    def _influencer_results(
        self,
        found: Candidates,
        chosen: list[int],
        values: dict[str, np.ndarray],
        scores: np.ndarray,
        weights: dict[str, float],
        moment: Moment,
        target: Target,
        content: Candidates,
        by_author: dict[int, list[int]],
        policy: Policy,
        named: tuple[str, ...] = (),
        asked: Asked = NOTHING_ASKED,
    ) -> list[Ranked]:
        keys = found.keys[chosen]
        rows = self.catalogue.rows("influencers", keys)
        evidence_at = {int(k): by_author.get(int(k), [])[:3] for k in keys}
        pieces = self.catalogue.rows("content", [content.keys[i] for at in evidence_at.values() for i in at])
        publishing = self.catalogue.content_counts()
        out = []
        for i in chosen:
            key = int(found.keys[i])
            row = rows.get(key)
            if row is None:
                continue
            evidence = [(pieces.get(int(content.keys[j])), float(content.relevance[j])) for j in evidence_at[key]]
            evidence = [(piece, relevance) for piece, relevance in evidence if piece is not None]
            profile = found.relevance[i]
            if evidence:
                why = f"best content {evidence[0][1]:.2f} «{_title(evidence[0][0])}»"
            elif publishing[key]:
                why = "none of their content among the closest"
            else:
                why = "no content yet"
            reasons = {
                "relevance": f"profile {profile:.2f} ({_why_relevant(found, i, target)}), {why}",
                "moment_fit": self._fit(row, moment, key).reason,
                "influence": scoring.influencer_influence(self.config, row).reason,
                "engagement": self._why_engaging("influencers", moment, key, policy),
                "fatigue": self.loop.fatigue.reason(key),
            }
            if named:
                about = values["product"][i] > 0
                reasons["product"] = (
                    f"published about {', '.join(named)}" if about else f"nothing on {', '.join(named)}"
                )
            if asked:
                reasons["asked"] = _why_asked(asked, values["asked"][i])
            out.append(Ranked(row, float(scores[i]), _parts(values, weights, reasons, i), evidence=evidence))
        return out

    def _published_about(self, products: tuple[str, ...]) -> np.ndarray:
        """By influencer key: whether they published a piece tagged with one of ``products``."""
        content = self.catalogue.tables["content"]
        authors = content.values["author"][content.tags["products"].keys_with_any(products)]
        published = np.zeros(self.catalogue.tables["influencers"].size, bool)
        published[authors[authors >= 0]] = True
        return published

    def _fit(self, row: dict[str, Any], moment: Moment, key: int | None = None) -> Part:
        """An influencer's moment fit, with its reason (the value is the one the catalogue holds)."""
        table = self.catalogue.tables["influencers"]
        key = row["key"] if key is None else key
        profile = float(table.values[f"profile:{moment.name}"][key]) if key < table.size else 0.0
        return scoring.influencer_fit(self.config, moment, row, profile)


def diversify(order: list[int], authors: list[int], max_per_author: int, limit: int) -> list[int]:
    """Best first, at most ``max_per_author`` per author until others are used up; brand content (-1) is one author.

    ``order``: candidate positions best first; ``authors``: each candidate's author. Returns chosen positions."""
    chosen: list[int] = []
    held: list[int] = []
    per_author: dict[int, int] = defaultdict(int)
    for i in order:
        if per_author[authors[i]] < max_per_author:
            per_author[authors[i]] += 1
            chosen.append(i)
        else:
            held.append(i)
        if len(chosen) == limit:
            return chosen
    return chosen + held[: limit - len(chosen)]


def _with_propensities(
    results: list[Ranked], chosen: list[int], propensity: list[float], found: Candidates
) -> list[Ranked]:
    """Each result with the probability it had of its slot (results skip rows deleted meanwhile)."""
    by_key = {int(found.keys[i]): p for i, p in zip(chosen, propensity, strict=True)}
    for r in results:
        r.propensity = by_key.get(int(r.row["key"]), 1.0)
    return results


def _parts(
    values: dict[str, np.ndarray], weights: dict[str, float], reasons: dict[str, str], i: int
) -> dict[str, Part]:
    """Candidate ``i``'s parts: the values it was scored with (so that contributions add up to its score), and why."""
    return parts_of({name: values[name][i] for name in values}, weights, reasons)


def _why_product(named: tuple[str, ...], products: set[str]) -> str:
    about = [p for p in named if p in products]
    return f"about {', '.join(about)}" if about else f"not about {', '.join(named)}"


def _why_asked(asked: Asked, value: float) -> str:
    if value >= 1:
        return f"what the query asks for ({asked.describe()})"
    if value <= 0:
        return f"not what the query asks for ({asked.describe()})"
    return f"{value:.0%} of what the query asks for ({asked.describe()})"


def _why_relevant(found: Candidates, i: int, target: Target) -> str:
    """'meaning 0.57, words 0.80': cosine similarity and BM25 relative to the best match."""
    if not target.query:
        return f"similarity {found.dense[i]:.2f} to the {target.moment} moment"
    best = found.best_lexical
    words = f", words {found.lexical[i] / best:.2f}" if best > 0 else ""
    return f"meaning {found.dense[i]:.2f}{words}"


def _title(row: dict[str, Any]) -> str:
    return shorten(row["title"] or row["text"], 70)
