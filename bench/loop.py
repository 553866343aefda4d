"""The loop's benchmark: events in over HTTP, and how soon every worker learns from them.

    python bench/loop.py                 # fixtures; 40 batches of 500 events, 4 clients
    python bench/loop.py --batches 200   # longer

Against the real server with its production settings (`matcher serve`: keys, one worker per core). Prints events
stored per second (target: 2,000 a second in batches of 500 on 2 cores), each batch's latency, the time from a
click's answer until every worker has learned from it, and GET /v1/kpis's latency over what was stored.
Asserts nothing. Two shared cores: read medians and ratios from one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.serving import FIXTURES, Served, ms  # noqa: E402
from matcher.config import Settings  # noqa: E402

MOMENTS = ("discovery", "desirability", "technical_validation")


def batches(count: int, size: int, items: list[str]) -> list[bytes]:
    out = []
    for b in range(count):
        events = [
            {
                "event_id": f"bench-{b}-{i}",
                "type": "click" if i % 10 == 0 else "impression",
                "request_id": f"bench-request-{b}-{i // 10}",
                "item_id": items[i % len(items)],
                "rank": i % 10 + 1,
                "moment": MOMENTS[b % 3],
            }
            for i in range(size)
        ]
        out.append(json.dumps({"events": events}).encode())
    return out


def ingest(served: Served, bodies: list[bytes], clients: int) -> dict[str, Any]:
    """Every body POSTed once by ``clients`` threads on kept-alive connections: events/s and batch latencies."""
    latencies: list[float] = []
    errors: list[int] = []
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {served.key}", "Content-Type": "application/json"}

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                _, body = queue.pop()
            started = time.perf_counter()
            connection.request("POST", "/v1/events", body, headers)
            response = connection.getresponse()
            response.read()
            with lock:
                latencies.append(time.perf_counter() - started)
                if response.status != 200:
                    errors.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    events = sum(len(json.loads(b)["events"]) for b in bodies)
    return {
        "events": events,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "batch": ms(latencies),
        "errors": len(errors),
    }


def learned_everywhere(served: Served, times: int) -> dict[str, Any]:
    """From a click's 200 until every worker says it has learned from it (its events_learned count moved)."""
    waits = []
    for n in range(times):
        before = _learned_by_worker(served)
        request_id = f"bench-learn-{n}"
        page = "/v1/match?moment=desirability&types=content&products=homelive&limit=3"
        shown = _get(served, page, {"X-Request-ID": request_id})["content"]
        events = [
            {
                "event_id": f"{request_id}-c",
                "type": "click",
                "request_id": request_id,
                "item_id": shown[0]["id"],
                "rank": 1,
            }
        ]
        assert served.send("POST", "/v1/events", {"events": events}) == 200
        answered = time.perf_counter()
        while True:
            now = _learned_by_worker(served)
            if len(now) == served.workers and all(now[p] > before.get(p, -1) for p in now):
                break
            time.sleep(0.05)
        waits.append(time.perf_counter() - answered)
    return ms(waits) | {"max": max(waits) * 1000}


def _learned_by_worker(served: Served) -> dict[int, int]:
    seen: dict[int, int] = {}
    for _ in range(6 * served.workers):
        health = served.get("/health")
        seen[health["process"]] = health["learning"]["events_learned"]
    return seen


def _get(served: Served, path: str, extra: dict[str, str]) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(served.url + path, headers={"Authorization": f"Bearer {served.key}", **extra})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def kpis_latency(served: Served, times: int) -> dict[str, Any]:
    waits = []
    for _ in range(times):
        started = time.perf_counter()
        served.get("/v1/kpis?group_by=moment")
        waits.append(time.perf_counter() - started)
    return ms(waits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    args = parser.parse_args()
    from matcher.service import Engine

    work = Path(tempfile.mkdtemp(prefix="relais-loop-"))
    try:
        data = work / "data"
        engine = Engine(Settings.from_env({"data_dir": data}))
        engine.load([FIXTURES / "influencers.jsonl", FIXTURES / "content.jsonl"])
        items = [r[0] for r in engine.store.db.execute("SELECT id FROM content ORDER BY key LIMIT 200")]
        del engine
        served = Served(data, os.cpu_count() or 1, args.threads, None)
        try:
            bodies = batches(args.batches, args.size, items)
            run = ingest(served, bodies, args.clients)
            visible = learned_everywhere(served, 10)
            kpis = kpis_latency(served, 20)
        finally:
            served.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        (
            "events stored per second, batches of 500",
            f"{run['events_per_s']:.0f}",
            ">= 2000",
            "yes" if run["events_per_s"] >= 2000 else "NO",
        ),
        ("  batch latency p50 / p99", f"{run['batch']['p50']:.0f} / {run['batch']['p99']:.0f} ms", "", "-"),
        ("  errors", str(run["errors"]), "0", "yes" if run["errors"] == 0 else "NO"),
        ("click learned by every worker p50 / max", f"{visible['p50']:.0f} / {visible['max']:.0f} ms", "seconds", "-"),
        (f"GET /v1/kpis p50 over {run['events']} events", f"{kpis['p50']:.0f} ms", "", "-"),
    ]
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'target':<{width}}{'measured':<22}{'aim':<12}met")
    for name, value, aim, met in rows:
        print(f"{name:<{width}}{value:<22}{aim:<12}{met}")


if __name__ == "__main__":
    main()
