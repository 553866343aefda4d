"""End to end over real HTTP: `matcher load` into an empty data dir, then `matcher serve`, then requests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from matcher.config import PROJECT_DIR

PEOPLE = [
    {
        "id": "inf-tech",
        "name": "Bruno Réseaux",
        "bio": "Ingénieur réseau, je teste box et alarmes.",
        "topics": ["domotique", "réseau"],
        "category": "partner",
        "language": "fr",
        "country": "FR",
        "platforms": [{"network": "youtube", "handle": "@bruno", "followers": 40000, "engagement_rate": 0.04}],
    },
    {
        "id": "inf-deco",
        "name": "Lina Cocon",
        "bio": "Déco douce et plantes.",
        "topics": ["décoration"],
        "category": "affinity",
        "language": "fr",
        "country": "FR",
        "platforms": [{"network": "instagram", "handle": "@lina", "followers": 90000, "engagement_rate": 0.03}],
    },
]
PIECES = [
    {
        "id": "c-tuto",
        "influencer_id": "inf-tech",
        "title": "Compatibilité : les capteurs avec votre box",
        "text": "Quels capteurs fonctionnent avec quelle box, et comment les appairer.",
        "format": "tutorial",
        "language": "fr",
        "published_at": "2026-09-01",
        "topics": ["installation"],
        "products": ["homelive"],
        "url": "https://www.youtube.com/watch?v=t1",
    },
    {
        "id": "c-photo",
        "influencer_id": "inf-deco",
        "title": "Mon coin lecture",
        "text": "Un plaid, une lampe, du calme.",
        "format": "instagram_post",
        "language": "fr",
        "published_at": "2026-09-02",
        "topics": ["déco"],
        "url": "https://www.instagram.com/p/lina1",
    },
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(
    url: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None
) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def matcher(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "matcher", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def server(tmp_path: Path):
    """A data dir loaded from our own two files (no fixtures), served by `matcher serve` on a free port."""
    (tmp_path / "influencers.jsonl").write_text("\n".join(json.dumps(p) for p in PEOPLE))
    (tmp_path / "content.jsonl").write_text("\n".join(json.dumps(p) for p in PIECES))
    env = {**os.environ, "RELAIS_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    loaded = matcher("load", str(tmp_path / "influencers.jsonl"), str(tmp_path / "content.jsonl"), env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "2 accepted" in loaded.stdout
    created = matcher("keys", "create", "--role", "planner", "--label", "test", env=env)
    assert created.returncode == 0 and created.stdout.startswith("rk_"), created.stderr
    port, health_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "matcher", "serve", "--port", str(port), "--health-port", str(health_port)],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if request(base + "/health")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.stdout.read()
            process.stdout.close()
            pytest.fail(f"server did not start: {output}")
        time.sleep(0.3)
    yield base, created.stdout.strip(), f"http://127.0.0.1:{health_port}"
    process.terminate()
    process.wait(timeout=30)
    process.stdout.close()


def test_served_over_http(server):
    server, key, liveness = server
    status, health = request(server + "/health")
    assert status == 200 and health["records"] == {"influencers": 2, "content": 2}
    answers = [request(liveness + "/health") for _ in range(20)]  # outside the request queue (serve --health-port)
    assert all(status == 200 and found["status"] == "ok" for status, found in answers)
    live, workers = {found["process"] for _, found in answers}, set()
    for _ in range(200):  # the API's /health names the worker that answered: until every live one has been seen
        workers.add(request(server + "/health")[1]["process"])
        if live <= workers:
            break
    assert live <= workers  # answered by the workers themselves
    assert request(liveness + "/v1/match")[0] == 404
    query = b'{"moment":"technical_validation","query":"compatibilit\xc3\xa9 des capteurs avec la box"}'
    status, error = request(server + "/v1/match", query)
    assert status == 401 and error["error"]["code"] == "unauthorized"  # keys are required unless --dev
    # what the README's curl sends (-d: form content type), with a key
    status, body = request(
        server + "/v1/match",
        query,
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {key}"},
    )
    assert status == 200
    assert body["influencers"][0]["id"] == "inf-tech" and body["content"][0]["id"] == "c-tuto"
    assert body["influencers"][0]["explanation"] and body["content"][0]["score_parts"]["moment_fit"]["value"] == 1.0
    status, error = request(
        server + "/v1/match", b'{"moment": "nope"', {"Content-Type": "application/json", "X-API-Key": key}
    )
    assert status == 400 and error["error"]["code"] == "malformed_json"
    status, error = request(server + "/v1/influencers/nobody", headers={"X-API-Key": key})
    assert status == 404 and error["error"]["code"] == "not_found"


def _raw(base: str, data: bytes) -> tuple[int, dict]:
    """Send ``data`` as is on a new connection, half-close it, and read the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_body_cut_short_or_badly_chunked_is_refused_and_changes_nothing(server):
    """bench/hostile.py found both: a body shorter than its Content-Length was processed as if whole (an upload
    cut short was half-imported), and a broken chunked encoding answered 500."""
    base, key, _ = server
    before = request(base + "/v1/plans", headers={"X-API-Key": key})[1]["plans"]
    plan = json.dumps({"products": ["homelive"], "brief": "capteurs et box", "budget": {"partner": 1}}).encode()
    head = f"POST /v1/plans HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
    short = _raw(base, (head + f"Content-Length: {len(plan) + 500}\r\n\r\n").encode() + plan)
    assert short[0] == 400 and short[1]["error"]["code"] == "incomplete_body", short
    chunked = (
        (head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        + b"zz\r\n"
        + plan
        + b"\r\n0\r\n\r\n"
    )
    broken = _raw(base, chunked)
    assert broken[0] == 400 and broken[1]["error"]["code"] == "incomplete_body", broken
    assert request(base + "/v1/plans", headers={"X-API-Key": key})[1]["plans"] == before
    whole = _raw(base, (head + f"Content-Length: {len(plan)}\r\nConnection: close\r\n\r\n").encode() + plan)
    assert whole[0] == 201, whole  # the same request, whole, is taken
