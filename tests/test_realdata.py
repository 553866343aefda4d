"""The shared real dataset youtube-fr (1,359 French channels with empty bios, 2,602 videos)."""

from __future__ import annotations

import time

import pytest

from matcher.config import Settings
from matcher.service import Engine
from tests.conftest import SHARED_DATA

YOUTUBE = SHARED_DATA / "youtube-fr"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not YOUTUBE.exists(), reason="../shared/data/youtube-fr is not beside the project"),
]


@pytest.fixture(scope="module")
def youtube(tmp_path_factory):
    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("youtube")))
    started = time.perf_counter()
    reports = engine.load([YOUTUBE / "influencers.jsonl", YOUTUBE / "content.jsonl"])
    print(f"\nyoutube-fr: loaded and indexed in {time.perf_counter() - started:.1f}s")
    return engine, reports


def test_real_data_loads_and_reports(youtube):
    engine, reports = youtube
    by_kind = {r.kind: r for r in reports}
    assert by_kind["influencers"].lines == 1359 and by_kind["content"].lines == 2602
    for report in reports:
        assert report.accepted + len(report.rejected) == report.lines
        assert all(r.line > 0 and r.reason for r in report.rejected)
    assert engine.health()["indexed"]["content"] == by_kind["content"].accepted


def test_a_french_smartphone_query_finds_tech_channels_and_their_videos(youtube):
    engine, _ = youtube
    result = engine.match("technical_validation", "test du nouveau smartphone, meilleur téléphone", limit=5)
    tech = [r for r in result.influencers if "Science & Technology" in r.row["topics"]]
    assert len(tech) >= 4, [(r.row["name"], r.row["topics"]) for r in result.influencers]
    assert all(r.evidence for r in tech)  # found through their videos: the bios are empty
    by_tech = [r for r in result.content if "Science & Technology" in r.author["topics"]]
    assert len(by_tech) >= 4, [(r.row["title"], r.author["topics"]) for r in result.content]


def test_every_youtube_judgement_ranks_as_the_reference_does(youtube):
    """The serving path against the plain reference on the real data's 36 judged queries (and two filters)."""
    from matcher.config import PROJECT_DIR
    from matcher.evaluation import load_judgements
    from tests import reference
    from tests.test_reference import same_results

    engine, _ = youtube
    data = reference.read(engine)
    for j in load_judgements(PROJECT_DIR / "eval" / "youtube-fr.judgements.jsonl"):
        same_results(engine, j.moment, j.query, data=data)
    same_results(engine, "technical_validation", "test smartphone", {"min_followers": 100_000}, data=data)
    same_results(engine, "discovery", None, {"topics": "Science & Technology"}, data=data)
