"""Every change to the data: imports, single upserts, deletes. One write at a time; each is one transaction.

A write validates, embeds only the records whose text changed (outside any lock: it is the slow part), then under
the index write lock commits the records with their embeddings and brings the indexes in line, then saves the
index files under the read lock. Searches wait only for that commit, never for the embedding.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

import numpy as np

from matcher import embedding
from matcher.embedding import Encoder
from matcher.errors import InvalidRequestError, NotFoundError
from matcher.indexing import IndexSet, Progress
from matcher.loader import FileReport, Rejection
from matcher.rows import content_row, influencer_row
from matcher.store import Deleted, Store, Written
from models.records import Content, Influencer


class Writer:
    def __init__(self, store: Store, encoder: Encoder, indexes: IndexSet, networks: dict[str, Any]):
        self.store = store
        self.encoder = encoder
        self.indexes = indexes
        self.networks = networks
        self._one_writer = threading.Lock()  # one import or edit at a time in this process

    def import_records(
        self, kind: str, parsed: Iterable[Any], source: str, progress: Progress | None = None
    ) -> FileReport:
        """Write every valid record of one import in one transaction; report every line."""
        report = FileReport(source, kind)
        records: list[tuple[int, Influencer | Content]] = []
        for item in parsed:
            if isinstance(item, Rejection):
                report.rejected.append(item)
                report.lines = max(report.lines, item.line)
            else:
                records.append(item)
                report.lines = max(report.lines, item[0])
        with self._one_writer:  # authors are checked under the lock: a delete cannot slip in between
            if kind == "content":
                records = self._known_authors(records, report)
            written = self._write(kind, [r for _, r in records], progress)
        for w in written:
            setattr(report, w.outcome, getattr(report, w.outcome) + 1)
        report.rejected.sort(key=lambda r: r.line)
        return report

    def put(self, kind: str, record: Influencer | Content) -> Written:
        """Insert or update one record; content must name a known influencer (or none, for brand content)."""
        with self._one_writer:
            if isinstance(record, Content) and record.influencer_id is not None:
                if not self.store.keys_by_id("influencers", [record.influencer_id]):
                    raise InvalidRequestError(
                        f"influencer_id {record.influencer_id!r} is not a known influencer.",
                        {"influencer_id": ["Unknown influencer: create it first."]},
                    )
            return self._write(kind, [record], None)[0]

    def delete(self, kind: str, record_id: str) -> Deleted:
        """Delete a record (an influencer with all their content) from the store and the indexes at once."""
        with self._one_writer, self.indexes.following():
            deleted = self.store.delete(kind, record_id)
            if deleted is None:
                raise NotFoundError(f"No {'influencer' if kind == 'influencers' else 'content'} with id {record_id!r}.")
            if kind == "influencers":
                affected = [deleted.key], deleted.content_keys
            else:
                author = [deleted.author_id] if deleted.author_id else []
                affected = list(self.store.keys_by_id("influencers", author).values()), [deleted.key]
            with self.indexes.lock.writing():
                self.indexes.sync(*affected, deleted.version)
        with self.indexes.lock.reading():
            self.indexes.save()
        return deleted

    # -- the steps of a write -------------------------------------------------------------------

    def _write(self, kind: str, records: list[Influencer | Content], progress: Progress | None) -> list[Written]:
        texts = {r.id: self._text(kind, r) for r in records}
        rows = [self._row(kind, r, texts[r.id]) for r in records]
        hashes = {row["id"]: row["text_hash"] for row in rows}
        stale = self.store.embedding_needed(kind, hashes, self.encoder.name)
        vectors = self._encode(kind, [(i, texts[i]) for i in stale], hashes, progress)
        # The commit waits for no search; only bringing the indexes in line does (milliseconds). Until then a
        # search sees the new rows but not their vectors, and leaves them out: an import appears all at once.
        with self.indexes.following():
            written, version = self.store.upsert(kind, rows, vectors, self.encoder.name)
            # changed: a new or edited record, or one whose embedding was redone (e.g. after a model change)
            changed = [
                (w, row)
                for w, row in zip(written, rows, strict=True)
                if w.outcome != "unchanged" or row["id"] in vectors
            ]
            if changed:
                affected = self._affected(kind, changed)
                with self.indexes.lock.writing():
                    self.indexes.sync(*affected, version)
        if changed:
            with self.indexes.lock.reading():
                self.indexes.save()
        return written

    def _affected(self, kind: str, changed: list[tuple[Written, dict[str, Any]]]) -> tuple[list[int], list[int]]:
        """(influencer keys, content keys) whose vectors or visibility may have changed."""
        keys = [w.key for w, _ in changed]
        if kind == "influencers":
            # their own vectors, and their content's visibility (an opt-out hides it all)
            return keys, self.store.content_keys_of([row["id"] for _, row in changed])
        authors = {row["influencer_id"] for _, row in changed}
        authors |= {w.before["influencer_id"] for w, _ in changed if w.before}  # a piece may change author
        return list(self.store.keys_by_id("influencers", {a for a in authors if a}).values()), keys

    def _encode(
        self, kind: str, todo: list[tuple[str, str]], hashes: dict[str, str], progress: Progress | None
    ) -> dict[str, tuple[str, np.ndarray]]:
        out = {}
        for start in range(0, len(todo), embedding.ENCODE_CHUNK):
            chunk = todo[start : start + embedding.ENCODE_CHUNK]
            vectors = self.encoder.encode([text for _, text in chunk])
            out.update((record_id, (hashes[record_id], v)) for (record_id, _), v in zip(chunk, vectors, strict=True))
            if progress:
                progress(f"embedding {kind}", start + len(chunk), len(todo))
        return out

    def _known_authors(self, records: list[tuple[int, Any]], report: FileReport) -> list[tuple[int, Any]]:
        known = set(self.store.keys_by_id("influencers", (r.influencer_id for _, r in records if r.influencer_id)))
        kept = []
        for line, record in records:
            if record.influencer_id is None or record.influencer_id in known:
                kept.append((line, record))
            else:
                report.rejected.append(
                    Rejection(
                        line,
                        f"influencer_id {record.influencer_id!r} is not a known influencer (load influencers first)",
                        record.id,
                    )
                )
        return kept

    def _row(self, kind: str, record: Influencer | Content, text: str) -> dict[str, Any]:
        text_hash = embedding.text_hash(text)
        if kind == "influencers":
            return {**influencer_row(record), "text_hash": text_hash}
        return {**content_row(record), "text_hash": text_hash, "network": self._network_of(record)}

    @staticmethod
    def _text(kind: str, record: Influencer | Content) -> str:
        return embedding.influencer_text(record) if kind == "influencers" else embedding.content_text(record)

    def _network_of(self, content: Content) -> str:
        """Where a piece was published: from its format (tweet), else its URL's host, else 'web'."""
        if content.format in self.networks["formats"]:
            return self.networks["formats"][content.format]
        host = (urlparse(content.url).hostname or "") if content.url else ""
        return self.networks["hosts"].get(host.removeprefix("www.").removeprefix("m."), "web")
