"""What a planner may restrict results to: category, network, language, audience size, topics, products."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.errors import InvalidRequestError
from matcher.scoring import fold
from models.records import CATEGORIES

if TYPE_CHECKING:
    from matcher.catalogue import Catalogue


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

    def influencer_mask(self, catalogue: Catalogue) -> np.ndarray:
        """Which influencers these filters accept, by key (visibility is the caller's business)."""
        table, vocabulary = catalogue.tables["influencers"], catalogue.vocabulary
        values, accepted = table.values, np.ones(table.size, bool)
        if self.category:
            accepted &= np.isin(values["category"], vocabulary.codes(self.category))
        if self.language:
            accepted &= np.isin(values["language"], vocabulary.codes(self.language))
        if self.network:
            accepted &= _mask(table.tags["networks"].keys_with_any(self.network), table.size)
        if self.min_followers is not None or self.max_followers is not None:
            accepted &= self._audience_ok(self.audience(catalogue))
        if self.topics:
            accepted &= _mask(table.tags["topics"].keys_with_any(self.topics), table.size)
        if self.products:  # people who published about one of them
            content = catalogue.tables["content"]
            pieces = content.tags["products"].keys_with_any(self.products)
            authors = content.values["author"][pieces]
            accepted &= _mask(authors[authors >= 0], table.size)
        return accepted

    def content_mask(self, catalogue: Catalogue) -> np.ndarray:
        """Which pieces of content these filters accept, by key (brand-owned content has no category or audience)."""
        table, vocabulary = catalogue.tables["content"], catalogue.vocabulary
        values, accepted = table.values, np.ones(table.size, bool)
        author, authored = values["author"], values["author"] >= 0
        if self.category:
            categories = catalogue.tables["influencers"].values["category"]
            wanted = np.isin(categories, vocabulary.codes(self.category))
            accepted &= authored & wanted[np.where(authored, author, 0)]
        if self.language:
            accepted &= np.isin(values["language"], vocabulary.codes(self.language))
        if self.network:
            accepted &= np.isin(values["network"], vocabulary.codes(self.network))
        if self.min_followers is not None or self.max_followers is not None:
            audience_ok = self._audience_ok(self.audience(catalogue))
            accepted &= authored & audience_ok[np.where(authored, author, 0)]
        if self.topics:
            accepted &= _mask(table.tags["topics"].keys_with_any(self.topics), table.size)
        if self.products:
            accepted &= _mask(table.tags["products"].keys_with_any(self.products), table.size)
        return accepted

    def audience(self, catalogue: Catalogue) -> np.ndarray:
        """Each influencer's audience: followers on the filtered networks if a network filter is set, else on their
        largest platform."""
        table = catalogue.tables["influencers"]
        if not self.network:
            return table.values["followers"]
        followers = np.zeros(table.size, np.float64)
        for network in self.network:
            keys, counts = table.tags["networks"].get(network)
            np.maximum.at(followers, keys, counts)
        return followers

    def _audience_ok(self, audience: np.ndarray) -> np.ndarray:
        ok = np.ones(len(audience), bool)
        if self.min_followers is not None:
            ok &= audience >= self.min_followers
        if self.max_followers is not None:
            ok &= audience <= self.max_followers
        return ok


def _mask(keys: np.ndarray, size: int) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[keys[keys < size]] = True
    return mask


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
