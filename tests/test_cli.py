"""The matcher command line, run in-process with click's runner (real engine underneath)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from matcher.cli import main
from tests.conftest import HOMELIVE_FILES, copy_data_dir


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_load_prints_a_summary_with_rejections(tmp_path):
    bad = tmp_path / "influencers.jsonl"
    bad.write_text(HOMELIVE_FILES[0].read_text(encoding="utf-8") + '{"id": "inf-q", "name": "Q"}\nnope\n')
    result = run("load", "--data-dir", tmp_path / "d", bad)
    assert result.exit_code == 0, result.output
    assert "66 lines: 64 accepted (64 new, 0 updated, 0 unchanged), 2 rejected" in result.output
    assert "line 65: " in result.output and "category: Missing data for required field" in result.output
    assert "line 66: invalid JSON" in result.output
    assert "Indexed 61 influencers and 0 content items" in result.output
    strict = run("load", "--strict", "--data-dir", tmp_path / "d", bad)
    assert strict.exit_code == 1 and "64 unchanged" in strict.output


def test_load_if_empty_skips_a_loaded_dir(homelive_dir, tmp_path):
    data = copy_data_dir(homelive_dir, tmp_path / "d")
    result = run("load", "--if-empty", "--data-dir", data, *HOMELIVE_FILES)
    assert result.exit_code == 0 and "nothing loaded" in result.output


def test_match_prints_tables_and_json(homelive_dir):
    table = run(
        "match",
        "--data-dir",
        homelive_dir,
        "-m",
        "technical_validation",
        "-n",
        "3",
        "compatibilité des capteurs avec la box",
    )
    assert table.exit_code == 0
    assert "Influencers" in table.output and "Content" in table.output and "partner" in table.output
    as_json = run(
        "match",
        "--data-dir",
        homelive_dir,
        "-m",
        "discovery",
        "--json",
        "--type",
        "content",
        "--network",
        "instagram",
        "-n",
        "2",
    )
    body = json.loads(as_json.output)
    assert body["influencers"] == [] and [c["network"] for c in body["content"]] == ["instagram", "instagram"]


def test_errors_are_a_message_and_exit_status_1(homelive_dir):
    result = run("match", "--data-dir", homelive_dir, "-m", "purchase", "hello")
    assert result.exit_code == 1 and "Unknown moment 'purchase'; valid moments are" in result.output


def test_index_rebuilds(homelive_dir, tmp_path):
    data = copy_data_dir(homelive_dir, tmp_path / "d")
    result = run("index", "--data-dir", data)
    assert result.exit_code == 0 and "indexed 61 influencers and 319 content items" in result.output
