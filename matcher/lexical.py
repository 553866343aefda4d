"""Lexical retrieval: the words of a query and of the records, as SQLite FTS5 reads them (accents folded, Porter
stems), scored by BM25.

The FTS tables are external-content tables kept in step with ``influencers`` and ``content`` by triggers (see the
store's migrations): they are the reference, and what ``search`` queries. Serving scores BM25 in memory instead
(``matcher.bm25``), on the very tokens FTS5 makes: ``Tokenizer`` runs FTS5's tokenizer in a private database.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from matcher.errors import ConfigError
from matcher.scoring import fold

COLUMNS = {"influencers": ("name", "bio", "topics"), "content": ("title", "text", "topics")}
TOKENIZER = "porter unicode61 remove_diacritics 2"
WORD = re.compile(r"[^\W_]+")  # letters and digits, as FTS5's unicode61 tokenizer splits words
STOPWORDS = frozenset(
    word
    for line in (Path(__file__).parent / "data" / "stopwords.txt").read_text(encoding="utf-8").splitlines()
    if not line.startswith("#")
    for word in line.split()
)


class Translations:
    """English words and their usual French equivalents: an English query's words then also look for French
    records' words ("vacances" for "holidays"), the weakest case of retrieval (lexical matching cannot cross
    languages, and the packaged English model only partly can). Only the first, most common, equivalent is looked
    for (`matcher eval`: more of them matched more noise), and a word that is also a French word of the list
    ("pain", "chat") is not translated: it may be the French one. An expression of several words ("battery life")
    is translated as a whole ("autonomie"), in place of its words ("batterie", "vie")."""

    def __init__(
        self, french_of: dict[str, str], french_words: set[str], phrases: dict[tuple[str, ...], str] | None = None
    ):
        self.french_of = {english: french for english, french in french_of.items() if english not in french_words}
        self.phrases = dict(phrases or {})
        self.longest = max(map(len, self.phrases), default=1)

    @classmethod
    @functools.cache
    def load(cls, path: Path) -> Translations:
        """From a file of lines ``english<TAB>french[,french...]`` (# starts a comment); none if there is no file.
        The English side is a word or an expression of several."""
        french_of: dict[str, str] = {}
        phrases: dict[tuple[str, ...], str] = {}
        french_words: set[str] = set()
        if not Path(path).exists():
            return cls({}, set())
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            english, _, equivalents = line.partition("\t")
            words = tuple(WORD.findall(fold(english)))
            french = [fold(w.strip()) for w in equivalents.split(",") if w.strip()]
            if not words or not french:
                raise ConfigError(f"{path}, line {number}: expected English words, a tab, French words: {line!r}")
            single = [w for w in french if WORD.fullmatch(w)]  # "week-end" would be two words to the index
            if len(words) > 1:
                if single:
                    phrases.setdefault(words, single[0])
                continue  # an anglicism given for an expression ("setup", "live") keeps its English word translated
            if single:
                french_of.setdefault(words[0], single[0])
            french_words.update(french)
        return cls(french_of, french_words, phrases)

    def of(self, words: Sequence[str], translatable: Container[str] | None = None) -> list[str]:
        """The French equivalents of ``words`` (a text's words in order), in order: a listed expression's in place
        of its words', then each word's that has one (only of those in ``translatable``, if it is given)."""
        found: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self.longest, len(words) - i), 1, -1):
                phrase = self.phrases.get(tuple(words[i : i + n]))
                if phrase is not None:
                    found.append(phrase)
                    i += n
                    break
            else:
                word = words[i]
                if word in self.french_of and (translatable is None or word in translatable):
                    found.append(self.french_of[word])
                i += 1
        return found


NO_TRANSLATIONS = Translations({}, set())


def query_terms(text: str, translations: Translations = NO_TRANSLATIONS) -> list[str]:
    """The words of ``text`` that can match: folded, without stop words or single letters, in order, once each,
    and each one token for FTS5 (what it makes of a word is that word's only token); then the French equivalents
    of its English words (``translations``), on the same terms."""
    terms, french = _terms_and_french(text, translations)
    return list(dict.fromkeys([*terms, *_matchable(french)]))


def with_french(text: str, translations: Translations = NO_TRANSLATIONS) -> str:
    """``text`` followed by the French equivalents of its English words, in brackets ("battery life in winter
    (autonomie hiver)"), for the query's embedding: the packaged English model places a French record nearer a
    query that holds some of its words. The equivalents are those BM25 looks for (``query_terms``). Unchanged when
    no word has an equivalent (a French query)."""
    french = _terms_and_french(text, translations)[1]
    return f"{text} ({' '.join(french)})" if french else text


def _matchable(words: Iterable[str]) -> list[str]:
    return [w for w in words if len(w) > 1 and w not in STOPWORDS and len(TOKENIZER_.word(w)) == 1]


def _terms_and_french(text: str, translations: Translations) -> tuple[list[str], list[str]]:
    """The matchable words of ``text``, and the French equivalents of those of them that are English."""
    words = WORD.findall(fold(text))
    terms = _matchable(words)
    return terms, translations.of(words, set(terms))  # a stop word is not translated, but may be part of an expression


def query_tokens(text: str, translations: Translations = NO_TRANSLATIONS) -> list[str]:
    """The indexed token of each query term, in order (two words may share a stem: each still counts, as in FTS5)."""
    return [TOKENIZER_.word(word)[0] for word in query_terms(text, translations)]


def match_expression(text: str, translations: Translations = NO_TRANSLATIONS) -> str | None:
    """An FTS5 query matching any of the words (each quoted, so no word is read as FTS syntax)."""
    terms = query_terms(text, translations)
    return " OR ".join(f'"{t}"' for t in terms) or None


class Tokenizer:
    """FTS5's own tokenizer, run in a private in-memory database: the tokens a text is indexed as."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(f"CREATE VIRTUAL TABLE t USING fts5(c0, c1, c2, tokenize='{TOKENIZER}')")
        self._db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
        self._lock = threading.Lock()

    @functools.lru_cache(maxsize=65536)  # noqa: B019 (one tokenizer per process: the cache lives as long)
    def word(self, word: str) -> tuple[str, ...]:
        """The tokens of one query word."""
        with self._lock:
            self._db.execute("INSERT INTO t (rowid, c0) VALUES (1, ?)", [word])
            tokens = tuple(r[0] for r in self._db.execute("SELECT term FROM v ORDER BY offset"))
            self._db.execute("DELETE FROM t")
        return tokens

    def documents(self, rows: Sequence[tuple[int, str, str, str]]) -> Instances:
        """The tokens of rows of (key, column 0, column 1, column 2), a chunk of rows at a time: an in-memory
        database never gives back the pages it grew to, so it never holds more than a chunk."""
        chunks = (rows[start : start + DOCUMENTS_CHUNK] for start in range(0, len(rows), DOCUMENTS_CHUNK))
        return Instances.read((self._chunk(chunk) for chunk in chunks), COLUMN_NUMBERS)

    def _chunk(self, rows: Sequence[tuple[int, str, str, str]]) -> list[tuple[str, int, str, int]]:
        with self._lock:
            self._db.executemany("INSERT INTO t (rowid, c0, c1, c2) VALUES (?, ?, ?, ?)", rows)
            found = self._db.execute(f"{_INSTANCES.format(vocab='v')}").fetchall()
            self._db.execute("DELETE FROM t")
        return found


DOCUMENTS_CHUNK = 2_000  # records tokenised at a time
INSTANCES_CHUNK = 100_000  # token instances read at a time
COLUMN_NUMBERS = {f"c{i}": i for i in range(3)}


@dataclass
class Instances:
    """How often each token occurs in each column of each record: one entry per (token, key, column), the entries
    of one token and key adjacent. Tokens as ids into ``vocabulary``: at instagram-kim scale there are millions of
    entries, and a list of them as tuples of Python objects peaked at 800 MB (it is 32 bytes an entry here)."""

    vocabulary: list[str]
    term_ids: np.ndarray
    keys: np.ndarray
    columns: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, rows: list[tuple[str, int, str, int]], columns: dict[str, int]) -> Instances:
        return cls.read([rows], columns)

    @classmethod
    def read(cls, batches: Iterable[list[tuple[str, int, str, int]]], columns: dict[str, int]) -> Instances:
        """From batches of (token, key, column name, count) rows, each batch turned into arrays as it comes."""
        vocabulary: dict[str, int] = {}
        parts = []
        for rows in batches:
            if not rows:
                continue
            tokens, keys, names, counts = zip(*rows, strict=True)
            term_ids = np.fromiter((vocabulary.setdefault(t, len(vocabulary)) for t in tokens), np.int64, len(rows))
            index = np.fromiter((columns[n] for n in names), np.int64, len(rows))
            parts.append((term_ids, np.array(keys, np.int64), index, np.array(counts, np.int64)))
        if not parts:
            return cls([], *(np.zeros(0, np.int64) for _ in range(4)))
        return cls(list(vocabulary), *(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))


# What fts5vocab's 'instance' table says, one row per (token, record, column); ordered, so that entries of one
# token and record are adjacent.
_INSTANCES = "SELECT term, doc, col, count(*) FROM {vocab} GROUP BY term, doc, col ORDER BY term, doc, col"

TOKENIZER_ = Tokenizer()


def indexed_documents(db: sqlite_utils.Database, kind: str) -> Instances:
    """The tokens of every record, read from the FTS index itself."""
    vocab = f"temp.{kind}_fts_instances"
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {vocab} USING fts5vocab(main, {kind}_fts, instance)")
    cursor = db.execute(_INSTANCES.format(vocab=vocab))
    batches = iter(lambda: cursor.fetchmany(INSTANCES_CHUNK), [])
    return Instances.read(batches, {name: i for i, name in enumerate(COLUMNS[kind])})


def search(
    db: sqlite_utils.Database,
    kind: str,
    expression: str,
    weights: Sequence[float],
    limit: int,
    keys: Sequence[int] | None = None,
) -> list[tuple[int, float]]:
    """(key, score) best first, score = -BM25 (higher is better); only among ``keys`` when given."""
    table = f"{kind}_fts"
    where = f"{table} MATCH ?"
    params: list[object] = [expression]
    if keys is not None:
        if not keys:
            return []
        where += f" AND rowid IN ({','.join('?' * len(keys))})"
        params.extend(int(k) for k in keys)
    sql = f"""SELECT rowid, -bm25({table}, {", ".join(str(float(w)) for w in weights)}) AS score
              FROM {table} WHERE {where} ORDER BY score DESC LIMIT ?"""
    return [(row[0], row[1]) for row in db.execute(sql, [*params, limit])]


def fts_migration() -> str:
    """SQL creating both FTS tables, their triggers, and indexing what is already stored."""
    parts = []
    for kind, columns in COLUMNS.items():
        cols = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
        parts.append(f"""
        CREATE VIRTUAL TABLE {kind}_fts USING fts5({cols}, content='{kind}', content_rowid='key',
                                                  tokenize='{TOKENIZER}');
        CREATE TRIGGER {kind}_fts_insert AFTER INSERT ON {kind} BEGIN
            INSERT INTO {kind}_fts (rowid, {cols}) VALUES (new.key, {new});
        END;
        CREATE TRIGGER {kind}_fts_delete AFTER DELETE ON {kind} BEGIN
            INSERT INTO {kind}_fts ({kind}_fts, rowid, {cols}) VALUES ('delete', old.key, {old});
        END;
        CREATE TRIGGER {kind}_fts_update AFTER UPDATE ON {kind} BEGIN
            INSERT INTO {kind}_fts ({kind}_fts, rowid, {cols}) VALUES ('delete', old.key, {old});
            INSERT INTO {kind}_fts (rowid, {cols}) VALUES (new.key, {new});
        END;
        INSERT INTO {kind}_fts ({kind}_fts) VALUES ('rebuild');""")
    return "\n".join(parts)
