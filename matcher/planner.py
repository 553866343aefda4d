"""A plan across the moments of a launch and the influencer categories: for each moment, a shortlist per category
(ranked by ``Engine.match`` for the brief), its alternates, who was skipped and why, the content that already
serves the moment, the content gaps, and an activation type per person with the KPIs of past ones.

The rules (``activation_rules.json``, validated when read):
- contactable only: anyone held ("do not contact before") or at a fatigue cap is skipped, and the plan says so;
  people who opted out never appear, not even among the skipped;
- once per plan: a person is kept by the moment where they score best; if that moment keeps them neither on its
  shortlist nor among its alternates, their next best moment may;
- diversity: no two near-identical profiles (profile vectors' cosine above ``max_profile_cosine``) on one
  shortlist: the second moves to the alternates; and when the next best adds no network to the shortlist, the
  best one within ``network_margin`` of their score who does goes first;
- gaps are read from every stored piece about the products, not from the pieces shown.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher import kpis
from matcher.activations import ACTIVATION_TYPES
from matcher.errors import ConfigError
from matcher.filters import Filters
from matcher.ranking import Ranked
from matcher.scoring import fold
from models.api_schemas import MAX_LIMIT
from models.records import CATEGORIES

if TYPE_CHECKING:
    from matcher.service import Engine


def load_rules(path: Path, moments: Collection[str]) -> dict[str, Any]:
    """The planning rules, checked: budgets, thresholds, and a known activation type for every category (a default,
    and the moments it names, which must exist)."""
    try:
        rules = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read the planning rules {path}: {e}") from e

    def fail(problem: str) -> None:
        raise ConfigError(f"{path}: {problem}")

    budget = rules.get("budget")
    if not isinstance(budget, dict) or set(budget) != set(CATEGORIES):
        fail(f"'budget' must give activations for each category: {', '.join(CATEGORIES)}.")
    if not all(isinstance(n, int) and 0 <= n <= 20 for n in budget.values()) or not _count(rules.get("alternates")):
        fail("budgets and 'alternates' must be whole numbers from 0 to 20.")
    for section, names in {
        "diversity": ("max_profile_cosine", "network_margin"),
        "gaps": ("min_format_weight", "min_tonality"),
    }.items():
        values = rules.get(section, {})
        if not all(isinstance(values.get(n), int | float) and 0 <= values[n] <= 1 for n in names):
            fail(f"'{section}' needs {' and '.join(names)}, each from 0 to 1.")
    if not isinstance(rules["gaps"].get("languages"), list) or not _count(rules.get("content", {}).get("per_moment")):
        fail("'gaps' needs 'languages' (a list) and 'content' needs 'per_moment' (0 to 20).")
    types = rules.get("activation_types")
    if not isinstance(types, dict) or set(types) - set(CATEGORIES):
        unknown = ", ".join(sorted(set(types) - set(CATEGORIES))) if isinstance(types, dict) else "none"
        fail(f"'activation_types' names {unknown}: it may name only the categories {', '.join(CATEGORIES)}.")
    for category in CATEGORIES:
        by_moment = types.get(category)
        if not isinstance(by_moment, dict) or "default" not in by_moment:
            fail(f"'activation_types' lacks {category!r} or its 'default'.")
        for moment, rule in by_moment.items():
            if moment != "default" and moment not in moments:
                fail(f"activation_types.{category} names the unknown moment {moment!r}.")
            if not isinstance(rule, dict) or rule.get("type") not in ACTIVATION_TYPES or not rule.get("reason"):
                fail(
                    f"activation_types.{category}.{moment} needs a reason and a type among: "
                    f"{', '.join(ACTIVATION_TYPES)}."
                )
    return rules


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 20


@dataclass(frozen=True)
class PlanRequest:
    """A plan's request, checked and with every default filled in."""

    campaign: str | None
    products: tuple[str, ...]
    brief: str
    moments: tuple[str, ...]
    budget: dict[str, int]
    languages: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    min_followers: int | None = None
    max_followers: int | None = None
    starts_on: str | None = None
    ends_on: str | None = None
    alternates: int = 3
    exclude: tuple[str, ...] = ()
    product_authors_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.__dict__.items()}


@dataclass(eq=False)  # compared by identity: one object per person and list
class Candidate:
    """One person ranked for one moment and category."""

    ranked: Ranked
    key: int
    vector: np.ndarray
    note: str | None = None  # why diversity moved them, if it did

    @property
    def id(self) -> str:
        return self.ranked.row["id"]

    @property
    def score(self) -> float:
        return self.ranked.score

    @property
    def networks(self) -> set[str]:
        return set(self.ranked.row["networks"])


@dataclass
class Selection:
    shortlist: list[Candidate]
    alternates: list[Candidate]


class Planner:
    def __init__(self, engine: Engine, rules: dict[str, Any]):
        self.engine = engine
        self.rules = rules

    def plan(self, request: PlanRequest) -> list[dict[str, Any]]:
        """Every moment's part of the plan, in the order asked for."""
        categories = [c for c in CATEGORIES if request.budget[c] > 0]
        ranked = {(m, c): self._ranked(request, m, c) for m in request.moments for c in categories}
        held, reasons = self._not_contactable(ranked)
        lists = {
            place: [c for c in found if c.id not in held and c.id not in request.exclude]
            for place, found in ranked.items()
        }
        selections, kept_at = self._assign(lists, request)
        past = self._past(request.moments)
        out = []
        for moment in request.moments:
            blocks = []
            for category in categories:
                selection = selections[moment, category]
                skipped = self._skipped(ranked[moment, category], selection, moment, kept_at, reasons, request)
                blocks.append(self._block(moment, category, request, selection, skipped, past))
            out.append(
                {
                    "moment": moment,
                    "label": self.engine.moments[moment].label,
                    "categories": blocks,
                    "content": self._content(request, moment),
                    "gaps": self.gaps(request, moment),
                    "past_activations": [p for (m, _), p in sorted(past.items()) if m == moment and p["activations"]],
                }
            )
        return out

    # -- ranking and choosing ---------------------------------------------------------------------

    def _ranked(self, request: PlanRequest, moment: str, category: str) -> list[Candidate]:
        """The people of a category ranked for the moment and the brief, enough of them to fill the shortlist and
        alternates after those skipped (asked again for more when too many were)."""
        filters: dict[str, Any] = {"category": [category]}
        for name, value in (("language", request.languages), ("network", request.networks)):
            if value:
                filters[name] = list(value)
        for name in ("min_followers", "max_followers"):
            if getattr(request, name) is not None:
                filters[name] = getattr(request, name)
        if request.product_authors_only:
            filters["products"] = list(request.products)
        # Enough for every moment to find its own people: the same ones often rank first everywhere. Fatigue sinks
        # those who may not be contacted: when there are some, as many as may be, to say who was skipped.
        wanted = (request.budget[category] + request.alternates) * len(request.moments)
        limit = MAX_LIMIT if self._resting(filters) else min(MAX_LIMIT, wanted + 4)
        while True:
            found = self.engine.match(moment, request.brief, filters, limit, ["influencers"]).influencers
            usable = sum(1 for r in found if r.parts["fatigue"].value > 0 and r.row["id"] not in request.exclude)
            if usable >= wanted or len(found) < limit or limit == MAX_LIMIT:
                break
            limit = min(MAX_LIMIT, limit * 3)
        keys = np.array([r.row["key"] for r in found], np.int64)
        with self.engine.catalogue.reading():
            vectors = self.engine.catalogue.tables["influencers"].vectors(keys)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms > 0, norms, 1.0)
        return [Candidate(r, int(k), v) for r, k, v in zip(found, keys.tolist(), vectors, strict=True)]

    def _resting(self, filters: dict[str, Any]) -> int:
        """How many people these filters accept who may not be contacted today (held, or at a cap)."""
        catalogue, fatigue = self.engine.catalogue, self.engine.loop.fatigue
        fatigue.refresh()
        with catalogue.reading():
            accepted = Filters.from_mapping(filters).influencer_mask(catalogue) & catalogue.visible("influencers")
            return int((accepted & ~fatigue.contactable(len(accepted))).sum())

    def _not_contactable(self, ranked: dict[tuple[str, str], list[Candidate]]) -> tuple[set[str], dict[str, str]]:
        """Who may not be proposed today (held, or at a fatigue cap), and why."""
        fatigue = self.engine.loop.fatigue
        everyone = {c.id: c.key for found in ranked.values() for c in found}
        keys = np.array(list(everyone.values()), np.int64)
        able = fatigue.value(keys) > 0 if len(keys) else np.zeros(0, bool)
        held = {i for i, ok in zip(everyone, able.tolist(), strict=True) if not ok}
        return held, {i: fatigue.reason(everyone[i]) for i in held}

    def _assign(
        self, lists: dict[tuple[str, str], list[Candidate]], request: PlanRequest
    ) -> tuple[dict[tuple[str, str], Selection], dict[str, tuple[str, float]]]:
        """Each (moment, category)'s selection, with everyone in at most one moment: their best, or the next
        best when their best keeps them nowhere. Returns the selections and where each person kept is."""
        order = {m: i for i, m in enumerate(request.moments)}
        options: dict[str, dict[str, float]] = {}
        for (moment, _), found in lists.items():
            for c in found:
                options.setdefault(c.id, {})[moment] = c.score

        def best(person: str) -> str:
            return min(options[person], key=lambda m: (-options[person][m], order[m]))

        assigned = {person: best(person) for person in options}
        while True:
            selections = {
                (moment, category): self.select([c for c in found if assigned[c.id] == moment], request, category)
                for (moment, category), found in lists.items()
            }
            kept = {c.id for s in selections.values() for c in (*s.shortlist, *s.alternates)}
            released = [p for p in assigned if p not in kept and len(options[p]) > 1]
            if not released:
                break
            for person in released:
                del options[person][assigned[person]]
                assigned[person] = best(person)
        kept_at = {p: (assigned[p], options[p][assigned[p]]) for p in kept}
        return selections, kept_at

    def select(self, found: list[Candidate], request: PlanRequest, category: str) -> Selection:
        """The shortlist (best first, diverse) and the alternates behind it, from candidates best first."""
        rules = self.rules["diversity"]
        budget = request.budget[category]
        pool, moved, shortlist = list(found), [], []
        for c in pool:
            c.note = None  # from an earlier round of ``_assign``
        while pool and len(shortlist) < budget:
            best = pool.pop(0)
            twin = _closest(best, shortlist)
            if twin is not None and twin[1] > rules["max_profile_cosine"]:
                best.note = f"near-identical to {twin[0].ranked.row['name']} (profile cosine {twin[1]:.2f})"
                moved.append(best)
                continue
            covered = {n for c in shortlist for n in c.networks}
            chosen = best
            if shortlist and not best.networks - covered:
                for other in pool:
                    if other.score < best.score - rules["network_margin"]:
                        break
                    twin = _closest(other, shortlist)
                    if other.networks - covered and (twin is None or twin[1] <= rules["max_profile_cosine"]):
                        new = ", ".join(sorted(other.networks - covered))
                        other.note = f"ahead of {best.ranked.row['name']} ({best.score:.2f}) for a network: {new}"
                        chosen = other
                        break
            if chosen is not best:
                pool.remove(chosen)
                pool.insert(0, best)
            shortlist.append(chosen)
        alternates = sorted(moved + pool, key=lambda c: -c.score)[: request.alternates]
        return Selection(shortlist, alternates)

    def _skipped(
        self,
        found: list[Candidate],
        selection: Selection,
        moment: str,
        kept_at: dict[str, tuple[str, float]],
        reasons: dict[str, str],
        request: PlanRequest,
    ) -> list[dict[str, Any]]:
        """Those who ranked above the last one kept here but are not proposed here, and why."""
        kept = [*selection.shortlist, *selection.alternates]
        floor = min((c.score for c in kept), default=-1.0)
        kept_ids = {c.id for c in kept}
        out = []
        for c in found:
            # Fatigue lowers the score of those it skips: they are listed if they would rank among those kept.
            if _rested(c.ranked) < floor or c.id in kept_ids:
                continue
            if c.id in request.exclude:
                why = "excluded from this plan"
            elif c.id in reasons:
                why = f"not contactable: {reasons[c.id]}"
            elif c.id in kept_at and kept_at[c.id][0] != moment and kept_at[c.id][1] >= c.score:
                there, score = kept_at[c.id]
                why = f"in the plan for {there}, where they score {score:.2f} ({c.score:.2f} here)"
            else:
                continue
            out.append({"id": c.id, "name": c.ranked.row["name"], "score": round(c.score, 4), "reason": why})
        return out

    # -- what a block says ----------------------------------------------------------------------------

    def _block(
        self,
        moment: str,
        category: str,
        request: PlanRequest,
        selection: Selection,
        skipped: list[dict[str, Any]],
        past: dict[tuple[str, str], dict[str, Any]],
    ) -> dict[str, Any]:
        suggestion = self.suggestion(category, moment)
        suggested = {**suggestion, "past": past.get((moment, suggestion["type"])) or _no_past(suggestion["type"])}
        return {
            "category": category,
            "budget": request.budget[category],
            "shortlist": [_row(c, rank, "shortlist", suggested) for rank, c in enumerate(selection.shortlist, 1)],
            "alternates": [_row(c, rank, "alternate", suggested) for rank, c in enumerate(selection.alternates, 1)],
            "skipped": skipped,
            "missing": request.budget[category] - len(selection.shortlist),
        }

    def row_for(self, request: PlanRequest, moment: str, influencer_id: str) -> dict[str, Any] | None:
        """The plan row of someone a planner adds by hand at a moment: scored for the brief as the planned ones
        were (the plan's filters do not apply: the planner chose them), with the suggestion and past KPIs of their
        category. None if they are not found (unknown, opted out or deleted)."""
        found = self.engine.match(
            moment, request.brief, None, 1, ["influencers"], only_influencers=[influencer_id]
        ).influencers
        if not found:
            return None
        ranked = found[0]
        suggestion = self.suggestion(ranked.row["category"], moment)
        past = self._past((moment,)).get((moment, suggestion["type"])) or _no_past(suggestion["type"])
        return _row(Candidate(ranked, ranked.row["key"], np.zeros(0)), 0, "shortlist", {**suggestion, "past": past})

    def suggestion(self, category: str, moment: str) -> dict[str, str]:
        """The activation type the rules suggest for this category at this moment, and why."""
        by_moment = self.rules["activation_types"][category]
        rule = by_moment.get(moment, by_moment["default"])
        return {"type": rule["type"], "reason": rule["reason"]}

    def _past(self, moments: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
        """Past activations per (moment, type): how many, how many were sent, response and activation rates, as
        ``Engine.kpis`` gives them. Only its activations section is asked for: the whole report reads every
        publication for the share of voice (1.75 s of a 2.1 s plan at instagram-kim scale)."""
        marks = ", ".join("?" * len(moments))
        sql = f"SELECT influencer_id, status, moment, type FROM activations WHERE moment IN ({marks})"
        rows = [
            {"influencer": i, "status": s, "publications": [], "attrs": {"moment": (m,), "type": (t,)}}
            for i, s, m, t in self.engine.store.db.execute(sql, list(moments))
        ]
        section = kpis.activation_section(rows, {}, self.engine.scoring, ["moment", "type"])
        out = {}
        for group in section["groups"]:
            moment, kind = group["group"]["moment"], group["group"]["type"]
            out[moment, kind] = {
                "type": kind,
                "activations": group["activations"]["value"],
                "sent": group["sent"]["value"],
                "response_rate": group["response_rate"]["value"],
                "activation_rate": group["activation_rate"]["value"],
            }
        return out

    def _content(self, request: PlanRequest, moment: str) -> list[dict[str, Any]]:
        from matcher.render import content_result  # render imports the service, which imports this module

        limit = self.rules["content"]["per_moment"]
        if not limit:
            return []
        filters: dict[str, Any] = {"products": list(request.products)}
        if request.languages:
            filters["language"] = list(request.languages)
        found = self.engine.match(moment, request.brief, filters, limit, ["content"]).content
        return [content_result(r, rank) for rank, r in enumerate(found, start=1)]

    def gaps(self, request: PlanRequest, moment: str) -> list[dict[str, Any]]:
        """The formats the moment values with no good piece about the products in a language of the plan, from
        every visible piece the store holds about them."""
        rules = self.rules["gaps"]
        languages = request.languages or tuple(rules["languages"])
        catalogue = self.engine.catalogue
        with catalogue.reading():
            table, vocabulary = catalogue.tables["content"], catalogue.vocabulary
            keys = table.tags["products"].keys_with_any(tuple(fold(p) for p in request.products))
            keys = keys[keys < table.size]
            keys = keys[catalogue.visible("content")[keys]]
            formats, spoken = table.values["format"][keys], table.values["language"][keys]
            good = table.values["tonality"][keys] >= rules["min_tonality"]
            out = []
            valued = self.engine.moments[moment].format_weights
            for fmt, weight in sorted(valued.items(), key=lambda item: (-item[1], item[0])):
                if weight < rules["min_format_weight"]:
                    continue
                for language in languages:
                    same = np.isin(formats, vocabulary.codes((fmt,))) & np.isin(spoken, vocabulary.codes((language,)))
                    if not (same & good).any():
                        pieces = int(same.sum())
                        bad = f" ({pieces} piece{'s' * (pieces != 1)}, none good)" if pieces else ""
                        message = f"no {fmt} in {language} for {moment}{bad}"
                        out.append(
                            {
                                "format": fmt,
                                "language": language,
                                "format_weight": weight,
                                "pieces": pieces,
                                "message": message,
                            }
                        )
        return out

    def describe(self) -> dict[str, str]:
        """The rules a plan follows, in words, with the numbers of the rules file."""
        diversity, gaps = self.rules["diversity"], self.rules["gaps"]
        return {
            "contactable": "Anyone held (a 'do not contact before' date) or at a fatigue cap is skipped, with the "
            "reason; people who opted out never appear.",
            "once_per_plan": "A person appears once per plan: the moment where they score best keeps them; if it "
            "keeps them neither on its shortlist nor among its alternates, their next best moment may.",
            "diversity": f"No two profiles with a cosine above {diversity['max_profile_cosine']} on one shortlist: "
            "the second moves to the alternates. When the next best adds no network to the shortlist, the best "
            f"within {diversity['network_margin']} of their score who does goes first.",
            "gaps": f"Formats a moment values at {gaps['min_format_weight']} or more with no piece about the "
            f"products in a language of the plan whose tonality is {gaps['min_tonality']} or more.",
            "activation_types": "Suggested by category and moment (activation_rules.json).",
        }


def _closest(candidate: Candidate, others: list[Candidate]) -> tuple[Candidate, float] | None:
    """The most similar of ``others`` to ``candidate`` and their cosine; None if there are none."""
    if not others:
        return None
    similarities = np.stack([o.vector for o in others]) @ candidate.vector
    i = int(np.argmax(similarities))
    return others[i], float(similarities[i])


def _rested(r: Ranked) -> float:
    """The score with the fatigue part at 1: what the person would score if they had not been solicited."""
    fatigue = r.parts["fatigue"]
    total = sum(p.weight for p in r.parts.values())
    return r.score + fatigue.weight * (1 - fatigue.value) / total if total else r.score


def _row(c: Candidate, rank: int, role: str, suggested: dict[str, Any]) -> dict[str, Any]:
    from matcher.render import influencer_result  # render imports the service, which imports this module

    rendered = influencer_result(c.ranked, rank)
    fatigue = rendered["score_parts"]["fatigue"]
    return {
        "rank": rank,
        "role": role,
        **{k: rendered[k] for k in ("id", "name", "category", "language")},
        "networks": list(c.ranked.row["networks"]),
        "followers": rendered["followers"],
        **{k: rendered[k] for k in ("score", "score_parts", "explanation")},
        "fatigue": {"value": fatigue["value"], "reason": fatigue["reason"]},
        "diversity": c.note,
        "suggested": suggested,
        "activation": None,
        "edited": None,
    }


def _no_past(kind: str) -> dict[str, Any]:
    return {"type": kind, "activations": 0, "sent": 0, "response_rate": None, "activation_rate": None}
