"""What customers do with what is shown, learned per item and per moment: the ``engagement`` score part.

A position-based click model: a customer examines slot r with probability ``examination[r]`` (fixed, from the
brand's settings) and clicks an examined item with its own probability at the moment, γ. So an impression at
slot r counts as ``examination[r]`` of a view, and γ is estimated as clicks over weighted views, shrunk towards the
moment's mean μ by ``prior_views`` views of prior:

    γ = (clicks + prior_views · μ) / (weighted views + prior_views)      engagement = γᵏ / (γᵏ + μᵏ)

An item without history is at μ, so its engagement is 0.5: neither buried nor promoted; k (``sharpness``) spreads
the values (k = 2: twice the moment's click rate is 0.8, half of it 0.2). Counts decay with
``half_life_days`` (by the events' own times), so the ranking follows customers when their preferences change.

Exploration (Thompson sampling) draws γ from each candidate's Beta posterior instead of taking its mean, for the
slots after ``fixed_slots``: rarely shown items get their chance where it costs least. The probability that each
shown item held its slot is estimated from the same draws, and logged: every off-policy estimate needs it.

Events are read from the store (the truth), joined to what was served: a click on an item the request did not
show is not learned from. Every serving process catches up the same way (``catch_up``), in the background.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matcher.catalogue import Catalogue
from matcher.store import KINDS, Store

DAY = 86_400.0
BATCH = 50_000  # events read per catch-up step


@dataclass(frozen=True)
class Counts:
    """Decayed clicks and weighted views by key, for one kind at one moment, and the moment's mean click rate μ
    (computed once, when the counts change: every request and every explanation reads it)."""

    clicks: np.ndarray
    views: np.ndarray
    mean: float = 0.0


class Engagement:
    def __init__(self, store: Store, catalogue: Catalogue, config: dict[str, Any], moments: Sequence[str]):
        self.store = store
        self.catalogue = catalogue
        self.config = config
        self.moments = list(moments)
        self.examination = np.array(config["examination"], dtype=np.float64)
        self.version = 0  # counts catch-ups that learned something: answers cached under another are stale
        self.applied = 0  # events learned from
        self._counts: dict[tuple[str, str], Counts] = {}
        self._watermark = 0  # the last events rowid read
        self._clock: float | None = None  # the time the counts are decayed to
        self._lock = threading.Lock()

    # -- reading the log ------------------------------------------------------------------------

    def catch_up(self, settled_before: float | None = None) -> int:
        """Learn from the events stored since the last call (received before ``settled_before``, so that what
        served them has been written); returns how many were learned from."""
        if not self._lock.acquire(blocking=False):
            return 0  # another thread is on it
        try:
            learned = 0
            while True:
                rows = self._read(settled_before)
                if not rows:
                    return learned
                learned += self._apply(rows)
                if len(rows) < BATCH:
                    return learned
        finally:
            self._lock.release()

    def _read(self, settled_before: float | None) -> list[tuple[Any, ...]]:
        sql = (
            "SELECT e.rowid, e.type, e.kind, e.item_id, e.rank, e.moment, e.at, e.source, s.items, s.moment"
            " FROM events e LEFT JOIN served s ON s.request_id = e.request_id WHERE e.rowid > ?"
        )
        params: list[Any] = [self._watermark]
        if settled_before is not None:
            sql += " AND e.received_at < ?"
            params.append(settled_before)
        return self.store.db.execute(sql + " ORDER BY e.rowid LIMIT ?", [*params, BATCH]).fetchall()

    def _apply(self, rows: list[tuple[Any, ...]]) -> int:
        """Fold events into new counts, then swap them in (a request reads either the old or the new ones)."""
        self._watermark = rows[-1][0]
        served: dict[str, dict[tuple[str, str], int]] = {}
        learned: list[tuple[str, str, str, str, int, float]] = []  # type, kind, moment, item id, rank, at
        for _, kind_of_event, kind, item, rank, moment, at, source, items, served_moment in rows:
            if kind_of_event not in ("impression", "click"):
                continue
            if items is not None:  # the rank it was shown at, from what was served: not the sender's word
                slots = served.get(items)
                if slots is None:
                    slots = served[items] = {(k, i): r for k, i, r, _ in json.loads(items)}
                rank, moment = slots.get((kind, item)), served_moment
            elif source != "import":
                continue  # nothing served it: a click on an item nobody was shown
            if rank is None or moment not in self.moments:
                continue
            learned.append((kind_of_event, kind, moment, item, int(rank), float(at)))
        if not learned:
            return 0
        clock = max(self._clock or 0.0, max(e[5] for e in learned))
        half_life = self.config["half_life_days"] * DAY
        decay = 0.5 ** ((clock - self._clock) / half_life) if self._clock is not None else 1.0
        counts = {name: Counts(c.clicks * decay, c.views * decay) for name, c in self._counts.items()}
        for kind in KINDS:
            of_kind = [e for e in learned if e[1] == kind]
            if not of_kind:
                continue
            keys = self.store.keys_by_id(kind, {e[3] for e in of_kind})
            size = max(self.catalogue.tables[kind].size, max(keys.values(), default=-1) + 1)
            for kind_of_event, _, moment, item, rank, at in of_kind:
                key = keys.get(item)
                if key is None:
                    continue
                c = counts.get((kind, moment))
                if c is None or len(c.clicks) < size:
                    c = counts[kind, moment] = _grown(c, size)
                weight = 0.5 ** ((clock - at) / half_life)
                if kind_of_event == "click":
                    c.clicks[key] += weight
                else:
                    c.views[key] += weight * self.examined(rank)
        prior_views, prior_ctr = self.config["prior_views"], self.config["prior_ctr"]
        counts = {
            name: Counts(
                c.clicks,
                c.views,
                (float(c.clicks.sum()) + prior_views * prior_ctr) / (float(c.views.sum()) + prior_views),
            )
            for name, c in counts.items()
        }
        self._counts, self._clock = counts, clock
        self.version += 1
        self.applied += len(learned)
        return len(learned)

    def examined(self, rank: int) -> float:
        """The probability that a customer examines slot ``rank`` (1 = first)."""
        if rank <= len(self.examination):
            return float(self.examination[rank - 1])
        return float(self.config["examination_beyond"])

    # -- what the ranking reads -----------------------------------------------------------------

    def posterior(self, kind: str, moment: str, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(clicks, weighted views, the moment's mean μ) for ``keys``; zeros where there is no history."""
        c = self._counts.get((kind, moment))
        if c is None:
            return np.zeros(len(keys)), np.zeros(len(keys)), self.config["prior_ctr"]
        inside = keys < len(c.clicks)
        clicks, views = np.zeros(len(keys)), np.zeros(len(keys))
        clicks[inside], views[inside] = c.clicks[keys[inside]], c.views[keys[inside]]
        return clicks, views, c.mean

    def values(self, kind: str, moment: str, keys: np.ndarray) -> np.ndarray:
        """The engagement part of each key at the moment: 0.5 without history, above when customers click it
        more than the moment's mean once its slot is accounted for, below when less."""
        clicks, views, mean = self.posterior(kind, moment, keys)
        prior_views = self.config["prior_views"]
        rate = (clicks + prior_views * mean) / (views + prior_views)
        return self._scaled(rate, mean)

    def _scaled(self, rate: np.ndarray, mean: float) -> np.ndarray:
        k = self.config["sharpness"]
        return rate**k / (rate**k + mean**k)

    def samples(self, kind: str, moment: str, keys: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
        """``draws`` × len(keys) engagement values drawn from each key's Beta posterior (Thompson sampling)."""
        clicks, views, mean = self.posterior(kind, moment, keys)
        prior_views = self.config["prior_views"]
        alpha = clicks + prior_views * mean
        beta = np.maximum(views - clicks, 0.0) + prior_views * (1 - mean)
        rate = rng.beta(alpha, beta, size=(draws, len(keys)))
        return self._scaled(rate, mean)

    def reason(self, kind: str, moment: str, key: int) -> str:
        clicks, views, mean = self.posterior(kind, moment, np.array([key]))
        if views[0] < 0.05 and clicks[0] < 0.05:
            return "no customer history at this moment yet (neutral)"
        prior_views = self.config["prior_views"]
        rate = (clicks[0] + prior_views * mean) / (views[0] + prior_views)
        times = "once" if round(clicks[0]) == 1 else f"{clicks[0]:.0f} times"
        return (
            f"clicked {times} in {views[0]:.0f} weighted views at this moment "
            f"(click rate {rate:.1%} against {mean:.1%} for the moment)"
        )

    def stats(self) -> dict[str, Any]:
        return {"version": self.version, "events_learned": self.applied, "watermark": self._watermark}


def explore(
    scores: np.ndarray,
    engagement: np.ndarray,
    samples: np.ndarray,
    share: float,
    choose: Callable[[list[int]], list[int]],
    fixed_slots: int,
    tiebreak: np.ndarray,
) -> tuple[list[int], list[float]]:
    """Thompson sampling for the slots after ``fixed_slots``: the candidates' scores with their engagement part
    drawn (``samples``, draws × candidates; ``share``: the part's weight over all weights) instead of its mean.

    ``choose`` turns an order of candidates into the shown positions (diversity applies as without exploring).
    Returns the positions shown (from the first draw) and, per slot, the share of draws that put the same
    candidate in that slot: the probability with which it was shown there. Ties break by ``tiebreak`` (keys)."""
    static = choose(np.lexsort((tiebreak, -scores)).tolist())
    fixed = static[:fixed_slots]
    fixed_set = set(fixed)
    drawn = scores[None, :] + share * (samples - engagement[None, :])
    shown_by_draw = []
    for row in drawn:
        order = [i for i in np.lexsort((tiebreak, -row)).tolist() if i not in fixed_set]
        shown_by_draw.append(fixed + choose(order)[: max(0, len(static) - len(fixed))])
    shown = shown_by_draw[0]
    propensity = [
        sum(1 for other in shown_by_draw if slot < len(other) and other[slot] == item) / len(shown_by_draw)
        for slot, item in enumerate(shown)
    ]
    return shown, propensity


def _grown(counts: Counts | None, size: int) -> Counts:
    clicks, views = np.zeros(size), np.zeros(size)
    if counts is not None:
        clicks[: len(counts.clicks)], views[: len(counts.views)] = counts.clicks, counts.views
    return Counts(clicks, views)
