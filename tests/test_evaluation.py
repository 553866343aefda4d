"""The evaluation: metrics against hand-computed values, and the command on the fixtures."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from matcher import evaluation
from matcher.cli import main
from matcher.errors import ConfigError

RELEVANT = {"a": 2, "c": 1, "d": 2}


def test_ndcg_by_hand():
    # DCG = (2^2-1)/log2(2) + 0 + (2^1-1)/log2(4) = 3 + 0.5; ideal grades 2, 2, 1
    ideal = 3 + 3 / math.log2(3) + 1 / 2
    assert evaluation.ndcg_at(["a", "b", "c"], RELEVANT, 3) == pytest.approx(3.5 / ideal)
    assert evaluation.ndcg_at(["a", "d", "c"], RELEVANT, 3) == pytest.approx(1.0)
    assert evaluation.ndcg_at(["x", "y"], RELEVANT, 3) == 0.0
    assert evaluation.ndcg_at(["a"], {}, 3) == 0.0


def test_recall_and_mrr_by_hand():
    assert evaluation.recall_at(["a", "b", "c"], RELEVANT, 3) == pytest.approx(2 / 3)
    assert evaluation.recall_at(["a", "b", "c"], RELEVANT, 1) == pytest.approx(1 / 3)
    assert evaluation.reciprocal_rank(["x", "y", "c"], RELEVANT) == pytest.approx(1 / 3)
    assert evaluation.reciprocal_rank(["x"], RELEVANT) == 0.0


def judgements_file(tmp_path, rows):
    path = tmp_path / "j.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    return path


def test_evaluate_groups_and_systems(engine, tmp_path, contents, influencers):
    tech = [c for c, r in contents.items() if r["format"] == "comparison_test"][:3]
    person = contents[tech[0]]["influencer_id"]
    rows = [
        {
            "id": "t1",
            "query": "comparatif des alarmes connectées",
            "moment": "technical_validation",
            "language": "fr",
            "relevant": {**dict.fromkeys(tech, 2), person: 2},
        },
        {
            "id": "t2",
            "query": "what is Homelive",
            "moment": "discovery",
            "language": "en",
            "relevant": {c: 1 for c, r in contents.items() if r["influencer_id"] is None},
        },
    ]
    report = evaluation.evaluate(engine, evaluation.load_judgements(judgements_file(tmp_path, rows)), 10)
    assert report["queries"] == 2 and set(report["systems"]) == {
        "relais (hybrid)",
        "relais (dense)",
        "relais (lexical)",
        "dense only",
        "bm25 only",
        "popularity",
        "random",
    }
    hybrid = report["systems"]["relais (hybrid)"]
    assert set(hybrid) == {"all", "moment:technical_validation", "moment:discovery", "language:fr", "language:en"}
    assert hybrid["all"]["content"]["n"] == 2 and hybrid["all"]["influencers"]["n"] == 1  # t2 judges no person
    assert hybrid["all"]["content"]["ndcg"] > report["systems"]["random"]["all"]["content"]["ndcg"]
    text = evaluation.format_report(report)
    assert "== moment:discovery" in text and "relais (hybrid)" in text


def test_unknown_ids_are_refused(engine, tmp_path):
    rows = [{"query": "q", "moment": "discovery", "language": "fr", "relevant": {"cnt-nowhere": 2}}]
    with pytest.raises(ConfigError, match="not in this data dir"):
        evaluation.evaluate(engine, evaluation.load_judgements(judgements_file(tmp_path, rows)))


def test_eval_command_on_a_data_dir_and_as_json(homelive_dir, tmp_path, contents):
    tests = [c for c, r in contents.items() if r["format"] == "tutorial"]
    path = judgements_file(
        tmp_path,
        [
            {
                "query": "tutoriel installation",
                "moment": "technical_validation",
                "language": "fr",
                "relevant": dict.fromkeys(tests, 2),
            }
        ],
    )
    result = CliRunner().invoke(main, ["eval", "--data-dir", str(homelive_dir), "--judgements", str(path), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["k"] == 10 and body["systems"]["relais (hybrid)"]["all"]["content"]["n"] == 1


def test_eval_over_loaded_files_leaves_no_loop_behind(tmp_path, influencers, contents):
    """The scratch data dir is removed when the figures are in: the engine's loop thread must be stopped
    first, or it looks for the missing database every second, logging a traceback each time."""
    import threading

    kept = sorted(influencers)[:4]
    pieces = [c for c in contents.values() if c["influencer_id"] in kept]
    (tmp_path / "influencers.jsonl").write_text("\n".join(json.dumps(influencers[i]) for i in kept))
    (tmp_path / "content.jsonl").write_text("\n".join(json.dumps(c) for c in pieces))
    path = judgements_file(
        tmp_path,
        [{"query": "test", "moment": "technical_validation", "language": "fr", "relevant": {pieces[0]["id"]: 2}}],
    )
    before = {t.ident for t in threading.enumerate() if t.name == "relais-loop"}
    files = ["--load", str(tmp_path / "influencers.jsonl"), "--load", str(tmp_path / "content.jsonl")]
    result = CliRunner().invoke(main, ["eval", "--judgements", str(path), *files, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["systems"]["relais (hybrid)"]["all"]["content"]["n"] == 1
    left = [t for t in threading.enumerate() if t.name == "relais-loop" and t.ident not in before and t.is_alive()]
    assert left == []
