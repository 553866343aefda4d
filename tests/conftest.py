"""Shared fixtures: the real model (loaded once per process), the Homelive data dir built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher.config import PROJECT_DIR, Settings, read_jsonl  # noqa: E402, F401 (tests import it from here)
from matcher.service import Engine  # noqa: E402
from matcher.store import copy_data_dir  # noqa: E402, F401 (tests import it from here)

FIXTURES = PROJECT_DIR / "fixtures" / "homelive"
HOMELIVE_FILES = [FIXTURES / "influencers.jsonl", FIXTURES / "content.jsonl"]
SHARED_DATA = PROJECT_DIR.parent / "shared" / "data"


@pytest.fixture(scope="session")
def homelive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the Homelive fixtures, loaded and indexed once. Read-only: copy it to write."""
    path = tmp_path_factory.mktemp("homelive")
    reports = Engine(Settings(data_dir=path)).load(HOMELIVE_FILES)
    assert all(not r.rejected for r in reports), [r.rejected for r in reports]
    return path


@pytest.fixture(scope="session")
def engine(homelive_dir: Path) -> Engine:
    """An engine over the Homelive data dir, opened from what is on disk."""
    return Engine(Settings(data_dir=homelive_dir))


@pytest.fixture
def homelive_copy(homelive_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the Homelive data dir, for tests that write."""
    return copy_data_dir(homelive_dir, tmp_path / "data")


@pytest.fixture(scope="session")
def influencers() -> dict[str, dict]:
    return {r["id"]: r for r in read_jsonl(FIXTURES / "influencers.jsonl")}


@pytest.fixture(scope="session")
def contents() -> dict[str, dict]:
    return {r["id"]: r for r in read_jsonl(FIXTURES / "content.jsonl")}
