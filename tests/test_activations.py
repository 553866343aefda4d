"""Campaigns, activations and contact holds, through the API with real keys over a real SQLite store: CRUD, the
status lifecycle, references checked, who may call, and the planning version that every write counts."""

from __future__ import annotations

import itertools
import json
import logging
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from api import create_app
from matcher.activations import ACTIVATION_TYPES
from matcher.keys import create_key
from models.planning_schemas import TYPES_TEXT
from tests.conftest import copy_data_dir

SITE = "https://www.example.com"
JULIEN, CLAIRE = "inf-julien-domotique", "inf-claire-vasseur"  # in the Homelive fixtures
PIECE, OTHER_PIECE = "cnt-julien-domotique-01", "cnt-julien-domotique-02"
# The lifecycle as the brief states it, written out here rather than read from the engine.
LIFECYCLE = {("proposed", "sent"), ("sent", "accepted"), ("sent", "declined"), ("sent", "published")}
LIFECYCLE |= {("accepted", "published")}
STATUSES = ("proposed", "sent", "accepted", "declined", "published")
REFUSED = [(a, b) for a, b in itertools.permutations(STATUSES, 2) if (a, b) not in LIFECYCLE]
_ids = itertools.count()


@pytest.fixture(scope="module")
def app(homelive_dir, tmp_path_factory):
    data = copy_data_dir(homelive_dir, tmp_path_factory.mktemp("planning") / "data")
    return create_app({"DATA_DIR": str(data), "WARM_DETECTOR": False})


@pytest.fixture(scope="module")
def keys(app):
    store = app.extensions["relais"].store
    return {role: create_key(store, role, [SITE] if role == "widget" else [])[1] for role in ("widget", "planner")}


@pytest.fixture
def api(app, keys):
    """``api(method, path, body=None, role="planner")`` -> the response."""
    client = app.test_client()

    def call(method, path, body=None, role="planner"):
        headers = {"Authorization": f"Bearer {keys[role]}", "Origin": SITE}
        data = None if body is None else json.dumps(body)
        return client.open(path, method=method.upper(), data=data, headers=headers)

    return call


@pytest.fixture
def versions(app):
    """() -> (planning version, records' store version)."""
    engine = app.extensions["relais"]
    return lambda: (engine.planning.version(), engine.store.version)


def new_id(prefix: str) -> str:
    return f"{prefix}-t{next(_ids)}"


def activation(api, **fields):
    """Create an activation for Julien (an event unless told); returns its JSON."""
    body = {"id": new_id("act"), "influencer_id": JULIEN, "type": "event", **fields}
    response = api("post", "/v1/activations", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def campaign(api, **fields):
    response = api("post", "/v1/campaigns", {"id": new_id("cmp"), "name": "Rentrée", **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def error(response, status):
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def now_window():
    """The interval a timestamp written now (to the second) must fall in: (start, end)."""
    return datetime.now(UTC).replace(microsecond=0), lambda: datetime.now(UTC) + timedelta(seconds=1)


# -- campaigns -----------------------------------------------------------------------------------


def test_a_campaign_round_trip(api):
    body = {"id": new_id("cmp"), "name": "Rentrée sécurité", "products": ["homelive"], "brief": "Détecteurs"}
    created = api("post", "/v1/campaigns", {**body, "starts_on": "2026-09-01", "ends_on": "2026-10-15"})
    assert created.status_code == 201 and created.headers["Location"].endswith(f"/v1/campaigns/{body['id']}")
    got = api("get", f"/v1/campaigns/{body['id']}").get_json()
    assert {k: got[k] for k in body} == body and (got["starts_on"], got["ends_on"]) == ("2026-09-01", "2026-10-15")
    assert got["activations"] == 0
    assert body["id"] in [c["id"] for c in api("get", "/v1/campaigns").get_json()["campaigns"]]

    replaced = api("put", f"/v1/campaigns/{body['id']}", {"name": "Rentrée 2026"})  # the rest to its defaults
    assert replaced.status_code == 200
    assert api("get", f"/v1/campaigns/{body['id']}").get_json() == {
        **got,
        "name": "Rentrée 2026",
        "products": [],
        "brief": "",
        "starts_on": None,
        "ends_on": None,
        "updated_at": replaced.get_json()["updated_at"],
    }
    deleted = api("delete", f"/v1/campaigns/{body['id']}")
    assert deleted.status_code == 200 and deleted.get_json() == {"id": body["id"], "deleted": True}
    assert "No campaign" in error(api("get", f"/v1/campaigns/{body['id']}"), 404)["message"]
    error(api("delete", f"/v1/campaigns/{body['id']}"), 404)
    error(api("put", f"/v1/campaigns/{body['id']}", {"name": "Rentrée"}), 404)  # PUT does not create


def test_a_campaign_without_an_id_gets_one(api):
    created = api("post", "/v1/campaigns", {"name": "Noël"}).get_json()
    assert re.fullmatch(r"cmp-[0-9a-f]{12}", created["id"])
    assert api("get", f"/v1/campaigns/{created['id']}").get_json()["name"] == "Noël"


def test_campaigns_are_listed_latest_first(api):
    early, late = campaign(api, starts_on="2021-01-10"), campaign(api, starts_on="2021-06-01")
    listed = [c["id"] for c in api("get", "/v1/campaigns").get_json()["campaigns"]]
    assert listed.index(late["id"]) < listed.index(early["id"])


def test_a_campaign_with_activations_cannot_be_deleted(api):
    cmp = campaign(api)
    act = activation(api, campaign_id=cmp["id"])
    assert api("get", f"/v1/campaigns/{cmp['id']}").get_json()["activations"] == 1
    assert "1 activation" in error(api("delete", f"/v1/campaigns/{cmp['id']}"), 409)["message"]
    assert api("get", f"/v1/campaigns/{cmp['id']}").status_code == 200
    assert api("delete", f"/v1/activations/{act['id']}").status_code == 200
    assert api("delete", f"/v1/campaigns/{cmp['id']}").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Rentrée", "starts_on": "2026-10-01", "ends_on": "2026-09-01"}, "ends_on"),
        ({"name": "Rentrée", "starts_on": "2026-02-30"}, "starts_on"),
        ({"name": "Rentrée", "products": "homelive"}, "products"),
        ({"name": "Rentrée", "budget": 1000}, "budget"),
        ({"name": "Rentrée", "id": "has space"}, "id"),
        ({"name": "Rentrée", "id": "x" * 101}, "id"),
    ],
)
def test_an_invalid_campaign_is_refused_and_nothing_written(api, versions, body, field):
    before, count = versions(), len(api("get", "/v1/campaigns").get_json()["campaigns"])
    assert field in error(api("post", "/v1/campaigns", body), 400)["fields"]
    assert versions() == before and len(api("get", "/v1/campaigns").get_json()["campaigns"]) == count


# -- activations ---------------------------------------------------------------------------------


def test_an_activation_round_trip(api):
    cmp = campaign(api)
    body = {
        "id": new_id("act"),
        "influencer_id": JULIEN,
        "campaign_id": cmp["id"],
        "moment": "technical_validation",
        "type": "product_test",
        "starts_on": "2026-09-10",
        "ends_on": "2026-09-30",
        "publications": [PIECE],
        "notes": "Kit détecteur",
    }
    created = api("post", "/v1/activations", body)
    assert created.status_code == 201 and created.headers["Location"].endswith(f"/v1/activations/{body['id']}")
    got = api("get", f"/v1/activations/{body['id']}").get_json()
    assert {k: got[k] for k in body} == body
    assert got["status"] == "proposed" and got["next_statuses"] == ["sent"]
    assert got["sent_at"] is got["responded_at"] is got["published_at"] is None

    patched = api("patch", f"/v1/activations/{body['id']}", {"notes": "Kit livré", "moment": None}).get_json()
    assert (patched["notes"], patched["moment"], patched["type"]) == ("Kit livré", None, "product_test")

    replaced = api("put", f"/v1/activations/{body['id']}", {"influencer_id": CLAIRE, "type": "interview"})
    assert replaced.status_code == 200
    after = replaced.get_json()
    assert (after["influencer_id"], after["type"], after["status"]) == (CLAIRE, "interview", "proposed")
    assert after["campaign_id"] is after["starts_on"] is None and after["publications"] == [] and after["notes"] == ""
    assert api("get", f"/v1/activations/{body['id']}").get_json() == after

    deleted = api("delete", f"/v1/activations/{body['id']}")
    assert deleted.status_code == 200 and deleted.get_json() == {"id": body["id"], "deleted": True}
    error(api("get", f"/v1/activations/{body['id']}"), 404)
    error(api("delete", f"/v1/activations/{body['id']}"), 404)
    error(api("patch", f"/v1/activations/{body['id']}", {"notes": "x"}), 404)


def test_an_activation_without_an_id_gets_one(api):
    created = api("post", "/v1/activations", {"influencer_id": JULIEN, "type": "press"}).get_json()
    assert re.fullmatch(r"act-[0-9a-f]{12}", created["id"])
    assert api("get", f"/v1/activations/{created['id']}").get_json()["type"] == "press"


@pytest.mark.parametrize("kind", ["activations", "campaigns"])
def test_creating_an_id_that_exists_is_a_conflict(api, versions, kind):
    first = activation(api, notes="first") if kind == "activations" else campaign(api, brief="first")
    before = versions()
    again = {"id": first["id"], "influencer_id": CLAIRE, "type": "press", "notes": "second"}
    if kind == "campaigns":
        again = {"id": first["id"], "name": "Other", "brief": "second"}
    assert error(api("post", f"/v1/{kind}", again), 409)["fields"] == {"id": ["Already exists."]}
    assert api("get", f"/v1/{kind}/{first['id']}").get_json() == first
    assert versions() == before


def test_an_id_in_the_body_must_be_the_path_s(api):
    act = activation(api)
    refused = error(api("patch", f"/v1/activations/{act['id']}", {"id": "act-other", "notes": "x"}), 400)
    assert "id" in refused["fields"]
    cmp = campaign(api)
    assert "id" in error(api("put", f"/v1/campaigns/{cmp['id']}", {"id": "cmp-other", "name": "x"}), 400)["fields"]
    assert api("get", f"/v1/activations/{act['id']}").get_json() == act


@pytest.mark.parametrize("kind", ACTIVATION_TYPES)
def test_every_activation_type_is_accepted_and_documented(api, kind):
    assert activation(api, type=kind)["type"] == kind
    assert kind in TYPES_TEXT  # the schemas' description lists them


def test_the_activation_types_are_those_of_the_brief():
    assert ACTIVATION_TYPES == ("event", "interview", "visit", "product_test", "press", "sponsored_post")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"influencer_id": "inf-nobody"}, "influencer_id"),
        ({"campaign_id": "cmp-nowhere"}, "campaign_id"),
        ({"moment": "after_sales"}, "moment"),
        ({"publications": [PIECE, "cnt-nothing"]}, "publications"),
        ({"type": "webinar"}, "type"),
        ({"status": "lost"}, "status"),
        ({"starts_on": "2026-09-10", "ends_on": "2026-09-01"}, "ends_on"),
        ({"starts_on": "10/09/2026"}, "starts_on"),
        ({"starts_on": "1900-01-01"}, "starts_on"),
        ({"sent_at": "yesterday", "status": "sent"}, "sent_at"),
        ({"publications": "cnt-julien-domotique-01"}, "publications"),
        ({"notes": None}, "notes"),
        ({"budget": 100}, "budget"),
        ({"published_at": "2026-01-01T10:00:00Z"}, "published_at"),  # not published
        ({"status": "sent", "sent_at": "1969-12-31T23:00:00Z"}, "sent_at"),
    ],
)
def test_invalid_activations_are_refused_with_field_errors_and_nothing_written(api, versions, changes, field):
    before_versions, before_total = versions(), api("get", "/v1/activations").get_json()["total"]
    body = {"id": new_id("act"), "influencer_id": JULIEN, "type": "event", **changes}
    refused = error(api("post", "/v1/activations", body), 400)
    assert field in refused["fields"], refused
    error(api("get", f"/v1/activations/{body['id']}"), 404)
    assert api("get", "/v1/activations").get_json()["total"] == before_total

    existing = activation(api, starts_on="2026-09-05", ends_on="2026-09-20")
    mid_versions = versions()
    assert field in error(api("patch", f"/v1/activations/{existing['id']}", changes), 400)["fields"]
    assert api("get", f"/v1/activations/{existing['id']}").get_json() == existing
    assert versions() == mid_versions
    assert before_versions[1] == versions()[1]


def test_every_problem_is_reported_at_once(api):
    body = {"influencer_id": "inf-nobody", "campaign_id": "cmp-nowhere", "type": "webinar", "publications": ["x"]}
    fields = error(api("post", "/v1/activations", body), 400)["fields"]
    assert set(fields) == {"influencer_id", "campaign_id", "type", "publications"}
    assert "'x'" in fields["publications"][0] and "inf-nobody" in fields["influencer_id"][0]


def test_an_activation_outlives_the_content_it_names(api, app):
    """Changing an activation re-checks only the references that change: a piece deleted since is kept."""
    gone = "cnt-julien-domotique-07"
    act = activation(api, publications=[PIECE, gone])
    assert app.extensions["relais"].delete("content", gone) is not None
    assert api("patch", f"/v1/activations/{act['id']}", {"notes": "ok"}).get_json()["publications"] == [PIECE, gone]
    again = error(api("patch", f"/v1/activations/{act['id']}", {"publications": [gone, "cnt-new"]}), 400)
    assert "cnt-new" in again["fields"]["publications"][0] and gone not in again["fields"]["publications"][0]


def test_dates_are_checked_against_those_kept(api):
    act = activation(api, starts_on="2026-09-05", ends_on="2026-09-20")
    assert "ends_on" in error(api("patch", f"/v1/activations/{act['id']}", {"starts_on": "2026-09-25"}), 400)["fields"]
    assert api("get", f"/v1/activations/{act['id']}").get_json() == act


# -- the lifecycle -------------------------------------------------------------------------------


def test_the_lifecycle_records_when_each_status_is_reached(api):
    act = activation(api)
    stamps = {}
    for status, stamp in (("sent", "sent_at"), ("accepted", "responded_at"), ("published", "published_at")):
        start, end = now_window()
        moved = api("patch", f"/v1/activations/{act['id']}", {"status": status}).get_json()
        assert moved["status"] == status and start <= parse(moved[stamp]) <= end()
        assert all(moved[s] == v for s, v in stamps.items())  # earlier ones are kept
        stamps[stamp] = moved[stamp]
    assert moved["next_statuses"] == []


def test_sent_may_go_straight_to_published_and_to_declined(api):
    published = activation(api, status="sent")
    moved = api("patch", f"/v1/activations/{published['id']}", {"status": "published"}).get_json()
    assert moved["responded_at"] is None and moved["published_at"] is not None
    declined = activation(api, status="sent")
    moved = api("patch", f"/v1/activations/{declined['id']}", {"status": "declined"}).get_json()
    assert moved["responded_at"] is not None and moved["next_statuses"] == []


@pytest.mark.parametrize(("current", "wanted"), sorted(LIFECYCLE))
def test_every_allowed_transition_is_taken(api, current, wanted):
    act = activation(api, status=current)
    assert wanted in act["next_statuses"]
    assert api("patch", f"/v1/activations/{act['id']}", {"status": wanted}).get_json()["status"] == wanted


@pytest.mark.parametrize(("current", "wanted"), REFUSED)
@pytest.mark.parametrize("method", ["patch", "put"])
def test_every_other_transition_is_refused_and_changes_nothing(api, versions, method, current, wanted):
    act = activation(api, status=current)
    before = versions()
    body = {"status": wanted, "notes": "changed"}
    if method == "put":
        body |= {"influencer_id": JULIEN, "type": "event"}
    refused = error(api(method, f"/v1/activations/{act['id']}", body), 409)
    allowed = sorted(b for a, b in LIFECYCLE if a == current)
    assert current in refused["message"] and wanted in refused["message"]
    assert all(status in refused["message"] for status in allowed) and "status" in refused["fields"]
    if not allowed:
        assert "final" in refused["message"]
    assert api("get", f"/v1/activations/{act['id']}").get_json() == act
    assert versions() == before


def test_a_repeated_status_is_no_transition(api):
    act = activation(api, status="accepted")
    again = api("patch", f"/v1/activations/{act['id']}", {"status": "accepted", "notes": "re-sent"}).get_json()
    assert (again["status"], again["responded_at"], again["notes"]) == ("accepted", act["responded_at"], "re-sent")


def test_put_keeps_the_status_and_its_timestamps_unless_sent(api):
    act = activation(api, status="accepted", notes="x")
    replaced = api("put", f"/v1/activations/{act['id']}", {"influencer_id": JULIEN, "type": "visit"}).get_json()
    assert (replaced["status"], replaced["sent_at"], replaced["responded_at"]) == (
        "accepted",
        act["sent_at"],
        act["responded_at"],
    )
    assert replaced["notes"] == "" and replaced["type"] == "visit"


@pytest.mark.parametrize(
    ("status", "given", "implied", "absent"),
    [
        ("sent", {}, ["sent_at"], ["responded_at", "published_at"]),
        ("accepted", {}, ["sent_at", "responded_at"], ["published_at"]),
        ("declined", {}, ["sent_at", "responded_at"], ["published_at"]),
        ("published", {}, ["sent_at", "published_at"], ["responded_at"]),
        ("published", {"sent_at": "2026-01-05T10:00:00+01:00"}, ["published_at"], ["responded_at"]),
    ],
)
def test_an_activation_recorded_later_in_its_life_gets_the_timestamps_it_implies(api, status, given, implied, absent):
    start, end = now_window()
    act = activation(api, status=status, **given)
    assert act["status"] == status
    assert all(start <= parse(act[name]) <= end() for name in implied)
    assert all(act[name] is None for name in absent)


def test_timestamps_given_are_kept_in_utc(api):
    history = {
        "sent_at": "2026-01-05T10:00:00+01:00",
        "responded_at": "2026-01-06T08:30:00Z",
        "published_at": "2026-02-01T12:00:00.750+00:00",
    }
    act = activation(api, status="published", **history)
    assert (act["sent_at"], act["responded_at"], act["published_at"]) == (
        "2026-01-05T09:00:00+00:00",
        "2026-01-06T08:30:00+00:00",
        "2026-02-01T12:00:00+00:00",
    )
    moved = activation(api, status="sent", sent_at="2026-03-01T09:00:00Z")
    backfilled = api(
        "patch", f"/v1/activations/{moved['id']}", {"status": "declined", "responded_at": "2026-03-02T08:00:00Z"}
    )
    assert backfilled.get_json()["responded_at"] == "2026-03-02T08:00:00+00:00"


def test_a_timestamp_without_an_offset_is_taken_as_utc_with_a_warning(api, caplog):
    with caplog.at_level(logging.WARNING):
        act = activation(api, status="sent", sent_at="2026-01-05T10:00:00")
    assert act["sent_at"] == "2026-01-05T10:00:00+00:00" and "no offset" in caplog.text


@pytest.mark.parametrize(
    "history",
    [
        {"status": "accepted", "sent_at": "2026-01-05T10:00:00Z", "responded_at": "2026-01-04T10:00:00Z"},
        {"status": "published", "sent_at": "2026-01-05T10:00:00Z", "published_at": "2026-01-01T10:00:00Z"},
        {"status": "sent", "responded_at": "2026-01-05T10:00:00Z"},
    ],
)
def test_timestamps_out_of_order_or_of_a_status_not_reached_are_refused(api, history):
    fields = error(api("post", "/v1/activations", {"influencer_id": JULIEN, "type": "event", **history}), 400)
    assert {"responded_at", "published_at"} & set(fields["fields"])


# -- lists and filters ---------------------------------------------------------------------------


def test_activations_are_listed_by_filter_and_paged(api):
    cmp = campaign(api)
    made = {
        "a": activation(api, campaign_id=cmp["id"], status="sent", moment="discovery", starts_on="2026-03-01"),
        "b": activation(api, campaign_id=cmp["id"], type="press", starts_on="2026-04-10", ends_on="2026-04-20"),
        "c": activation(api, campaign_id=cmp["id"], influencer_id=CLAIRE, status="sent", starts_on="2026-05-01"),
        "d": activation(api, campaign_id=cmp["id"], status="published", sent_at="2026-02-01T09:00:00Z"),
    }
    activation(api, starts_on="2026-04-12")  # another campaign's, on the same days

    def listed(query: str) -> list[str]:
        response = api("get", f"/v1/activations?campaign={cmp['id']}&{query}")
        assert response.status_code == 200, response.get_json()
        names = {v["id"]: k for k, v in made.items()}
        return [names[a["id"]] for a in response.get_json()["activations"]]

    assert listed("") == ["c", "b", "a", "d"]  # latest first: by their days, d by the day it was sent
    assert listed("status=sent") == ["c", "a"]
    assert listed(f"influencer={CLAIRE}") == ["c"]
    assert listed("moment=discovery") == ["a"]
    assert listed("type=press") == ["b"]
    assert listed("since=2026-04-15&until=2026-04-30") == ["b"]  # it overlaps them
    assert listed("since=2026-04-21") == ["c"]
    assert listed("until=2026-02-28") == ["d"]
    assert listed("status=sent&moment=discovery") == ["a"]
    page = api("get", f"/v1/activations?campaign={cmp['id']}&limit=2&offset=1").get_json()
    assert [a["id"] for a in page["activations"]] == [made["b"]["id"], made["a"]["id"]]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
        ("status=lost", "status"),
        ("moment=after_sales", "moment"),
        ("type=webinar", "type"),
        ("since=2026-13-01", "since"),
        ("since=2026-05-01&until=2026-04-01", "until"),
        ("colour=blue", "colour"),
    ],
)
def test_a_bad_filter_is_a_400(api, query, field):
    assert field in error(api("get", f"/v1/activations?{query}"), 400)["fields"]


# -- contact holds -------------------------------------------------------------------------------


def test_a_hold_is_set_read_replaced_and_cleared(api, versions):
    path = f"/v1/influencers/{CLAIRE}/hold"
    none = api("get", path).get_json()
    assert none == {"influencer_id": CLAIRE, "until": None, "reason": "", "active": False, "updated_at": None}
    later = (date.today() + timedelta(days=90)).isoformat()
    held = api("put", path, {"until": later, "reason": "pause"})
    assert held.status_code == 200
    assert {k: held.get_json()[k] for k in ("influencer_id", "until", "reason", "active")} == {
        "influencer_id": CLAIRE,
        "until": later,
        "reason": "pause",
        "active": True,
    }
    assert api("get", path).get_json() == held.get_json()
    assert api("put", path, {"until": "2027-03-01"}).get_json()["reason"] == ""  # replaced whole
    assert api("delete", path).get_json() == {"id": CLAIRE, "deleted": True}
    assert api("get", path).get_json()["until"] is None
    before = versions()
    assert api("delete", path).get_json() == {"id": CLAIRE, "deleted": False}  # nothing to lift: nothing written
    assert versions() == before


def test_a_hold_in_the_past_holds_nothing_and_says_so(api, caplog):
    with caplog.at_level(logging.WARNING):
        past = api("put", f"/v1/influencers/{CLAIRE}/hold", {"until": "2020-01-01"}).get_json()
    assert past["active"] is False and "no effect" in caplog.text
    api("delete", f"/v1/influencers/{CLAIRE}/hold")


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_a_hold_needs_an_influencer_that_exists(api, versions, method):
    before = versions()
    body = {"until": "2027-03-01"} if method == "put" else None
    assert "inf-nobody" in error(api(method, "/v1/influencers/inf-nobody/hold", body), 404)["message"]
    assert versions() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "until"), ({"until": "2027-02-30"}, "until"), ({"until": "2027-03-01", "why": "x"}, "why")],
)
def test_an_invalid_hold_is_refused(api, versions, body, field):
    before = versions()
    assert field in error(api("put", f"/v1/influencers/{JULIEN}/hold", body), 400)["fields"]
    assert api("get", f"/v1/influencers/{JULIEN}/hold").get_json()["until"] is None and versions() == before


# -- who may call, and what each write counts ----------------------------------------------------


def planning_calls(act_id: str, cmp_id: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", "/v1/campaigns", None),
        ("post", "/v1/campaigns", {"id": new_id("cmp"), "name": "Widget"}),
        ("get", f"/v1/campaigns/{cmp_id}", None),
        ("put", f"/v1/campaigns/{cmp_id}", {"name": "Widget"}),
        ("delete", f"/v1/campaigns/{cmp_id}", None),
        ("get", "/v1/activations", None),
        ("post", "/v1/activations", {"id": new_id("act"), "influencer_id": JULIEN, "type": "event"}),
        ("get", f"/v1/activations/{act_id}", None),
        ("put", f"/v1/activations/{act_id}", {"influencer_id": JULIEN, "type": "press"}),
        ("patch", f"/v1/activations/{act_id}", {"status": "sent"}),
        ("delete", f"/v1/activations/{act_id}", None),
        ("get", f"/v1/influencers/{JULIEN}/hold", None),
        ("put", f"/v1/influencers/{JULIEN}/hold", {"until": "2027-03-01"}),
        ("delete", f"/v1/influencers/{JULIEN}/hold", None),
    ]


def test_widget_keys_may_not_call_any_planning_route(api, versions):
    act, cmp = activation(api), campaign(api)
    before = versions()
    for method, path, body in planning_calls(act["id"], cmp["id"]):
        refused = error(api(method, path, body, role="widget"), 403)
        assert "widget key cannot call" in refused["message"], (method, path)
    assert versions() == before
    assert api("get", f"/v1/activations/{act['id']}").get_json() == act  # nothing changed, nothing deleted
    assert api("get", f"/v1/campaigns/{cmp['id']}").get_json() == cmp
    assert api("get", f"/v1/influencers/{JULIEN}/hold").get_json()["until"] is None


def test_widget_keys_cannot_write_activations(api):
    body = {"id": new_id("act"), "influencer_id": JULIEN, "type": "event"}
    assert error(api("post", "/v1/activations", body, role="widget"), 403)["code"] == "forbidden"
    error(api("get", f"/v1/activations/{body['id']}"), 404)


def test_planner_keys_may_call_every_planning_route_and_each_write_counts_once(api, versions):
    act, cmp = activation(api), campaign(api)
    for method, path, body in planning_calls(act["id"], cmp["id"]):
        planning, records = versions()
        response = api(method, path, body)
        assert response.status_code in (200, 201), (method, path, response.get_json())
        assert versions() == (planning + (method != "get"), records), (method, path)  # records' version unchanged


def test_a_failed_write_counts_nothing(api, versions):
    act = activation(api, status="declined")
    before = versions()
    error(api("patch", f"/v1/activations/{act['id']}", {"status": "published"}), 409)
    error(api("post", "/v1/activations", {"influencer_id": "inf-nobody", "type": "event"}), 400)
    error(api("post", "/v1/activations", {"id": act["id"], "influencer_id": JULIEN, "type": "event"}), 409)
    error(api("delete", "/v1/activations/act-none"), 404)
    error(api("put", "/v1/campaigns/cmp-none", {"name": "x"}), 404)
    assert versions() == before
