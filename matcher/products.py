"""Which products a query names, so that content about them (and the people who published it) can be favoured
over content that merely repeats a word of the query.

The products are the catalogue's own (``products`` tags of content, folded), plus the aliases of
``matcher/data/products.json`` (a brand's nicknames: "la cita" for "vélonia cita"). A query names a product when
it holds all of the product's words, or one of its *distinctive* words: a word of at least three letters, not a
stop word, that belongs to no other product ("cita" in "vélonia cita"; not "vélonia", which every product of the
brand has). Competitors' products are products like any other: "Cita ou VanMoof S5 ?" names both.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from matcher.errors import ConfigError
from matcher.lexical import STOPWORDS, WORD
from matcher.scoring import fold

MIN_DISTINCTIVE = 3


class ProductNames:
    """The product names of one catalogue version, and their aliases, ready to be looked for in queries."""

    def __init__(self, products: Iterable[str], aliases: dict[str, str]):
        self.words: dict[str, tuple[str, ...]] = {}
        for name in {*map(fold, products), *map(fold, aliases.values())}:
            if name:
                self.words[name] = tuple(WORD.findall(name))
        owners: dict[str, set[str]] = defaultdict(set)
        for name, words in self.words.items():
            for word in words:
                owners[word].add(name)
        self.distinctive = {
            word: next(iter(names))
            for word, names in owners.items()
            if len(names) == 1 and len(word) >= MIN_DISTINCTIVE and word not in STOPWORDS
        }
        self.aliases = {tuple(WORD.findall(fold(alias))): fold(name) for alias, name in aliases.items()}

    def named_in(self, query: str | None) -> tuple[str, ...]:
        """The products ``query`` names, folded, in a stable order (empty: none)."""
        if not query or not self.words:
            return ()
        words = WORD.findall(fold(query))
        present = set(words)
        found = {name for name, own in self.words.items() if own and set(own) <= present}
        found |= {self.distinctive[w] for w in present if w in self.distinctive}
        found |= {name for alias, name in self.aliases.items() if alias and _contains(words, alias)}
        return tuple(sorted(found))


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


@functools.lru_cache(maxsize=4)
def load_aliases(path: Path) -> dict[str, str]:
    """{alias: product} from the aliases file ({"aliases": {product: [alias, ...]}}); none if there is no file."""
    if not Path(path).exists():
        return {}
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))["aliases"]
        return {str(alias): str(product) for product, names in raw.items() for alias in names}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f'{path}: expected {{"aliases": {{product: [alias, ...]}}}}: {e}') from e
