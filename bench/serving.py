"""The serving benchmark: every target of real-time serving, measured in one run and printed as one table.

    python bench/serving.py                      # fixtures + youtube-fr: in process, txtai beside, HTTP, writes
    python bench/serving.py --kim DATA_DIR       # and instagram-kim scale, from a data dir `matcher load` filled
    python bench/serving.py --synthetic 1000000  # and the index types on a million synthetic vectors

Prints figures; asserts nothing. In process, one thread (what each worker gets when there is one per core); over
HTTP, the real server with its production settings (`matcher serve`: API keys, one worker per core, rate-limit
counters in Redis if redis-server is installed) driven by wrk. txtai needs `pip install -r bench/requirements.txt
-c requirements.txt`; wrk and redis-server come from Debian (apt-get install wrk redis-server). Two shared cores:
read medians and ratios from one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.load import distinct_queries, run_wrk  # noqa: E402
from matcher.config import PROJECT_DIR, Settings  # noqa: E402

FIXTURES = PROJECT_DIR / "fixtures" / "homelive"
YOUTUBE = PROJECT_DIR.parent / "shared" / "data" / "youtube-fr"
FILES = [FIXTURES / "influencers.jsonl", YOUTUBE / "influencers.jsonl", FIXTURES / "content.jsonl"]
FILES.append(YOUTUBE / "content.jsonl")
UNLIMITED = json.dumps({role: "10000000 per minute" for role in ("widget", "planner", "admin", "anonymous")})
PYTHON = sys.executable


def ms(seconds: list[float]) -> dict[str, float]:
    a = np.array(seconds) * 1000
    return {"p50": float(np.median(a)), "p99": float(np.percentile(a, 99)), "n": len(a)}


def timed(call: Any, items: list[Any]) -> list[float]:
    out = []
    for item in items:
        started = time.perf_counter()
        call(item)
        out.append(time.perf_counter() - started)
    return out


def single_thread(engine: Any) -> None:
    """What a worker has when there is one per core: one thread for BLAS and for the encoders."""
    import faiss
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)
    faiss.omp_set_num_threads(1)
    engine.after_fork(1)


# -- in process -------------------------------------------------------------------------------------------------


def in_process(engine: Any, queries: list[str]) -> dict[str, Any]:
    """Match latencies with queries new to the process, the answer cache bypassed where it says so."""
    single_thread(engine)
    for q in queries[:20]:
        engine.match("technical_validation", q)
    text, content, alone = queries[20:320], queries[320:620], queries[620:920]
    out = {
        "text": ms(timed(lambda q: engine.match("technical_validation", q), text)),
        "content": ms(timed(lambda q: engine.match("technical_validation", q, types=["content"]), content)),
        "encode": ms(timed(lambda q: engine.query_encoder.encode([q]), alone)),
    }

    def moment_alone(limit: int) -> None:
        engine.answers.clear()  # the work itself, not the cache
        engine.match("discovery", None, {"products": "homelive"}, limit=limit, types=["content"])

    out["moment"] = ms(timed(moment_alone, [3] * 300))
    engine.match("discovery", None, {"products": "homelive"}, limit=3, types=["content"])
    out["moment_cached"] = ms(
        timed(
            lambda _: engine.match("discovery", None, {"products": "homelive"}, limit=3, types=["content"]), [0] * 300
        )
    )
    return out


def txtai_peer(queries: list[str]) -> dict[str, Any] | None:
    """txtai's hybrid search on the same content records, one thread, in this process."""
    try:
        from bench import peer_txtai
    except ImportError as e:
        print(f"txtai not installed ({e}): pip install -r bench/requirements.txt -c requirements.txt")
        return None
    built = peer_txtai.build_index([FIXTURES / "content.jsonl", YOUTUBE / "content.jsonl"])
    samples = peer_txtai.time_searches(built.embeddings, queries[10:310], queries[:10], thread_count=1)
    return {"search": ms([s / 1000 for s in samples]), "build_s": built.build_s}


def ingestion(engine: Any, data_dir: Path) -> dict[str, Any]:
    """Records/s of a real import (validation, embedding, commit, catalogue) against encoding the same texts."""
    from matcher.embedding import content_text
    from matcher.loader import read_records

    lines = (YOUTUBE / "content.jsonl").read_bytes().splitlines()[:1000]
    fresh = [line.replace(b'"id": "', b'"id": "again-', 1) for line in lines]  # new ids, so all is written
    started = time.perf_counter()
    report = engine.import_lines("content", fresh, "bench")
    imported = time.perf_counter() - started
    texts = [content_text(r) for _, r in read_records(lines, "content") if not isinstance(r, Exception)]
    started = time.perf_counter()
    engine.encoder.encode(texts)
    encoded = time.perf_counter() - started
    return {"records_s": report.accepted / imported, "texts_s": len(texts) / encoded}


# -- over HTTP --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`matcher serve` as in production (keys required, one worker per core), its own process group."""

    def __init__(self, data_dir: Path, workers: int, threads: int, redis_url: str | None):
        self.port, self.workers, self.health_port = free_port(), workers, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "RELAIS_RATE_LIMITS": UNLIMITED}
        if redis_url:
            env["RELAIS_RATELIMIT_STORAGE_URI"] = redis_url
        created = subprocess.run(
            [PYTHON, "-m", "matcher", "keys", "create", "--role", "admin", "--data-dir", str(data_dir)],
            cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        self.key = created.stdout.strip()
        self.log = open(data_dir.parent / f"server-{self.port}.log", "w")  # noqa: SIM115 (closed in stop)
        command = [PYTHON, "-m", "matcher", "serve", "--data-dir", str(data_dir), "--port", str(self.port)]
        command += ["--workers", str(workers), "--threads", str(threads), "--health-port", str(self.health_port)]
        self.process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if len({h["process"] for h in (self.get("/health") for _ in range(8))}) == workers:
                    return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"the server did not start: see {self.log.name}")

    def get(self, path: str) -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(request, timeout=30) as response:  # a new connection: any worker may answer
            return json.loads(response.read())

    def send(self, method: str, path: str, body: dict[str, Any]) -> int:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(), headers, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status

    def processes(self) -> dict[str, list[int]]:
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == self.process.pid]
        return {"master": [self.process.pid], "workers": sorted(children)}

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)
        self.log.close()


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def memory(pid: int) -> dict[str, float]:
    """Resident and proportional set sizes (MB): PSS splits the pages processes share (the mapped vectors, the
    preloaded app) among them."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"]}


def start_redis() -> tuple[subprocess.Popen | None, str | None]:
    if shutil.which("redis-server") is None:
        print("redis-server not found: rate-limit counters stay in each worker (each allows its share)")
        return None, None
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process, f"redis://127.0.0.1:{port}"


def over_http(data_dir: Path, queries: list[str], duration: int, threads: int) -> dict[str, Any]:
    """Throughput and latency under wrk, write-to-visible time across workers, memory of every process."""
    workers = os.cpu_count() or 1
    redis, redis_url = start_redis()
    served = Served(data_dir, workers, threads, redis_url)
    try:
        headers = {"Authorization": f"Bearer {served.key}", "Content-Type": "application/json"}
        get_url = served.url + "/v1/match?moment=discovery&types=content&products=homelive&limit=3"
        for q in queries[:20]:  # each worker's first requests (lazy parts) aside
            served.send("POST", "/v1/match", {"moment": "technical_validation", "query": q, "limit": 10})
        common = {"headers": headers, "connections": 8, "threads": 2, "duration_s": duration}
        out = {"get": run_wrk(get_url, label="GET moment", **common)}
        bodies = [{"moment": "technical_validation", "query": q, "limit": 10} for q in queries[20:]]
        out["post"] = run_wrk(served.url + "/v1/match", method="POST", bodies=bodies, label="POST text", **common)
        out["health"] = health_under_load(served, bodies, duration)
        out["visible"] = write_to_visible(served, 20)
        out["memory"] = {role: [memory(p) for p in pids] for role, pids in served.processes().items()}
        out["workers"], out["redis"] = workers, bool(redis_url)
    finally:
        served.stop()
        if redis is not None:
            redis.terminate()
    return out


def health_under_load(served: Served, bodies: list[dict[str, Any]], duration: int) -> dict[str, Any]:
    """How long a probe waits while 64 connections keep every worker busy with text matches: /health on the API
    port (queued with the searches) and on the liveness port (``serve --health-port``, outside the queue)."""
    headers = {"Authorization": f"Bearer {served.key}", "Content-Type": "application/json"}
    load = threading.Thread(
        target=run_wrk,
        args=(served.url + "/v1/match",),
        kwargs={"method": "POST", "bodies": bodies, "headers": headers, "connections": 64, "threads": 2,
                "duration_s": duration, "timeout_s": 30},
    )  # fmt: skip
    load.start()
    time.sleep(2)  # the queue fills
    waits: dict[str, list[float]] = {"api port": [], "liveness port": []}
    urls = {"api port": served.url + "/health", "liveness port": f"http://127.0.0.1:{served.health_port}/health"}
    while load.is_alive() and len(waits["api port"]) < 200:
        for name, url in urls.items():
            started = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as response:
                response.read()
            waits[name].append(time.perf_counter() - started)
        time.sleep(0.1)
    load.join()
    return {name: ms(found) | {"max": max(found) * 1000, "n": len(found)} for name, found in waits.items()}


def write_to_visible(served: Served, times: int) -> dict[str, Any]:
    """From a PUT's answer until every worker reports a catalogue at (at least) the store version it made."""
    waits = []
    for n in range(times):
        piece = {"title": f"Visible partout {n}", "text": "Essai.", "format": "article", "published_at": "2026-11-30"}
        assert served.send("PUT", f"/v1/content/bench-visible-{n}", piece) in (200, 201)
        answered = time.perf_counter()
        version = served.get("/health")["store_version"]
        seen: dict[int, int] = {}
        while len(seen) < served.workers or min(seen.values()) < version:
            health = served.get("/health")
            seen[health["process"]] = health["index_version"]
        waits.append(time.perf_counter() - answered)
    return ms(waits) | {"max": max(waits) * 1000}


# -- scale ------------------------------------------------------------------------------------------------------


def at_scale(data_dir: Path, queries: list[str], duration: int, threads: int) -> dict[str, Any]:
    """instagram-kim: text and moment latencies in process, bytes per record, and memory per serving process."""
    from matcher.service import Engine

    engine = Engine(Settings.from_env({"data_dir": data_dir}))
    records = sum(t.count for t in engine.catalogue.tables.values())
    vector_bytes = sum(p.stat().st_size for p in (data_dir / "vectors").glob("*"))
    array_bytes = sum(a.nbytes for t in engine.catalogue.tables.values() for a in [t.alive, *t.values.values()]) + sum(
        p._keys.nbytes + p._weights.nbytes for t in engine.catalogue.tables.values() for p in _postings(t)
    )
    out = in_process(engine, queries)
    out["records"], out["vector_bytes"], out["array_bytes"] = records, vector_bytes / records, array_bytes / records
    del engine
    workers = os.cpu_count() or 1
    served = Served(data_dir, workers, threads, None)
    try:
        for q in queries[:40]:
            served.send("POST", "/v1/match", {"moment": "desirability", "query": q, "limit": 10})
        out["memory"] = {role: [memory(p) for p in pids] for role, pids in served.processes().items()}
    finally:
        served.stop()
    return out


def _postings(table: Any) -> list[Any]:
    return [*table.tags.values(), table.words.postings]


def synthetic(count: int, dimension: int = 384, queries: int = 200) -> dict[str, Any]:
    """Exact search and the HNSW graph on clustered unit vectors (like embeddings, unlike uniform noise): build
    time, query time, recall@10 against exact, bytes."""
    import faiss

    from matcher.vector_base import VectorIndex, top_k

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(64, count // 500), dimension)).astype(np.float32)
    vectors = np.empty((count, dimension), np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        block = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, dimension), np.float32)
        vectors[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    asked = centres[rng.integers(0, len(centres), queries)] + 0.6 * rng.standard_normal((queries, dimension))
    asked = (asked / np.linalg.norm(asked, axis=1, keepdims=True)).astype(np.float32)
    started = time.perf_counter()
    index = VectorIndex.build(np.arange(count), vectors, dimension, approximate_from=1)
    build_s = time.perf_counter() - started
    del vectors
    faiss.omp_set_num_threads(1)
    allowed = np.ones(count, bool)
    exact_ids, exact_s, graph_s, recall = [], [], [], []
    for q in asked:
        started = time.perf_counter()
        exact_ids = top_k(index.similarities(q), 10)
        exact_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        found = index.search(q, 10, allowed)
        graph_s.append(time.perf_counter() - started)
        recall.append(len(set(found.tolist()) & set(exact_ids.tolist())) / 10)
    return {
        "count": count,
        "build_s": build_s,
        "exact": ms(exact_s),
        "hnsw": ms(graph_s),
        "recall": float(np.mean(recall)),
        "graph_mb": faiss.serialize_index(index.graph).nbytes / 2**20,
        "vectors_mb": index.rows.nbytes / 2**20,
    }


# -- the table --------------------------------------------------------------------------------------------------


def table(rows: list[tuple[str, str, str, bool | None]]) -> str:
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    out = [f"{'target':{width[0]}}  {'measured':{width[1]}}  {'aim':{width[2]}}  met"]
    for what, measured, aim, met in rows:
        mark = "-" if met is None else ("yes" if met else "NO")
        out.append(f"{what:{width[0]}}  {measured:{width[1]}}  {aim:{width[2]}}  {mark}")
    return "\n".join(out)


def summary(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, bool | None]] = []
    local, peer = r["in_process"], r.get("txtai")
    rows.append(("text match p50 (influencers + content)", f"{local['text']['p50']:.1f} ms", "<= 10 ms",
                 local["text"]["p50"] <= 10))  # fmt: skip
    rows.append(("text match p99", f"{local['text']['p99']:.1f} ms", "<= 25 ms", local["text"]["p99"] <= 25))
    if peer:
        ratio = local["text"]["p50"] / peer["search"]["p50"]
        rows.append(("  against txtai hybrid p50, same run", f"{peer['search']['p50']:.1f} ms (x{ratio:.2f})",
                     "Relais <= txtai", ratio <= 1))  # fmt: skip
    rows.append(("content-only text match p50", f"{local['content']['p50']:.1f} ms", "", None))
    rows.append(("encoding one query p50", f"{local['encode']['p50']:.1f} ms", "", None))
    rows.append(("moment-only match p50 (no cache)", f"{local['moment']['p50']:.2f} ms", "<= 1 ms",
                 local["moment"]["p50"] <= 1))  # fmt: skip
    rows.append(("moment-only match p50 (cached)", f"{local['moment_cached']['p50'] * 1000:.0f} us", "", None))
    if "ingestion" in r:
        i = r["ingestion"]
        rows.append(("import records/s vs raw encoding texts/s", f"{i['records_s']:.0f} / {i['texts_s']:.0f} "
                     f"({i['records_s'] / i['texts_s']:.2f})", "", None))  # fmt: skip
    if "http" in r:
        h = r["http"]
        get, post = h["get"], h["post"]
        rows.append((f"GET moment, 8 clients, {h['workers']} workers", f"{get.rps:.0f} req/s", ">= 1000",
                     get.rps >= 1000))  # fmt: skip
        rows.append(("  p99", f"{get.p99_ms:.1f} ms", "<= 10 ms", get.p99_ms <= 10))
        rows.append(("  errors", f"{get.errors}", "0", get.errors == 0))
        rows.append(("POST new text queries, 8 clients", f"{post.rps:.0f} req/s", ">= 150",
                     post.rps >= 150))  # fmt: skip
        rows.append(("  p99", f"{post.p99_ms:.1f} ms", "<= 100 ms", post.p99_ms <= 100))
        rows.append(("  errors", f"{post.errors}", "0", post.errors == 0))
        api, live = h["health"]["api port"], h["health"]["liveness port"]
        rows.append(("/health under 64 busy connections: API port p50 / max", f"{api['p50']:.0f} / {api['max']:.0f} ms",
                     "", None))  # fmt: skip
        rows.append(("  liveness port (serve --health-port) p50 / max", f"{live['p50']:.1f} / {live['max']:.0f} ms",
                     "<= 100 ms", live["max"] <= 100))  # fmt: skip
        v = h["visible"]
        rows.append(("write visible in every worker (p50 / max)", f"{v['p50']:.0f} / {v['max']:.0f} ms", "<= 1 s",
                     v["max"] <= 1000))  # fmt: skip
        rss = max(m["rss"] for m in h["memory"]["workers"])
        rows.append(("worker memory, fixtures + youtube-fr (RSS)", f"{rss:.0f} MB", "", None))
    if "kim" in r:
        k = r["kim"]
        rows.append((f"kim text match p50 ({k['records']:,} records)", f"{k['text']['p50']:.1f} ms", "<= 20 ms",
                     k["text"]["p50"] <= 20))  # fmt: skip
        rows.append(("kim moment-only p50 (no cache)", f"{k['moment']['p50']:.2f} ms", "", None))
        rows.append(("kim bytes per record: vector files / arrays", f"{k['vector_bytes']:.0f} / {k['array_bytes']:.0f}",
                     "", None))  # fmt: skip
        rss = max(m["rss"] for m in k["memory"]["workers"])
        pss = max(m["pss"] for m in k["memory"]["workers"])
        rows.append(("kim memory per worker, RSS (PSS)", f"{rss:.0f} MB ({pss:.0f})", "<= 600 MB", rss <= 600))
    if "synthetic" in r:
        s = r["synthetic"]
        rows.append((f"{s['count']:,} vectors: HNSW build", f"{s['build_s']:.0f} s", "", None))
        rows.append(("  query: exact / HNSW p50", f"{s['exact']['p50']:.1f} / {s['hnsw']['p50']:.2f} ms", "", None))
        rows.append(("  recall@10 against exact", f"{s['recall']:.3f}", "", None))
        rows.append(("  memory: vectors / graph", f"{s['vectors_mb']:.0f} / {s['graph_mb']:.0f} MB", "", None))
    return table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kim", type=Path, help="a data dir holding instagram-kim (matcher load)")
    parser.add_argument("--synthetic", type=int, default=0, help="also this many synthetic vectors (e.g. 1000000)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of each wrk run")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-txtai", action="store_true")
    parser.add_argument("--json", type=Path, help="write every figure to this file too")
    args = parser.parse_args()
    from matcher.service import Engine

    queries = distinct_queries(30_000)
    work = Path(tempfile.mkdtemp(prefix="relais-serving-"))
    results: dict[str, Any] = {}
    try:
        data = work / "data"
        started = time.perf_counter()
        engine = Engine(Settings.from_env({"data_dir": data}))
        engine.load(FILES)
        print(f"loaded fixtures + youtube-fr in {time.perf_counter() - started:.0f} s: {engine.health()['records']}")
        results["in_process"] = in_process(engine, queries[:1000])
        if not args.no_txtai:
            results["txtai"] = txtai_peer(queries[1000:1400])
        results["ingestion"] = ingestion(engine, data)
        del engine
        if not args.no_http:
            results["http"] = over_http(data, queries[1400:], args.duration, args.threads)
        if args.kim:
            results["kim"] = at_scale(args.kim, queries[2000:3000], args.duration, args.threads)
        if args.synthetic:
            results["synthetic"] = synthetic(args.synthetic)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(summary(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=lambda o: getattr(o, "__dict__", str(o))))


if __name__ == "__main__":
    main()
