"""Several worker processes serving one data dir: one rate limit between them, every write reaching each of them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from matcher.config import PROJECT_DIR
from routes.guard import _share
from tests.conftest import copy_data_dir
from tests.test_crash import Server, free_port

pytestmark = pytest.mark.slow  # a real server and browser or several processes: `make test-slow`, CI

LIMITS = {"widget": "5 per minute", "planner": "100000 per minute", "admin": "100000 per minute"}
ORIGIN = "https://www.orange.fr"


def call(url: str, key: str, body: dict | None = None, method: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {key}", "Origin": ORIGIN, "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, headers, method=method)
    try:  # a new connection each time: whichever worker accepts it answers
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def key(data, role: str) -> str:
    args = ["keys", "create", "--role", role, "--data-dir", str(data)] + (
        ["--origin", ORIGIN] if role == "widget" else []
    )
    created = subprocess.run(
        [sys.executable, "-m", "matcher", *args], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    return created.stdout.strip()


@pytest.fixture(scope="module")
def served(homelive_dir, tmp_path_factory):
    """Two workers, counters in a Redis of their own."""
    if shutil.which("redis-server") is None:
        if os.environ.get("RELAIS_CI"):
            pytest.fail("redis-server is not installed, and .ci/run should have installed it")
        pytest.skip("redis-server is not installed (.ci/run installs it: apt-get install redis-server)")
    tmp = tmp_path_factory.mktemp("workers")
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    data = copy_data_dir(homelive_dir, tmp / "data")
    keys = {role: key(data, role) for role in ("widget", "admin")}
    env = {"RELAIS_RATE_LIMITS": json.dumps(LIMITS), "RELAIS_RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{port}"}
    server = Server(data, tmp / "server.log", dev=False, env=env, args=("--workers", "2"))
    yield server, keys
    server.stop()
    redis.terminate()
    redis.wait(timeout=30)


def workers_seen(server: Server, key: str, tries: int = 200) -> dict[int, dict]:
    """/health as each worker answers it (by process id)."""
    seen: dict[int, dict] = {}
    for _ in range(tries):
        health = call(server.url + "/health", key)[1]
        seen[health["process"]] = health
        if len(seen) == 2:
            break
    return seen


def test_two_workers_serve(served):
    server, keys = served
    assert len(workers_seen(server, keys["admin"])) == 2


def test_one_rate_limit_for_all_workers(served):
    server, keys = served
    url = server.url + "/v1/match?moment=discovery&types=content&limit=1"
    statuses = [call(url, keys["widget"])[0] for _ in range(12)]
    assert statuses.count(200) == 5 and statuses.count(429) == 7, statuses


def test_a_write_reaches_every_worker(served):
    server, keys = served
    piece = {"title": "Zorglub, le capteur des deux processus", "format": "article", "published_at": "2026-11-30"}
    assert call(server.url + "/v1/content/cnt-two-workers", keys["admin"], piece, "PUT")[0] == 201
    version = call(server.url + "/health", keys["admin"])[1]["store_version"]
    deadline = time.monotonic() + 60  # a bound for a slow machine, not a measure (bench/serving.py measures)
    while True:
        seen = workers_seen(server, keys["admin"])
        if len(seen) == 2 and all(h["index_version"] >= version for h in seen.values()):
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)
    query = {"moment": "discovery", "query": "zorglub capteur", "types": ["content"], "limit": 3}
    for _ in range(10):
        status, body = call(server.url + "/v1/match", keys["admin"], query)
        assert status == 200 and body["content"][0]["id"] == "cnt-two-workers"


@pytest.mark.parametrize(
    ("limit", "workers", "share"),
    [
        ("120 per minute", 1, "120 per minute"),
        ("120 per minute", 4, "30 per 1 minute"),
        ("3 per hour", 8, "1 per 1 hour"),
    ],
)
def test_without_shared_counters_each_worker_keeps_its_share(limit, workers, share):
    assert _share(limit, workers) == share
