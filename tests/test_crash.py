"""Crashes: the server is killed with SIGKILL during an import; nothing it acknowledged may be lost."""

from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from matcher.config import PROJECT_DIR
from tests.conftest import FIXTURES, copy_data_dir, read_jsonl
from tests.test_server import free_port, request

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]


class Server:
    """`matcher serve` in a subprocess (gunicorn's master and its workers, a process group of their own), logging
    to a file (a pipe nobody reads would block it)."""

    def __init__(
        self, data: Path, log: Path, dev: bool = True, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("a")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        command = [sys.executable, "-m", "matcher", "serve", "--data-dir", str(data), "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            command + (["--dev"] if dev else []),
            cwd=PROJECT_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while True:
            try:
                if request(self.url + "/health")[0] == 200:
                    return
            except OSError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)

    def kill(self) -> None:
        """Every process of the server at once, with no chance to finish anything."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        self.process.terminate()
        self._reap()

    def _reap(self) -> None:
        self.process.wait(timeout=30)
        self.log.close()


def bulk(count: int, tag: str) -> bytes:
    """``count`` new pieces of content, copies of the fixtures under new ids."""
    pieces = fixture_pieces()
    lines = []
    for n in range(count):
        piece = pieces[n % len(pieces)]
        lines.append(json.dumps({**piece, "id": f"cnt-{tag}-{n}", "title": title_of(n, tag)}, ensure_ascii=False))
    return "\n".join(lines).encode()


@functools.cache
def fixture_pieces() -> list[dict]:
    return read_jsonl(FIXTURES / "content.jsonl")


def title_of(n: int, tag: str) -> str:
    """The title of ``bulk``'s piece ``n``: its fixture's, tagged (what a planner looking for it would type)."""
    pieces = fixture_pieces()
    return f"{pieces[n % len(pieces)]['title']} ({tag} {n})"


def rows_like(data: Path, prefix: str) -> int:
    with sqlite3.connect(data / "relais.db", timeout=30) as db:
        return db.execute("SELECT count(*) FROM content WHERE id LIKE ?", [prefix + "%"]).fetchone()[0]


def person(n: int) -> dict:
    return {
        "name": f"Acquitté Numéro {n}",
        "bio": f"Enregistrement acquitté {n}.",
        "topics": ["test"],
        "category": "customer",
        "language": "fr",
        "country": "FR",
        "platforms": [{"network": "instagram", "handle": f"@ack{n}", "followers": 300}],
    }


def matcher(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "matcher", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


@pytest.fixture
def servers():
    """Started servers, killed at the end whatever happened."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.kill()


def test_sigkill_during_imports_loses_nothing_committed(homelive_dir, tmp_path, servers):
    data = copy_data_dir(homelive_dir, tmp_path / "data")
    log = tmp_path / "server.log"

    def start() -> Server:
        servers.append(Server(data, log))
        return servers[-1]

    server = start()

    # Acknowledged single writes, then a large import killed while it is still embedding.
    acknowledged = []
    for n in range(8):
        status, _ = request(f"{server.url}/v1/influencers/inf-ack-{n}", json.dumps(person(n)).encode(), method="PUT")
        if status in (200, 201):
            acknowledged.append(f"inf-ack-{n}")
    importer = threading.Thread(
        target=lambda: _quietly(request, f"{server.url}/v1/import?kind=content", bulk(1500, "big"))
    )
    importer.start()
    time.sleep(3)
    server.kill()
    importer.join()
    assert len(acknowledged) == 8

    server = start()
    for record_id in acknowledged:
        assert request(f"{server.url}/v1/influencers/{record_id}")[0] == 200, record_id
    assert rows_like(data, "cnt-big-") in (0, 1500)  # an import is all or nothing

    # An import killed as soon as its commit is visible: most likely before the index files are saved.
    importer = threading.Thread(
        target=lambda: _quietly(request, f"{server.url}/v1/import?kind=content", bulk(300, "small"))
    )
    importer.start()
    deadline = time.monotonic() + 120
    while rows_like(data, "cnt-small-") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    importer.join()
    assert rows_like(data, "cnt-small-") == 300

    server = start()
    status, body = request(
        f"{server.url}/v1/match",
        json.dumps(
            {"moment": "technical_validation", "query": title_of(7, "small"), "types": ["content"], "limit": 20}
        ).encode(),
    )
    assert status == 200 and "cnt-small-7" in {c["id"] for c in body["content"]}
    status, body = request(
        f"{server.url}/v1/match",
        json.dumps(
            {"moment": "desirability", "query": "acquitté numéro", "types": ["influencers"], "limit": 20}
        ).encode(),
    )
    assert set(acknowledged) <= {r["id"] for r in body["influencers"]}
    server.stop()
    checked = matcher("check", "--data-dir", str(data))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _quietly(call, *args):  # noqa: ANN001, ANN002, ANN202
    """The connection dies with the server: that is the point."""
    try:
        return call(*args)
    except OSError:
        return None
