"""How fast the data lifecycle is. Prints figures; asserts nothing.

- write latency, and the time from a PUT's response to the record being found by a search;
- import throughput (records/s) against raw encoding throughput of the same texts, in the same run;
- search latency while an import runs, against idle search latency.

    python bench/lifecycle.py            # the shared youtube-fr data if it is beside the project, else fixtures
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from api import create_app  # noqa: E402
from matcher.config import PROJECT_DIR  # noqa: E402
from matcher.embedding import content_text  # noqa: E402
from models.contract import ContentSchema  # noqa: E402

FIXTURES = PROJECT_DIR / "fixtures" / "homelive"
YOUTUBE = PROJECT_DIR.parent / "shared" / "data" / "youtube-fr"


def percentiles(samples_ms: list[float]) -> str:
    a = np.array(samples_ms)
    return (
        f"median {np.median(a):7.1f} ms  p95 {np.percentile(a, 95):7.1f}  p99 {np.percentile(a, 99):7.1f}  "
        f"max {a.max():7.1f}  (n={len(a)})"
    )


def timed(client, query: dict) -> float:  # noqa: ANN001
    started = time.perf_counter()
    assert client.post("/v1/match", data=json.dumps(query)).status_code == 200
    return (time.perf_counter() - started) * 1000


def copies(times: int, prefix: str) -> list[bytes]:
    """The fixtures' content under new ids, to import again."""
    pieces = (FIXTURES / "content.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.dumps({**json.loads(p), "id": f"{prefix}-{i}"}).encode() + b"\n" for i, p in enumerate(pieces * times)]


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="relais-bench-"))
    unlimited = dict.fromkeys(("widget", "planner", "admin", "anonymous"), "100000000 per minute")  # searches loop
    app = create_app({"DATA_DIR": str(data), "WARM_DETECTOR": False, "DEV_MODE": True, "RATE_LIMITS": unlimited})
    engine = app.extensions["relais"]
    client = app.test_client()
    engine.load([FIXTURES / "influencers.jsonl", FIXTURES / "content.jsonl"])
    query = {"moment": "technical_validation", "query": "compatibilité des capteurs avec la box", "limit": 10}

    # 1. From a write's answer to the record being found.
    author = json.loads((FIXTURES / "influencers.jsonl").read_text(encoding="utf-8").splitlines()[0])["id"]
    put_ms, visible_ms, polls = [], [], []
    for n in range(30):
        title = f"Essai numéro {n} : le capteur zorglub{n} sur la porte du garage"
        piece = {
            "influencer_id": author,
            "title": title,
            "text": "Installation et premiers jours.",
            "format": "review",
            "language": "fr",
            "published_at": "2026-11-01",
            "products": ["homelive"],
        }
        started = time.perf_counter()
        response = client.put(f"/v1/content/cnt-bench-{n}", data=json.dumps(piece))
        answered = time.perf_counter()
        assert response.status_code == 201, response.get_json()
        tries = 0
        while True:
            tries += 1
            body = client.post(
                "/v1/match",
                data=json.dumps(
                    {"moment": "technical_validation", "query": f"zorglub{n}", "types": ["content"], "limit": 3}
                ),
            ).get_json()
            if any(c["id"] == f"cnt-bench-{n}" for c in body["content"]):
                break
        put_ms.append((answered - started) * 1000)
        visible_ms.append((time.perf_counter() - answered) * 1000)
        polls.append(tries)
    print(f"data dir: {engine.health()['records']} records")
    print(f"PUT a piece of content (embed, commit, index, save): {percentiles(put_ms)}")
    print(
        f"answer -> found by search:                          {percentiles(visible_ms)}; "
        f"found on the first search {polls.count(1)}/{len(polls)} times"
    )

    # 2. Import throughput against raw encoding of the same texts, in the same process, nothing else running.
    if YOUTUBE.exists():
        engine.load([YOUTUBE / "influencers.jsonl"])
        lines = (YOUTUBE / "content.jsonl").read_bytes().splitlines(keepends=True)
        source = "youtube-fr content"
    else:
        lines = copies(6, "cnt-copy")
        source = "fixtures x6"
    texts = [content_text(ContentSchema().load(json.loads(line))) for line in lines]
    started = time.perf_counter()
    engine.encoder.encode(texts)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    report = engine.import_lines("content", lines, source)
    import_s = time.perf_counter() - started
    print(
        f"\nimport of {report.lines} {source} lines ({report.inserted} new, {len(report.rejected)} rejected): "
        f"{import_s:.1f} s, {report.lines / import_s:.0f} records/s"
    )
    print(f"raw encoding of the same {len(texts)} texts: {encode_s:.1f} s, {len(texts) / encode_s:.0f} texts/s")
    print(
        f"import / raw encoding throughput: {encode_s / import_s:.2f} "
        "(the rest: validation, SQLite with its full-text index, FAISS, saving)"
    )

    # 3. Searches (10 a second) while another import runs, against the same searches idle.
    idle = [timed(client, query) for _ in range(40)]
    during: list[float] = []
    importing = threading.Event()

    def search_while_importing() -> None:
        reader = app.test_client()
        while not importing.is_set():
            time.sleep(0.005)
        while importing.is_set():
            during.append(timed(reader, query))
            time.sleep(0.1)

    searcher = threading.Thread(target=search_while_importing)
    searcher.start()
    importing.set()
    report = engine.import_lines("content", copies(3, "cnt-more"), "fixtures x3")
    importing.clear()
    searcher.join()
    print(f"\nsearch, idle:                                   {percentiles(idle)}")
    print(f"search, during an import of {report.inserted} records: {percentiles(during)}")
    print(
        f"median ratio during / idle: {statistics.median(during) / statistics.median(idle):.2f} "
        "(two cores: the import's encoding competes for them)"
    )
    print(f"check after all this: {engine.check() or 'OK'}")


if __name__ == "__main__":
    main()
