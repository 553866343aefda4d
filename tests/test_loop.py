"""The loop: events stored once each, what was served logged with its propensities, the position-corrected
engagement part, exploration, fatigue rules, and the fast path still equal to the reference with both at work."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from api import create_app
from matcher.config import PROJECT_DIR, Settings
from matcher.keys import create_key
from matcher.ranking import Policy
from matcher.service import Engine
from tests.test_reference import same_results

SITE = "https://www.example.com"
PAGE = "/v1/match?moment=desirability&types=content&products=homelive&limit=4"


def event(n, kind_of_event, item, rank, request_id, **more):
    return {
        "event_id": f"ev-{request_id}-{n}",
        "type": kind_of_event,
        "request_id": request_id,
        "item_id": item,
        "rank": rank,
        **more,
    }


@pytest.fixture
def app(homelive_copy):
    return create_app({"DATA_DIR": str(homelive_copy), "WARM_DETECTOR": False})


@pytest.fixture
def widget_key(app):
    return create_key(app.extensions["relais"].store, "widget", [SITE])


@pytest.fixture
def widget(widget_key):
    return widget_key[1]


def headers(key, origin=SITE):
    return {"Authorization": f"Bearer {key}", "Origin": origin}


def stored(engine, table):
    return engine.store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- events in ---------------------------------------------------------------------------------------


def test_a_repeated_batch_is_counted_once(app, widget, widget_key):
    client, engine = app.test_client(), app.extensions["relais"]
    before = stored(engine, "events")
    batch = {"events": [event(i, "impression", "cnt-orange-01", 1, "r1") for i in range(5)]}
    first = client.post("/v1/events", json=batch, headers=headers(widget))
    again = client.post("/v1/events", json=batch, headers=headers(widget))
    assert first.status_code == again.status_code == 200
    assert first.get_json() == {"accepted": 5, "duplicates": 0}
    assert again.get_json() == {"accepted": 0, "duplicates": 5}
    assert stored(engine, "events") == before + 5
    senders = set(engine.store.db.execute("SELECT key_id, origin FROM events WHERE request_id = 'r1'").fetchall())
    assert senders == {(widget_key[0].key_id, SITE)}  # who sent them: the key, never the body


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "purchase"}, "type"),
        ({"rank": 0}, "rank"),
        ({"event_id": ""}, "event_id"),
        ({"at": "yesterday"}, "at"),
        ({"at": (datetime.now(UTC) + timedelta(days=3)).isoformat()}, "at"),
        ({"item_kind": "brand"}, "item_kind"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_one_bad_event_refuses_the_batch_and_stores_nothing(app, widget, bad, field):
    client, engine = app.test_client(), app.extensions["relais"]
    before = stored(engine, "events")
    batch = {
        "events": [event(0, "click", "cnt-orange-01", 1, "r1"), {**event(1, "click", "cnt-orange-01", 1, "r1"), **bad}]
    }
    response = client.post("/v1/events", json=batch, headers=headers(widget))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request" and field in json.dumps(error["fields"])
    assert stored(engine, "events") == before


def test_an_unknown_moment_or_too_big_a_batch_is_refused(app, widget):
    client, engine = app.test_client(), app.extensions["relais"]
    before = stored(engine, "events")
    unknown = client.post(
        "/v1/events", json={"events": [event(0, "click", "x", 1, "r", moment="checkout")]}, headers=headers(widget)
    )
    assert (
        unknown.status_code == 400 and "checkout" in unknown.get_json()["error"]["fields"]["events"]["0"]["moment"][0]
    )
    big = {"events": [event(i, "impression", "x", 1, "r") for i in range(1001)]}
    assert client.post("/v1/events", json=big, headers=headers(widget)).status_code == 400
    assert stored(engine, "events") == before


def test_a_widget_key_sends_events_only_from_its_own_origins(app, widget):
    batch = {"events": [event(0, "click", "cnt-orange-01", 1, "r1")]}
    before = stored(app.extensions["relais"], "events")
    response = app.test_client().post("/v1/events", json=batch, headers=headers(widget, "https://elsewhere.example"))
    assert response.status_code == 403 and stored(app.extensions["relais"], "events") == before


# -- what was served -----------------------------------------------------------------------------------


def test_every_page_view_is_logged_under_its_own_request_id(app, widget):
    client, engine = app.test_client(), app.extensions["relais"]
    first = client.get(PAGE, headers={**headers(widget), "X-Request-ID": "view-1"})
    second = client.get(PAGE, headers={**headers(widget), "X-Request-ID": "view-2"})  # from the answer cache
    assert first.status_code == second.status_code == 200 and first.data == second.data
    engine.loop.events.flush()
    rows = dict(engine.store.db.execute("SELECT request_id, items FROM served WHERE request_id LIKE 'view-%'"))
    assert set(rows) == {"view-1", "view-2"}
    shown = [(c["id"], c["rank"]) for c in first.get_json()["content"]]
    for items in rows.values():
        assert [(i, r) for _, i, r, _ in json.loads(items)] == shown
        assert all(p == 1.0 for *_, p in json.loads(items))  # nothing explored: each slot was certain


def test_exploring_answers_say_their_propensities_and_are_not_cached(app, widget):
    client = app.test_client()
    response = client.get(PAGE + "&explore=true", headers=headers(widget))
    body = response.get_json()
    assert (
        response.status_code == 200
        and response.headers["Cache-Control"] == "no-store"
        and "ETag" not in response.headers
    )
    assert body["policy"] == "explore"
    propensities = [c["propensity"] for c in body["content"]]
    assert propensities[0] == 1.0  # the first slot is kept as ranked
    assert all(0 < p <= 1 for p in propensities) and min(propensities[1:]) < 1


def test_propensities_are_the_frequencies_of_the_slots(engine):
    """Over many seeded draws, how often an item holds a slot is the propensity reported when it is shown there."""
    rng = np.random.default_rng(11)
    seen: Counter = Counter()
    reported: dict[tuple[int, str], list[float]] = {}
    runs = 300
    for _ in range(runs):
        result = engine.match(
            "discovery", None, {"products": "homelive"}, 4, ["content"], policy=Policy(explore=True, rng=rng)
        )
        for slot, r in enumerate(result.content):
            seen[slot, r.row["id"]] += 1
            reported.setdefault((slot, r.row["id"]), []).append(r.propensity)
    for (slot, item), count in seen.items():
        if count >= 30:
            assert abs(count / runs - np.mean(reported[slot, item])) < 0.1, (slot, item)


# -- learning ----------------------------------------------------------------------------------------


@pytest.fixture
def tuned(homelive_copy, tmp_path):
    """An engine whose engagement settings are the test's own (not the brand's file): slots examined with
    probability 0.5 and 0.25, 4 prior views, a prior click rate of 0.1, no sharpening, no decay to speak of."""
    config = json.loads((PROJECT_DIR / "matcher" / "data" / "scoring.json").read_text())
    config["engagement"].update(
        {
            "examination": [0.5, 0.25],
            "examination_beyond": 0.25,
            "prior_views": 4,
            "prior_ctr": 0.1,
            "sharpness": 1,
            "half_life_days": 10_000,
        }
    )
    path = tmp_path / "scoring.json"
    path.write_text(json.dumps(config))
    return Engine(Settings(data_dir=homelive_copy, scoring_file=path))


def serve(engine, request_id, moment="desirability", limit=4):
    result = engine.match(moment, None, {"products": "homelive"}, limit, ["content"], request_id=request_id)
    return [r.row["id"] for r in result.content]


def test_clicks_are_weighed_against_how_often_their_slot_is_examined(tuned):
    shown = serve(tuned, "r1")
    a, b = shown[0], shown[1]
    at = datetime.now(UTC).timestamp()
    # a: 4 impressions in slot 1 (examined 0.5) = 2 weighted views, 1 click; b: 4 in slot 2 (0.25) = 1 view, 1 click
    events = [event(i, "impression", a, 1, "r1", at=at) for i in range(4)] + [event(9, "click", a, 1, "r1", at=at)]
    events = [{**e, "event_id": f"{e['event_id']}-{n}"} for n, e in enumerate(events)]
    events += [{**event(i, "impression", b, 2, "r1", at=at), "event_id": f"b{i}"} for i in range(4)]
    events += [{**event(0, "click", b, 2, "r1", at=at), "event_id": "bc"}]
    tuned.record_events([_loaded(e) for e in events])
    tuned.learn()
    # the moment's mean: (2 clicks + 4 × 0.1) / (3 views + 4) = 2.4 / 7
    mean = 2.4 / 7
    rate_a = (1 + 4 * mean) / (2 + 4)  # shrunk towards the mean by 4 prior views
    rate_b = (1 + 4 * mean) / (1 + 4)
    keys = tuned.store.keys_by_id("content", [a, b])
    values = tuned.loop.engagement.values("content", "desirability", np.array([keys[a], keys[b]]))
    assert values == pytest.approx([rate_a / (rate_a + mean), rate_b / (rate_b + mean)])
    assert values[1] > values[0]  # the same click from a slot seen half as often says more


def test_a_click_on_what_the_request_did_not_show_is_not_learned(tuned):
    shown = serve(tuned, "r2")
    other = next(i for i in ("cnt-orange-01", "cnt-zoe-01") if i not in shown)
    tuned.record_events([_loaded(event(0, "click", other, 1, "r2")), _loaded(event(1, "click", shown[0], 1, "nobody"))])
    assert tuned.learn()["events_learned"] == 0


def test_what_customers_do_moves_the_ranking_and_says_why(tuned):
    before = serve(tuned, "r3")
    last = before[-1]
    at = datetime.now(UTC).timestamp()
    tuned.record_events(
        [_loaded(event(i, "impression", last, 4, "r3", at=at)) for i in range(40)]
        + [_loaded({**event(i, "click", last, 4, "r3", at=at), "event_id": f"c{i}"}) for i in range(30)]
    )
    tuned.learn()
    after = tuned.match("desirability", None, {"products": "homelive"}, 4, ["content"])
    assert [r.row["id"] for r in after.content].index(last) < 3
    part = next(r for r in after.content if r.row["id"] == last).parts["engagement"]
    assert part.value > 0.5 and part.reason.startswith("clicked 30 times in")
    static = tuned.match("desirability", None, {"products": "homelive"}, 4, ["content"], policy=Policy(learned=False))
    assert [r.row["id"] for r in static.content] == before
    same_results(tuned, "desirability", None, {"products": ["homelive"]})  # the reference learns the same


def test_events_import_from_a_file(homelive_copy, tmp_path):
    good = [event(i, "impression", "cnt-orange-01", 2, "imported", moment="discovery") for i in range(3)]
    lines = [json.dumps(e) for e in good] + ["{not json", json.dumps({**good[0], "event_id": "x", "type": "buy"})]
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "log.csv").write_text("event_id,type,item_id,rank,moment\ncsv-1,click,cnt-orange-01,2,discovery\n")
    cli = [sys.executable, "-m", "matcher", "events", "import"]
    env = {"RELAIS_DATA_DIR": str(homelive_copy), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    jsonl = subprocess.run([*cli, str(tmp_path / "log.jsonl"), "--json"], capture_output=True, text=True, env=env)
    assert jsonl.returncode == 1  # some lines were rejected
    report = json.loads(jsonl.stdout)
    assert report["accepted"] == 3 and [r["line"] for r in report["rejected"]] == [4, 5]
    csv = subprocess.run([*cli, str(tmp_path / "log.csv")], capture_output=True, text=True, env=env)
    assert csv.returncode == 0 and "1 stored" in csv.stdout
    engine = Engine(Settings(data_dir=homelive_copy))
    assert {r[0] for r in engine.store.db.execute("SELECT source FROM events")} == {"import"}
    keys = engine.store.keys_by_id("content", ["cnt-orange-01"])
    # imported logs are trusted for their rank: 3 impressions at slot 2 and a click were learned (decayed by the
    # seconds between the two files: nothing to speak of)
    clicks, views, _ = engine.loop.engagement.posterior("content", "discovery", np.array(list(keys.values())))
    assert clicks[0] == pytest.approx(1, rel=1e-3)
    assert views[0] == pytest.approx(3 * engine.loop.engagement.examined(2), rel=1e-3)


def _loaded(e):
    """An event as EventSchema loads it."""
    from models.event_schemas import EventSchema

    return EventSchema().load({k: v for k, v in e.items() if v is not None})


# -- fatigue -----------------------------------------------------------------------------------------


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "fatigue.json"
    path.write_text(
        json.dumps(
            {
                "counted_statuses": ["sent", "accepted", "declined", "published"],
                "categories": {
                    "partner": [{"days": 30, "max": 4}, {"days": 90, "max": 5}],
                    "affinity": [{"days": 30, "max": 1}],
                },
                "default": [{"days": 30, "max": 2}],
            }
        )
    )
    return path


def activation(engine, n, influencer, status, days_ago):
    sent = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(timespec="seconds")
    data = {"id": f"act-{n}", "influencer_id": influencer, "type": "product_test", "status": status}
    if status != "proposed":
        data["sent_at"] = sent
    if status in ("accepted", "declined", "published"):
        data["responded_at"] = sent
    if status == "published":
        data["published_at"] = sent
    engine.planning.create_activation(data)


def fatigue_of(engine, influencer):
    engine.loop.fatigue.refresh()
    key = engine.store.keys_by_id("influencers", [influencer])[influencer]
    return float(engine.loop.fatigue.value(np.array([key]))[0]), engine.loop.fatigue.reason(key)


def test_fatigue_follows_the_category_caps_and_the_most_restrictive_rule(homelive_copy, rules, influencers):
    engine = Engine(Settings(data_dir=homelive_copy, fatigue_file=rules))
    partner = next(i for i, r in influencers.items() if r["category"] == "partner")
    affinity = next(i for i, r in influencers.items() if r["category"] == "affinity")
    assert fatigue_of(engine, partner) == (1.0, "no recent activation")
    activation(engine, 1, partner, "sent", 5)
    activation(engine, 2, partner, "declined", 40)  # declined counts; outside 30 days, inside 90
    activation(engine, 3, partner, "proposed", 1)  # not asked yet: does not count
    activation(engine, 4, partner, "published", 60)
    # 30 days: 1 of 4 -> 0.75 left; 90 days: 3 of 5 -> 0.4 left: the 90-day rule is the more restrictive
    value, why = fatigue_of(engine, partner)
    assert value == pytest.approx(0.4) and why.startswith("3 activations in 90 days")
    activation(engine, 5, affinity, "accepted", 10)  # affinity: 1 in 30 days is its cap
    assert fatigue_of(engine, affinity)[0] == 0.0


def test_a_hold_stops_contact_until_its_date_and_shows_in_results(homelive_copy, rules, influencers):
    engine = Engine(Settings(data_dir=homelive_copy, fatigue_file=rules))
    person = "inf-julien-domotique"
    until = (datetime.now(UTC).date() + timedelta(days=20)).isoformat()
    query = "détecteur de fumée connecté"
    before = [r.row["id"] for r in engine.match("technical_validation", query, {}, 60, ["influencers"]).influencers]
    engine.planning.set_hold(person, until, "paternity leave")
    value, why = fatigue_of(engine, person)
    assert value == 0.0 and until in why and "paternity leave" in why
    held = engine.match("technical_validation", query, {}, 60, ["influencers"]).influencers
    found = next(r for r in held if r.row["id"] == person)
    assert [r.row["id"] for r in held].index(person) > before.index(person)  # down-weighted, not hidden
    assert found.parts["fatigue"].value == 0.0 and until in found.explanation
    same_results(engine, "technical_validation", "détecteur de fumée connecté")  # the reference agrees
    engine.planning.clear_hold(person)
    assert fatigue_of(engine, person)[0] == 1.0


def test_fatigue_rules_are_checked_when_read(homelive_copy, tmp_path):
    from matcher.errors import ConfigError

    bad = tmp_path / "fatigue.json"
    bad.write_text(
        json.dumps({"counted_statuses": ["sent"], "categories": {"partner": [{"days": 0, "max": 1}]}, "default": []})
    )
    with pytest.raises(ConfigError, match="partner"):
        Engine(Settings(data_dir=homelive_copy, fatigue_file=bad))


def test_learning_needs_no_rebuild_and_is_seen_by_a_second_engine(tuned, homelive_copy):
    """Another serving process over the same store learns the same from the log (no index is reopened)."""
    shown = serve(tuned, "r5")
    tuned.loop.events.flush()
    tuned.record_events([_loaded(event(0, "click", shown[2], 3, "r5"))])
    other = Engine(Settings(data_dir=homelive_copy, scoring_file=tuned.settings.scoring_file))
    tuned.learn()
    keys = np.array([tuned.store.keys_by_id("content", [shown[2]])[shown[2]]])
    mine = tuned.loop.engagement.values("content", "desirability", keys)
    assert mine[0] > 0.5 and not math.isclose(mine[0], 0.5)
    assert other.loop.engagement.values("content", "desirability", keys) == pytest.approx(mine)


@pytest.mark.slow
def test_a_stopped_server_writes_what_it_served_in_its_last_second(homelive_copy, tmp_path):
    """Served notes wait in memory up to a second; a worker told to stop writes them before it ends."""
    from tests.test_crash import Server
    from tests.test_server import request

    server = Server(homelive_copy, tmp_path / "server.log")
    try:
        status, _ = request(server.url + PAGE, headers={"X-Request-ID": "last-words"})
    finally:
        server.stop()  # at once: well within the background's one-second cycle
    assert status == 200
    db = sqlite3.connect(homelive_copy / "relais.db")
    assert db.execute("SELECT count(*) FROM served WHERE request_id = 'last-words'").fetchone()[0] == 1
