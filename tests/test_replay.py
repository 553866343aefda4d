"""matcher replay: simulated customers through the real engine. A short seeded run must already learn."""

from __future__ import annotations

import pytest

from matcher.replay import EXAMINATION, plot, replay


@pytest.mark.slow
def test_a_short_replay_learns_and_its_off_policy_estimate_is_close(homelive_dir, tmp_path):
    report = replay(homelive_dir, sessions=3000, rounds=6, seed=3, shift_at=1.0)
    last = report["curves"][-1]
    # the static ranking is a fixed policy: its expected click rate cannot move; the learned one must beat it
    assert report["curves"][0]["expected_ctr"]["static"] == last["expected_ctr"]["static"]
    assert last["expected_ctr"]["learned"] > 1.2 * last["expected_ctr"]["static"]
    assert last["expected_ctr"]["learned"] <= last["expected_ctr"]["oracle"] + 1e-12  # nobody beats the truth
    assert report["final"]["learned_over_static"] > 1.0
    check = report["off_policy"]
    assert check["slots_supported"] == 1.0 and check["relative_error"] < 0.35  # 3,000 sessions; 20,000: 1.6%
    assert not any(c["shifted"] for c in report["curves"])
    assert report["settings"]["examination"] == EXAMINATION.tolist()
    plot(report, tmp_path / "replay.png")
    assert (tmp_path / "replay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_seed_gives_the_same_run(homelive_dir):
    one = replay(homelive_dir, sessions=400, rounds=2, seed=5)
    two = replay(homelive_dir, sessions=400, rounds=2, seed=5)
    assert one["curves"] == two["curves"] and one["off_policy"] == two["off_policy"]
