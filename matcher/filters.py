"""What a planner may restrict results to: category, network, language, audience size, topics, products."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from matcher.errors import InvalidRequestError
from matcher.scoring import fold
from models.records import CATEGORIES


@dataclass(frozen=True)
class Filters:
    category: tuple[str, ...] = ()
    network: tuple[str, ...] = ()
    language: tuple[str, ...] = ()
    min_followers: int | None = None
    max_followers: int | None = None
    topics: tuple[str, ...] = ()
    products: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Filters:
        """Each list filter takes a string or a list of strings; matching ignores case (and accents for tags).

        Values are kept normalised: networks and languages in lower case, topics and products folded.
        """
        values = dict(values or {})
        unknown = set(values) - {
            "category",
            "network",
            "language",
            "min_followers",
            "max_followers",
            "topics",
            "products",
        }
        if unknown:
            raise InvalidRequestError("Unknown filter.", {k: ["Unknown filter."] for k in sorted(unknown)})
        lists = {k: _as_tuple(values.get(k)) for k in ("category", "network", "language", "topics", "products")}
        lists.update({k: tuple(v.casefold() for v in lists[k]) for k in ("network", "language")})
        lists.update({k: tuple(fold(v) for v in lists[k]) for k in ("topics", "products")})
        bad = [c for c in lists["category"] if c not in CATEGORIES]
        if bad:
            raise InvalidRequestError(
                f"Unknown category {bad[0]!r}.", {"category": [f"Must be one of: {', '.join(CATEGORIES)}."]}
            )
        low, high = values.get("min_followers"), values.get("max_followers")
        if low is not None and high is not None and low > high:
            raise InvalidRequestError(
                "min_followers is above max_followers.", {"min_followers": ["Must not exceed max_followers."]}
            )
        return cls(min_followers=low, max_followers=high, **lists)

    def __bool__(self) -> bool:
        return any((self.category, self.network, self.language, self.topics, self.products)) or (
            self.min_followers is not None or self.max_followers is not None
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("category", "network", "language", "topics", "products"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        for name in ("min_followers", "max_followers"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def sql_condition(self, kind: str) -> tuple[str, list[Any]]:
        """A condition on a stored row (alias ``r``) that every record these filters accept meets.

        It lets the store skip rows that cannot pass before reading them (what makes a filter matching few
        records cheap); ``accepts_*`` still decides, so the condition may let more through, never fewer.
        """
        clauses, params = ["r.opted_out = 0"] if kind == "influencers" else [], []
        columns = {"language": "COALESCE(r.language, '')"}
        columns.update({"category": "r.category"} if kind == "influencers" else {"network": "r.network"})
        for name, column in columns.items():
            values = getattr(self, name)
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params += values
        if kind == "content" and self.category:  # the author's category: a lookup by the author's id
            marks = ",".join("?" * len(self.category))
            clauses.append(
                f"EXISTS (SELECT 1 FROM influencers a WHERE a.id = r.influencer_id AND a.category IN ({marks}))"
            )
            params += self.category
        return " AND ".join(clauses) or "1", params

    def accepts_influencer(self, row: dict[str, Any], with_products: set[str] | None = None) -> bool:
        """``with_products``: ids of influencers who published one of the wanted products (when filtered on)."""
        if row["opted_out"]:
            return False
        if self.category and row["category"] not in self.category:
            return False
        if self.language and (row["language"] or "") not in self.language:
            return False
        if self.network and not set(self.network) & set(row["networks"]):
            return False
        if not self._audience_ok(row):
            return False
        if self.topics and not set(self.topics) & {fold(t) for t in row["topics"]}:
            return False
        return not (self.products and (with_products is None or row["id"] not in with_products))

    def accepts_content(self, row: dict[str, Any], author: dict[str, Any] | None) -> bool:
        """``author``: the author's row, or None for brand-owned content (which has no category or audience)."""
        if author is not None and author["opted_out"]:
            return False
        if row["influencer_id"] is not None and author is None:
            return False  # an author we cannot see (deleted or hidden) hides their content too
        if self.category and (author is None or author["category"] not in self.category):
            return False
        if self.language and (row["language"] or "") not in self.language:
            return False
        if self.network and row["network"] not in self.network:
            return False
        if (self.min_followers is not None or self.max_followers is not None) and (
            author is None or not self._audience_ok(author)
        ):
            return False
        if self.topics and not set(self.topics) & {fold(t) for t in row["topics"]}:
            return False
        return not (self.products and not set(self.products) & {fold(p) for p in row["products"]})

    def _audience_ok(self, row: dict[str, Any]) -> bool:
        """Followers on the filtered networks if a network filter is set, else on the largest platform."""
        if self.min_followers is None and self.max_followers is None:
            return True
        platforms = row["platforms"]
        if self.network:
            platforms = [p for p in platforms if p["network"] in self.network]
        followers = max((p["followers"] for p in platforms), default=0)
        if self.min_followers is not None and followers < self.min_followers:
            return False
        return self.max_followers is None or followers <= self.max_followers


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
