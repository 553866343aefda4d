"""What kind of result a query asks for by name: a format ("un tuto", "comparatif", "infographic"), a kind of voice
("des célébrités", "customer stories"), a network ("youtubeurs", "sur TikTok") or a language ("anglophones", "en
français"), so that results of that kind are favoured (the ``asked`` part of the score) over results that are only
about the same subject.

The words are those of ``matcher/data/facets.json`` ({"formats": {format: [word or expression, ...]},
"categories": {...}, "networks": {...}, "languages": {code: [...]}}), compared folded (case and accents ignored)
and with a plural's final s or x dropped, so "tutos" is "tuto" and "vidéos" "vidéo". An expression of several words
is looked for as a sequence ("how to").
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from matcher.errors import ConfigError
from matcher.lexical import WORD
from matcher.scoring import fold
from models.contract import LANGUAGE
from models.records import CATEGORIES, FORMATS

KINDS = ("formats", "categories", "networks", "languages")
MIN_PLURAL = 4  # "tutos" → "tuto"; "vs" stays "vs"


@dataclass(frozen=True)
class Asked:
    """The formats, categories, networks and languages a query names (each sorted; all empty: it names none)."""

    formats: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.formats or self.categories or self.networks or self.languages)

    def describe(self) -> str:
        """'tutorial, youtube': what was asked for, for the explanations."""
        return ", ".join((*self.formats, *self.categories, *self.networks, *self.languages))


NOTHING_ASKED = Asked()


class FacetNames:
    """The words that name each format, category, network and language, ready to be looked for in queries."""

    def __init__(self, words: dict[str, dict[str, list[str]]]):
        # first word -> (the whole expression, kind, value): a query is read word by word, not phrase by phrase
        self.starting: dict[str, list[tuple[tuple[str, ...], str, str]]] = defaultdict(list)
        for kind in KINDS:
            for value, entries in words.get(kind, {}).items():
                for phrase in filter(None, map(_words, entries)):
                    self.starting[phrase[0]].append((phrase, kind, value))

    def named_in(self, query: str | None) -> Asked:
        if not query:
            return Asked()
        words = _words(query)
        found: dict[str, set[str]] = {kind: set() for kind in KINDS}
        for i, word in enumerate(words):
            for phrase, kind, value in self.starting.get(word, ()):
                if words[i : i + len(phrase)] == phrase:
                    found[kind].add(value)
        return Asked(*(tuple(sorted(found[kind])) for kind in KINDS))


def _words(text: str) -> tuple[str, ...]:
    return tuple(_singular(w) for w in WORD.findall(fold(text)))


def _singular(word: str) -> str:
    return word[:-1] if len(word) >= MIN_PLURAL and word[-1] in "sx" else word


@functools.lru_cache(maxsize=4)
def load(path: Path) -> FacetNames:
    """The facets file's words; none (nothing is ever asked for) if there is no file."""
    if not Path(path).exists():
        return FacetNames({})
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        words = {kind: {str(v): list(map(str, entries)) for v, entries in raw.get(kind, {}).items()} for kind in KINDS}
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: expected {{{', '.join(map(repr, KINDS))}: {{value: [word, ...]}}}}: {e}") from e
    unknown = [f"formats.{v}" for v in words["formats"] if v not in FORMATS]
    unknown += [f"categories.{v}" for v in words["categories"] if v not in CATEGORIES]
    unknown += [f"languages.{v}" for v in words["languages"] if not LANGUAGE.match(v)]
    if unknown:
        raise ConfigError(f"{path}: not a format, category or language code of the data contract: {', '.join(unknown)}")
    return FacetNames(words)
