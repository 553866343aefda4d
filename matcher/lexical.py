"""Lexical retrieval: SQLite FTS5 over the records' text (accents folded, Porter stems), ranked by BM25.

The FTS tables are external-content tables kept in step with ``influencers`` and ``content`` by triggers
(see the store's migrations), so a committed record is searchable in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import sqlite_utils

from matcher.scoring import fold

COLUMNS = {"influencers": ("name", "bio", "topics"), "content": ("title", "text", "topics")}
TOKENIZER = "porter unicode61 remove_diacritics 2"
WORD = re.compile(r"\w+")
STOPWORDS = frozenset(
    word
    for line in (Path(__file__).parent / "data" / "stopwords.txt").read_text(encoding="utf-8").splitlines()
    if not line.startswith("#")
    for word in line.split()
)


def query_terms(text: str) -> list[str]:
    """The words of ``text`` that can match: folded, without stop words or single letters, in order, once each."""
    seen: dict[str, None] = {}
    for word in WORD.findall(fold(text)):
        if len(word) > 1 and word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def match_expression(text: str) -> str | None:
    """An FTS5 query matching any of the words (each quoted, so no word is read as FTS syntax)."""
    terms = query_terms(text)
    return " OR ".join(f'"{t}"' for t in terms) or None


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
