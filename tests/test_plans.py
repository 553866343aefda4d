"""Plans through the API with real keys over a real SQLite store: shortlists that respect opt-outs, holds, fatigue
caps and budgets; the diversity and once-per-plan rules; gaps worked out here from the fixture files; the CSV
against the JSON; activations made once; roles; bad requests refused with nothing stored; the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from api import create_app
from matcher.cli import main
from matcher.config import PACKAGE_DIR
from matcher.errors import ConfigError
from matcher.keys import create_key
from matcher.planner import Candidate, Planner, PlanRequest, load_rules
from matcher.ranking import Ranked
from matcher.scoring import Part, fold
from models.contract import ContentSchema, InfluencerSchema
from models.records import CATEGORIES
from tests.conftest import copy_data_dir

SITE = "https://www.example.com"
BRIEF = "tester la compatibilité des capteurs et du détecteur avec la box"
BODY = {"products": ["homelive"], "brief": BRIEF}
RULES = json.loads((PACKAGE_DIR / "data" / "activation_rules.json").read_text(encoding="utf-8"))
MOMENTS = json.loads((PACKAGE_DIR / "data" / "moments.json").read_text(encoding="utf-8"))["moments"]
ROLES = ("shortlist", "alternates")


def make_api(data_dir: Path):
    """``(api, app)``: ``api(method, path, body=None, role="planner")`` -> the response, over an app on data_dir."""
    app = create_app({"DATA_DIR": str(data_dir), "WARM_DETECTOR": False})
    store = app.extensions["relais"].store
    keys = {role: create_key(store, role, [SITE] if role == "widget" else [])[1] for role in ("widget", "planner")}
    client = app.test_client()

    def call(method, path, body=None, role="planner"):
        headers = {"Authorization": f"Bearer {keys[role]}", "Origin": SITE}
        data = None if body is None else json.dumps(body)
        return client.open(path, method=method.upper(), data=data, headers=headers)

    return call, app


@pytest.fixture(scope="module")
def shared(homelive_dir, tmp_path_factory):
    """An app over a copy of the Homelive data for tests that only add plans."""
    return make_api(copy_data_dir(homelive_dir, tmp_path_factory.mktemp("plans") / "data"))


@pytest.fixture
def api(shared):
    return shared[0]


@pytest.fixture
def private(homelive_copy):
    """An app over a private copy, for tests that change people, holds and activations."""
    return make_api(homelive_copy)


def plan(api, **fields) -> dict:
    response = api("post", "/v1/plans", {**BODY, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def error(response, status):
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def rows(found: dict, roles=ROLES) -> list[tuple[str, str, dict]]:
    """(moment, category, row) of every person proposed."""
    return [
        (m["moment"], b["category"], r)
        for m in found["moments"]
        for b in m["categories"]
        for role in roles
        for r in b[role]
    ]


def block(found: dict, moment: str, category: str) -> dict:
    part = next(m for m in found["moments"] if m["moment"] == moment)
    return next(b for b in part["categories"] if b["category"] == category)


def top(found: dict, moment: str, category: str) -> dict:
    return block(found, moment, category)["shortlist"][0]


def put_influencer(engine, influencers, person_id: str, **changes) -> None:
    engine.put("influencers", InfluencerSchema().load({**influencers[person_id], **changes}))


# -- the plan --------------------------------------------------------------------------------------


def test_a_plan_round_trip(api):
    created = api("post", "/v1/plans", BODY)
    assert created.status_code == 201
    found = created.get_json()
    assert created.headers["Location"].endswith(f"/v1/plans/{found['id']}")
    assert api("get", f"/v1/plans/{found['id']}").get_json() == found
    assert found["id"] in [p["id"] for p in api("get", "/v1/plans").get_json()["plans"]]
    assert [m["moment"] for m in found["moments"]] == list(MOMENTS)  # all, in the moments file's order
    assert found["request"]["budget"] == RULES["budget"] and found["request"]["alternates"] == RULES["alternates"]
    assert set(found["rules"]) >= {"contactable", "once_per_plan", "diversity", "gaps", "activation_types"}
    for moment, category, row in rows(found):
        assert row["category"] == category
        parts = row["score_parts"]
        assert {"relevance", "moment_fit", "influence", "engagement", "fatigue"} <= set(parts)
        assert abs(sum(p["contribution"] for p in parts.values()) - row["score"]) < 1e-3  # rounded to 4 places
        assert row["fatigue"] == {"value": parts["fatigue"]["value"], "reason": parts["fatigue"]["reason"]}
        rule = RULES["activation_types"][category].get(moment, RULES["activation_types"][category]["default"])
        assert (row["suggested"]["type"], row["suggested"]["reason"]) == (rule["type"], rule["reason"])
    for moment in found["moments"]:
        for b in moment["categories"]:
            assert len(b["shortlist"]) + b["missing"] == b["budget"] == RULES["budget"][b["category"]]
            assert len(b["alternates"]) <= RULES["alternates"]
            scores = [r["score"] for r in b["alternates"]]
            assert scores == sorted(scores, reverse=True)
    deleted = api("delete", f"/v1/plans/{found['id']}")
    assert deleted.get_json() == {"id": found["id"], "deleted": True}
    assert "No plan" in error(api("get", f"/v1/plans/{found['id']}"), 404)["message"]
    error(api("get", f"/v1/plans/{found['id']}.csv"), 404)
    error(api("delete", f"/v1/plans/{found['id']}"), 404)


def test_budgets_and_alternates_are_respected(api):
    found = plan(api, budget={"partner": 2, "statutory": 0, "customer": 1}, alternates=1)
    assert found["request"]["budget"] == {**RULES["budget"], "partner": 2, "statutory": 0, "customer": 1}
    for moment in found["moments"]:
        budgets = {b["category"]: b["budget"] for b in moment["categories"]}
        assert budgets == {"partner": 2, "affinity": RULES["budget"]["affinity"], "customer": 1}
        for b in moment["categories"]:
            assert len(b["shortlist"]) <= b["budget"] and len(b["alternates"]) <= 1
    # 15 partners in the fixtures: enough for 2 a moment, 3 moments
    assert all(len(block(found, m, "partner")["shortlist"]) == 2 for m in MOMENTS)


def test_a_person_appears_once_per_plan_where_they_score_best(api):
    found = plan(api)
    ids = [r["id"] for _, _, r in rows(found)]
    assert len(ids) == len(set(ids))
    where = {r["id"]: (m, r["score"]) for m, _, r in rows(found)}
    elsewhere = [
        (m["moment"], s)
        for m in found["moments"]
        for b in m["categories"]
        for s in b["skipped"]
        if "in the plan for" in s["reason"]
    ]
    assert elsewhere, "the same partners rank first at every moment: some must be planned elsewhere"
    for moment, skipped in elsewhere:
        there, score = where[skipped["id"]]
        assert there != moment and f"in the plan for {there}" in skipped["reason"] and score >= skipped["score"]


def test_moments_and_campaign_defaults(api):
    campaign = {"id": "cmp-plans-defaults", "name": "Rentrée", "products": ["homelive"], "brief": BRIEF}
    campaign |= {"starts_on": "2026-09-01", "ends_on": "2026-10-15"}
    assert api("post", "/v1/campaigns", campaign).status_code == 201
    found = api("post", "/v1/plans", {"campaign": campaign["id"], "moments": "technical_validation"}).get_json()
    assert [m["moment"] for m in found["moments"]] == ["technical_validation"]
    request = found["request"]
    assert (request["products"], request["brief"], request["starts_on"], request["ends_on"]) == (
        ["homelive"],
        BRIEF,
        "2026-09-01",
        "2026-10-15",
    )
    assert found["campaign"] == campaign["id"]


# -- who may be proposed -------------------------------------------------------------------------


def test_people_who_opt_out_never_appear(private, influencers):
    api, app = private
    engine = app.extensions["relais"]
    before = plan(api)
    person = top(before, "technical_validation", "partner")["id"]
    put_influencer(engine, influencers, person, opted_out=True)
    after = plan(api)
    assert person not in json.dumps(after)  # not a row, not skipped, not an author of the content shown
    old = api("get", f"/v1/plans/{before['id']}").get_json()  # the plan made before: they are left out now
    assert person not in json.dumps(old["moments"]) and old["withdrawn"] == 1
    assert person not in api("get", f"/v1/plans/{before['id']}.csv").get_data(as_text=True)


def test_held_people_are_skipped_and_the_plan_says_why(private):
    api, app = private
    person = top(plan(api), "technical_validation", "partner")
    until = (date.today() + timedelta(days=30)).isoformat()
    assert api("put", f"/v1/influencers/{person['id']}/hold", {"until": until, "reason": "pause"}).status_code == 200
    found = plan(api)
    assert person["id"] not in [r["id"] for _, _, r in rows(found)]
    skipped = [s for m in found["moments"] for b in m["categories"] for s in b["skipped"] if s["id"] == person["id"]]
    assert skipped and all(s["reason"] == f"not contactable: do not contact before {until} (pause)" for s in skipped)


def test_fatigue_caps_are_respected(private):
    api, _ = private
    first = plan(api)
    affinity = top(first, "desirability", "affinity")  # affinity: 1 activation in 30 days at most
    partner = top(first, "technical_validation", "partner")  # partner: 3 in 30 days
    for person in (affinity, partner):
        body = {"influencer_id": person["id"], "type": "event", "status": "sent"}
        assert api("post", "/v1/activations", body).status_code == 201
    found = plan(api)
    proposed = {r["id"]: r for _, _, r in rows(found)}
    assert affinity["id"] not in proposed
    reasons = {
        s["reason"]
        for m in found["moments"]
        for b in m["categories"]
        for s in b["skipped"]
        if s["id"] == affinity["id"]
    }
    assert reasons == {"not contactable: 1 activation in 30 days (affinity at its cap)"}
    assert proposed[partner["id"]]["fatigue"]["value"] == pytest.approx(1 - 1 / 3, abs=1e-4)
    assert proposed[partner["id"]]["fatigue"]["reason"] == "1 activation in 30 days (partner cap 3)"


def test_excluded_people_are_not_proposed(api):
    person = top(plan(api), "technical_validation", "partner")["id"]
    found = plan(api, exclude=[person])
    assert person not in [r["id"] for _, _, r in rows(found)]
    assert "excluded from this plan" in {
        s["reason"] for m in found["moments"] for b in m["categories"] for s in b["skipped"] if s["id"] == person
    }


# -- diversity -----------------------------------------------------------------------------------


def test_near_identical_profiles_do_not_share_a_shortlist(private, influencers, contents):
    api, app = private
    engine = app.extensions["relais"]
    original = top(plan(api, moments=["technical_validation"]), "technical_validation", "partner")
    twin_id = f"{original['id']}-twin"
    put_influencer(engine, influencers, original["id"], id=twin_id, name="Jumeau Numérique")
    for piece in (c for c in contents.values() if c["influencer_id"] == original["id"]):
        engine.put("content", ContentSchema().load({**piece, "id": f"{piece['id']}-twin", "influencer_id": twin_id}))
    keys = engine.store.keys_by_id("influencers", [original["id"], twin_id])
    a, b = engine.catalogue.tables["influencers"].vectors(np.array([keys[original["id"]], keys[twin_id]]))
    cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cosine > RULES["diversity"]["max_profile_cosine"]  # the premise: they are near-identical

    partners = block(plan(api, moments=["technical_validation"]), "technical_validation", "partner")
    shortlisted = [r["id"] for r in partners["shortlist"]]
    assert len({original["id"], twin_id} & set(shortlisted)) == 1
    moved = next(r for r in partners["alternates"] if r["id"] in (original["id"], twin_id))
    kept = next(r for r in partners["shortlist"] if r["id"] in (original["id"], twin_id))
    assert moved["diversity"].startswith(f"near-identical to {kept['name']} (profile cosine ")


def candidate(person: str, score: float, networks: list[str], vector: list[float]) -> Candidate:
    row = {"id": person, "name": person.title(), "networks": networks}
    parts = {"fatigue": Part(1.0, 0.3, "no recent activation")}
    v = np.array(vector, np.float32)
    return Candidate(Ranked(row, score, parts), 0, v / np.linalg.norm(v))


@pytest.mark.parametrize(
    ("margin", "cosine", "shortlist", "alternates"),
    [
        (0.05, 0.9, ["a", "c"], ["b", "d"]),  # c brings instagram and is within 0.05 of b
        (0.01, 0.9, ["a", "b"], ["c", "d"]),  # c is too far behind b
        (0.05, 0.99, ["a", "c"], ["b", "d"]),  # b is also a's twin
        (0.0, 0.99, ["a", "c"], ["b", "d"]),  # b is a's twin: c is next, whatever its network
    ],
)
def test_the_diversity_rule_on_hand_made_profiles(margin, cosine, shortlist, alternates):
    """a and b on youtube, b's profile close to a's (cosine ``cosine``), c on instagram just behind b, d last."""
    planner = Planner(None, {**RULES, "diversity": {"max_profile_cosine": 0.95, "network_margin": margin}})
    other = np.sqrt(1 - cosine**2)
    found = [
        candidate("a", 0.80, ["youtube"], [1, 0, 0]),
        candidate("b", 0.79, ["youtube"], [cosine, other, 0]),
        candidate("c", 0.77, ["instagram"], [0, 0, 1]),
        candidate("d", 0.60, ["youtube", "blog"], [0, 1, 0]),
    ]
    request = PlanRequest(None, ("homelive",), BRIEF, ("discovery",), {**RULES["budget"], "partner": 2})
    chosen = planner.select(found, request, "partner")
    assert [c.id for c in chosen.shortlist] == shortlist and [c.id for c in chosen.alternates] == alternates
    notes = {c.id: c.note for c in found if c.note}
    if cosine > 0.95:
        assert notes["b"] == f"near-identical to A (profile cosine {cosine:.2f})"
    elif shortlist == ["a", "c"]:
        assert notes == {"c": "ahead of B (0.79) for a network: instagram"}


# -- content and gaps ----------------------------------------------------------------------------


def expected_gaps(contents: dict, influencers: dict, products: set[str], languages: list[str]) -> set[tuple]:
    """Worked out from the fixture files, the moments file and the rules: (moment, format, language) with no good
    piece (about a product, by someone who has not opted out, tonality high enough)."""
    rules = RULES["gaps"]

    def good(piece: dict) -> bool:
        author = influencers.get(piece["influencer_id"]) if piece["influencer_id"] else None
        tonality = 0.5 if piece.get("sentiment") is None else (piece["sentiment"] + 1) / 2
        about = {fold(p) for p in piece.get("products", [])} & products
        return bool(about) and not (author and author.get("opted_out")) and tonality >= rules["min_tonality"]

    served = {(c["format"], c.get("language")) for c in contents.values() if good(c)}
    return {
        (moment, fmt, language)
        for moment, spec in MOMENTS.items()
        for fmt, weight in spec["content"]["formats"].items()
        if weight >= rules["min_format_weight"]
        for language in languages
        if (fmt, language) not in served
    }


def found_gaps(found: dict) -> set[tuple]:
    return {(m["moment"], g["format"], g["language"]) for m in found["moments"] for g in m["gaps"]}


def test_gaps_are_where_the_fixtures_lack_content(private, contents, influencers):
    api, app = private
    expected = expected_gaps(contents, influencers, {"homelive"}, RULES["gaps"]["languages"])
    assert ("technical_validation", "tutorial", "en") in expected  # the fixtures have no tutorial in English
    found = plan(api)
    assert found_gaps(found) == expected
    gap = next(g for m in found["moments"] for g in m["gaps"] if (g["format"], g["language"]) == ("tutorial", "en"))
    assert gap["message"] == "no tutorial in en for technical_validation" and gap["pieces"] == 0
    assert gap["format_weight"] == MOMENTS["technical_validation"]["content"]["formats"]["tutorial"]
    assert found_gaps(plan(api, languages=["fr"])) == expected_gaps(contents, influencers, {"homelive"}, ["fr"])

    engine = app.extensions["relais"]
    piece = {
        "id": "cnt-tutorial-en",
        "influencer_id": "inf-julien-domotique",
        "title": "Pairing Homelive door sensors with the box",
        "text": "Step by step: pairing the Homelive door sensors with the Livebox, then testing the siren.",
        "format": "tutorial",
        "language": "en",
        "published_at": "2026-05-01T10:00:00+00:00",
        "products": ["homelive"],
        "sentiment": -0.9,  # a piece that pans it: not good content
    }
    engine.put("content", ContentSchema().load(piece))
    gaps = [g for m in plan(api)["moments"] for g in m["gaps"]]
    still = next(g for g in gaps if (g["format"], g["language"]) == ("tutorial", "en"))
    assert still["pieces"] == 1 and still["message"].endswith("(1 piece, none good)")
    engine.put("content", ContentSchema().load({**piece, "sentiment": 0.6}))
    assert found_gaps(plan(api)) == expected - {("technical_validation", "tutorial", "en")}


def test_the_content_shown_is_about_the_products(api):
    found = plan(api, languages=["fr"])
    for moment in found["moments"]:
        assert 0 < len(moment["content"]) <= RULES["content"]["per_moment"]
        for piece in moment["content"]:
            assert "homelive" in {fold(p) for p in piece["products"]} and piece["language"] == "fr"
            assert piece["score_parts"]["moment_fit"]["reason"]


def test_past_activations_of_the_suggested_type_are_shown(private):
    api, app = private
    first = plan(api, moments=["technical_validation"])
    person = top(first, "technical_validation", "partner")
    assert person["suggested"]["type"] == "product_test" and person["suggested"]["past"]["activations"] == 0
    history = [("published", "2026-01-10T09:00:00Z"), ("declined", "2026-02-10T09:00:00Z"), ("sent", None)]
    for status, sent in history:
        body = {"influencer_id": "inf-claire-vasseur", "type": "product_test", "moment": "technical_validation"}
        body |= {"status": status, **({"sent_at": sent} if sent else {})}
        assert api("post", "/v1/activations", body).status_code == 201
    other = {"influencer_id": "inf-claire-vasseur", "type": "product_test", "moment": "discovery", "status": "sent"}
    assert api("post", "/v1/activations", other).status_code == 201  # another moment: not counted
    found = plan(api, moments=["technical_validation"])
    past = top(found, "technical_validation", "partner")["suggested"]["past"]
    # 3 sent; responded: published and declined (2); published: 1
    assert past == {
        "type": "product_test",
        "activations": 3,
        "sent": 3,
        "response_rate": 2 / 3,
        "activation_rate": 1 / 3,
    }
    assert found["moments"][0]["past_activations"] == [past]
    report = app.extensions["relais"].kpis({"moment": ["technical_validation"]}, ["type"])  # what GET /v1/kpis says
    group = next(g for g in report["activations"]["groups"] if g["group"] == {"type": "product_test"})
    assert {k: group[k]["value"] for k in ("activations", "sent", "response_rate", "activation_rate")} == {
        k: past[k] for k in ("activations", "sent", "response_rate", "activation_rate")
    }


# -- a planner's edits ---------------------------------------------------------------------------

TV = "technical_validation"


def edit(api, found: dict, *edits, status: int = 200) -> dict:
    """``edits``: (moment, influencer, to) or (moment, influencer, to, {"position": n})."""
    body = {"edits": [{"moment": e[0], "influencer": e[1], "to": e[2], **(e[3] if len(e) > 3 else {})} for e in edits]}
    response = api("patch", f"/v1/plans/{found['id']}", body)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def ids(found: dict, moment: str, category: str, role: str) -> list[str]:
    return [r["id"] for r in block(found, moment, category)[role]]


def test_a_swap_between_shortlist_and_alternates_is_two_edits_in_one_call(api):
    found = plan(api, moments=[TV], budget={"partner": 2})
    shortlist, alternates = ids(found, TV, "partner", "shortlist"), ids(found, TV, "partner", "alternates")
    last, first_alternate = shortlist[-1], alternates[0]
    # Alone, promoting an alternate would put three people on a shortlist of two: refused, nothing changed.
    refused = edit(api, found, (TV, first_alternate, "shortlist"), status=409)["error"]
    assert "more than its budget" in refused["message"] and "technical_validation/partner: 3" in refused["message"]
    assert api("get", f"/v1/plans/{found['id']}").get_json()["moments"] == found["moments"]

    swapped = edit(api, found, (TV, last, "alternates", {"position": 1}), (TV, first_alternate, "shortlist"))
    assert ids(swapped, TV, "partner", "shortlist") == [*shortlist[:-1], first_alternate]
    assert ids(swapped, TV, "partner", "alternates") == [last, *alternates[1:]]
    rows_now = {r["id"]: r for _, _, r in rows(swapped)}
    assert rows_now[first_alternate]["role"] == "shortlist" and rows_now[last]["role"] == "alternate"
    assert rows_now[first_alternate]["edited"] == "moved to the shortlist by a planner"
    assert rows_now[last]["edited"] == "moved to the alternates by a planner"
    assert rows_now[shortlist[0]]["edited"] is None
    for role in ROLES:  # ranks follow the lists' new order
        listed = block(swapped, TV, "partner")[role]
        assert [r["rank"] for r in listed] == list(range(1, len(listed) + 1))
    lines = list(csv.DictReader(io.StringIO(api("get", f"/v1/plans/{found['id']}.csv").get_data(as_text=True))))
    by_id = {line["id"]: line for line in lines}
    assert (by_id[first_alternate]["role"], by_id[first_alternate]["edited"]) == (
        "shortlist",
        rows_now[first_alternate]["edited"],
    )
    # The activations follow the edited shortlist.
    made = api("post", f"/v1/plans/{found['id']}/activations").get_json()["created"]
    assert sorted(a["influencer_id"] for a in made) == sorted(r["id"] for _, _, r in rows(swapped, ("shortlist",)))
    assert first_alternate in [a["influencer_id"] for a in made] and last not in [a["influencer_id"] for a in made]


def test_a_dropped_person_is_listed_as_skipped_and_stays_out_when_planned_again(api):
    found = plan(api, moments=[TV])
    person = ids(found, TV, "partner", "shortlist")[0]
    dropped = edit(api, found, (TV, person, "dropped"))
    assert person not in [r["id"] for _, _, r in rows(dropped)]
    assert {"id": person, "reason": "dropped by a planner"}.items() <= next(
        s for s in block(dropped, TV, "partner")["skipped"] if s["id"] == person
    ).items()
    assert block(dropped, TV, "partner")["missing"] == block(found, TV, "partner")["missing"] + 1
    assert person in dropped["request"]["exclude"]
    again = api("put", f"/v1/plans/{found['id']}", dropped["request"]).get_json()  # plan again, as made
    assert person not in [r["id"] for _, _, r in rows(again)]
    edit(api, found, (TV, person, "dropped"), status=400)  # not in the plan any more


def test_someone_the_plan_does_not_hold_can_be_added_if_they_may_be_contacted(private, influencers):
    api, _ = private
    found = plan(api, moments=[TV], budget={"partner": 2})
    held = {r["id"] for _, _, r in rows(found)}
    partners = [i for i, r in influencers.items() if r["category"] == "partner" and not r.get("opted_out")]
    outsider = next(i for i in partners if i not in held)
    added = edit(api, found, (TV, outsider, "alternates", {"position": 1}))
    row = block(added, TV, "partner")["alternates"][0]
    assert (row["id"], row["role"], row["edited"], row["activation"]) == (
        outsider,
        "alternate",
        "added by a planner",
        None,
    )
    rule = RULES["activation_types"]["partner"].get(TV, RULES["activation_types"]["partner"]["default"])
    assert (row["suggested"]["type"], row["suggested"]["reason"]) == (rule["type"], rule["reason"])
    total = sum(p["weight"] for p in row["score_parts"].values())
    assert row["score"] == pytest.approx(
        sum(p["value"] * p["weight"] for p in row["score_parts"].values()) / total, abs=1e-3
    )
    # Once per plan: not a second time, at this moment or another.
    edit(api, found, (TV, outsider, "shortlist"), status=409)  # the shortlist is full
    second = plan(api, moments=["discovery", TV])
    there = ids(second, "discovery", "partner", "shortlist")[0]
    assert "once per plan" in edit(api, second, (TV, there, "alternates"), status=409)["error"]["message"]
    # Someone held may not be added; someone unknown or opted out is not found. Nothing changes.
    other = next(i for i in partners if i not in held and i != outsider)
    until = (date.today() + timedelta(days=10)).isoformat()
    assert api("put", f"/v1/influencers/{other}/hold", {"until": until, "reason": "pause"}).status_code == 200
    assert (
        f"do not contact before {until}" in edit(api, found, (TV, other, "alternates"), status=409)["error"]["message"]
    )
    gone = next(i for i, r in influencers.items() if r.get("opted_out"))
    for person in (gone, "inf-nobody"):
        assert "edits.0.influencer" in edit(api, found, (TV, person, "alternates"), status=400)["error"]["fields"]
    assert api("get", f"/v1/plans/{found['id']}").get_json()["moments"] == added["moments"]


def test_edits_apply_all_or_none(api):
    found = plan(api, moments=[TV])
    first = ids(found, TV, "partner", "shortlist")[0]
    answer = edit(api, found, (TV, first, "dropped"), ("after_sales", first, "shortlist"), status=400)["error"]
    assert answer["fields"] == {"edits.1.moment": ["Among: technical_validation."]}
    assert api("get", f"/v1/plans/{found['id']}").get_json()["moments"] == found["moments"]
    for body in ({"edits": []}, {"edits": [{"moment": TV, "influencer": first, "to": "elsewhere"}]}, {"edit": []}):
        assert api("patch", f"/v1/plans/{found['id']}", body).status_code == 400
    assert (
        api(
            "patch", "/v1/plans/pln-none", {"edits": [{"moment": TV, "influencer": first, "to": "dropped"}]}
        ).status_code
        == 404
    )


def test_influencers_are_found_by_part_of_a_name_with_accents_ignored(api, influencers):
    def search(text: str, **args) -> list[dict]:
        response = api("get", f"/v1/influencers?q={text}" + "".join(f"&{k}={v}" for k, v in args.items()))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["influencers"]

    visible = {i: r for i, r in influencers.items() if not r.get("opted_out")}
    accented = next(r for r in visible.values() if fold(r["name"]) != r["name"].casefold())
    word = fold(next(w for w in accented["name"].split() if fold(w) != w.casefold()))  # typed without its accent
    found = search(word)
    assert accented["id"] in [f["id"] for f in found]
    for f in found:  # each holds the word in its name, id or a handle, accents aside
        record = visible[f["id"]]
        assert word in fold(" ".join([record["name"], record["id"], *(p["handle"] for p in record["platforms"])]))
    gone = next(r for r in influencers.values() if r.get("opted_out"))
    assert gone["id"] not in [f["id"] for f in search(gone["id"][4:])]
    partners = search("in", category="partner", limit=100)
    assert partners and {f["category"] for f in partners} == {"partner"}
    assert api("get", "/v1/influencers?q=a").status_code == 400  # one letter finds everyone: refused
    assert api("get", "/v1/influencers?q=julien", role="widget").status_code == 403


# -- exports -------------------------------------------------------------------------------------


def test_the_csv_matches_the_json(api):
    found = plan(api)
    response = api("get", f"/v1/plans/{found['id']}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{found["id"]}.csv"'
    lines = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    expected = [
        {
            "moment": moment,
            "category": category,
            "rank": str(r["rank"]),
            "role": r["role"],
            "id": r["id"],
            "name": r["name"],
            "networks": "|".join(r["networks"]),
            "followers": str(r["followers"]),
            "score": str(r["score"]),
            "suggested_type": r["suggested"]["type"],
            "reason": r["suggested"]["reason"],
            "fatigue": str(r["fatigue"]["value"]),
        }
        for moment, category, r in rows(found)
    ]
    assert [{k: line[k] for k in expected[0]} for line in lines] == expected
    assert len(lines) == sum(len(b[role]) for m in found["moments"] for b in m["categories"] for role in ROLES)


def test_the_csv_does_not_carry_formulas_into_a_spreadsheet(private, influencers):
    api, app = private
    person = top(plan(api), "technical_validation", "partner")
    formula = '=HYPERLINK("http://evil.example","Julien")'
    put_influencer(app.extensions["relais"], influencers, person["id"], name=formula)
    found = plan(api)
    assert formula in [r["name"] for _, _, r in rows(found)]  # the JSON keeps the name as given
    lines = list(csv.DictReader(io.StringIO(api("get", f"/v1/plans/{found['id']}.csv").get_data(as_text=True))))
    names = {line["id"]: line["name"] for line in lines}
    assert names[person["id"]] == "'" + formula
    assert all(not n.startswith(("=", "+", "-", "@")) for n in names.values())


# -- activations ---------------------------------------------------------------------------------


def test_a_plan_becomes_activations_once(private):
    api, _ = private
    campaign = {"id": "cmp-plan-activations", "name": "Rentrée", "starts_on": "2026-09-01", "ends_on": "2026-10-01"}
    assert api("post", "/v1/campaigns", campaign).status_code == 201
    found = plan(api, campaign=campaign["id"])
    shortlisted = [(m, r) for m, _, r in rows(found, ("shortlist",))]
    made = api("post", f"/v1/plans/{found['id']}/activations")
    assert made.status_code == 201, made.get_json()
    answer = made.get_json()
    assert len(answer["created"]) == len(shortlisted) and answer["existing"] == [] and answer["not_created"] == []
    for (moment, row), item in zip(shortlisted, answer["created"], strict=True):
        activation = api("get", f"/v1/activations/{item['id']}").get_json()
        assert (activation["influencer_id"], activation["moment"], activation["type"]) == (
            row["id"],
            moment,
            row["suggested"]["type"],
        )
        assert (activation["status"], activation["campaign_id"]) == ("proposed", campaign["id"])
        assert (activation["starts_on"], activation["ends_on"]) == ("2026-09-01", "2026-10-01")
    tracked = api("get", f"/v1/plans/{found['id']}").get_json()
    assert {a["id"] for a in tracked["activations"]} == {a["id"] for a in answer["created"]}
    assert all(r["activation"]["status"] == "proposed" for _, _, r in rows(tracked, ("shortlist",)))
    assert all(r["activation"] is None for _, _, r in rows(tracked, ("alternates",)))

    again = api("post", f"/v1/plans/{found['id']}/activations", {})
    assert again.status_code == 200 and again.get_json()["created"] == []
    assert len(again.get_json()["existing"]) == len(shortlisted)
    listed = api("get", f"/v1/activations?campaign={campaign['id']}&limit=100").get_json()
    assert listed["total"] == len(shortlisted)  # no duplicate

    alternate = rows(found, ("alternates",))[0][2]
    one = api("post", f"/v1/plans/{found['id']}/activations", {"influencers": [alternate["id"]]}).get_json()
    assert [a["influencer_id"] for a in one["created"]] == [alternate["id"]]
    refused = error(api("post", f"/v1/plans/{found['id']}/activations", {"influencers": ["inf-nobody"]}), 400)
    assert "inf-nobody" in refused["fields"]["influencers"][0]
    assert api("get", f"/v1/activations?campaign={campaign['id']}&limit=100").get_json()["total"] == listed["total"] + 1
    moved = api("patch", f"/v1/activations/{answer['created'][0]['id']}", {"status": "sent"})
    assert moved.status_code == 200
    statuses = {a["id"]: a["status"] for a in api("get", f"/v1/plans/{found['id']}").get_json()["activations"]}
    assert statuses[answer["created"][0]["id"]] == "sent"  # the plan tracks them
    error(api("post", "/v1/plans/pln-none/activations"), 404)


def test_put_plans_again_and_keeps_the_activations(private):
    api, _ = private
    found = plan(api, moments=["technical_validation"])
    person = top(found, "technical_validation", "partner")["id"]
    made = api("post", f"/v1/plans/{found['id']}/activations", {"influencers": [person]}).get_json()["created"]
    replaced = api("put", f"/v1/plans/{found['id']}", {**BODY, "moments": ["discovery"], "budget": {"partner": 1}})
    assert replaced.status_code == 200, replaced.get_json()
    again = replaced.get_json()
    assert again["id"] == found["id"] and [m["moment"] for m in again["moments"]] == ["discovery"]
    assert again["created_at"] == found["created_at"] and again["activations"] == [{**made[0], "status": "proposed"}]
    error(api("put", "/v1/plans/pln-none", BODY), 404)


# -- who may call, and what is refused -----------------------------------------------------------


def test_widget_keys_may_not_call_any_plan_route(api):
    found = plan(api, moments=["discovery"])
    calls = [
        ("get", "/v1/plans", None),
        ("post", "/v1/plans", BODY),
        ("get", f"/v1/plans/{found['id']}", None),
        ("get", f"/v1/plans/{found['id']}.csv", None),
        ("put", f"/v1/plans/{found['id']}", BODY),
        ("post", f"/v1/plans/{found['id']}/activations", {}),
        ("delete", f"/v1/plans/{found['id']}", None),
    ]
    for method, path, body in calls:
        assert "widget key cannot call" in error(api(method, path, body, role="widget"), 403)["message"], path
    assert api("get", f"/v1/plans/{found['id']}").get_json() == found  # nothing changed
    for method, path, body in calls:  # the planner may
        assert api(method, path, body).status_code in (200, 201), (method, path)


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"products": [], "brief": ""}, {"products", "brief"}),
        ({"brief": "   "}, {"brief"}),
        ({"brief": "x" * 1001}, {"brief"}),
        ({"moments": ["after_sales"]}, {"moments"}),
        ({"budget": {"influencer": 2}}, {"budget"}),
        ({"budget": {"partner": -1}}, {"budget"}),
        ({"budget": {"partner": 21}}, {"budget"}),
        ({"budget": {"partner": "3"}}, {"budget"}),
        ({"budget": dict.fromkeys(CATEGORIES, 0)}, {"budget"}),
        ({"campaign": "cmp-nowhere"}, {"campaign"}),
        ({"campaign": "has space"}, {"campaign"}),
        ({"min_followers": 10, "max_followers": 5}, {"min_followers"}),
        ({"starts_on": "2026-10-01", "ends_on": "2026-09-01"}, {"ends_on"}),
        ({"starts_on": "01/10/2026"}, {"starts_on"}),
        ({"alternates": 11}, {"alternates"}),
        ({"languages": ["français"]}, {"languages"}),
        ({"colour": "blue"}, {"colour"}),
    ],
)
def test_a_bad_request_is_refused_with_its_fields_and_nothing_stored(api, changes, fields):
    before = api("get", "/v1/plans").get_json()["plans"]
    refused = error(api("post", "/v1/plans", {**BODY, **changes}), 400)
    assert set(refused["fields"]) == fields, refused
    assert "Nothing was stored" in refused["message"]
    assert api("get", "/v1/plans").get_json()["plans"] == before
    found = plan(api, moments=["discovery"])
    assert set(error(api("put", f"/v1/plans/{found['id']}", {**BODY, **changes}), 400)["fields"]) == fields
    assert api("get", f"/v1/plans/{found['id']}").get_json() == found


def test_a_body_that_is_not_an_object_is_refused(api):
    assert error(api("post", "/v1/plans", ["homelive"]), 400)["fields"] == {"_schema": ["Must be a JSON object."]}
    found = plan(api, moments=["discovery"])
    assert error(api("post", f"/v1/plans/{found['id']}/activations", {"influencers": "x"}), 400)["fields"]


# -- the rules file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["activation_types"]["partner"]["discovery"].update(type="webinar"), "partner.discovery"),
        (lambda r: r["activation_types"].update(celebrity=r["activation_types"]["partner"]), "celebrity"),
        (
            lambda r: r["activation_types"]["affinity"].update(
                after_sales=r["activation_types"]["affinity"]["default"]
            ),
            "after_sales",
        ),
        (lambda r: r["activation_types"]["customer"].pop("default"), "'customer' or its 'default'"),
        (lambda r: r["budget"].pop("statutory"), "budget"),
        (lambda r: r["diversity"].update(max_profile_cosine=2), "diversity"),
    ],
)
def test_the_rules_file_is_checked_when_read(tmp_path, change, message):
    rules = json.loads(json.dumps(RULES))
    change(rules)
    path = tmp_path / "activation_rules.json"
    path.write_text(json.dumps(rules), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_rules(path, MOMENTS)
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_the_rules_file_shipped_is_valid_and_complete():
    rules = load_rules(PACKAGE_DIR / "data" / "activation_rules.json", MOMENTS)
    assert set(rules["activation_types"]) == set(CATEGORIES)
    assert rules["activation_types"]["partner"]["technical_validation"]["type"] == "product_test"
    assert rules["activation_types"]["statutory"]["discovery"]["type"] == "event"


# -- the command line ----------------------------------------------------------------------------


def test_the_cli_plans_with_tables_json_and_csv(homelive_copy):
    def run(*args):
        result = CliRunner().invoke(main, ["plan", "--data-dir", str(homelive_copy), *map(str, args)])
        assert result.exit_code == 0, result.output
        return result.output

    common = ("--brief", BRIEF, "--product", "homelive", "--moment", "technical_validation")
    table = run(*common, "--budget", "partner=3", "--budget", "statutory=0")
    assert "Technical validation (technical_validation)" in table and "partner: budget 3" in table
    assert "gap: no tutorial in en for technical_validation" in table and "statutory" not in table
    assert "Plan stored as pln-" in table
    as_json = json.loads(run(*common, "--json", "--dry-run"))
    assert [b["category"] for b in as_json["moments"][0]["categories"]] == [c for c in CATEGORIES if RULES["budget"][c]]
    header = run(*common, "--csv", "--dry-run").splitlines()[0]
    assert header.startswith("moment,category,rank,role,id,name,networks,followers,score,suggested_type,reason")
    bad = CliRunner().invoke(main, ["plan", "--data-dir", str(homelive_copy), *common, "--budget", "partner"])
    assert bad.exit_code == 2 and "partner=3" in bad.output
    unknown = CliRunner().invoke(main, ["plan", "--data-dir", str(homelive_copy), *common, "--moment", "x"])
    assert unknown.exit_code == 1 and "moments" in unknown.output and "Unknown moment 'x'" in unknown.output
