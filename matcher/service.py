"""The verbs that the API and the CLI share: load, reindex, match, get a record, describe the engine."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from matcher import embedding
from matcher.config import Settings
from matcher.detection import Detection, MomentDetector, fitted_detector, training_examples
from matcher.embedding import Encoder
from matcher.errors import IndexMismatchError, InvalidRequestError, NotFoundError
from matcher.filters import Filters
from matcher.index import VectorIndex
from matcher.loader import FileReport, Rejection, detect_kind, read_records
from matcher.moments import detection_settings, get_moment, load_moments, moment_vectors
from matcher.ranking import Ranked, Ranker, Target
from matcher.scoring import load_scoring
from matcher.store import KINDS, Store, content_from_row, influencer_from_row
from models.api_schemas import MAX_LIMIT, RESULT_TYPES
from models.moments import Moment
from models.records import Content, Influencer

logger = logging.getLogger(__name__)

BATCH = 500
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class MatchResult:
    moment: Moment
    query: str | None
    filters: Filters
    influencers: list[Ranked]
    content: list[Ranked]
    detection: Detection | None = None  # set when the moment was detected from a customer's words


class Engine:
    """One data directory: its SQLite store, its two FAISS indexes, the moments and the encoder."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None):
        self.settings = settings
        self.store = Store(settings.database_path)
        self.moments = load_moments(settings.moments_file)
        self.scoring = load_scoring(settings.scoring_file)
        self.encoder = encoder or embedding.load_encoder(settings.model, settings.batch_size)
        self.moment_vectors = moment_vectors(self.moments, self.encoder)
        self._write_lock = threading.RLock()
        self._embed_query = functools.lru_cache(maxsize=2048)(self._encode_one)
        examples_file, self._low_confidence = detection_settings(settings.moments_file)
        self._training = training_examples(self.moments, examples_file)
        self.ranker = self._open_indexes()

    # -- matching -------------------------------------------------------------------------------

    def match(
        self,
        moment: str,
        query: str | None = None,
        filters: Filters | dict[str, Any] | None = None,
        limit: int = 10,
        types: Sequence[str] = RESULT_TYPES,
        retrieval: str = "hybrid",
    ) -> MatchResult:
        """Ranked influencers and content for a moment, a query (optional) and filters.

        ``retrieval`` is 'hybrid' (dense and lexical, fused), 'dense' or 'lexical' (for evaluation).
        """
        chosen = get_moment(self.moments, moment)
        if not isinstance(filters, Filters):
            filters = Filters.from_mapping(filters)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}.", {"limit": ["Out of range."]})
        unknown = [t for t in types if t not in RESULT_TYPES]
        if unknown:
            raise InvalidRequestError(
                f"Unknown type {unknown[0]!r}.", {"types": [f"Must be among: {', '.join(RESULT_TYPES)}."]})
        query = (query or "").strip() or None
        relevance = self.scoring["relevance"]
        target = Target(
            moment=chosen,
            moment_vectors=self.moment_vectors[moment],
            query=query,
            query_vector=self._embed_query(query) if query else None,
            query_weight=relevance["query_weight"],
            moment_weight=relevance["moment_weight"],
        )
        ranker = self.ranker  # one consistent pair of indexes for the whole request
        if retrieval != ranker.retriever.mode:
            ranker = ranker.with_mode(retrieval)
        influencers = ranker.rank_influencers(target, filters, limit) if "influencers" in types else []
        # Freshness counts whole days from today (UTC): the same request gives the same answer all day long.
        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        content = ranker.rank_content(target, filters, limit, today) if "content" in types else []
        return MatchResult(chosen, query, filters, influencers, content)

    def match_text(self, text: str, filters: Filters | dict[str, Any] | None = None, limit: int = 10,
                   types: Sequence[str] = RESULT_TYPES) -> MatchResult:
        """For a chatbot: detect the moment of a customer's words, then match them as the query."""
        detection = self.detect(text)
        result = self.match(detection.moment, text, filters, limit, types)
        result.detection = detection
        return result

    def detect(self, text: str) -> Detection:
        """The likeliest moment of a customer's words, its probability and each moment's."""
        if not text or not text.strip():
            raise InvalidRequestError("text is empty: send the customer's words.", {"text": ["Must not be empty."]})
        return self.detector.detect(text.strip())

    @property
    def detector(self) -> MomentDetector:
        """Fitted on first use (it embeds every example), then shared by all engines of the process."""
        texts, labels = self._training
        return fitted_detector(self.encoder, tuple(texts), tuple(labels), self._low_confidence)

    def _encode_one(self, text: str) -> np.ndarray:
        vector = self.encoder.encode([text])[0]
        vector.setflags(write=False)  # cached: shared by every request with the same words
        return vector

    # -- records --------------------------------------------------------------------------------

    def influencer(self, influencer_id: str) -> dict[str, Any]:
        """A visible influencer's record with their content count; opted-out people are not found."""
        row = self.store.row_by_id("influencers", influencer_id)
        if row is None or row["opted_out"]:
            raise NotFoundError(f"No influencer with id {influencer_id!r}.")
        return {"record": influencer_from_row(row), "content_count": self.store.content_counts([row["id"]]).get(row["id"], 0)}

    def content(self, content_id: str) -> dict[str, Any]:
        """A visible piece of content and its author (None for brand-owned content)."""
        row = self.store.row_by_id("content", content_id)
        author = self.store.row_by_id("influencers", row["influencer_id"]) if row and row["influencer_id"] else None
        if row is None or (author is not None and author["opted_out"]):
            raise NotFoundError(f"No content with id {content_id!r}.")
        return {"record": content_from_row(row), "network": row["network"], "author": author}

    def health(self) -> dict[str, Any]:
        ranker = self.ranker
        return {
            "status": "ok",
            "model": self.encoder.name,
            "records": {kind: self.store.count(kind) for kind in KINDS},
            "indexed": {kind: ranker.indexes[kind].count for kind in KINDS},
            "store_version": self.store.version,
            "index_version": ranker.indexes["content"].meta.get("store_version"),
            "moments": sorted(self.moments),
        }

    # -- loading --------------------------------------------------------------------------------

    def load(self, paths: Iterable[Path], progress: Progress | None = None) -> list[FileReport]:
        """Import data-contract files (influencers first), embed what changed, rebuild the indexes."""
        progress = progress or (lambda stage, done, total: None)
        files = sorted((Path(p) for p in paths), key=lambda p: KINDS.index(detect_kind(p)))
        reports = []
        with self._write_lock:
            for path in files:
                reports.append(self._load_file(path, detect_kind(path), progress))
            self._embed_stale(progress)
            if self.store.version != self.ranker.indexes["content"].meta.get("store_version"):
                self.ranker = self._build_indexes()
        return reports

    def _load_file(self, path: Path, kind: str, progress: Progress) -> FileReport:
        report = FileReport(str(path), kind)
        batch: list[tuple[int, Influencer | Content]] = []
        with path.open("rb") as f:
            for item in read_records(f, kind):
                if isinstance(item, Rejection):
                    report.rejected.append(item)
                    report.lines = item.line
                    continue
                batch.append(item)
                report.lines = item[0]
                if len(batch) == BATCH:
                    self._write_batch(kind, batch, report)
                    progress(f"reading {path.name}", report.lines, 0)
                    batch = []
        self._write_batch(kind, batch, report)
        progress(f"reading {path.name}", report.lines, 0)
        report.rejected.sort(key=lambda r: r.line)
        return report

    def _write_batch(self, kind: str, batch: list[tuple[int, Any]], report: FileReport) -> None:
        if not batch:
            return
        if kind == "content":
            authors = self.store.existing_ids("influencers", (r.influencer_id for _, r in batch if r.influencer_id))
            for line, record in [item for item in batch if item[1].influencer_id not in authors | {None}]:
                report.rejected.append(Rejection(
                    line, f"influencer_id {record.influencer_id!r} is not a known influencer (load influencers first)",
                    record.id))
            batch = [item for item in batch if item[1].influencer_id in authors | {None}]
            outcomes = self.store.upsert_content([(r, self._derived_content(r)) for _, r in batch])
        else:
            text_of = embedding.influencer_text
            outcomes = self.store.upsert_influencers([(r, {"text_hash": embedding.text_hash(text_of(r))}) for _, r in batch])
        for outcome in outcomes:
            setattr(report, outcome, getattr(report, outcome) + 1)

    def _derived_content(self, content: Content) -> dict[str, Any]:
        return {"text_hash": embedding.text_hash(embedding.content_text(content)), "network": self._network_of(content)}

    def _network_of(self, content: Content) -> str:
        """Where a piece was published: from its format (tweet), else its URL's host, else 'web'."""
        networks = self.scoring["networks"]
        if content.format in networks["formats"]:
            return networks["formats"][content.format]
        host = (urlparse(content.url).hostname or "") if content.url else ""
        host = host.removeprefix("www.").removeprefix("m.")
        return networks["hosts"].get(host, "web")

    # -- embeddings and indexes -----------------------------------------------------------------

    def reindex(self, *, reembed: bool = False, progress: Progress | None = None) -> dict[str, int]:
        """Re-embed what is stale (everything with ``reembed``) and rebuild both indexes from the store."""
        with self._write_lock:
            if reembed:
                with self.store.transaction() as db:
                    db.execute("DELETE FROM embeddings")
            embedded = self._embed_stale(progress or (lambda stage, done, total: None))
            self.ranker = self._build_indexes()
        return {"embedded": embedded, **{kind: self.ranker.indexes[kind].count for kind in KINDS}}

    def _embed_stale(self, progress: Progress) -> int:
        done = 0
        for kind in KINDS:
            stale = self.store.stale_embeddings(kind, self.encoder.name)
            to_text = _TEXT_OF[kind]
            for start in range(0, len(stale), 256):
                chunk = stale[start : start + 256]
                rows = self.store.rows(kind, [key for key, _ in chunk])
                vectors = self.encoder.encode([to_text(rows[key]) for key, _ in chunk])
                self.store.save_embeddings(kind, self.encoder.name, [(k, h, v) for (k, h), v in zip(chunk, vectors)])
                done += len(chunk)
                progress(f"embedding {kind}", start + len(chunk), len(stale))
        return done

    def _build_indexes(self) -> Ranker:
        started = time.perf_counter()
        version = self.store.version
        inf_keys, inf_vectors = self.store.embeddings("influencers")
        content_keys, content_vectors = self.store.embeddings("content")
        authors = self.store.content_authors()
        empty_bio = {r[0] for r in self.store.db.execute("SELECT key FROM influencers WHERE bio = ''")}
        combined = embedding.influencer_vectors(
            inf_keys, inf_vectors, content_keys, content_vectors, authors, empty_bio, self.scoring["profile_vector"]
        )
        meta = {"model": self.encoder.name, "store_version": version}
        indexes = {
            "influencers": VectorIndex.build(inf_keys, combined, self.encoder.dimension, meta),
            "content": VectorIndex.build(content_keys, content_vectors, self.encoder.dimension, meta),
        }
        for kind, index in indexes.items():
            index.save(self._index_path(kind))
        logger.info("built indexes at store version %s in %.2fs: %s", version, time.perf_counter() - started,
                    {k: i.count for k, i in indexes.items()})
        return Ranker(self.store, indexes, self.scoring)

    def _open_indexes(self) -> Ranker:
        """Load the saved indexes if they match this model and this store state; otherwise rebuild them."""
        expect = {"model": self.encoder.name, "store_version": self.store.version, "dimension": self.encoder.dimension}
        try:
            indexes = {kind: VectorIndex.load(self._index_path(kind), expect) for kind in KINDS}
        except FileNotFoundError:
            logger.info("no index in %s yet: building it", self.settings.data_dir)
        except (IndexMismatchError, OSError, ValueError, RuntimeError) as e:
            logger.warning("rebuilding the indexes from the database: %s", e)
        else:
            return Ranker(self.store, indexes, self.scoring)
        with self._write_lock:
            self._embed_stale(lambda stage, done, total: None)
            return self._build_indexes()

    def _index_path(self, kind: str) -> Path:
        return self.settings.data_dir / f"{kind}.faiss"


_TEXT_OF = {
    "influencers": lambda row: embedding.influencer_text(influencer_from_row(row)),
    "content": lambda row: embedding.content_text(content_from_row(row)),
}
