"""The verbs that the API and the CLI share: match, detect, read, import, put, delete, reindex, check; and the
loop's: events in, what was served, learning."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from matcher import embedding, facets, lexical
from matcher.activations import Planning
from matcher.cache import LRU
from matcher.catalogue import Catalogue
from matcher.config import Settings
from matcher.detection import Detection, MomentDetector, fitted_detector, training_examples
from matcher.embedding import Encoder
from matcher.errors import InvalidRequestError, NotFoundError
from matcher.events import Shown
from matcher.fatigue import load_rules
from matcher.filters import Filters
from matcher.indexing import Indexes, Progress
from matcher.loader import FileReport, detect_kind, read_csv_records, read_records
from matcher.loop import Loop
from matcher.moments import detection_settings, get_moment, load_moments, moment_vectors
from matcher.plans import Plans
from matcher.products import load_aliases
from matcher.ranking import LEARNED, Policy, Ranked, Ranker
from matcher.retrieval import Target
from matcher.rows import content_from_row, influencer_from_row
from matcher.scoring import fold, load_scoring
from matcher.store import KINDS, Deleted, Store, Written
from matcher.writer import Writer
from models.api_schemas import MAX_LIMIT, RESULT_TYPES
from models.moments import Moment
from models.records import Content, Influencer

logger = logging.getLogger(__name__)
RESULTS_KEPT = 256  # answers kept per process (each holds its 10 to 60 rows)


@dataclass
class MatchResult:
    moment: Moment
    query: str | None
    filters: Filters
    influencers: list[Ranked]
    content: list[Ranked]
    detection: Detection | None = None  # set when the moment was detected from a customer's words
    policy: str = "learned"  # 'static', 'learned', or 'explore' (lower slots sampled: see each result's propensity)

    def shown(self) -> list[Shown]:
        """What this answer shows, slot by slot: what the served log keeps."""
        return [
            Shown(kind, r.row["id"], rank, r.propensity)
            for kind, results in (("influencers", self.influencers), ("content", self.content))
            for rank, r in enumerate(results, start=1)
        ]


class Engine:
    """One data directory: its SQLite store, its two FAISS indexes, the moments and the encoder."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None, query_encoder: Encoder | None = None):
        self.settings = settings
        self.store = Store(settings.database_path)
        self.moments = load_moments(settings.moments_file)
        self.scoring = load_scoring(settings.scoring_file)
        if encoder is None:
            encoder, query_encoder = embedding.encoders(settings)
        self.encoder = encoder  # records and moments
        self.query_encoder = query_encoder or encoder  # queries and customers' words
        self.moment_vectors = moment_vectors(self.moments, embedding.moments_encoder(self.encoder, self.query_encoder))
        self._embed_query = functools.lru_cache(maxsize=2048)(functools.partial(_encode_one, self.query_encoder))
        self._embed_words = functools.lru_cache(maxsize=2048)(functools.partial(_encode_one, self.encoder))
        self.detector_encoder = embedding.detector_encoder(settings, self.encoder)  # customers' words, for moments
        self._embed_for_detection = (
            self._embed_words
            if self.detector_encoder is self.encoder
            else functools.lru_cache(maxsize=2048)(functools.partial(_encode_one, self.detector_encoder))
        )
        # Whole answers, keyed by the catalogue's version and the day: a widget's moment repeats all day.
        self.answers = LRU(RESULTS_KEPT)
        examples_file, self._low_confidence = detection_settings(settings.moments_file)
        self._training = training_examples(self.moments, examples_file)
        self._detector: MomentDetector | None = None
        self.catalogue = Catalogue(self.store, self.scoring, self.moments, self.moment_vectors, self.encoder.dimension)
        self.index = Indexes(self.store, self.encoder, self.catalogue, settings.data_dir, settings.approximate_from)
        self.opened = self.index.open()  # 'loaded', 'built' or 'repaired (why)'
        self.loop = Loop(self.store, self.catalogue, self.scoring, load_rules(settings.fatigue_file), self.moments)
        self.loop.sync()
        self.translations = lexical.Translations.load(settings.translations_file)
        self.ranker = Ranker(
            self.store,
            self.catalogue,
            self.scoring,
            self.loop,
            load_aliases(settings.products_file),
            facets.load(settings.facets_file),
        )
        self.writer = Writer(self.store, self.encoder, self.index, self.scoring["networks"])
        self.planning = Planning(self.store, set(self.moments), on_write=self.loop.fatigue.refresh)
        self.plans = Plans(self)  # after everything a plan calls: match, the loop, planning
        encoder_names = f"{self.encoder.name} {self.query_encoder.name} {self.detector_encoder.name}"
        self.fingerprint = _fingerprint(settings, encoder_names)
        self._names: tuple[int, list[tuple[Any, ...]]] | None = None  # find_influencers' folded names, by version
        self.served_log = True  # note what every match shows (``matcher.events``): off for offline evaluation

    # -- matching -------------------------------------------------------------------------------

    def match(
        self,
        moment: str,
        query: str | None = None,
        filters: Filters | dict[str, Any] | None = None,
        limit: int = 10,
        types: Sequence[str] = RESULT_TYPES,
        retrieval: str = "hybrid",
        *,
        query_vector: np.ndarray | None = None,
        policy: Policy = LEARNED,
        request_id: str | None = None,
        caller: str | None = None,
        only_influencers: Sequence[str] = (),
    ) -> MatchResult:
        """Ranked influencers and content for a moment, a query (optional) and filters.

        ``retrieval`` is 'hybrid' (dense and lexical, fused), 'dense' or 'lexical' (for evaluation);
        ``query_vector``: the query's embedding when the caller has one (a chatbot's words, detected first);
        ``policy``: static, learned (the default) or exploring; ``request_id``: note what was shown under this id
        (with ``caller``, the key), for the events that will refer to it; ``only_influencers``: ids of the only
        influencers to return, scored as in any request whatever their rank (those the filters refuse are left out).
        """
        chosen = get_moment(self.moments, moment)
        if not isinstance(filters, Filters):
            filters = Filters.from_mapping(filters)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}.", {"limit": ["Out of range."]})
        unknown = [t for t in types if t not in RESULT_TYPES]
        if unknown:
            raise InvalidRequestError(
                f"Unknown type {unknown[0]!r}.", {"types": [f"Must be among: {', '.join(RESULT_TYPES)}."]}
            )
        query = (query or "").strip() or None
        relevance = self.scoring["relevance"]
        target = Target(
            moment=moment,
            query=query,
            query_vector=(query_vector if query_vector is not None else self._embed_dense(query)) if query else None,
            tokens=tuple(lexical.query_tokens(query, self.translations)) if query else (),
            query_weight=relevance["query_weight"],
            moment_weight=relevance["moment_weight"],
        )
        ranker = self.ranker if retrieval == self.ranker.retriever.mode else self.ranker.with_mode(retrieval)
        # Freshness counts whole days from today (UTC): the same request gives the same answer all day long.
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        only = tuple(sorted(set(only_influencers)))
        request = (
            today,
            moment,
            query,
            filters,
            limit,
            tuple(types),
            retrieval,
            query_vector is not None,
            policy,
            only,
        )
        self.index.refresh(wait=False)
        self.loop.ensure_running()  # other processes' activations reach fatigue through it, within a second
        with self.catalogue.reading():  # one consistent state of the catalogue for the whole request
            key = (self.catalogue.version, self.loop.version, *request)  # configuration: this engine's, for life
            result = None if policy.explore else self.answers.get(key)  # exploring: a new draw every time
            if result is None:
                influencers, content = [], []
                if "influencers" in types:
                    keys = (
                        np.array(list(self.store.keys_by_id("influencers", only).values()), np.int64) if only else None
                    )
                    influencers = ranker.rank_influencers(target, chosen, filters, limit, policy, keys)
                if "content" in types:
                    content = ranker.rank_content(target, chosen, filters, limit, today, policy)
                result = MatchResult(chosen, query, filters, influencers, content, policy=policy.name)
                if not policy.explore:
                    self.answers.put(key, result)
        if request_id is not None:
            self.note_served(request_id, result.moment.name, caller, result.policy, result.shown())
        return result

    def note_served(self, request_id: str, moment: str, caller: str | None, policy: str, shown: list[Shown]) -> None:
        """Keep what a request showed (written in the background): what its events will be joined to."""
        if self.served_log:
            self.loop.events.served(request_id, moment, caller, policy, shown)

    def match_text(
        self,
        text: str,
        filters: Filters | dict[str, Any] | None = None,
        limit: int = 10,
        types: Sequence[str] = RESULT_TYPES,
        **serving: Any,
    ) -> MatchResult:
        """For a chatbot: detect the moment of a customer's words, then match them as the query (one embedding of
        the words serves both). ``serving``: as ``match`` takes them (policy, request_id, caller)."""
        detection = self.detect(text)
        # One embedding serves both, unless the words are embedded with their French equivalents for the query, or
        # the encoder is joined: its records' vectors are not queries (e5's prefix, weights).
        words = text.strip()
        joined = isinstance(self.query_encoder, embedding.JoinedEncoder)
        vector = (self._embed_query if joined else self._embed_words)(lexical.with_french(words, self.translations))
        result = self.match(detection.moment, text, filters, limit, types, query_vector=vector, **serving)
        return dataclasses.replace(result, detection=detection)  # the result may be cached: a copy

    def _embed_dense(self, query: str) -> np.ndarray:
        """A query's embedding for dense retrieval: its words and their French equivalents (``lexical.with_french``;
        `matcher eval`: English queries over French content gained most)."""
        return self._embed_query(lexical.with_french(query, self.translations))

    def detect(self, text: str) -> Detection:
        """The likeliest moment of a customer's words, its probability and each moment's."""
        if not text or not text.strip():
            raise InvalidRequestError("text is empty: send the customer's words.", {"text": ["Must not be empty."]})
        return self.detector.detect(text.strip(), self._embed_for_detection(text.strip()))

    @property
    def detector(self) -> MomentDetector:
        """Fitted on first use (it embeds every example), then shared by all engines of the process."""
        if self._detector is None:  # the lookup hashes every example: once per engine, not once per request
            texts, labels = self._training
            # The records' encoder (fp32) unless another is set: int8 vectors moved the detector's confidence on
            # out-of-domain words.
            self._detector = fitted_detector(
                self.detector_encoder, tuple(texts), tuple(labels), self._low_confidence, self.settings.cache_dir
            )
        return self._detector

    # -- reading records ------------------------------------------------------------------------

    def influencer(self, influencer_id: str, *, include_opted_out: bool = False) -> dict[str, Any]:
        """An influencer's record with their content count; opted-out people only with ``include_opted_out`` (audit)."""
        row = self.store.row_by_id("influencers", influencer_id)
        if row is None or (row["opted_out"] and not include_opted_out):
            raise NotFoundError(f"No influencer with id {influencer_id!r}.")
        return {
            "record": influencer_from_row(row),
            "content_count": self.store.content_counts([row["id"]]).get(row["id"], 0),
        }

    def find_influencers(self, text: str, category: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Influencers not opted out whose name, id or a handle contains ``text`` (case and accents ignored, by the
        one ``fold``), names that start with it first, then by audience: a planner looking someone up. The folded
        names are kept per catalogue version (a scan of SQL rows folding each took ~0.4 s at 34,000 people)."""
        version = self.catalogue.version
        if self._names is None or self._names[0] != version:
            self._names = (
                version,
                [
                    (fold(" ".join([name, i, *handles])), fold(name), i, kind, followers)
                    for i, name, handles, kind, followers in self.store.influencer_names()
                ],
            )
        words = fold(text)
        found = [p for p in self._names[1] if words in p[0] and (category is None or p[3] == category)]
        found.sort(key=lambda p: (not p[1].startswith(words), -p[4], p[2]))
        rows = self.store.influencer_rows_by_id(p[2] for p in found[:limit])
        return [rows[p[2]] for p in found[:limit] if p[2] in rows and not rows[p[2]]["opted_out"]]

    def content(self, content_id: str, *, include_opted_out: bool = False) -> dict[str, Any]:
        """A piece of content and its author (None for brand content); an opted-out author's only with
        ``include_opted_out``."""
        row = self.store.row_by_id("content", content_id)
        author = self.store.row_by_id("influencers", row["influencer_id"]) if row and row["influencer_id"] else None
        if row is None or (author is not None and author["opted_out"] and not include_opted_out):
            raise NotFoundError(f"No content with id {content_id!r}.")
        return {"record": content_from_row(row), "network": row["network"], "author": author}

    # -- the loop -------------------------------------------------------------------------------

    def record_events(
        self, events: Sequence[dict[str, Any]], *, key_id: str | None = None, origin: str | None = None
    ) -> dict[str, int]:
        """Store a batch of customer events (validated by ``EventSchema``), once each: learned from within
        seconds."""
        self.loop.ensure_running()
        return self.loop.events.record(events, key_id=key_id, origin=origin)

    def import_events(self, path: Path) -> dict[str, Any]:
        """Events from a JSON Lines or CSV file (by its .csv name), every line reported; then learned from."""
        with Path(path).open(encoding="utf-8", errors="replace", newline="") as f:
            report = self.loop.events.import_lines(f, csv_format=Path(path).suffix.lower() == ".csv")
        self.loop.sync()
        return report

    def learn(self) -> dict[str, Any]:
        """Write what was served and learn from every stored event now (the background does it every second)."""
        self.loop.sync()
        return self.loop.engagement.stats()

    def kpis(
        self, filters: dict[str, Any], group_by: Sequence[str], voices: str = "activated", themes: int = 10
    ) -> dict[str, Any]:
        """The brand team's KPIs (``matcher.kpis``): activations, share of voice, tonality, customers, spread."""
        from matcher.kpis import kpis

        return kpis(self.store, self.scoring, filters, group_by, voices, themes)

    def health(self) -> dict[str, Any]:
        """What is loaded; status 'unhealthy' (with the problem) when the database cannot be read."""
        self.loop.ensure_running()
        try:
            records = {kind: self.store.count(kind) for kind in KINDS}
            store_version = self.store.version
        except sqlite3.DatabaseError as e:
            return {
                "status": "unhealthy",
                "problem": f"the database {self.store.path} cannot be read ({e}): restore it from a backup, then "
                "run `python -m matcher check`",
            }
        return {
            "status": "ok",
            "model": self.encoder.name,
            "query_model": self.query_encoder.name,
            "process": os.getpid(),
            "records": records,
            "indexed": {kind: int(self.catalogue.visible(kind).sum()) for kind in KINDS},
            "store_version": store_version,
            "index_version": self.catalogue.version,
            "moments": sorted(self.moments),
            "learning": self.loop.engagement.stats(),
        }

    # -- writing records ------------------------------------------------------------------------

    def load(self, paths: Iterable[Path], progress: Progress | None = None) -> list[FileReport]:
        """Import data-contract files (JSON Lines, or CSV by their .csv name), influencers first; one transaction
        per file."""
        files = sorted((Path(p) for p in paths), key=lambda p: KINDS.index(detect_kind(p)))
        reports = []
        for path in files:
            with path.open("rb") as f:
                lines = _counting(f, path.name, progress)
                reports.append(
                    self.import_lines(
                        detect_kind(path), lines, str(path), csv=path.suffix.lower() == ".csv", progress=progress
                    )
                )
        return reports

    def import_lines(
        self,
        kind: str,
        lines: Iterable[bytes | str],
        source: str,
        *,
        csv: bool = False,
        progress: Progress | None = None,
    ) -> FileReport:
        """One import of one kind: every line reported, the valid ones written in one transaction."""
        if kind not in KINDS:
            raise InvalidRequestError(f"Unknown kind {kind!r}.", {"kind": [f"Must be one of: {', '.join(KINDS)}."]})
        parsed = read_csv_records(lines, kind) if csv else read_records(lines, kind)
        return self.writer.import_records(kind, parsed, source, progress)

    def put(self, kind: str, record: Influencer | Content, *, create: bool = False) -> Written:
        """Create or replace one record; searchable (or hidden, if opted out) as soon as this returns. ``create``:
        only if the id is new (409 otherwise)."""
        return self.writer.put(kind, record, create=create)

    def delete(self, kind: str, record_id: str) -> Deleted:
        """Delete one record for good (an influencer with all their content), from results at once."""
        return self.writer.delete(kind, record_id)

    def kind_of(self, record_id: str) -> str:
        """'influencers' or 'content': which table holds this id."""
        for kind in KINDS:
            if self.store.keys_by_id(kind, [record_id]):
                return kind
        raise NotFoundError(f"No influencer or content with id {record_id!r}.")

    def before_fork(self, threads: int) -> None:
        """In a process about to fork workers that get ``threads`` threads each: no SQLite connection and no
        onnxruntime session may cross a fork, and BLAS and OpenMP are limited here, for the workers to inherit
        (two workers on two cores, each with two BLAS threads, spent a third of their time contending; limiting
        OpenBLAS in a forked child instead left it deaf to SIGTERM: measured, it never stopped)."""
        import faiss
        import threadpoolctl

        self.loop.stop()  # no thread may hold a lock across the fork
        self.store.close()
        for encoder in self._encoders():
            close = getattr(encoder, "close", None)
            if close is not None:
                close()
        threadpoolctl.threadpool_limits(threads)
        faiss.omp_set_num_threads(threads)

    def after_fork(self, threads: int) -> None:
        """In a new worker process: its encoders' sessions, on ``threads`` threads (the cores divided among
        workers)."""
        for encoder in self._encoders():
            set_threads = getattr(encoder, "set_threads", None)
            if set_threads is not None:
                set_threads(threads)
        self.loop.ensure_running()  # every worker learns, whether or not it serves a match
        warm = getattr(self.query_encoder, "open", None)
        if warm is not None:
            warm()  # the first text query should not pay for a session; the records' one opens on a write

    def close(self) -> None:
        """Done with this engine (a serving process about to end, an evaluation over): the loop's thread stopped,
        what it served in its last second written, not lost, and this thread's connection closed."""
        self.loop.stop()
        self.store.close()

    def _encoders(self) -> list[Encoder]:
        """The records' and the queries' encoders, once each when they are the same one."""
        return list({id(e): e for e in (self.encoder, self.query_encoder, self.detector_encoder)}.values())

    def state_tag(self) -> str:
        """Changes whenever an answer may: data written, configuration or model changed, or a new day
        (freshness counts days). What HTTP caches key on."""
        self.index.refresh(wait=False)
        today = datetime.now(UTC).date().isoformat()
        learned, (planning, _) = self.loop.version
        return f"{self.catalogue.version}.{learned}.{planning}.{self.fingerprint}.{today}"

    # -- keeping the indexes right --------------------------------------------------------------

    def reindex(self, *, reembed: bool = False, progress: Progress | None = None) -> dict[str, int]:
        """Re-embed what is stale (everything with ``reembed``) and rebuild both indexes from the store."""
        embedded = self.index.rebuild(reembed=reembed, progress=progress)
        return {"embedded": embedded, **{kind: int(self.catalogue.visible(kind).sum()) for kind in KINDS}}

    def check(self) -> list[str]:
        """Problems between the database and the saved indexes; empty when they agree."""
        return self.index.check()


def _encode_one(encoder: Encoder, text: str) -> np.ndarray:
    vector = encoder.encode([text])[0]
    vector.setflags(write=False)  # cached: shared by every request with the same words
    return vector


def _fingerprint(settings: Settings, model: str) -> str:
    """A short hash of what shapes every answer besides the data: the moments and scoring files, the model."""
    digest = hashlib.sha256(model.encode())
    files = (settings.moments_file, settings.scoring_file, settings.fatigue_file, settings.products_file)
    for path in (*files, settings.translations_file, settings.facets_file):
        if Path(path).exists():  # the aliases, translations and facets files may be left out
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def _counting(lines: Iterable[bytes], name: str, progress: Progress | None) -> Iterable[bytes]:
    """Pass lines through, telling ``progress`` how many were read."""
    number = 0
    for number, line in enumerate(lines, start=1):
        if progress and number % 500 == 0:
            progress(f"reading {name}", number, 0)
        yield line
    if progress:
        progress(f"reading {name}", number, 0)
