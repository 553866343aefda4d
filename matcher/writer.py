"""Every change to the data: imports, single upserts, deletes. One write at a time across processes; each is one
transaction, which logs the keys it touched.

A write validates, embeds only the records whose text changed, commits the records with their embeddings, then
brings this process's catalogue up to date (other processes follow the change log). Searches never wait for the
embedding or the commit, only for the catalogue update (milliseconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

import numpy as np

from matcher import embedding
from matcher.embedding import Encoder
from matcher.errors import ConflictError, InvalidRequestError, NotFoundError
from matcher.indexing import Indexes, Progress
from matcher.loader import FileReport, Rejection
from matcher.rows import content_row, influencer_row
from matcher.store import Deleted, Store, Written
from models.records import Content, Influencer


class Writer:
    def __init__(self, store: Store, encoder: Encoder, indexes: Indexes, networks: dict[str, Any]):
        self.store = store
        self.encoder = encoder
        self.indexes = indexes
        self.networks = networks
        self._one_writer = indexes.lock  # one import or edit at a time, in any process

    def import_records(
        self, kind: str, parsed: Iterable[Any], source: str, progress: Progress | None = None
    ) -> FileReport:
        """Write every valid record of one import in one transaction; report every line."""
        report = FileReport(source, kind)
        records: list[tuple[int, Influencer | Content]] = []
        for item in parsed:
            if isinstance(item, Rejection):
                report.reject(item)
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

    def put(self, kind: str, record: Influencer | Content, *, create: bool = False) -> Written:
        """Insert or update one record; content must name a known influencer (or none, for brand content).
        ``create``: 409 if the id exists, checked under the writer's lock with the write (no other writer, in any
        process, can come between the check and the write)."""
        with self._one_writer:
            if create and self.store.keys_by_id(kind, [record.id]):
                noun = "influencers" if kind == "influencers" else "content"
                raise ConflictError(
                    f"{record.id!r} already exists: PUT to /v1/{noun}/{record.id} to replace it.",
                    {"id": ["Already exists."]},
                )
            if isinstance(record, Content) and record.influencer_id is not None:
                if not self.store.keys_by_id("influencers", [record.influencer_id]):
                    raise InvalidRequestError(
                        f"influencer_id {record.influencer_id!r} is not a known influencer.",
                        {"influencer_id": ["Unknown influencer: create it first."]},
                    )
            return self._write(kind, [record], None)[0]

    def delete(self, kind: str, record_id: str) -> Deleted:
        """Delete a record (an influencer with all their content) from the store and the indexes at once."""
        with self._one_writer:
            with self.indexes.catalogue.local_write():
                deleted = self.store.delete(kind, record_id)
                if deleted is None:
                    raise NotFoundError(
                        f"No {'influencer' if kind == 'influencers' else 'content'} with id {record_id!r}."
                    )
                self.indexes.after_write()
        return deleted

    # -- the steps of a write -------------------------------------------------------------------

    def prepare(
        self, kind: str, records: list[Influencer | Content], progress: Progress | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, tuple[str, np.ndarray]]]:
        """What a write of ``records`` stores: their rows, and the embeddings of those whose text the store does
        not already hold embedded by this model (by id: (text hash, vector))."""
        texts = {r.id: self._text(kind, r) for r in records}
        rows = [self._row(kind, r, texts[r.id]) for r in records]
        hashes = {row["id"]: row["text_hash"] for row in rows}
        stale = self.store.embedding_needed(kind, hashes, self.encoder.name)
        return rows, self._encode(kind, [(i, texts[i]) for i in stale], hashes, progress)

    def _write(self, kind: str, records: list[Influencer | Content], progress: Progress | None) -> list[Written]:
        rows, vectors = self.prepare(kind, records, progress)
        with self.indexes.catalogue.local_write():  # searches meanwhile answer from the state before it
            written, version = self.store.upsert(kind, rows, vectors, self.encoder.name)
            if version is not None:
                self.indexes.after_write()
        return written

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
                report.reject(
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
