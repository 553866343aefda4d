"""The long fuzzing run: schemathesis against a live server on a copy of the Homelive data, several seeds.
Prints how many requests were tried and how many failed, per seed and in all. Not a test; CI runs the short one.

    python bench/fuzz.py [--examples 100] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher.config import PROJECT_DIR, Settings  # noqa: E402
from matcher.service import Engine  # noqa: E402
from tests.test_crash import Server  # noqa: E402
from tests.test_fuzz import UNLIMITED, fuzz  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100, help="test cases per operation and phase")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="relais-fuzz-"))
    data = work / "data"
    fixtures = PROJECT_DIR / "fixtures" / "homelive"
    Engine(Settings(data_dir=data)).load([fixtures / "influencers.jsonl", fixtures / "content.jsonl"])
    key = subprocess.run(
        [sys.executable, "-m", "matcher", "keys", "create", "--role", "admin", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    server = Server(data, work / "server.log", dev=False, env={"RELAIS_RATE_LIMITS": UNLIMITED})
    total = failed = errored = 0
    try:
        for seed in range(1, args.seeds + 1):
            started = time.perf_counter()
            report_path = work / f"report-{seed}.json"
            run = fuzz(server.url, key, report_path, max_examples=args.examples, seed=seed)
            (work / f"output-{seed}.txt").write_text(run.stdout)  # the failures in full, to reproduce them
            report = json.loads(report_path.read_text())
            cases = report["test_cases"]
            total += cases["generated"]
            failed += cases["with_failures"]
            errored += cases["errored"]
            print(
                f"seed {seed}: {cases['generated']} requests, {cases['with_failures']} failed, "
                f"{cases['errored']} errored, {len(report['failures'])} distinct failures "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            if report["failures"]:
                print(f"    details and curl commands to reproduce: {work / f'output-{seed}.txt'}")
    finally:
        server.stop()
    server_errors = (work / "server.log").read_text().count('"level": "ERROR"')
    print(
        f"\nin all: {total} requests, {failed} failed, {errored} errored; {server_errors} errors in the server's log "
        f"({work})"
    )


if __name__ == "__main__":
    main()
