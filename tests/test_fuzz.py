"""Fuzzing: schemathesis generates requests from /openapi.json against a live server; no 5xx, and every answer
matches the documented status codes, content types, headers and schemas. Bounded to stay within minutes;
bench/fuzz.py runs the long version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import copy_data_dir
from tests.test_crash import Server

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance"
)
UNLIMITED = json.dumps({role: "1000000 per minute" for role in ("widget", "planner", "admin", "anonymous", "failed")})


def fuzz(url: str, key: str, report: Path, *, max_examples: int, seed: int | None) -> subprocess.CompletedProcess:
    """Run schemathesis (its CLI, installed beside pytest) and write its JSON report."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{url}/openapi.json",
        "-H",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",  # two threads make CPython 3.11's ast.parse fail inside hypothesis
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=report.parent)


@pytest.mark.slow
def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(homelive_dir, tmp_path):
    data = copy_data_dir(homelive_dir, tmp_path / "data")
    key = subprocess.run(
        [sys.executable, "-m", "matcher", "keys", "create", "--role", "admin", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    ).stdout.strip()
    # fuzzing is not a denial-of-service test: no rate limit in its way
    server = Server(data, tmp_path / "server.log", dev=False, env={"RELAIS_RATE_LIMITS": UNLIMITED})
    try:
        with urllib.request.urlopen(f"{server.url}/openapi.json") as response:
            documented = sum(len(ops) for ops in json.load(response)["paths"].values())
        run = fuzz(server.url, key, tmp_path / "report.json", max_examples=8, seed=20261123)
    finally:
        server.stop()
    report = json.loads((tmp_path / "report.json").read_text())
    assert run.returncode == 0, run.stdout[-4000:]
    assert report["failures"] == [] and report["errors"] == [], report["failures"] or report["errors"]
    # every documented operation but the document's own (schemathesis does not fuzz /openapi.json)
    assert report["operations"]["tested"] == report["operations"]["total"] == documented - 1
    assert report["test_cases"]["generated"] > 500
    assert '"level": "ERROR"' not in (tmp_path / "server.log").read_text()
