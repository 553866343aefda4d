"""SQLite, through sqlite-utils: the source of truth for records and their embeddings.

Every record has an integer ``key`` (never reused: AUTOINCREMENT) that is also its row in the vector files and
its id in the FAISS index, so they agree by construction. ``meta.version`` counts committed writes, and the
change log (``changes``) says which keys each write touched: a serving process that holds version 41 catches up
to 45 by reading the keys of versions 42 to 45, nothing else.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sqlite_utils

from matcher import lexical
from matcher.errors import ConflictError
from matcher.rows import decode_row, record_hash

KINDS = ("influencers", "content")

MIGRATIONS = [
    """
    CREATE TABLE influencers (
        key INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        bio TEXT NOT NULL DEFAULT '',
        topics TEXT NOT NULL DEFAULT '[]',          -- JSON list
        category TEXT NOT NULL,
        language TEXT,
        country TEXT,
        platforms TEXT NOT NULL DEFAULT '[]',       -- JSON list of {network, handle, followers, engagement_rate}
        followers INTEGER NOT NULL DEFAULT 0,       -- derived: the largest platform
        engagement_rate REAL,                       -- derived: follower-weighted mean
        networks TEXT NOT NULL DEFAULT '[]',        -- derived: JSON list of network names
        opted_out INTEGER NOT NULL DEFAULT 0,
        is_customer INTEGER NOT NULL DEFAULT 0,
        extra TEXT NOT NULL DEFAULT '{}',           -- fields beyond the data contract, kept as given
        record_hash TEXT NOT NULL,                  -- tells an update from a repeat
        text_hash TEXT NOT NULL,                    -- hash of the text that is embedded
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX influencers_category ON influencers(category);
    CREATE TABLE content (
        key INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        influencer_id TEXT REFERENCES influencers(id),
        title TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL DEFAULT '',
        url TEXT,
        format TEXT NOT NULL,
        language TEXT,
        published_at TEXT NOT NULL,                 -- ISO 8601 as given
        published_ts REAL NOT NULL,                 -- derived: seconds since the epoch, UTC
        topics TEXT NOT NULL DEFAULT '[]',
        engagement TEXT,                            -- JSON {likes, shares, comments, views} or NULL
        sentiment REAL,
        products TEXT NOT NULL DEFAULT '[]',
        network TEXT NOT NULL,                      -- derived: where it was published
        extra TEXT NOT NULL DEFAULT '{}',
        record_hash TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX content_influencer ON content(influencer_id);
    CREATE TABLE embeddings (
        kind TEXT NOT NULL,                         -- 'influencers' or 'content'
        key INTEGER NOT NULL,
        model TEXT NOT NULL,
        text_hash TEXT NOT NULL,                    -- the record's text_hash when it was embedded
        vector BLOB NOT NULL,                       -- float32, L2-normalised
        PRIMARY KEY (kind, key)
    );
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (name, value) VALUES ('version', '0');
    """,
    lexical.fts_migration(),  # 2: full-text search over both tables, kept in step by triggers
    """
    CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,                    -- public part of the key, shown in lists and logs
        secret_hash TEXT NOT NULL,                  -- SHA-256 of the whole key: the key itself is never stored
        role TEXT NOT NULL,
        origins TEXT NOT NULL DEFAULT '[]',         -- JSON list of allowed browser origins
        label TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    """,
    """
    CREATE TABLE changes (
        version INTEGER NOT NULL,                   -- the store version the write made
        kind TEXT NOT NULL,                         -- 'influencers' or 'content'
        key INTEGER NOT NULL                        -- written, deleted, or with a derived value that changed
    );
    CREATE INDEX changes_version ON changes(version);
    """,
    """
    -- The loop (matcher/events.py, matcher/activations.py). None of it bumps meta.version: the records' answers
    -- change with what is learned and with fatigue through their own versions, not through the change log.
    CREATE TABLE served (
        request_id TEXT PRIMARY KEY,                -- the X-Request-ID of the match that showed these items
        at REAL NOT NULL,                           -- seconds since the epoch, UTC
        moment TEXT NOT NULL,
        key_id TEXT,                                -- the caller's key (NULL in dev mode or without one)
        policy TEXT NOT NULL,                       -- 'static', or 'explore' when lower slots were sampled
        items TEXT NOT NULL                         -- JSON [[kind, id, rank, propensity], ...], rank from 1
    );
    CREATE INDEX served_at ON served(at);
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,                  -- chosen by the client: a repeat is ignored
        type TEXT NOT NULL,                         -- impression, click, conversion, dismiss
        request_id TEXT,                            -- the match that served the item
        kind TEXT NOT NULL,                         -- 'content' or 'influencers'
        item_id TEXT NOT NULL,
        rank INTEGER,                               -- 1 = first slot
        moment TEXT,
        at REAL NOT NULL,                           -- when it happened (client's clock), seconds since the epoch
        received_at REAL NOT NULL,
        key_id TEXT,                                -- who sent it (the key, never the body's word)
        origin TEXT,
        source TEXT NOT NULL DEFAULT 'api',         -- 'api', or 'import' (matcher events import)
        value REAL                                  -- a conversion's value, when there is one
    );
    CREATE INDEX events_request ON events(request_id);
    CREATE INDEX events_at ON events(at);
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        products TEXT NOT NULL DEFAULT '[]',        -- JSON list
        brief TEXT NOT NULL DEFAULT '',
        starts_on TEXT,                             -- ISO dates
        ends_on TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE activations (
        id TEXT PRIMARY KEY,
        campaign_id TEXT REFERENCES campaigns(id) ON DELETE RESTRICT,
        influencer_id TEXT NOT NULL,                -- no foreign key: an activation outlives a deleted record
        moment TEXT,
        type TEXT NOT NULL,                         -- event, interview, visit, product_test, press, sponsored_post
        status TEXT NOT NULL,                       -- proposed, sent, accepted, declined, published
        starts_on TEXT,                             -- ISO dates of the activation itself
        ends_on TEXT,
        sent_at TEXT,                               -- ISO timestamps of each status reached
        responded_at TEXT,
        published_at TEXT,
        publications TEXT NOT NULL DEFAULT '[]',    -- JSON list of content ids it produced
        notes TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX activations_influencer ON activations(influencer_id);
    CREATE INDEX activations_campaign ON activations(campaign_id);
    CREATE TABLE contact_holds (
        influencer_id TEXT PRIMARY KEY,             -- "do not contact before": set by the person or a planner
        until TEXT NOT NULL,                        -- ISO date
        reason TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    );
    INSERT INTO meta (name, value) VALUES ('planning_version', '0');  -- bumped by activation and hold writes
    """,
    """
    -- Plans (matcher/plans.py), stored as computed; their writes count no version: no answer depends on them.
    CREATE TABLE plans (
        id TEXT PRIMARY KEY,
        campaign_id TEXT,                           -- no foreign key: a plan outlives its campaign
        request TEXT NOT NULL,                      -- JSON: the request, every default filled in
        body TEXT NOT NULL,                         -- JSON: {rules, moments: shortlists, alternates, content, gaps}
        activations TEXT NOT NULL DEFAULT '[]',     -- JSON [{id, moment, influencer_id, type}] it created
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX plans_campaign ON plans(campaign_id);
    """,
]
# Change-log rows older than this many versions behind the newest are pruned (see ``prune_changes``): a process
# further behind than that reloads everything instead of catching up.
CHANGES_KEPT = 1_000_000


class Written(NamedTuple):
    """What one upsert did to one record: 'inserted', 'updated' or 'unchanged', its key, and the row before."""

    outcome: str
    key: int
    before: dict[str, Any] | None


class Deleted(NamedTuple):
    key: int
    content_keys: list[int]  # an influencer's content, deleted with them
    author_id: str | None  # a piece of content's author, whose vector changes
    version: int  # the store version this delete made


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """One SQLite file. Each thread gets its own connection; writes are serialised by a lock."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(self.path)
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute("PRAGMA synchronous = FULL")  # with WAL: a commit survives a power cut, not only a crash
            self._local.db = db
        return db

    def close(self) -> None:
        """Close this thread's connection (before a fork: no connection may cross one)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    def _migrate(self) -> None:
        db = self.db
        db.enable_wal()
        current = db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            with self._write_lock, db.conn:
                db.conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    @contextmanager
    def transaction(self, *, bump: bool = True) -> Iterator[sqlite_utils.Database]:
        """One write transaction: all of it commits, or none. Bumps ``meta.version`` unless told not to (callers
        that change records bump it themselves with ``_bump``, naming the keys they touched).

        BEGIN IMMEDIATE takes SQLite's write lock at once, so a read-then-write cannot fail halfway because
        another process wrote meanwhile. sqlite-utils' own writes join an open transaction (as savepoints);
        outside one, each would commit by itself.
        """
        with self._write_lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                if bump:
                    self._bump(db, {})
                yield db
            except BaseException:
                if db.conn.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _bump(db: sqlite_utils.Database, changed: dict[str, Iterable[int]]) -> int:
        """Count one more write (inside the transaction making it) and log the keys it touched, by kind; returns
        the new version."""
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'version'")
        version = int(db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()[0])
        db.conn.executemany(
            "INSERT INTO changes (version, kind, key) VALUES (?, ?, ?)",
            [(version, kind, int(key)) for kind, keys in changed.items() for key in sorted(set(keys))],
        )
        return version

    @property
    def version(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()[0])

    @contextmanager
    def snapshot(self) -> Iterator[sqlite_utils.Database]:
        """A read transaction: every query inside sees the same committed state (WAL snapshot isolation)."""
        db = self.db
        if db.conn.in_transaction:  # already inside one (nested use): it is the snapshot
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def changes_since(self, version: int, until: int | None = None) -> tuple[dict[str, set[int]], bool]:
        """Keys touched by the writes after ``version`` (up to ``until``), by kind, and whether the log reaches back
        that far (if not, the caller must reload everything)."""
        complete = version >= int(self.meta("changes_pruned_through", "0"))
        out: dict[str, set[int]] = {kind: set() for kind in KINDS}
        sql, params = "SELECT kind, key FROM changes WHERE version > ?", [version]
        if until is not None:
            sql, params = sql + " AND version <= ?", [version, until]
        for kind, key in self.db.execute(sql, params):
            out[kind].add(key)
        return out, complete

    def prune_changes(self) -> int:
        """Forget change-log rows more than ``CHANGES_KEPT`` versions old; returns how many were removed."""
        with self.transaction(bump=False) as db:
            through = self.version - CHANGES_KEPT
            if through <= int(self.meta("changes_pruned_through", "0")):
                return 0
            removed = db.execute("DELETE FROM changes WHERE version <= ?", [through]).rowcount
            self.set_meta(db, "changes_pruned_through", str(through))
        return removed

    def meta(self, name: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", [name]).fetchone()
        return row[0] if row else default

    @staticmethod
    def set_meta(db: sqlite_utils.Database, name: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", [name, value])

    def count(self, kind: str, *, visible_only: bool = False) -> int:
        if not visible_only:
            return self.db[kind].count
        joins, visible = _VISIBLE[kind]
        return self.db.execute(f"SELECT count(*) FROM {kind} r {joins} WHERE {visible}").fetchone()[0]

    # -- writes ---------------------------------------------------------------------------------

    def upsert(
        self, kind: str, rows: list[dict[str, Any]], vectors: dict[str, tuple[str, np.ndarray]], model: str
    ) -> tuple[list[Written], int | None]:
        """Insert or update rows and store their new embeddings, all in one transaction.

        ``rows`` hold a record's columns and its derived ones (``text_hash``, and ``network`` for content);
        ``vectors`` maps a record id to (text_hash, vector) for the records whose text needs a new embedding.
        A repeat of what is stored changes nothing, not even the version. Returns what happened to each row,
        and the version this write made (None if it changed nothing).
        """
        try:
            return self._upsert(kind, rows, vectors, model)
        except sqlite3.IntegrityError as e:  # only an author deleted by another process since the writer checked
            raise ConflictError(
                f"Nothing was written: {e}. The data changed during this write (an author deleted?); check and retry."
            ) from e

    def _upsert(
        self, kind: str, rows: list[dict[str, Any]], vectors: dict[str, tuple[str, np.ndarray]], model: str
    ) -> tuple[list[Written], int | None]:
        written = []
        changed: dict[str, set[int]] = {k: set() for k in KINDS}
        authors: set[str] = set()  # a piece's authors, before and after: their vectors mix in their content
        with self.transaction(bump=False) as db:
            for row in rows:
                row = {**row, "record_hash": record_hash(row)}
                before = next(db.query(f"SELECT * FROM {kind} WHERE id = ?", [row["id"]]), None)
                stamp = now_iso()
                if before is None:
                    key = db[kind].insert({**row, "created_at": stamp, "updated_at": stamp}).last_pk
                    written.append(Written("inserted", key, None))
                else:
                    key = before["key"]
                    if before["record_hash"] == row["record_hash"]:
                        written.append(Written("unchanged", key, before))
                    else:
                        db[kind].update(key, {**row, "updated_at": stamp})
                        written.append(Written("updated", key, before))
                if row["id"] in vectors:
                    text_hash, vector = vectors[row["id"]]
                    db["embeddings"].insert(
                        {"kind": kind, "key": key, "model": model, "text_hash": text_hash, "vector": _to_blob(vector)},
                        pk=("kind", "key"),
                        replace=True,
                    )
                if written[-1].outcome != "unchanged" or row["id"] in vectors:
                    changed[kind].add(key)
                    if kind == "content":
                        authors |= {row["influencer_id"], before["influencer_id"] if before else None}
            if not any(changed.values()):
                return written, None  # a repeat of what is stored changes nothing, not even the version
            changed["influencers"] |= set(self._keys_by_id(db, "influencers", {a for a in authors if a}).values())
            version = self._bump(db, changed)
        return written, version

    def delete(self, kind: str, record_id: str) -> Deleted | None:
        """Delete a record and its embedding; an influencer's content goes with them. None if there is no such id."""
        with self.transaction(bump=False) as db:
            found = db.execute(
                f"SELECT key, {'id' if kind == 'influencers' else 'influencer_id'} FROM {kind} WHERE id = ?",
                [record_id],
            ).fetchone()
            if found is None:
                return None  # nothing deleted, so not even the version changes
            key, ref = found
            content_keys = []
            if kind == "influencers":
                content_keys = [
                    r[0] for r in db.execute("SELECT key FROM content WHERE influencer_id = ?", [record_id])
                ]
                for marks, chunk in in_lists(content_keys):
                    db.execute(f"DELETE FROM embeddings WHERE kind = 'content' AND key IN ({marks})", chunk)
                    db.execute(f"DELETE FROM content WHERE key IN ({marks})", chunk)
            db.execute("DELETE FROM embeddings WHERE kind = ? AND key = ?", [kind, key])
            db.execute(f"DELETE FROM {kind} WHERE key = ?", [key])
            if kind == "influencers":
                changed = {"influencers": [key], "content": content_keys}
            else:  # the author's vector mixed this piece in
                changed = {"content": [key], "influencers": list(self._keys_by_id(db, "influencers", [ref]).values())}
            version = self._bump(db, changed)
        return Deleted(key, content_keys, None if kind == "influencers" else ref, version)

    def save_embeddings(self, kind: str, model: str, items: Iterable[tuple[int, str, np.ndarray]]) -> None:
        """Store (key, text_hash, vector) for ``kind``, replacing what was there."""
        rows = [
            {"kind": kind, "key": int(key), "model": model, "text_hash": text_hash, "vector": _to_blob(vector)}
            for key, text_hash, vector in items
        ]
        with self.transaction(bump=False) as db:
            db["embeddings"].insert_all(rows, pk=("kind", "key"), replace=True)
            changed: dict[str, list[int]] = {kind: [r["key"] for r in rows]}
            if kind == "content":  # their authors' vectors mix them in
                changed["influencers"] = list(self._author_keys(db, changed["content"]))
            self._bump(db, changed)

    # -- reads ----------------------------------------------------------------------------------

    def embedding_needed(self, kind: str, hashes: dict[str, str], model: str) -> list[str]:
        """Which of these records (id -> hash of their text) need a new embedding: new ones, changed texts,
        another model."""
        current: dict[str, tuple[str, str]] = {}
        ids = list(hashes)
        for marks, chunk in in_lists(ids):
            sql = f"""SELECT r.id, e.text_hash, e.model FROM {kind} r
                      JOIN embeddings e ON e.kind = ? AND e.key = r.key WHERE r.id IN ({marks})"""
            current.update((r[0], (r[1], r[2])) for r in self.db.execute(sql, [kind, *chunk]))
        return [i for i in ids if current.get(i) != (hashes[i], model)]

    def content_keys_of(self, influencer_ids: Iterable[str]) -> list[int]:
        ids = list(set(influencer_ids))
        keys: list[int] = []
        for marks, chunk in in_lists(ids):
            sql = f"SELECT key FROM content WHERE influencer_id IN ({marks})"
            keys.extend(r[0] for r in self.db.execute(sql, chunk))
        return keys

    def stale_embeddings(self, kind: str, model: str) -> list[tuple[int, str]]:
        """Keys (and text hashes) of records whose embedding is missing, from another model or outdated."""
        sql = f"""
            SELECT r.key, r.text_hash FROM {kind} r
            LEFT JOIN embeddings e ON e.kind = ? AND e.key = r.key
            WHERE e.key IS NULL OR e.model != ? OR e.text_hash != r.text_hash
            ORDER BY r.key"""
        return [(row[0], row[1]) for row in self.db.execute(sql, [kind, model])]

    def rows(
        self, kind: str, keys: Iterable[int], where: tuple[str, list[Any]] | None = None
    ) -> dict[int, dict[str, Any]]:
        """Rows by key (JSON columns decoded), in one query per 500 keys; ``where``: an SQL condition on alias
        ``r`` and its parameters, to leave out rows without reading them."""
        keys = [int(k) for k in keys]
        condition, params = where or ("1", [])
        out: dict[int, dict[str, Any]] = {}
        for marks, chunk in in_lists(keys):
            sql = f"SELECT * FROM {kind} r WHERE r.key IN ({marks}) AND ({condition})"
            for row in self.db.query(sql, chunk + params):
                out[row["key"]] = decode_row(row)
        return out

    def row_by_id(self, kind: str, record_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query(f"SELECT * FROM {kind} WHERE id = ?", [record_id]))
        return decode_row(rows[0]) if rows else None

    def keys_by_id(self, kind: str, ids: Iterable[str]) -> dict[str, int]:
        return self._keys_by_id(self.db, kind, ids)

    @staticmethod
    def _keys_by_id(db: sqlite_utils.Database, kind: str, ids: Iterable[str]) -> dict[str, int]:
        ids = list(set(ids))
        out: dict[str, int] = {}
        for marks, chunk in in_lists(ids):
            out.update((r[0], r[1]) for r in db.execute(f"SELECT id, key FROM {kind} WHERE id IN ({marks})", chunk))
        return out

    @staticmethod
    def _author_keys(db: sqlite_utils.Database, content_keys: list[int]) -> set[int]:
        found: set[int] = set()
        for marks, chunk in in_lists(content_keys):
            sql = f"""SELECT DISTINCT i.key FROM content c JOIN influencers i ON i.id = c.influencer_id
                      WHERE c.key IN ({marks})"""
            found.update(r[0] for r in db.execute(sql, chunk))
        return found

    def embeddings(
        self, kind: str, keys: Sequence[int] | None = None, *, visible_only: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(keys, vectors) of records (visible ones only, unless told), all of them or those asked for."""
        joins, visible = _VISIBLE[kind] if visible_only else ("", "1")
        sql = f"SELECT r.key, e.vector FROM {kind} r JOIN embeddings e ON e.kind = ? AND e.key = r.key {joins}"
        sql += f" WHERE {visible}"
        params: list[Any] = [kind]
        found: list[tuple[int, bytes]] = []
        if keys is None:
            found = list(self.db.execute(sql + " ORDER BY r.key", params))
        else:
            for marks, chunk in in_lists([int(k) for k in keys]):
                found.extend(self.db.execute(f"{sql} AND r.key IN ({marks})", params + chunk))
        if not found:
            return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
        ids = np.array([k for k, _ in found], dtype=np.int64)
        return ids, np.vstack([np.frombuffer(blob, dtype=np.float32) for _, blob in found])

    def content_authors(self, influencer_keys: list[int] | None = None, *, visible_only: bool = True) -> dict[int, int]:
        """Content key -> its author's influencer key, for all authors or those given.

        Brand-owned content has no author and is left out; a piece with an author is visible when they are."""
        sql = "SELECT c.key, i.key FROM content c JOIN influencers i ON i.id = c.influencer_id"
        sql += " WHERE i.opted_out = 0" if visible_only else " WHERE 1"
        if influencer_keys is None:
            return dict(self.db.execute(sql).fetchall())
        out: dict[int, int] = {}
        for marks, chunk in in_lists([int(k) for k in influencer_keys]):
            out.update(self.db.execute(f"{sql} AND i.key IN ({marks})", chunk).fetchall())
        return out

    def all_keys(self, kind: str) -> np.ndarray:
        return np.array([r[0] for r in self.db.execute(f"SELECT key FROM {kind} ORDER BY key")], dtype=np.int64)

    def author_keys(self, content_keys: Sequence[int]) -> dict[int, int]:
        """Content key -> its author's key (-1 for brand-owned content)."""
        out: dict[int, int] = {}
        for marks, chunk in in_lists([int(k) for k in content_keys]):
            sql = f"""SELECT c.key, coalesce(i.key, -1) FROM content c LEFT JOIN influencers i ON i.id = c.influencer_id
                      WHERE c.key IN ({marks})"""
            out.update(self.db.execute(sql, chunk).fetchall())
        return out

    def fts_text(self, kind: str, keys: Sequence[int]) -> list[tuple[int, str, str, str]]:
        """(key, and the three columns as the full-text index reads them) of these records."""
        columns = ", ".join(lexical.COLUMNS[kind])
        out: list[tuple[int, str, str, str]] = []
        for marks, chunk in in_lists([int(k) for k in keys]):
            sql = f"SELECT key, {columns} FROM {kind} WHERE key IN ({marks})"
            out.extend(self.db.execute(sql, chunk).fetchall())
        return out

    def keys_with_empty_bio(self, keys: list[int]) -> set[int]:
        found: set[int] = set()
        for marks, chunk in in_lists([int(k) for k in keys]):
            sql = f"SELECT key FROM influencers WHERE bio = '' AND key IN ({marks})"
            found.update(r[0] for r in self.db.execute(sql, chunk))
        return found

    def check_fts(self) -> list[str]:
        """Problems with the full-text indexes (SQLite's own integrity check of each)."""
        problems = []
        for kind in KINDS:
            try:
                self.db.execute(f"INSERT INTO {kind}_fts ({kind}_fts, rank) VALUES ('integrity-check', 1)")
            except sqlite3.DatabaseError as e:
                problems.append(f"{kind}: full-text index out of step with the table ({e})")
        return problems

    def integrity(self) -> list[str]:
        """SQLite's own quick check of the database file: empty when it is sound, else what it found (or why the
        file cannot be read at all)."""
        try:
            found = [row[0] for row in self.db.execute("PRAGMA quick_check(20)")]
        except sqlite3.DatabaseError as e:
            return [f"{self.path}: unreadable ({e})"]
        return [] if found == ["ok"] else [f"{self.path}: {problem}" for problem in found]

    def influencer_names(self) -> list[tuple[str, str, list[str], str, int]]:
        """(id, name, handles, category, followers) of every influencer not opted out: what a lookup reads."""
        sql = "SELECT id, name, platforms, category, followers FROM influencers WHERE opted_out = 0"
        return [
            (i, name, [p.get("handle") or "" for p in json.loads(platforms)], category, followers)
            for i, name, platforms, category, followers in self.db.execute(sql)
        ]

    def influencer_rows_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list({i for i in ids if i})
        out: dict[str, dict[str, Any]] = {}
        for marks, chunk in in_lists(ids):
            for row in self.db.query(f"SELECT * FROM influencers WHERE id IN ({marks})", chunk):
                out[row["id"]] = decode_row(row)
        return out

    def content_counts(self, influencer_ids: Iterable[str]) -> dict[str, int]:
        ids = list(set(influencer_ids))
        out: dict[str, int] = {}
        for marks, chunk in in_lists(ids):
            sql = f"SELECT influencer_id, count(*) FROM content WHERE influencer_id IN ({marks}) GROUP BY 1"
            out.update(self.db.execute(sql, chunk).fetchall())
        return out


# Records that may appear in results: not opted out, and not written by someone opted out. Written as joins on
# the record (alias r), not as a subquery, so that a lookup of a few keys stays a lookup at any size.
_VISIBLE = {
    "influencers": ("", "r.opted_out = 0"),
    "content": ("LEFT JOIN influencers a ON a.id = r.influencer_id", "(r.influencer_id IS NULL OR a.opted_out = 0)"),
}


def copy_data_dir(source: Path, target: Path) -> Path:
    """Copy a data dir: SQLite through its backup API (consistent even in WAL mode, the source opened read-only),
    index files as they are."""
    target.mkdir(parents=True)
    with sqlite3.connect(f"file:{source / 'relais.db'}?mode=ro", uri=True) as src:
        with sqlite3.connect(target / "relais.db") as dst:
            src.backup(dst)
    if (source / "vectors").exists():
        shutil.copytree(source / "vectors", target / "vectors")
    return target


def _to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def select_in(db: sqlite_utils.Database, sql: str, values: Iterable[Any], size: int = 500) -> Iterator[tuple]:
    """The rows of ``sql`` (whose ``{marks}`` stands for an IN list) for every value, ``size`` at a time."""
    for marks, chunk in in_lists(list(values), size):
        yield from db.execute(sql.format(marks=marks), chunk)


def in_lists(values: Sequence[Any], size: int = 500) -> Iterator[tuple[str, list[Any]]]:
    """``values`` ``size`` at a time, each slice with the ``?, ?, …`` of its SQL IN list: SQLite bounds the
    parameters of one statement."""
    values = list(values)
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield ",".join("?" * len(chunk)), chunk
