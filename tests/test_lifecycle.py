"""Data lifecycle over the API: create, replace, delete, import; the indexes always agree with the database."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from api import create_app
from matcher.cli import main
from matcher.config import Settings
from matcher.keys import create_key
from matcher.service import Engine
from models.contract import ContentSchema

ZOE = {
    "id": "inf-zoe",
    "name": "Zoé Capteurs",
    "bio": "Je démonte les détecteurs de fumée pour voir ce qu'il y a dedans.",
    "topics": ["domotique", "démontage"],
    "category": "affinity",
    "language": "fr",
    "country": "FR",
    "platforms": [{"network": "youtube", "handle": "@zoe", "followers": 5000, "engagement_rate": 0.05}],
}
TEARDOWN = {
    "id": "cnt-zoe-01",
    "influencer_id": "inf-zoe",
    "title": "J'ai démonté le détecteur de fumée Homelive",
    "text": "Pile lithium, chambre optique, module Z-Wave : tout ce qu'il y a dans le boîtier, photos à l'appui.",
    "format": "review",
    "language": "fr",
    "published_at": "2026-11-20",
    "topics": ["démontage"],
    "products": ["homelive"],
}
QUERY = {"moment": "technical_validation", "query": "démontage du détecteur de fumée", "limit": 5}


@pytest.fixture
def app(homelive_copy):
    unlimited = dict.fromkeys(("widget", "planner", "admin", "anonymous"), "1000000 per minute")  # readers loop
    return create_app(
        {"DATA_DIR": str(homelive_copy), "WARM_DETECTOR": False, "DEV_MODE": True, "RATE_LIMITS": unlimited}
    )


@pytest.fixture
def client(app):
    return app.test_client()


def send(client, method, url, body):
    return getattr(client, method)(url, data=body if isinstance(body, (str, bytes)) else json.dumps(body))


def found(client, query=QUERY):
    body = send(client, "post", "/v1/match", query).get_json()
    return {r["id"] for r in body["influencers"]} | {r["id"] for r in body["content"]}


def test_create_is_searchable_at_once_and_create_twice_conflicts(client, app):
    response = send(client, "post", "/v1/influencers", ZOE)
    assert response.status_code == 201 and response.headers["Location"] == "/v1/influencers/inf-zoe"
    assert response.get_json()["outcome"] == "inserted" and response.get_json()["record"]["name"] == "Zoé Capteurs"
    assert send(client, "post", "/v1/content", TEARDOWN).status_code == 201
    assert {"inf-zoe", "cnt-zoe-01"} <= found(client)
    again = send(client, "post", "/v1/influencers", ZOE)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert app.extensions["relais"].check() == []


def test_creates_of_one_id_at_once_make_it_once(app):
    """The 409 check runs under the writer's lock with the write: of creates racing for one id, one is 201."""
    barrier = threading.Barrier(6)
    statuses = []

    def create(n: int) -> None:
        body = json.dumps({**ZOE, "id": "inf-zoe-race", "name": f"Zoé {n}"})
        barrier.wait()
        statuses.append(app.test_client().post("/v1/influencers", data=body).status_code)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 5


@pytest.mark.parametrize(
    ("body", "status", "outcome"),
    [
        (ZOE, 201, "inserted"),
        ({k: v for k, v in ZOE.items() if k != "id"}, 201, "inserted"),  # id from the path
    ],
)
def test_put_creates(client, body, status, outcome):
    response = send(client, "put", "/v1/influencers/inf-zoe", body)
    assert response.status_code == status and response.get_json()["outcome"] == outcome


def test_any_json_number_a_record_keeps_is_written_back(client):
    """A platform's free-form fields keep what they are given: an integer beyond 64 bits is still JSON (a fuzzer
    found the answer to such a write failing after the write itself had succeeded)."""
    platform = {**ZOE["platforms"][0], "lifetime_views": 2**70}
    response = send(client, "put", "/v1/influencers/inf-zoe", {**ZOE, "platforms": [platform]})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["record"]["platforms"][0]["lifetime_views"] == 2**70
    assert client.get("/v1/influencers/inf-zoe").get_json()["platforms"][0]["lifetime_views"] == 2**70


def test_put_twice_is_unchanged_and_an_edit_changes_results(client, app):
    send(client, "put", "/v1/influencers/inf-zoe", ZOE)
    send(client, "put", "/v1/content/cnt-zoe-01", TEARDOWN)
    version = app.extensions["relais"].store.version
    repeat = send(client, "put", "/v1/content/cnt-zoe-01", TEARDOWN)
    assert repeat.status_code == 200 and repeat.get_json()["outcome"] == "unchanged"
    assert app.extensions["relais"].store.version == version
    edited = {
        **TEARDOWN,
        "title": "Recette : le far breton de ma grand-mère",
        "text": "Pruneaux, lait entier, four à 200.",
        "format": "blog_post",
        "products": [],
        "topics": ["cuisine"],
    }
    assert send(client, "put", "/v1/content/cnt-zoe-01", edited).get_json()["outcome"] == "updated"
    assert "cnt-zoe-01" not in found(client)
    assert "cnt-zoe-01" in found(client, {"moment": "desirability", "query": "far breton aux pruneaux", "limit": 3})
    assert app.extensions["relais"].check() == []


def test_moving_a_piece_to_another_author_updates_both(client, app):
    engine = app.extensions["relais"]
    send(client, "put", "/v1/influencers/inf-zoe", ZOE)
    send(client, "put", "/v1/influencers/inf-max", {**ZOE, "id": "inf-max", "name": "Max", "bio": ""})
    send(client, "put", "/v1/content/cnt-zoe-01", TEARDOWN)
    zoe_key, max_key = (engine.store.keys_by_id("influencers", [i])[i] for i in ("inf-zoe", "inf-max"))
    people = engine.catalogue.tables["influencers"]
    before = people.vectors(np.array([zoe_key, max_key])).copy()
    send(client, "put", "/v1/content/cnt-zoe-01", {**TEARDOWN, "influencer_id": "inf-max"})
    after = people.vectors(np.array([zoe_key, max_key]))
    assert not (before[0] == after[0]).all() and not (before[1] == after[1]).all()
    assert engine.check() == []


BAD_WRITES = [  # (method, url, body, status, code, field)
    ("put", "/v1/influencers/inf-zoe", {**ZOE, "id": "inf-other"}, 400, "invalid_request", "id"),
    ("put", "/v1/influencers/inf-zoe", {**ZOE, "category": "celebrity"}, 400, "invalid_request", "category"),
    (
        "post",
        "/v1/influencers",
        {**ZOE, "platforms": [{"network": "x", "followers": -1}]},
        400,
        "invalid_request",
        "platforms",
    ),
    ("post", "/v1/influencers", "[]", 400, "invalid_request", "_schema"),
    ("post", "/v1/influencers", "{oops", 400, "malformed_json", None),
    ("post", "/v1/content", {**TEARDOWN, "influencer_id": "inf-nobody"}, 400, "invalid_request", "influencer_id"),
    ("post", "/v1/content", {**TEARDOWN, "format": "podcast"}, 400, "invalid_request", "format"),
    ("delete", "/v1/content/cnt-nothing", None, 404, "not_found", None),
    ("delete", "/v1/influencers/inf-nobody", None, 404, "not_found", None),
    ("post", "/v1/import?kind=people", "{}", 400, "invalid_request", "kind"),
    ("post", "/v1/import", "hello\n", 400, "invalid_request", "kind"),
]


@pytest.mark.parametrize(("method", "url", "body", "status", "code", "field"), BAD_WRITES)
def test_bad_writes_change_nothing(client, app, method, url, body, status, code, field):
    version = app.extensions["relais"].store.version
    response = getattr(client, method)(
        url, data=None if body is None else body if isinstance(body, str) else json.dumps(body)
    )
    payload = response.get_json()
    assert response.status_code == status and payload["error"]["code"] == code
    if field:
        assert field in payload["error"]["fields"]
    assert app.extensions["relais"].store.version == version


def test_opt_out_hides_everything_but_keeps_the_record(client, app):
    send(client, "put", "/v1/influencers/inf-zoe", ZOE)
    send(client, "put", "/v1/content/cnt-zoe-01", TEARDOWN)
    engine = app.extensions["relais"]
    assert send(client, "put", "/v1/influencers/inf-zoe", {**ZOE, "opted_out": True}).get_json()["outcome"] == "updated"
    assert not {"inf-zoe", "cnt-zoe-01"} & found(client)
    _, planner = create_key(engine.store, "planner")
    assert client.get("/v1/influencers/inf-zoe", headers={"X-API-Key": planner}).status_code == 404
    assert client.get("/v1/content/cnt-zoe-01", headers={"X-API-Key": planner}).status_code == 404
    assert client.get("/v1/influencers/inf-zoe").get_json()["opted_out"] is True  # admins: the audit trail
    keys = (
        engine.store.keys_by_id("influencers", ["inf-zoe"])["inf-zoe"],
        engine.store.keys_by_id("content", ["cnt-zoe-01"])["cnt-zoe-01"],
    )
    assert not engine.catalogue.visible("influencers")[keys[0]] and not engine.catalogue.visible("content")[keys[1]]
    send(client, "put", "/v1/influencers/inf-zoe", ZOE)  # opting back in
    assert {"inf-zoe", "cnt-zoe-01"} <= found(client)
    assert engine.check() == []


def test_delete_forgets_the_influencer_and_their_content(client, app):
    engine = app.extensions["relais"]
    send(client, "put", "/v1/influencers/inf-zoe", ZOE)
    send(client, "put", "/v1/content/cnt-zoe-01", TEARDOWN)
    counts = {k: int(engine.catalogue.visible(k).sum()) for k in ("influencers", "content")}
    response = client.delete("/v1/influencers/inf-zoe")
    assert response.status_code == 200 and response.get_json() == {
        "id": "inf-zoe",
        "deleted": True,
        "content_deleted": 1,
    }
    assert not {"inf-zoe", "cnt-zoe-01"} & found(client)
    assert engine.store.row_by_id("content", "cnt-zoe-01") is None
    assert {k: int(engine.catalogue.visible(k).sum()) for k in counts} == {k: v - 1 for k, v in counts.items()}
    assert engine.check() == []


def test_import_jsonl_reports_each_line_and_is_idempotent(client, app):
    body = (
        "\n".join(
            [
                json.dumps(ZOE),
                "{broken",
                json.dumps({**ZOE, "id": "inf-kim", "name": "Kim"}),
                json.dumps({**ZOE, "id": "inf-bad", "category": "?"}),
            ]
        )
        + "\n"
    )
    first = send(client, "post", "/v1/import?kind=influencers", body).get_json()
    assert (first["inserted"], first["updated"], first["unchanged"]) == (2, 0, 0)
    assert [(r["line"], r["reason"][:12]) for r in first["rejected"]] == [(2, "invalid JSON"), (4, "category: Mu")]
    version = app.extensions["relais"].store.version
    second = send(client, "post", "/v1/import", body).get_json()  # kind told from the records this time
    assert (second["inserted"], second["updated"], second["unchanged"], len(second["rejected"])) == (0, 0, 2, 2)
    assert app.extensions["relais"].store.version == version


def test_import_csv(client, app):
    send(client, "put", "/v1/influencers/inf-zoe", ZOE)
    rows = (
        "id,influencer_id,title,text,format,language,published_at,topics,products,likes,comments\n"
        'cnt-zoe-02,inf-zoe,"Sirène : 105 dB, vraiment ?","Mesurée à un mètre, sonomètre calibré.",review,fr,'
        "2026-11-21,mesures|sirène,homelive,40,3\n"
        "cnt-zoe-03,inf-zoe,,,tweet,fr,2026-11-22,,,,\n"
    )
    report = client.post("/v1/import", data=rows, content_type="text/csv").get_json()
    assert report["kind"] == "content" and report["inserted"] == 1
    assert report["rejected"] == [
        {"line": 3, "id": "cnt-zoe-03", "reason": "text: title and text are both empty: nothing to match on."}
    ]
    piece = client.get("/v1/content/cnt-zoe-02").get_json()
    assert piece["topics"] == ["mesures", "sirène"] and piece["engagement"]["likes"] == 40
    assert app.extensions["relais"].check() == []


def test_readers_never_see_half_an_import(client, app):
    """While an import of 40 people is written, every search sees none of them or all of them."""
    people = [
        {**ZOE, "id": f"inf-wombat-{i}", "name": f"Wombat Quokka {i}", "bio": "Wombat quokka numbat."}
        for i in range(40)
    ]
    body = "\n".join(json.dumps(p) for p in people)
    query = {"moment": "discovery", "query": "wombat quokka numbat", "limit": 100, "types": ["influencers"]}
    seen: list[int] = []
    errors: list[Exception] = []
    done = threading.Event()

    def search() -> None:
        reader = app.test_client()
        while not done.is_set():
            try:
                response = send(reader, "post", "/v1/match", query)
                assert response.status_code == 200, response.get_json()
                ids = {r["id"] for r in response.get_json()["influencers"]}
                seen.append(sum(i.startswith("inf-wombat-") for i in ids))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    report = send(client, "post", "/v1/import?kind=influencers", body).get_json()
    after = len(seen)
    deadline = time.monotonic() + 30
    while len(seen) < after + 3 and time.monotonic() < deadline and not errors:
        time.sleep(0.01)  # a few searches that start once the import has answered
    done.set()
    for t in threads:
        t.join()
    assert report["inserted"] == 40 and not errors
    assert set(seen) <= {0, 40}, sorted(set(seen))
    assert seen[0] == 0 and seen[-1] == 40  # searches ran before the commit and after it


def test_a_write_whose_process_died_before_applying_it_is_served_on_start(homelive_copy):
    """A process may die between its commit and updating its catalogue: the change log has the write, so the next
    start serves it (and clears what a save cut short left behind)."""
    writer = Engine(Settings(data_dir=homelive_copy)).writer
    record = ContentSchema().load(
        {
            **TEARDOWN,
            "id": "cnt-cargo",
            "influencer_id": None,
            "products": [],
            "title": "Vélo cargo électrique : mon essai",
            "text": "Trois mois à Lyon.",
        }
    )
    rows, vectors = writer.prepare("content", [record])
    writer.store.upsert("content", rows, vectors, writer.encoder.name)  # committed; no catalogue ever applied it
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # the process whose save was cut short
    gone.wait()
    leftover = homelive_copy / "vectors" / f".content-v1.vectors.npy.{gone.pid}.a1b2c3.tmp"
    leftover.write_bytes(b"half a file")
    engine = Engine(Settings(data_dir=homelive_copy))
    assert engine.opened == "loaded" and not leftover.exists()
    assert engine.check() == []
    hits = engine.match("desirability", "vélo cargo électrique", limit=3, types=["content"]).content
    assert hits[0].row["id"] == "cnt-cargo"


def test_writes_from_another_process_are_seen(homelive_copy, influencers):
    engine = Engine(Settings(data_dir=homelive_copy))
    someone = next(i for i, r in influencers.items() if not r.get("opted_out") and r["category"] == "partner")
    assert someone in {r.row["id"] for r in engine.match("technical_validation", limit=100).influencers}
    result = CliRunner().invoke(main, ["delete", "--data-dir", str(homelive_copy), someone])
    assert result.exit_code == 0 and "Deleted" in result.output
    assert someone not in {r.row["id"] for r in engine.match("technical_validation", limit=100).influencers}


def test_a_search_during_this_process_write_neither_applies_it_nor_waits(homelive_copy, influencers):
    """This process's writer applies its own write once committed: a search meanwhile answers from the state
    before it (a search that came first used to apply a whole import itself), and sees it once it is applied."""
    engine = Engine(Settings(data_dir=homelive_copy))
    someone = next(i for i, r in influencers.items() if not r.get("opted_out") and r["category"] == "partner")

    def found() -> bool:
        return someone in {r.row["id"] for r in engine.match("technical_validation", limit=100).influencers}

    assert found()
    with engine.catalogue.local_write():  # as the writer holds it between its commit and applying it
        assert CliRunner().invoke(main, ["delete", "--data-dir", str(homelive_copy), someone]).exit_code == 0
        assert found()  # not applied by the search, and the search did not wait for it
    assert not found()  # applied at the next request once no write of this process is under way


def test_check_command_reports_and_fails(homelive_copy):
    ok = CliRunner().invoke(main, ["check", "--data-dir", str(homelive_copy)])
    assert ok.exit_code == 0 and "OK: the saved vectors agree" in ok.output
    for path in (homelive_copy / "vectors").glob("influencers-*"):
        path.unlink()
    bad = CliRunner().invoke(main, ["check", "--data-dir", str(homelive_copy)])
    assert bad.exit_code == 1 and "PROBLEM influencers: no saved vectors" in bad.output
    assert CliRunner().invoke(main, ["reindex", "--data-dir", str(homelive_copy)]).exit_code == 0
    assert CliRunner().invoke(main, ["check", "--data-dir", str(homelive_copy)]).exit_code == 0


def test_check_finds_altered_vectors_and_a_lost_change(homelive_copy):
    """Saved vectors whose metadata agree with the database but whose contents do not are still caught, and so is
    a write the change log lost (its record would be served with no vector)."""
    engine = Engine(Settings(data_dir=homelive_copy))
    base = engine.catalogue.tables["influencers"].base
    altered = int(base.keys[0])
    rows = np.load(sorted((homelive_copy / "vectors").glob("influencers-v*.vectors.npy"))[-1], mmap_mode="r+")
    rows[altered] = -rows[altered]
    rows.flush()
    writer = engine.writer
    record = ContentSchema().load({**TEARDOWN, "id": "cnt-lost", "influencer_id": None})
    rows, vectors = writer.prepare("content", [record])
    writer.store.upsert("content", rows, vectors, writer.encoder.name)
    key = writer.store.keys_by_id("content", ["cnt-lost"])["cnt-lost"]
    writer.store.db.execute("DELETE FROM changes WHERE kind = 'content' AND key = ?", [key])
    writer.store.db.conn.commit()
    found = engine.check()
    assert len(found) == 3 and "influencers-v" in found[0] and "vectors.npy is damaged" in found[0], found
    assert found[1:] == [
        "influencers: saved vectors differ from the stored embeddings",
        "content: saved vectors differ from the stored embeddings",
    ]


def test_a_piece_whose_author_vanished_mid_write_is_refused_whole(homelive_copy):
    """Another process may delete an author after the writer checked it: the store refuses, writing nothing."""
    from matcher.errors import ConflictError

    writer = Engine(Settings(data_dir=homelive_copy)).writer
    good = ContentSchema().load({**TEARDOWN, "id": "cnt-good", "influencer_id": None})
    orphan = ContentSchema().load({**TEARDOWN, "id": "cnt-orphan", "influencer_id": "inf-deleted-meanwhile"})
    rows, _ = writer.prepare("content", [good, orphan])
    version = writer.store.version
    with pytest.raises(ConflictError, match="Nothing was written"):
        writer.store.upsert("content", rows, {}, writer.encoder.name)
    assert writer.store.version == version
    assert not writer.store.keys_by_id("content", ["cnt-good", "cnt-orphan"])


@pytest.mark.parametrize("damage", ["reversed ids", "random bytes"])
def test_a_damaged_index_is_rebuilt_at_start_not_served(homelive_copy, engine, damage):
    """Issue 14, item 5: a vectors file altered on disk used to be served silently (wrong neighbours, 200s).
    Opening checks each file against the checksum its save recorded and rebuilds that kind from the database."""
    vectors = homelive_copy / "vectors"
    if damage == "reversed ids":
        path = sorted(vectors.glob("content-v*.keys.npy"))[-1]
        keys = np.load(path)
        np.save(path, keys[::-1].copy())
    else:
        path = sorted(vectors.glob("content-v*.vectors.npy"))[-1]
        with path.open("r+b") as f:
            f.seek(path.stat().st_size // 2)
            f.write(np.random.default_rng(5).bytes(4096))
    reopened = Engine(Settings(data_dir=homelive_copy))
    assert reopened.opened.startswith("repaired") and "is damaged" in reopened.opened, reopened.opened
    assert reopened.check() == []
    for query in ("installer une caméra", "une maison plus douce le soir"):
        clean = [r.row["id"] for r in engine.match("desirability", query, limit=10, types=["content"]).content]
        served = [r.row["id"] for r in reopened.match("desirability", query, limit=10, types=["content"]).content]
        assert served == clean
