"""No over-solicitation: the ``fatigue`` score part of influencers, from the activations planners record.

Rules are data (``fatigue.json``): per category, caps per window of days; an activation counts from the day it
was sent (declined ones count: being asked is the solicitation). The most restrictive rule wins: fatigue is
1 - activations / cap in the fullest window, 0 at or over a cap, and 0 until a "do not contact before" date.
Held as arrays by influencer key, rebuilt when activations or holds change (their own version) or the day does.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from matcher.catalogue import Catalogue
from matcher.errors import ConfigError
from matcher.store import Store, select_in


def load_rules(path: Path) -> dict[str, Any]:
    """The fatigue rules, checked: every window a positive number of days and a positive cap."""
    try:
        rules = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read the fatigue rules {path}: {e}") from e
    for name, windows in [("default", rules.get("default")), *rules.get("categories", {}).items()]:
        if not isinstance(windows, list) or not all(
            isinstance(w, dict)
            and isinstance(w.get("days"), int)
            and w["days"] > 0
            and isinstance(w.get("max"), int)
            and w["max"] > 0
            for w in windows
        ):
            raise ConfigError(f"{path}: the rules of {name!r} must be a list of {{'days': >0, 'max': >0}}.")
    if not isinstance(rules.get("counted_statuses"), list):
        raise ConfigError(f"{path} lacks 'counted_statuses'.")
    return rules


class Fatigue:
    def __init__(self, store: Store, catalogue: Catalogue, rules: dict[str, Any]):
        self.store = store
        self.catalogue = catalogue
        self.rules = rules
        self.state: tuple[Any, ...] = (None, None)  # (planning version, day) the arrays reflect
        self.values = np.ones(0)
        self.held = np.zeros(0, bool)
        self._why: dict[int, str] = {}
        self._lock = threading.Lock()

    @property
    def longest(self) -> int:
        windows = [w for ws in [self.rules["default"], *self.rules["categories"].values()] for w in ws]
        return max(w["days"] for w in windows)

    def refresh(self, today: date | None = None) -> bool:
        """Rebuild if activations, holds, the day or the roster changed; True if it did."""
        today = today or datetime.now(UTC).date()
        version = int(self.store.meta("planning_version", "0") or 0)
        size = self.catalogue.tables["influencers"].size
        if self.state == (version, today) and len(self.values) >= size:
            return False
        with self._lock:
            self._rebuild(version, today, size)
        return True

    def _rebuild(self, version: int, today: date, size: int) -> None:
        since = (today - timedelta(days=self.longest)).isoformat()
        counted = self.rules["counted_statuses"]
        db = self.store.db
        sent = db.execute(
            f"SELECT influencer_id, substr(coalesce(sent_at, created_at), 1, 10) FROM activations"
            f" WHERE status IN ({', '.join('?' * len(counted))}) AND coalesce(sent_at, created_at) >= ?",
            [*counted, since],
        ).fetchall()
        holds = db.execute(
            "SELECT influencer_id, until, reason FROM contact_holds WHERE until > ?", [today.isoformat()]
        ).fetchall()
        keys = self.store.keys_by_id("influencers", {i for i, _ in sent} | {i for i, _, _ in holds})
        categories = _categories(db, keys)
        by_key: dict[int, list[date]] = {}
        for influencer, day in sent:
            if influencer in keys:
                by_key.setdefault(keys[influencer], []).append(date.fromisoformat(day))
        values, held, why = np.ones(size), np.zeros(size, bool), {}
        for key, days in by_key.items():
            if key >= size:
                continue
            category = categories.get(key, "")
            windows = self.rules["categories"].get(category, self.rules["default"])
            worst = None
            for w in windows:
                count = sum(1 for d in days if 0 <= (today - d).days < w["days"])
                left = max(0.0, 1 - count / w["max"])
                if worst is None or left < worst[0]:
                    worst = (left, count, w)
            assert worst is not None
            left, count, w = worst
            values[key] = left
            over = "at its cap" if left == 0 else f"cap {w['max']}"
            why[key] = f"{count} activation{'s' * (count != 1)} in {w['days']} days ({category or 'default'} {over})"
        for influencer, until, reason in holds:
            key = keys.get(influencer)
            if key is not None and key < size:
                values[key], held[key] = 0.0, True
                why[key] = f"do not contact before {until}" + (f" ({reason})" if reason else "")
        self.values, self.held, self._why = values, held, why
        self.state = (version, today)

    def value(self, keys: np.ndarray) -> np.ndarray:
        values = self.values
        out = np.ones(len(keys))
        inside = keys < len(values)
        out[inside] = values[keys[inside]]
        return out

    def contactable(self, size: int) -> np.ndarray:
        """By key: not held and under every cap (what a plan may propose)."""
        out = np.ones(size, bool)
        n = min(size, len(self.values))
        out[:n] = self.values[:n] > 0
        return out

    def reason(self, key: int) -> str:
        return self._why.get(key, "no recent activation")


def _categories(db: Any, keys: dict[str, int]) -> dict[int, str]:
    return dict(select_in(db, "SELECT key, category FROM influencers WHERE id IN ({marks})", keys))
